// "Explain this drawing": a link from the game's results and the class
// projector to lesson 1 (/learn/how-it-works/) showing that very drawing,
// carried in the link as the lessons' share code (?d=, teaching/share.js).
// The code is written here, in the browser: the drawing is already on the
// page, so the server stores nothing and the link works from any screen.
// It opens in a new tab, so that the game's or the class's connection stays.

import {encodeDrawing, lessonAddress} from "./teaching/share.js";
import {h} from "./game-ui.js";

// Lesson 1's address, as teaching/urls.py names it ("how_it_works").
export const EXPLAIN_PATH = "/learn/how-it-works/";

/** Lesson 1's address with `drawing` on show; null for no drawing (or one too long to carry). */
export function explainAddress(drawing) {
  const code = encodeDrawing(drawing);
  return code ? lessonAddress(EXPLAIN_PATH, {code}) : null;
}

/** A link to lesson 1 with `drawing`; null when there is nothing to explain. */
export function explainLink(drawing, text, label) {
  const href = explainAddress(drawing);
  if (!href) return null;
  return h("a", {class: "explain-link", href, target: "_blank", rel: "noopener",
    dataset: {explain: ""}, "aria-label": label || null}, text);
}

/** Point `link` at lesson 1 with `drawing`, hidden while there is none. */
export function pointExplainLink(link, drawing) {
  const href = drawing ? explainAddress(drawing) : null;
  link.hidden = !href;
  if (href) link.href = href;
}
