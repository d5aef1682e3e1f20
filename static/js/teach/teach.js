// The "Teach the model" page (/learn/teach/): choose a digit, draw examples
// of it, press Teach, follow the private copy's training and see before and
// after. The page's parts: examples.js (the examples and their readings),
// job.js (following the job), before-after.js (the numbers), compare.js (the
// live side-by-side pad); the API is api.js.

import {DrawingPad, bindPadControls} from "../drawing-pad.js";
import {RetryLater} from "../latest-only.js";
import {rememberChoice} from "../remembered-choice.js";
import {ApiError, apiUrls, requestJSON, sentence} from "./api.js";
import {showScores, verdict} from "./before-after.js";
import {comparePad} from "./compare.js";
import {Examples} from "./examples.js";
import {JobWatcher, milestone, progressOf} from "./job.js";

const root = document.querySelector("[data-teach]");
const $ = (selector) => root.querySelector(selector);
const urls = apiUrls(root);

// The page asks for 10 to 30 examples: fewer than 10 leaves 2 or 3 held out,
// too few to see a change; 30 take a learner a couple of minutes to draw.
// The server's own bounds (TEACH_MIN_EXAMPLES, TEACH_MAX_EXAMPLES) come in
// data-* attributes and win where they are stricter.
const number = (value, fallback) => (Number.isFinite(Number(value)) && value !== "" && value != null
  ? Number(value) : fallback);
const LIMITS = {
  minExamples: Math.max(10, number(root.dataset.minExamples, 6)),
  maxExamples: Math.min(30, number(root.dataset.maxExamples, 60)),
};
const OPT_OUT_KEY = "digit-teach-opt-out";

const ui = {
  digits: [...root.querySelectorAll("input[name=digit]")],
  suggestions: [...root.querySelectorAll("[data-suggest]")],
  hint: $("[data-hint-text]"),
  digitNames: root.querySelectorAll("[data-digit-name]"),
  pad: $("[data-pad]"),
  add: $("[data-add]"),
  counter: $("[data-counter]"),
  examples: $("[data-examples]"),
  examplesEmpty: $("[data-examples-empty]"),
  undoExample: $("[data-undo-example]"),
  clearExamples: $("[data-clear-examples]"),
  needs: $("[data-needs]"),
  replay: $("[data-replay]"),
  steps: $("[data-steps]"),
  stepsOutput: $("[data-steps-output]"),
  optOut: $("[data-opt-out]"),
  teach: $("[data-teach-button]"),
  cancel: $("[data-cancel]"),
  progress: $("[data-progress]"),
  progressBar: $("[data-progress-bar]"),
  progressText: $("[data-progress-text]"),
  error: $("[data-error]"),
  announce: $("[data-announce]"),
  results: $("[data-results]"),
  verdict: $("[data-verdict]"),
  scores: $("[data-scores]"),
  facts: $("[data-result-facts]"),
  compare: $("[data-compare-root]"),
};

const state = {digit: 7, sentReplay: true};

// -- choosing the digit -----------------------------------------------------------

function chooseDigit(digit, hint = null) {
  state.digit = digit;
  for (const input of ui.digits) input.checked = Number(input.value) === digit;
  for (const button of ui.suggestions) {
    button.setAttribute("aria-pressed", String(button.dataset.hint === hint && hint !== null));
  }
  ui.hint.textContent = hint || `Draw ${digit}s the way you write them.`;
  for (const name of ui.digitNames) name.textContent = String(digit);
  ui.pad.setAttribute("aria-label", `Drawing canvas: draw your ${digit} with mouse, pen or finger`);
}

for (const input of ui.digits) {
  input.addEventListener("change", () => input.checked && chooseDigit(Number(input.value)));
}
for (const button of ui.suggestions) {
  button.addEventListener("click", () => chooseDigit(Number(button.dataset.suggest), button.dataset.hint));
}

