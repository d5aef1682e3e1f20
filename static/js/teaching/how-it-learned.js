// "How it learned": the learner's drawing through every snapshot of a
// training run at once (POST /learn/api/snapshots), a slider over the
// snapshots showing each one's ten probabilities and conv1's filters, and
// the previous and the active model version side by side.

import {latestRequest} from "../latest-only.js";
import {percent} from "../percent.js";
import {throttle} from "../throttle.js";
import {
  announce, describe, divergingColour, inkColour, lessonPad, openShown, paintValues, postJSON, retryWhenBusy,
  renderBars, settledAnswer,
} from "./common.js";
import {guessChip} from "./guess-chip.js";

// Six small networks a drawing: cheaper than lesson 2's occlusion, dearer than one guess.
const THROTTLE_MS = 200;
// conv1's filters: 8 columns of 3x3 grids, each weight a square of FILTER_CELL pixels.
const FILTER_COLUMNS = 8;
const FILTER_CELL = 10;
const FILTER_GAP = 7;

const root = document.querySelector("[data-learning]");
const url = root.dataset.snapshotsUrl;
const status = root.querySelector("[data-status]");
const guessDigit = root.querySelector("[data-guess-digit]");
const dataScript = document.getElementById("snapshot-data");
const run = dataScript ? JSON.parse(dataScript.textContent) : null;
const slider = root.querySelector("[data-snapshot-slider]");
const filtersCanvas = root.querySelector("[data-filters]");
let answer = null; // the newest answer: {snapshots, versions}
let updates = 0;

// One colour scale for every snapshot, so that a filter growing stronger looks stronger.
const filterScale = run
  ? Math.max(1e-6, ...run.snapshots.flatMap((s) => s.filters.flat().map(Math.abs))) : 1;

function stepWords(snapshot) {
  const steps = `${snapshot.step} step${snapshot.step === 1 ? "" : "s"}`;
  return snapshot.epoch_end ? `${steps}, the end of epoch ${snapshot.epoch_end}` : steps;
}

function paintFilters(snapshot) {
  const ctx = filtersCanvas.getContext("2d");
  ctx.clearRect(0, 0, filtersCanvas.width, filtersCanvas.height);
  const size = 3 * FILTER_CELL;
  snapshot.filters.forEach((weights, index) => {
    const x = (index % FILTER_COLUMNS) * (size + FILTER_GAP) + 2;
    const y = Math.floor(index / FILTER_COLUMNS) * (size + FILTER_GAP) + 2;
    paintValues(ctx, weights, 3, 3, {x, y, cell: FILTER_CELL,
      colour: (w) => divergingColour(w / filterScale)});
    ctx.strokeStyle = "rgba(100, 116, 139, 0.6)";
    ctx.strokeRect(x - 0.5, y - 0.5, size + 1, size + 1);
  });
}

/** How far conv1's filters moved from the snapshot before, in words. */
function filterChange(index) {
  if (index === 0) return "the random weights training starts from";
  const before = run.snapshots[index - 1].filters.flat();
  const now = run.snapshots[index].filters.flat();
  const moved = now.reduce((sum, w, i) => sum + Math.abs(w - before[i]), 0) / now.length;
  return `on average ${moved.toFixed(3)} away from the snapshot before`;
}

function showSnapshot(index, {speak = false} = {}) {
  if (!run) return;
  const snapshot = run.snapshots[index];
  const words = `after ${stepWords(snapshot)}`;
  root.querySelector("[data-snapshot-label]").textContent = words;
  slider.setAttribute("aria-valuetext", words);
  root.dataset.snapshot = String(index);
  const loss = snapshot.train_loss === null ? "no training yet" :
    `training loss ${snapshot.train_loss.toFixed(3)}`;
  root.querySelector("[data-snapshot-facts]").textContent = `Snapshot ${index + 1} of ` +
    `${run.snapshots.length}: ${loss}, test loss ${snapshot.test_loss.toFixed(3)}, ` +
    `${percent(snapshot.test_accuracy)} of ${snapshot.test_count || run.quick_test} test digits right.`;
  paintFilters(snapshot);
  describe(filtersCanvas, `After ${stepWords(snapshot)}: weights ${filterChange(index)}.`);
  for (const row of root.querySelectorAll("[data-snapshot-row]")) {
    row.classList.toggle("is-active", Number(row.dataset.snapshotRow) === index);
  }
  const bars = root.querySelector("[data-snapshot-bars]");
  const snapshotStatus = root.querySelector("[data-snapshot-status]");
  if (!answer) {
    bars.replaceChildren();
    snapshotStatus.textContent = "Draw a digit to see each snapshot's answer.";
    return;
  }
  const probabilities = answer.snapshots[index].probabilities;
  renderBars(bars, probabilities);
  const top = probabilities.indexOf(Math.max(...probabilities));
  const said = `After ${stepWords(snapshot)} the network reads ${top}, ` +
    `${percent(probabilities[top], {tiny: true})} sure.`;
  snapshotStatus.textContent = said;
  if (speak) announce(root, said);
}

