// Solo practice: a random target digit, live guesses from the HTTP recognition API.

import {bindPadControls, DrawingPad, throttle} from "./drawing-pad.js";
import {percent, renderBars, resetBars} from "./game-ui.js";

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
// Answers can overtake each other; only the newest request's answer is shown.
let sequence = 0;
let inFlight = false;
let queued = null;
// Set when the server refused a request for its per-client rate (429): the
// latest drawing is sent again after its Retry-After, not shown as an error.
let retryDelay = 0;

const pad = new DrawingPad(document.querySelector("[data-pad]"), {
  onChange: (drawing, reason) => {
    if (reason === "clear" || drawing.strokes.length === 0) {
      sequence++;
      queued = null;
      send.cancel();
      showIdle();
      return;
    }
    send(drawing);
  },
});
bindPadControls(pad, document);

const send = throttle((drawing) => {
  if (inFlight) {
    queued = drawing;
    return;
  }
  recognize(drawing);
}, 100);

async function recognize(drawing) {
  const mine = ++sequence;
  inFlight = true;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(drawing),
    });
    if (response.status === 429) {
      retryDelay = (Number(response.headers.get("Retry-After")) || 1) * 1000;
      if (mine === sequence && !queued) queued = drawing;
      return;
    }
    const answer = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
    if (mine !== sequence) return;
    if (!response.ok) {
      guessNote.textContent = answer.error || "The recogniser is not available.";
      return;
    }
    showGuess(answer);
  } catch {
    if (mine === sequence) guessNote.textContent = "No connection to the server.";
  } finally {
    const delay = retryDelay;
    retryDelay = 0;
    if (delay) {
      // Still "in flight" while waiting, so new strokes replace the queued drawing.
      setTimeout(sendQueued, delay);
    } else {
      sendQueued();
    }
  }
}

function sendQueued() {
  inFlight = false;
  if (queued) {
    const next = queued;
    queued = null;
    recognize(next);
  }
}

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
