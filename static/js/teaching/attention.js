// "What the model looks at": occlusion and gradient maps over the learner's
// drawing for the predicted digit or any digit they pick (POST /learn/api/attention).

import {latestRequest} from "../latest-only.js";
import {percent} from "../percent.js";
import {throttle} from "../throttle.js";
import {
  CLOSING_STROKE, EXAMPLES, announce, decodeImage, describe, divergingColour, drawPixelGrid,
  inkColour, lessonPad, openShown, paintDivergingBar, paintValues, postJSON, renderBars,
  retryWhenBusy, setFacts,
  settle, settledAnswer,
} from "./common.js";
import {guessChip} from "./guess-chip.js";

// Occlusion means 196 forward passes: ask less often than "How it works" does.
const THROTTLE_MS = 300;
const CELL = 10;
// Ink at least this strong is inside the outline drawn over the maps.
const INK_EDGE = 0.5;
const OUTLINE = "rgba(15, 23, 42, 0.9)";
// The probability changes marked on the occlusion key.
const KEY_TICKS = [1, 0.5, 0.1, 0, -0.1, -0.5, -1];

const root = document.querySelector("[data-attention]");
const status = root.querySelector("[data-status]");
const guessDigit = root.querySelector("[data-guess-digit]");
const url = root.dataset.attentionUrl;
let updates = 0;

function chosenTarget() {
  const value = root.querySelector('input[name="target"]:checked')?.value;
  return value === "" || value === undefined ? null : Number(value);
}

// `body` is a drawing ({width, height, strokes}) or a ready 28x28 input ({input}).
const request = latestRequest(
  retryWhenBusy((body, target) => {
    // About 200 forward passes when the server has not seen this drawing
    // yet: say so while they run (a cached drawing answers at once).
    root.dataset.state = "computing";
    status.textContent = "Computing: covering each part of the drawing in turn…";
    return postJSON(url, target === null ? body : {...body, target});
  }, (message) => {
    // Refused for now (429): said until the drawing is sent again and answered.
    status.textContent = message;
    root.dataset.state = "waiting";
  }),
  (data, body) => render(data, body),
  (error) => {
    status.textContent = error.message;
    root.dataset.state = "error";
  },
);
const send = throttle((drawing) => request(drawing, chosenTarget()), THROTTLE_MS);

const sampleNote = root.querySelector("[data-sample-note]");
const sampleImage = root.querySelector("[data-sample-image]");
const sampleScript = document.getElementById("mnist-sample");
// The MNIST digit being shown, until the learner draws their own: painted in
// the drawing box, as lesson 1 does.
let sample = sampleScript ? JSON.parse(sampleScript.textContent) : null;
if (sample && sampleImage) {
  paintValues(sampleImage.getContext("2d"), sample.input.flat(), 28, 28, {colour: inkColour});
  sampleImage.dataset.painted = "true";
}

function dropSample() {
  sample = null;
  if (sampleNote) sampleNote.hidden = true;
  if (sampleImage) sampleImage.hidden = true;
  closeTop.disabled = true;
}

// -- the experiment: one stroke more -------------------------------------------------
//
// The network's probabilities for the pad's drawing with each number of
// strokes (the newest answer for each), so that the answer before the last
// stroke can be set beside the answer after it. Undo drops the readings of
// the strokes it took away; clear drops them all.
let readings = [];
const counterfactual = root.querySelector("[data-counterfactual]");
const openFour = root.querySelector('[data-activity="open-four"]');
const closeTop = root.querySelector('[data-activity="close-top"]');

const pad = lessonPad(root, root.querySelector("[data-pad]"),
  {send, request, reset, dropSample, ask: chosenTarget});

// A ready-made example replaces the drawing whole: nothing to compare it with.
for (const button of root.querySelectorAll("[data-example]")) {
  button.addEventListener("click", () => {
    readings = [];
  });
}
openFour.addEventListener("click", () => {
  dropSample();
  root.querySelector('input[name="target"][value="9"]').checked = true;
  pad.load(EXAMPLES.open4);
  settle(root, pad.drawing);
  readings = [];
  closeTop.disabled = false;
  request(pad.drawing, 9);
});
closeTop.addEventListener("click", () => {
  closeTop.disabled = true;
  pad.load({...EXAMPLES.open4, strokes: [...EXAMPLES.open4.strokes, CLOSING_STROKE]});
  settle(root, pad.drawing);
  request(pad.drawing, chosenTarget());
});

