// A round's results (one card per player: the drawing, what the model saw of
// it, its guess and points) and the final leaderboard, as the room page shows
// them from `round_end` and `game_over` (docs/protocol.md).

import {renderDrawing} from "./drawing-pad.js";
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

/** Fill `grid` with the cards of a `round_end`; `myId` marks mine. */
export function showResults(grid, message, myId) {
  grid.replaceChildren(...message.results.map((r) => resultCard(r, message.target, myId)));
  // Thumbnails are drawn once the cards are laid out and have a size.
  requestAnimationFrame(() => {
    for (const canvas of grid.querySelectorAll("canvas[data-result-drawing]")) {
      const result = message.results.find((r) => r.player === canvas.dataset.resultDrawing);
      if (result?.drawing) renderDrawing(canvas, result.drawing);
    }
  });
}

function resultCard(result, target, myId) {
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
  return h("article", {class: "result", dataset: {player: result.player}},
    h("div", {class: "result__line"},
      h("span", {class: "result__name"}, result.name, result.player === myId ? " (you)" : ""),
      h("span", {class: "result__points"}, `+${result.points}`)),
    h("div", {class: "result__images"},
      h("figure", {},
        result.drawing
          ? h("canvas", {class: "thumb", dataset: {resultDrawing: result.player}, role: "img", "aria-label": `${result.name}'s drawing`})
          : empty(),
        h("figcaption", {}, "drawing")),
      h("figure", {}, input, h("figcaption", {}, "model input (28×28)"))),
    h("div", {class: "result__line"},
      h("span", {}, `Guess: ${guess}`),
      h("span", {class: "muted"}, `${percent(result.target_probability)} for ${target}`)),
    h("div", {class: "result__line muted small"},
      h("span", {}, (REASONS[result.reason] || (() => result.reason))(result)),
      h("span", {}, `total ${result.score}`)));
}

/** Fill `list` (an <ol>) with the leaderboard of a `game_over`; `myId` marks mine. */
export function showLeaderboard(list, leaderboard, myId) {
  // Ranks come from the server: equal scores share one.
  list.replaceChildren(...leaderboard.map((row) => h("li", {
    dataset: {player: row.player, rank: String(row.rank)},
    class: [row.rank === 1 ? "is-first" : "", row.gone ? "is-gone" : ""].join(" ").trim(),
  },
  h("span", {class: "rank", "aria-label": `rank ${row.rank}`}, String(row.rank)),
  h("span", {class: "name"}, row.name, row.player === myId ? " (you)" : "", row.gone ? " · left" : ""),
  h("span", {class: "score"}, String(row.score)))));
}
