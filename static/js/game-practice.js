// Solo practice: a random target digit, live guesses from the HTTP recognition API.
//
// "Recognised!" tells what the model makes of the drawing now: it shows when
// the guess for a finished drawing (the pen lifted) is the target at the
// target confidence, not for a stroke still being drawn, and it goes as soon
// as a later drawing's guess is another digit or less sure. The tally counts
// each target once.

import {withArticle} from "./article.js";
import {bindPadControls, DrawingPad, throttle} from "./drawing-pad.js";
import {renderBars, resetBars} from "./game-ui.js";
import {latestRequest, RetryLater} from "./latest-only.js";
import {percent} from "./percent.js";

const root = document.querySelector("[data-practice]");
const url = root.dataset.recognizeUrl;
const threshold = Number(root.dataset.targetConfidence) || 0.9;
const targetEl = document.querySelector("[data-target]");
const statusEl = document.querySelector("[data-practice-status]");
const tallyEl = document.querySelector("[data-practice-tally]");
const guessDigit = document.querySelector("[data-guess-digit]");
const guessNote = document.querySelector("[data-guess-note]");
const bars = document.querySelector("[data-bars]");

const DRAW_IT = "Draw it as clearly as you can.";
const RECOGNISED = "Recognised! Try the next one.";

let target = Number(targetEl.textContent);
let recognised = 0;
let counted = false; // this target is in the tally

// One drawing on its way at a time, the newest next; answers can overtake
// each other, and only the newest request's answer is shown (latest-only.js).
const request = latestRequest(
  async (drawing) => {
    const response = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(drawing),
    });
    // Refused for the server's per-client rate (429): the latest drawing is
    // sent again after its Retry-After, not shown as an error.
    if (response.status === 429) {
      throw new RetryLater((Number(response.headers.get("Retry-After")) || 1) * 1000);
    }
    const answer = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
    return {ok: response.ok, answer};
  },
  ({ok, answer}, _drawing, finished) => {
    if (!ok) {
      guessNote.textContent = answer.error || "The recogniser is not available.";
      return;
    }
    showGuess(answer, finished);
  },
  () => {
    guessNote.textContent = "No connection to the server.";
  },
);
const send = throttle((drawing, finished) => request(drawing, finished), 100);

const pad = new DrawingPad(document.querySelector("[data-pad]"), {
  onChange: (drawing, reason) => {
    if (reason === "clear" || drawing.strokes.length === 0) {
      request.reset();
      send.cancel();
      showIdle();
      return;
    }
    // The pen is up after a stroke ends or an undo: the drawing is finished.
    const finished = reason === "end" || reason === "undo";
    send(drawing, finished);
    if (finished) send.flush();
  },
});
bindPadControls(pad, document);

function showIdle() {
  guessDigit.textContent = "?";
  guessNote.textContent = "Start drawing";
  resetBars(bars);
  statusEl.textContent = DRAW_IT;
}

/** A guess: `finished` when it is of a drawing with the pen lifted. */
function showGuess({digit, probabilities}, finished) {
  guessDigit.textContent = String(digit);
  const confidence = probabilities[target] || 0;
  guessNote.textContent = `${percent(confidence)} sure it is ${withArticle(target)}`;
  renderBars(bars, probabilities, target);
  const reached = digit === target && confidence >= threshold;
  if (!reached) {
    statusEl.textContent = DRAW_IT;
  } else if (finished) {
    statusEl.textContent = RECOGNISED;
    if (!counted) {
      counted = true;
      recognised++;
      tallyEl.textContent = `${recognised} recognised`;
    }
  }
}

function nextDigit() {
  let next = target;
  while (next === target) next = Math.floor(Math.random() * 10);
  target = next;
  targetEl.textContent = String(target);
  statusEl.textContent = DRAW_IT;
  counted = false;
  pad.clear();
}

document.querySelector("[data-next-digit]").addEventListener("click", nextDigit);
