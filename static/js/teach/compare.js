// The live comparison under "Before and after": the learner draws once more
// and both models' ten probabilities stand side by side, the site's model
// and the taught copy (POST /learn/teach/api/predict answers both).

import {DrawingPad, bindPadControls} from "../drawing-pad.js";
import {latestRequest} from "../latest-only.js";
import {percent} from "../percent.js";
import {throttle} from "../throttle.js";
import {followDrawing, renderBars} from "../teaching/common.js";

// While drawing, at most this many requests a second go to the server
// (the same pace as the lessons' pads).
const THROTTLE_MS = 150;

/**
 * Wire the comparison in `root`: its pad ([data-compare-pad]), its buttons,
 * and one column per model ([data-compare="production"|"taught"] with its
 * bars, [data-compare-guess] and [data-compare-note]). `predict(drawing)`
 * resolves to the API's answer; `onError(message)` shows a failure.
 */
export function comparePad(root, {predict, onError}) {
  const columns = {};
  for (const name of ["production", "taught"]) {
    const column = root.querySelector(`[data-compare="${name}"]`);
    columns[name] = {
      column,
      bars: column.querySelector("ol"),
      guess: column.querySelector("[data-compare-guess]"),
      note: column.querySelector("[data-compare-note]"),
    };
  }
  const status = root.querySelector("[data-compare-status]");
  let answers = 0;

  function show(name, probabilities) {
    const {column, bars, guess, note} = columns[name];
    if (!probabilities) {
      bars.replaceChildren();
      guess.textContent = "–";
      column.dataset.state = "none";
      note.textContent = name === "taught"
        ? "No taught copy any more (copies are deleted after a while): teach it again." : "";
      return;
    }
    renderBars(bars, probabilities);
    const digit = probabilities.indexOf(Math.max(...probabilities));
    guess.textContent = String(digit);
    column.dataset.state = "ready";
    column.dataset.digit = String(digit);
    note.textContent = `reads ${digit}, ${percent(probabilities[digit])} sure`;
  }

  function reset() {
    for (const {column, bars, guess, note} of Object.values(columns)) {
      bars.replaceChildren();
      guess.textContent = "?";
      note.textContent = "";
      delete column.dataset.digit;
      column.dataset.state = "empty";
    }
    status.textContent = "Draw a digit to compare.";
  }

  const request = latestRequest(
    (drawing) => predict(drawing),
    (answer, drawing) => {
      show("production", answer.production);
      show("taught", answer.taught);
      answers += 1;
      root.dataset.answers = String(answers);
      // Which drawing the bars are for: its number of points (a test waits
      // for the answer to the finished drawing, not to one on the way).
      root.dataset.answeredPoints = String(drawing.strokes.reduce((n, s) => n + s.length, 0));
      const a = answer.production && indexOfMax(answer.production);
      const b = answer.taught && indexOfMax(answer.taught);
      status.textContent = !answer.taught ? ""
        : a === b ? `Both read ${a}.` : `The site's model reads ${a}; your copy reads ${b}.`;
    },
    (error) => onError(error.message),
  );
  const send = throttle((drawing) => request(drawing), THROTTLE_MS);

  const pad = new DrawingPad(root.querySelector("[data-compare-pad]"), {
    onChange: followDrawing({send, request, reset}),
  });
  bindPadControls(pad, root, {keyboard: false});
  reset();
  return pad;
}

function indexOfMax(values) {
  return values.indexOf(Math.max(...values));
}
