// "What the model looks at": occlusion and gradient maps over the learner's
// drawing for the predicted digit or any digit they pick (POST /learn/api/attention).

import {DrawingPad, bindPadControls, throttle} from "../drawing-pad.js";
import {latestRequest} from "../latest-only.js";
import {percent} from "../percent.js";
import {EXAMPLES, decodeImage, divergingColour, drawPixelGrid, postJSON, renderBars} from "./common.js";

// Occlusion means 196 forward passes: ask less often than "How it works" does.
const THROTTLE_MS = 300;
const CELL = 10;

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
  (body, target) => {
    // About 200 forward passes when the server has not seen this drawing
    // yet: say so while they run (a cached drawing answers at once).
    root.dataset.state = "computing";
    status.textContent = "Computing: covering each part of the drawing in turn…";
    return postJSON(url, target === null ? body : {...body, target});
  },
  (data) => render(data),
  (error) => {
    status.textContent = error.message;
    root.dataset.state = "error";
  },
);
const send = throttle((drawing) => request(drawing, chosenTarget()), THROTTLE_MS);

const sampleNote = root.querySelector("[data-sample-note]");
const sampleScript = document.getElementById("mnist-sample");
// The MNIST digit being shown, until the learner draws their own.
let sample = sampleScript ? {input: JSON.parse(sampleScript.textContent).input} : null;

function dropSample() {
  sample = null;
  if (sampleNote) sampleNote.hidden = true;
}

const pad = new DrawingPad(root.querySelector("[data-pad]"), {
  onChange(drawing, reason) {
    dropSample();
    if (reason === "clear" || drawing.strokes.length === 0) {
      send.cancel();
      request.reset();
      reset();
      return;
    }
    send(drawing);
  },
});
bindPadControls(pad, root);

for (const button of root.querySelectorAll("[data-example]")) {
  button.addEventListener("click", () => {
    dropSample();
    pad.load(EXAMPLES[button.dataset.example]);
    request(pad.drawing, chosenTarget());
  });
}
for (const radio of root.querySelectorAll('input[name="target"]')) {
  radio.addEventListener("change", () => {
    if (sample) request(sample, chosenTarget());
    else if (!pad.isEmpty()) request(pad.drawing, chosenTarget());
  });
}

function reset() {
  guessDigit.textContent = "?";
  status.textContent = "Draw a digit to begin.";
  root.dataset.state = "empty";
  root.querySelector("[data-probabilities]").replaceChildren();
  for (const heat of root.querySelectorAll("[data-heat]")) {
    heat.getContext("2d").clearRect(0, 0, heat.width, heat.height);
  }
  for (const facts of root.querySelectorAll("[data-facts]")) facts.textContent = "";
}

function render(data) {
  const input = decodeImage(data.input);
  guessDigit.textContent = String(data.digit);
  status.textContent = `${percent(data.probabilities[data.digit], {tiny: true})} sure`;
  renderBars(root.querySelector("[data-probabilities]"), data.probabilities, {target: data.target});

  // Occlusion cells line up with 2x2 blocks of the input (see explain.py).
  const occlusion = data.occlusion;
  const [rows, cols] = occlusion.shape;
  const occlusionPeak = Math.max(1e-6, ...occlusion.values.map(Math.abs));
  const scale = 28 / cols;
  paintHeat(root.querySelector('[data-heat="occlusion"]'), input,
    (row, col) => occlusion.values[Math.floor(row / scale) * cols + Math.floor(col / scale)] / occlusionPeak);
  const strongest = occlusion.values.indexOf(Math.max(...occlusion.values));
  const p = data.probabilities[data.target];
  setFacts("occlusion", `Probability of ${data.target}: ${percent(p, {tiny: true})}. The biggest drop, ` +
    `${percent(Math.max(0, occlusion.values[strongest]), {tiny: true})}, comes from hiding the square ` +
    `around row ${Math.floor(strongest / cols) * 2 + 1}, column ${(strongest % cols) * 2 + 1}` +
    ` (${rows}x${cols} experiments; the strongest colour stands for a change of ` +
    `${percent(occlusionPeak, {tiny: true})}).`);
  root.querySelector('[data-caption="occlusion"]').textContent = `hiding parts: digit ${data.target}`;

  const saliency = data.saliency.values;
  const saliencyPeak = Math.max(1e-9, ...saliency.map(Math.abs));
  paintHeat(root.querySelector('[data-heat="saliency"]'), input,
    (row, col) => saliency[row * 28 + col] / saliencyPeak);
  const positive = saliency.filter((v) => v > 0).length;
  setFacts("saliency", `For digit ${data.target}: ${positive} pixels would raise its score with ` +
    `more ink, ${saliency.filter((v) => v < 0).length} would lower it. Model ${data.model}.`);

  updates += 1;
  root.dataset.updates = String(updates);
  root.dataset.state = "ready";
}

/** The heat map (values in -1..1) tinted over the drawing, on its pixel grid. */
function paintHeat(target, input, valueAt) {
  target.width = 28 * CELL + 1;
  target.height = 28 * CELL + 1;
  const ctx = target.getContext("2d");
  const image = ctx.createImageData(28 * CELL, 28 * CELL);
  for (let row = 0; row < 28; row++) {
    for (let col = 0; col < 28; col++) {
      const [r, g, b] = divergingColour(valueAt(row, col));
      // Ink darkens the colour, so the drawing stays visible under the map.
      const shade = 1 - 0.7 * input[row * 28 + col];
      for (let dy = 0; dy < CELL; dy++) {
        let offset = ((row * CELL + dy) * 28 * CELL + col * CELL) * 4;
        for (let dx = 0; dx < CELL; dx++) {
          image.data[offset] = r * shade;
          image.data[offset + 1] = g * shade;
          image.data[offset + 2] = b * shade;
          image.data[offset + 3] = 255;
          offset += 4;
        }
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  drawPixelGrid(ctx, 28, 28, CELL, {colour: "rgba(120, 130, 150, 0.18)"});
}

function paintLegend() {
  const legend = root.querySelector("[data-legend]");
  const ctx = legend.getContext("2d");
  for (let y = 0; y < legend.height; y++) {
    const [r, g, b] = divergingColour(1 - (2 * y) / (legend.height - 1));
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect(0, y, legend.width, 1);
  }
}

function setFacts(name, text) {
  const facts = root.querySelector(`[data-facts="${name}"]`);
  if (facts) facts.textContent = text;
}

paintLegend();
reset();
if (sample) request(sample, chosenTarget());