function remember(data, body) {
  if (!body.strokes) {
    readings = [];
    counterfactual.textContent = "This is a scanned digit, with no strokes to add to: draw " +
      "your own digit to experiment.";
    return;
  }
  const strokes = body.strokes.length;
  readings.length = Math.min(readings.length, strokes + 1);
  readings[strokes] = data.probabilities;
  const target = data.target;
  const now = data.probabilities[target];
  const before = readings[strokes - 1];
  counterfactual.dataset.target = String(target);
  counterfactual.dataset.after = String(now);
  if (!before) {
    delete counterfactual.dataset.before;
    counterfactual.textContent = `${target} is at ${percent(now, {tiny: true})} now. Add a ` +
      "stroke to see what it changes.";
    return;
  }
  const change = (now - before[target]) * 100;
  counterfactual.dataset.before = String(before[target]);
  counterfactual.textContent = `${target}: ${percent(before[target], {tiny: true})} with ` +
    `${strokes - 1} stroke${strokes - 1 === 1 ? "" : "s"}, ${percent(now, {tiny: true})} with ` +
    `your last stroke (${change >= 0 ? "+" : "−"}${Math.abs(change).toFixed(1)} points). ` +
    `The network's answer: ${data.digit}.`;
}
for (const radio of root.querySelectorAll('input[name="target"]')) {
  radio.addEventListener("change", () => {
    if (sample) request({input: sample.input}, chosenTarget());
    else if (!pad.isEmpty()) request(pad.drawing, chosenTarget());
  });
}

function reset() {
  readings = [];
  counterfactual.textContent = "Draw something, then add a stroke: this line will compare " +
    "before and after.";
  guessDigit.textContent = "?";
  status.textContent = "Draw a digit to begin.";
  root.dataset.state = "empty";
  root.querySelector("[data-probabilities]").replaceChildren();
  for (const heat of root.querySelectorAll("[data-heat]")) {
    heat.getContext("2d").clearRect(0, 0, heat.width, heat.height);
  }
  for (const facts of root.querySelectorAll("[data-facts]")) facts.textContent = "";
}

function render(data, body) {
  remember(data, body);
  const input = decodeImage(data.input);
  guessDigit.textContent = String(data.digit);
  status.textContent = `${percent(data.probabilities[data.digit], {tiny: true})} sure`;
  renderBars(root.querySelector("[data-probabilities]"), data.probabilities, {target: data.target});

  // Occlusion cells line up with 2x2 blocks of the input (see explain.py).
  const occlusion = data.occlusion;
  const [rows, cols] = occlusion.shape;
  const scale = 28 / cols;
  const cellOf = (row, col) => Math.floor(row / scale) * cols + Math.floor(col / scale);
  const occlusionCanvas = root.querySelector('[data-heat="occlusion"]');
  paintHeat(occlusionCanvas, input, (row, col) => occlusionColour(occlusion.values[cellOf(row, col)]));
  const paper = occlusion.paper || [];
  hatchCells(occlusionCanvas, paper, cols, scale * CELL);
  outlineInk(occlusionCanvas, input);
  const strongest = occlusion.values.indexOf(Math.max(...occlusion.values));
  const p = data.probabilities[data.target];
  const measured = paper.length ? paper.filter((v) => !v).length : rows * cols;
  const occlusionFacts = `Probability of ${data.target}: ${percent(p, {tiny: true})}. The biggest drop, ` +
    `${percent(Math.max(0, occlusion.values[strongest]), {tiny: true})}, comes from hiding the square ` +
    `around row ${Math.floor(strongest / cols) * 2 + 1}, column ${(strongest % cols) * 2 + 1} ` +
    `(${measured} of the ${rows}x${cols} squares covered some ink; the others are hatched).`;
  setFacts(root, "occlusion", occlusionFacts);
  describe(occlusionCanvas, occlusionFacts);
  root.querySelector('[data-caption="occlusion"]').textContent = `hiding parts: digit ${data.target}`;

  const saliency = data.saliency.values;
  const saliencyPeak = Math.max(1e-9, ...saliency.map(Math.abs));
  const saliencyCanvas = root.querySelector('[data-heat="saliency"]');
  paintHeat(saliencyCanvas, input, (row, col) => divergingColour(saliency[row * 28 + col] / saliencyPeak));
  outlineInk(saliencyCanvas, input);
  const positive = saliency.filter((v) => v > 0).length;
  const saliencyFacts = `For digit ${data.target}: ${positive} pixels would raise its score with ` +
    `more ink, ${saliency.filter((v) => v < 0).length} would lower it.`;
  setFacts(root, "saliency", `${saliencyFacts} The strongest colour stands for ` +
    `${saliencyPeak.toPrecision(2)} points of score per unit of ink. Model ${data.model}.`);
  describe(saliencyCanvas, saliencyFacts);

  if (settledAnswer(pad, body)) {
    let words = `The network reads ${data.digit}, ${percent(data.probabilities[data.digit], {tiny: true})} sure.`;
    if (counterfactual.dataset.before !== undefined) words += ` ${counterfactual.textContent}`;
    announce(root, words);
  }
  updates += 1;
  root.dataset.updates = String(updates);
  root.dataset.state = "ready";
}

/**
 * The colour of a change in probability (-1..1), the same on every occlusion
 * map: a drop of 100% is the strongest orange. On the square root of the change,
 * so that small changes stay visible: 1% gets a tenth of the colour, 25% half.
 */
