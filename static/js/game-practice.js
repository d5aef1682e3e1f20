// Solo practice: a random target digit, live guesses from the HTTP recognition API.

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

let target = Number(targetEl.textContent);
let recognised = 0;
let solved = false;

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
  ({ok, answer}) => {
    if (!ok) {
      guessNote.textContent = answer.error || "The recogniser is not available.";
      return;
    }
    showGuess(answer);
  },
  () => {
    guessNote.textContent = "No connection to the server.";
  },
);
const send = throttle((drawing) => request(drawing), 100);

const pad = new DrawingPad(document.querySelector("[data-pad]"), {
  onChange: (drawing, reason) => {
    if (reason === "clear" || drawing.strokes.length === 0) {
      request.reset();
      send.cancel();
      showIdle();
      return;
    }
    send(drawing);
  },
});
bindPadControls(pad, document);

function showIdle() {
  guessDigit.textContent = "?";
  guessNote.textContent = "Start drawing";
  resetBars(bars);
}

function showGuess({digit, probabilities}) {
  guessDigit.textContent = String(digit);
  const confidence = probabilities[target] || 0;
  guessNote.textContent = `${percent(confidence)} sure it is a ${target}`;
  renderBars(bars, probabilities, target);
  if (!solved && digit === target && confidence >= threshold) {
    solved = true;
    recognised++;
    tallyEl.textContent = `${recognised} recognised`;
    statusEl.textContent = "Recognised! Try the next one.";
  }
}

function nextDigit() {
  let next = target;
  while (next === target) next = Math.floor(Math.random() * 10);
  target = next;
  targetEl.textContent = String(target);
  statusEl.textContent = "Draw it as clearly as you can.";
  solved = false;
  pad.clear();
}

document.querySelector("[data-next-digit]").addEventListener("click", nextDigit);
