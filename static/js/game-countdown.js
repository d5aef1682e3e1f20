// The 3-2-1 before a round: over the canvas, in the last three seconds of
// the pause between rounds (when the next round's start is known), then
// "Go!" as the round starts. The numbers pop in by a CSS animation, which a
// visitor who asked for reduced motion does not get (site.css): the numbers
// then simply change.

export const COUNTDOWN_FROM = 3;
const GO_MS = 700;

/** The number to show `msLeft` before a round starts: 3, 2, 1, or null. */
export function countdownNumber(msLeft) {
  if (msLeft === null || msLeft === undefined || !(msLeft > 0)) return null;
  const seconds = Math.ceil(msLeft / 1000);
  return seconds <= COUNTDOWN_FROM ? seconds : null;
}

export class Countdown {
  constructor(element) {
    this.element = element;
    this.shown = null;
    this._goTimer = null;
  }

  /** Show the countdown for a round starting `msLeft` from now (null: none coming). */
  update(msLeft) {
    const number = countdownNumber(msLeft);
    if (number === null) {
      if (this.shown !== "Go!") this._show(null);
      return;
    }
    clearTimeout(this._goTimer);
    this._show(String(number));
  }

  /** The round started: "Go!", briefly. */
  go() {
    this._show("Go!");
    clearTimeout(this._goTimer);
    this._goTimer = setTimeout(() => this._show(null), GO_MS);
  }

  _show(text) {
    if (text === this.shown) return;
    this.shown = text;
    const {element} = this;
    element.hidden = text === null;
    element.textContent = text ?? "";
    if (text === null) return;
    // Start the animation again for each number.
    element.classList.remove("is-popping");
    void element.offsetWidth;
    element.classList.add("is-popping");
  }
}