// ?digit=N (from the game's results: a digit the model got wrong) picks N.
function digitFromAddress() {
  const value = new URLSearchParams(location.search).get("digit");
  return value !== null && /^[0-9]$/.test(value) ? Number(value) : null;
}

// -- the examples -------------------------------------------------------------

/** The site's model's reading of one drawing; a 429 is waited out, twice at most. */
async function readDrawing(drawing) {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await requestJSON(urls.predict, {body: {drawing}})).production;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 429 || attempt >= 2) throw error;
      await new Promise((resolve) => setTimeout(resolve, (error.retryAfter || 1) * 1000));
    }
  }
}

const examples = new Examples(ui.examples, {
  readDrawing,
  max: LIMITS.maxExamples,
  onChange: showCounts,
});

function showCounts() {
  const count = examples.count;
  ui.counter.querySelector("[data-count]").textContent = String(count);
  ui.counter.dataset.count = String(count);
  ui.counter.classList.toggle("is-enough", count >= LIMITS.minExamples);
  ui.examplesEmpty.hidden = count > 0;
  ui.needs.hidden = count >= LIMITS.minExamples;
  ui.undoExample.disabled = count === 0;
  ui.clearExamples.disabled = count === 0;
  updateButtons();
}

const pad = new DrawingPad(ui.pad, {
  lineWidth: 16,
  onChange: () => updateButtons(),
});
bindPadControls(pad, $("[data-pad-controls]"), {keyboard: false});

function addExample() {
  if (pad.isEmpty() || pad.penDown) return;
  if (examples.count >= LIMITS.maxExamples) {
    showError(`That is ${LIMITS.maxExamples} examples, the most one teaching takes. Press Teach.`);
    return;
  }
  examples.add(state.digit, pad.drawing);
  pad.clear();
  showError("");
}

ui.add.addEventListener("click", addExample);
ui.undoExample.addEventListener("click", () => examples.undo());
ui.clearExamples.addEventListener("click", () => examples.clear());

// Keys while the focus is on the page or the pad (not in a control, which
// has keys of its own): Enter adds the drawing, Ctrl/Cmd+Z undoes a stroke,
// Escape clears the pad.
document.addEventListener("keydown", (event) => {
  if (event.target.closest?.("input, textarea, select, button, a, [contenteditable], [data-compare-root]")) return;
  if (event.key === "Enter") {
    event.preventDefault();
    addExample();
  } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    pad.undo();
  } else if (event.key === "Escape") {
    pad.clear();
  }
});

function updateButtons() {
  const active = job.active;
  ui.add.disabled = pad.isEmpty() || examples.count >= LIMITS.maxExamples;
  ui.teach.disabled = active || examples.count < LIMITS.minExamples;
  ui.cancel.hidden = !active;
}

// -- the settings -----------------------------------------------------------------

function showSteps() {
  ui.stepsOutput.textContent = ui.steps.value;
}
ui.steps.addEventListener("input", showSteps);

rememberChoice(ui.optOut, OPT_OUT_KEY);

// -- teaching -------------------------------------------------------------------

const job = new JobWatcher(urls, {onUpdate: showProgress, onFinish: finished});
let lastStatus = null;

function showError(text) {
  ui.error.textContent = sentence(text);
  ui.error.hidden = !text;
}

function announce(text) {
  if (text) ui.announce.textContent = text;
}

function showProgress(status) {
  const {value, max, text} = progressOf(status);
  ui.progress.hidden = false;
  ui.progress.dataset.state = status.state;
  if (value === null) {
    ui.progressBar.removeAttribute("value");
  } else {
    ui.progressBar.max = max;
    ui.progressBar.value = value;
  }
  ui.progressText.textContent = text;
  announce(milestone(lastStatus, status));
  lastStatus = status;
  updateButtons();
}

