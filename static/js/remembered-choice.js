// A checkbox whose state this browser remembers across visits (localStorage,
// "1" or "0"), shared by the game's and the teach page's "don't keep my
// drawings" switches. Where storage is refused (a private window, a full
// quota) the choice still holds for the page, it is just not remembered.

/** Set `input` from what was remembered under `key`, and remember each change;
 * `onChange(checked)` runs after each change is stored. */
export function rememberChoice(input, key, onChange = () => {}) {
  try {
    input.checked = localStorage.getItem(key) === "1";
  } catch {
    input.checked = false;
  }
  input.addEventListener("change", () => {
    try {
      localStorage.setItem(key, input.checked ? "1" : "0");
    } catch {
      // Not remembered across visits; the page still uses it.
    }
    onChange(input.checked);
  });
}