function occlusionColour(change) {
  return divergingColour(keyPosition(change));
}

function keyPosition(change) {
  return Math.sign(change) * Math.sqrt(Math.min(1, Math.abs(change)));
}

/** The heat map on its pixel grid: `colourAt(row, col)` for each input pixel. */
function paintHeat(target, input, colourAt) {
  target.width = 28 * CELL + 1;
  target.height = 28 * CELL + 1;
  const ctx = target.getContext("2d");
  paintValues(ctx, input, 28, 28, {cell: CELL, colour: (_, index) => colourAt(Math.floor(index / 28), index % 28)});
  drawPixelGrid(ctx, 28, 28, CELL, {colour: "rgba(120, 130, 150, 0.18)"});
}

/** Diagonal hatching over the cells flagged in `cells` (one per cell, row by row). */
function hatchCells(target, cells, columns, size) {
  const ctx = target.getContext("2d");
  ctx.save();
  ctx.strokeStyle = "rgba(100, 116, 139, 0.55)";
  ctx.lineWidth = 1;
  cells.forEach((flag, index) => {
    if (!flag) return;
    const x = (index % columns) * size;
    const y = Math.floor(index / columns) * size;
    hatch(ctx, x, y, size);
  });
  ctx.restore();
}

function hatch(ctx, x, y, size) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(x, y, size, size);
  ctx.clip();
  ctx.beginPath();
  for (let d = -size; d < size; d += 5) {
    ctx.moveTo(x + d, y + size);
    ctx.lineTo(x + d + size, y);
  }
  ctx.stroke();
  ctx.restore();
}

/** The drawing as an outline: a line along every pixel edge between ink and paper. */
function outlineInk(target, input) {
  const inked = (row, col) => row >= 0 && row < 28 && col >= 0 && col < 28 &&
    input[row * 28 + col] >= INK_EDGE;
  const ctx = target.getContext("2d");
  ctx.save();
  ctx.strokeStyle = OUTLINE;
  ctx.lineWidth = 2;
  ctx.lineCap = "square";
  ctx.beginPath();
  for (let row = 0; row < 28; row++) {
    for (let col = 0; col < 28; col++) {
      if (!inked(row, col)) continue;
      const x = col * CELL;
      const y = row * CELL;
      if (!inked(row - 1, col)) edge(ctx, x, y, x + CELL, y);
      if (!inked(row + 1, col)) edge(ctx, x, y + CELL, x + CELL, y + CELL);
      if (!inked(row, col - 1)) edge(ctx, x, y, x, y + CELL);
      if (!inked(row, col + 1)) edge(ctx, x + CELL, y, x + CELL, y + CELL);
    }
  }
  ctx.stroke();
  ctx.restore();
}

function edge(ctx, x0, y0, x1, y1) {
  ctx.moveTo(x0 + 0.5, y0 + 0.5);
  ctx.lineTo(x1 + 0.5, y1 + 0.5);
}

/** A key tick's words: the change in probability, signed (a drop is a positive `change`). */
function keyLabel(change) {
  if (change === 0) return "0";
  return `${change > 0 ? "−" : "+"}${Math.round(Math.abs(change) * 100)}%`;
}

/** The occlusion key: the colour bar with the changes it stands for, the same for every map. */
function paintLegend() {
  const legend = root.querySelector("[data-legend]");
  const ctx = legend.getContext("2d");
  const margin = 14;
  const width = legend.width - 2 * margin;
  const barTop = 16;
  const barHeight = 14;
  // Rises (blue) on the left, drops (orange) on the right.
  const xOf = (change) => margin + ((1 + keyPosition(change)) / 2) * width;
  paintDivergingBar(ctx, margin, width, barTop, barHeight);
  ctx.fillStyle = getComputedStyle(legend).color || "#111";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "alphabetic";
  ctx.textAlign = "left";
  ctx.fillText("← probability rises by", margin, 11);
  ctx.textAlign = "right";
  ctx.fillText("probability drops by →", margin + width, 11);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const change of KEY_TICKS) {
    const x = Math.round(xOf(change));
    ctx.fillRect(x, barTop + barHeight, 1, 4);
    // Signed: the probability's change when the square is hidden (+ rises, − drops).
    ctx.fillText(keyLabel(change), x, barTop + barHeight + 6);
  }
  legend.dataset.labels = KEY_TICKS.map(keyLabel).join(" ");
  const swatch = root.querySelector("[data-legend-paper]");
  const sctx = swatch.getContext("2d");
  sctx.fillStyle = "#fff";
  sctx.fillRect(0, 0, swatch.width, swatch.height);
  sctx.strokeStyle = "rgba(100, 116, 139, 0.8)";
  hatch(sctx, 0, 0, swatch.width);
}

paintLegend();
guessChip(root);
reset();
openShown(root, pad, {request, ask: chosenTarget, sample,
  askSample: () => request({input: sample.input}, chosenTarget())});