async function teach() {
  showError("");
  ui.results.hidden = true;
  ui.teach.disabled = true;
  const replay = ui.replay.checked;
  const steps = Number(ui.steps.value);
  try {
    const answer = await requestJSON(urls.jobs, {body: {
      examples: examples.payload(), replay, steps, store: !ui.optOut.checked,
    }});
    state.sentReplay = replay;
    lastStatus = null;
    job.follow({...answer, steps});
    ui.cancel.focus();
  } catch (error) {
    const wait = error.retryAfter ? ` Try again in ${Math.ceil(error.retryAfter)} s.` : "";
    showError(sentence(error.message) + wait);
  }
  updateButtons();
}

function finished(status) {
  updateButtons();
  if (status.state === "done" && status.result) {
    showResult(status.result, status);
    ui.teach.focus();
  } else if (status.state === "failed") {
    showError(status.error || "Teaching failed.");
  }
}

function showResult(result, status) {
  ui.results.hidden = false;
  showScores(ui.scores, [
    {key: "held_out", label: "Your held-out drawings",
      note: (n) => `${n} you drew that the copy never trained on`, score: result.held_out},
    {key: "trained_on", label: "The drawings it learned from",
      note: (n) => `${n} of yours: it has seen these`, score: result.trained_on},
    {key: "mnist", label: "MNIST test digits",
      note: (n) => `${Number(n).toLocaleString("en")} scanned digits: did it forget?`, score: result.mnist},
  ]);
  const text = verdict(result, {replay: state.sentReplay});
  ui.verdict.textContent = text;
  const seconds = Number(result.seconds);
  ui.facts.textContent = [
    status.steps ? `${status.steps} steps` : null,
    Number.isFinite(seconds) ? `${seconds.toFixed(1)} s of training` : null,
    state.sentReplay ? "with the MNIST reminder" : "without the MNIST reminder",
  ].filter(Boolean).join(" · ");
  announce(`Done. ${text}`);
  ui.results.scrollIntoView({behavior: "smooth", block: "start"});
}

ui.teach.addEventListener("click", teach);
ui.cancel.addEventListener("click", () => job.cancel());

// Back from the back/forward cache: leaving cancelled the job (pagehide).
window.addEventListener("pageshow", (event) => {
  if (event.persisted && lastStatus && job.status?.state === "cancelled"
      && !["done", "failed", "cancelled"].includes(lastStatus.state)) {
    showProgress(job.status);
    showError("Teaching stopped when you left the page. Press Teach to start again.");
  }
});

// -- before and after, live ---------------------------------------------------------

const compare = comparePad(ui.compare, {
  predict: async (drawing) => {
    try {
      return await requestJSON(urls.predict, {body: {drawing}});
    } catch (error) {
      if (error instanceof ApiError && error.status === 429) {
        throw new RetryLater((error.retryAfter || 1) * 1000);
      }
      throw error;
    }
  },
  onError: showError,
});

// -- start ----------------------------------------------------------------------

const asked = digitFromAddress();
const fromGame = new URLSearchParams(location.search).get("from") === "game";
const gameSuggestion = $("[data-suggest-game]");
if (asked !== null && fromGame && gameSuggestion) {
  gameSuggestion.hidden = false;
  gameSuggestion.dataset.suggest = String(asked);
  gameSuggestion.dataset.hint = `Draw ${asked}s the way you drew the one the model got wrong in your game.`;
  gameSuggestion.textContent = `The ${asked} it got wrong in your game`;
  chooseDigit(asked, gameSuggestion.dataset.hint);
} else {
  chooseDigit(asked ?? Number(ui.digits.find((input) => input.checked)?.value ?? 7));
}
$("[data-count-range]").textContent = `${LIMITS.minExamples}–${LIMITS.maxExamples}`;
$("[data-min-count]").textContent = String(LIMITS.minExamples);
showSteps();
showCounts();
showError("");
root.dataset.ready = "true";

// A handle for the browser console (and the end-to-end test) to look inside.
window.digitTeach = {examples, job, pad, compare};
