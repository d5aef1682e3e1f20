// A round's results, one card per player (the drawing, what the model saw of
// it, its guess and points), as the room page shows them from `round_end`
// (docs/protocol.md). The final standings are game-standings.js.

import {renderDrawing} from "./drawing-pad.js";
import {explainLink} from "./explain-link.js";
import {h} from "./game-ui.js";
import {percent} from "./percent.js";

const REASONS = {
  reached: (r) => `recognised in ${r.seconds?.toFixed(1) ?? "?"} s`,
  done: () => "finished early",
  time: () => "out of time",
  disconnected: () => "disconnected",
  left: () => "left",
  kicked: () => "removed by the host",
  absent: () => "did not draw",
};

/**
 * Fill `grid` with the cards of a `round_end`; `myId` marks mine. Where the
 * model misread my drawing, my card links to the teach page for that digit
 * (the grid's data-teach-url), where I can teach a copy of it my way.
 */
export function showResults(grid, message, myId) {
  const teachUrl = grid.dataset.teachUrl || null;
  grid.replaceChildren(...message.results.map((r) => resultCard(r, message.target, myId, teachUrl)));
  // Thumbnails are drawn once the cards are laid out and have a size.
  requestAnimationFrame(() => {
    for (const canvas of grid.querySelectorAll("canvas[data-result-drawing]")) {
      const result = message.results.find((r) => r.player === canvas.dataset.resultDrawing);
      if (result?.drawing) renderDrawing(canvas, result.drawing);
    }
  });
}

function resultCard(result, target, myId, teachUrl) {
  // An opted-out player's drawing was deleted when the round ended: say so
  // instead of showing an empty frame.
  const empty = () => result.drawing_deleted
    ? h("div", {class: "thumb thumb--deleted"}, "not kept")
    : h("div", {class: "thumb"});
  const input = result.input
    ? h("img", {class: "thumb thumb--pixels", src: result.input, alt: `What the model saw of ${result.name}'s drawing`, width: 28, height: 28})
    : empty();
  const guess = result.digit === null || result.digit === undefined
    ? "no guess"
    : result.probabilities
      ? `${result.digit} (${percent(result.probabilities[result.digit])})`
      : String(result.digit);
  // Small thumbnails beside the lines of text, so that a round's results fit
  // the screen above the canvas, on a phone too.
  return h("article", {class: "result", dataset: {player: result.player}},
    h("div", {class: "result__images"},
      h("figure", {},
        result.drawing
          ? h("canvas", {class: "thumb", dataset: {resultDrawing: result.player}, role: "img", "aria-label": `${result.name}'s drawing`})
          : empty(),
        h("figcaption", {}, "drawing")),
      h("figure", {title: "What the model saw: the drawing as 28×28 pixels"},
        input, h("figcaption", {}, "model input"))),
    h("div", {class: "result__text"},
      h("div", {class: "result__line"},
        h("span", {class: "result__name"}, result.name, result.player === myId ? " (you)" : ""),
        h("span", {class: "result__points"}, `+${result.points}`)),
      h("div", {class: "result__line"},
        h("span", {}, `Guess: ${guess}`),
        h("span", {class: "muted"}, `${percent(result.target_probability)} for ${target}`)),
      h("div", {class: "result__line muted small"},
        h("span", {}, (REASONS[result.reason] || (() => result.reason))(result)),
        h("span", {}, `total ${result.score}`)),
      // The player's own drawing, followed through the network in lesson 1.
      result.player === myId && result.drawing
        ? explainLink(result.drawing, "Explain my drawing →",
          "Explain my drawing: how the model read it, layer by layer (opens in a new tab)")
        : null,
      teachLink(result, target, myId, teachUrl)));
}

/**
 * "Teach the model your way" under my own drawing when the model read it as
 * another digit. It opens a new tab: following it in this one would leave
 * the room in the middle of the game.
 */
function teachLink(result, target, myId, teachUrl) {
  const misread = result.digit !== null && result.digit !== undefined && result.digit !== target;
  if (!teachUrl || result.player !== myId || !misread) return null;
  const query = new URLSearchParams({digit: String(target), from: "game"});
  return h("a", {class: "result__teach small", href: `${teachUrl}?${query}`, target: "_blank",
    rel: "noopener", dataset: {teachLink: String(target)}},
  "Teach the model your way", h("span", {class: "visually-hidden"}, " (opens a new tab)"));
}