function versionWords(entry) {
  const top = entry.probabilities.indexOf(Math.max(...entry.probabilities));
  return `${top}, ${percent(entry.probabilities[top], {tiny: true})} sure`;
}

function render(data, body) {
  answer = data;
  root.dataset.state = "ready";
  const index = Number(slider?.value ?? 0);
  showSnapshot(index);
  // Each snapshot's reading in the table: the text alternative of the whole run.
  const cells = root.querySelectorAll("[data-snapshot-answer]");
  data.snapshots.forEach((snapshot, i) => {
    const p = snapshot.probabilities;
    const top = p.indexOf(Math.max(...p));
    if (cells[i]) cells[i].textContent = `${top} (${percent(p[top], {tiny: true})})`;
  });

  const active = data.versions.find((v) => v.role === "active");
  const previous = data.versions.find((v) => v.role === "previous");
  if (active) {
    const top = active.probabilities.indexOf(Math.max(...active.probabilities));
    guessDigit.textContent = String(top);
    status.textContent = `${percent(active.probabilities[top], {tiny: true})} sure (the model answering now)`;
    renderBars(root.querySelector("[data-probabilities]"), active.probabilities);
  } else {
    status.textContent = data.versions_error || "No model is active.";
  }
  for (const entry of data.versions) {
    const list = root.querySelector(`[data-version-bars="${entry.role}"]`);
    if (list) renderBars(list, entry.probabilities);
  }
  const facts = root.querySelector("[data-versions-facts]");
  if (facts && active && previous) {
    facts.textContent = `Before: ${versionWords(previous)}. Now: ${versionWords(active)}.`;
  } else if (facts && data.versions_error) {
    facts.textContent = data.versions_error;
  }
  const settled = settledAnswer(pad, body);
  // Whether this answer is for the drawing as it stands (the pen up): an
  // answer for a drawing still being drawn may be replaced by a newer one.
  root.dataset.settled = settled ? "yes" : "no";
  if (settled) {
    const p = data.snapshots[index].probabilities;
    const top = p.indexOf(Math.max(...p));
    announce(root, `At this snapshot the network reads ${top}, ${percent(p[top], {tiny: true})} sure.` +
      (active ? ` The model answering now reads ${versionWords(active)}.` : ""));
  }
  updates += 1;
  root.dataset.updates = String(updates);
}

const request = latestRequest(
  retryWhenBusy((body) => {
    root.dataset.state = "computing";
    return postJSON(url, body);
  }, (message) => {
    root.dataset.state = "waiting";
    status.textContent = message;
  }),
  (data, body) => render(data, body),
  (error) => {
    status.textContent = error.message;
    root.querySelector("[data-snapshot-status]")?.replaceChildren(error.message);
    root.dataset.state = "error";
  },
);
const send = throttle((drawing) => request(drawing), THROTTLE_MS);

const sampleNote = root.querySelector("[data-sample-note]");
const sampleImage = root.querySelector("[data-sample-image]");
const sampleScript = document.getElementById("mnist-sample");
const sample = sampleScript ? JSON.parse(sampleScript.textContent) : null;
if (sample && sampleImage) {
  paintValues(sampleImage.getContext("2d"), sample.input.flat(), 28, 28, {colour: inkColour});
  sampleImage.dataset.painted = "true";
}

function dropSample() {
  if (sampleNote) sampleNote.hidden = true;
  if (sampleImage) sampleImage.hidden = true;
}

function reset() {
  answer = null;
  guessDigit.textContent = "?";
  status.textContent = "Draw a digit to begin.";
  root.dataset.state = "empty";
  root.querySelector("[data-probabilities]").replaceChildren();
  for (const list of root.querySelectorAll("[data-version-bars]")) list.replaceChildren();
  for (const cell of root.querySelectorAll("[data-snapshot-answer]")) cell.textContent = "—";
  const facts = root.querySelector("[data-versions-facts]");
  if (facts) facts.textContent = "";
  showSnapshot(Number(slider?.value ?? 0));
}

const pad = lessonPad(root, root.querySelector("[data-pad]"),
  {send, request, reset, dropSample, ask: () => undefined});

if (slider) {
  // "input" follows every position of a drag or key press; the live region
  // speaks only for the keyboard's and a released pointer's ("change").
  slider.addEventListener("input", () => showSnapshot(Number(slider.value)));
  slider.addEventListener("change", () => showSnapshot(Number(slider.value), {speak: true}));
}
if (filtersCanvas) {
  document.querySelector("[data-filter-scale]").textContent = `±${filterScale.toFixed(2)}`;
}

guessChip(root);
reset();
openShown(root, pad, {request, ask: () => undefined, sample,
  askSample: () => request({input: sample.input})});
