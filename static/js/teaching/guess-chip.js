// On a phone the drawing pad is at the top of the lesson (the pad beside the
// steps needs 860 pixels): once it has scrolled out of view, a floating chip
// shows a small copy of the drawing and the current guess, and a tap on it
// scrolls back to the pad. A floating chip rather than a sticky pad: a
// sticky mini-pad would take a fifth of a 740-pixel screen from the layers
// the learner is scrolling to, and drawing on a 90-pixel pad does not work.

const NARROW = "(max-width: 860px)"; // as .explorer's one-column layout (teaching.css)

/** Wire the page's [data-guess-chip] under `root` (a lesson with _drawing_pad.html). */
export function guessChip(root) {
  const chip = root.querySelector("[data-guess-chip]");
  if (!chip) return;
  const padCard = root.querySelector(".explorer__pad");
  const frame = root.querySelector(".pad-frame");
  const pad = root.querySelector("canvas[data-pad]");
  const guess = root.querySelector("[data-guess-digit]");
  const copy = chip.querySelector("canvas");
  const digit = chip.querySelector("[data-chip-digit]");
  const narrow = matchMedia(NARROW);
  let padOnScreen = true;

  function update() {
    chip.hidden = !narrow.matches || padOnScreen;
    if (chip.hidden) return;
    const shown = guess.textContent.trim();
    digit.textContent = shown;
    chip.setAttribute("aria-label", shown === "?"
      ? "Back to the drawing pad" : `The network reads ${shown}: back to the drawing pad`);
    const ctx = copy.getContext("2d");
    ctx.clearRect(0, 0, copy.width, copy.height);
    if (pad.width && pad.height) ctx.drawImage(pad, 0, 0, copy.width, copy.height);
  }

  new IntersectionObserver(([entry]) => {
    padOnScreen = entry.isIntersecting;
    update();
  }).observe(frame);
  // Each answer rewrites the guess: the chip follows it (and the drawing with it).
  new MutationObserver(update).observe(guess, {childList: true, characterData: true, subtree: true});
  narrow.addEventListener("change", update);
  chip.addEventListener("click", () => {
    padCard.scrollIntoView({block: "start"});
    // The pad card takes the focus (tabindex="-1"), so that Tab goes on from the pad.
    padCard.focus({preventScroll: true});
  });
}
