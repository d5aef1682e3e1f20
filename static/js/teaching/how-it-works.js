// "How it works": draw, and every stage of the preprocessing and the network
// is redrawn from what the server computed (POST /learn/api/stages). The
// preprocessing's steps are painted by preprocessing-steps.js, the network's
// stages here.

import {latestRequest} from "../latest-only.js";
import {percent} from "../percent.js";
import {throttle} from "../throttle.js";
import {
  decodeMaps, inflateImage, inkColour, lessonPad, paintValues, postJSON, renderBars,
  sequentialColour, setFacts,
} from "./common.js";
import {renderPreprocessing, renderReadyInput, renderStrokes} from "./preprocessing-steps.js";

// How the feature maps are tiled: columns of tiles and screen pixels per value.
const MAP_LAYOUT = {
  conv1: {columns: 8, cell: 2},
  conv2: {columns: 8, cell: 2},
  pool1: {columns: 8, cell: 4},
  conv3: {columns: 16, cell: 3},
  conv4: {columns: 16, cell: 3},
  pool2: {columns: 16, cell: 5},
};
const TILE_GAP = 3;
// While drawing, at most this many requests a second go to the server.
const THROTTLE_MS = 150;

const root = document.querySelector("[data-explorer]");
const canvas = root.querySelector("[data-pad]");
const status = root.querySelector("[data-status]");
const guessDigit = root.querySelector("[data-guess-digit]");
const scaleEach = document.querySelector("[data-scale-each]");
const url = root.dataset.stagesUrl;

let last = null; // {data, drawing, base, maps} of the newest drawing's answers
let updates = 0;
let drawings = 0; // how many distinct drawings have been answered

// The network's stages, each asked for only while its card is on screen: all
// seven came to 125 kB per answer; the server keeps an answer under 15 kB and
// lists in `omitted` the stages that did not fit, which are asked for next.
const STAGES = ["conv1", "conv2", "pool1", "conv3", "conv4", "pool2", "dense"];
const onScreen = new Set();

function wantedStages() {
  const wanted = STAGES.filter((name) => onScreen.has(name));
  // Nothing on screen (the drawing pad alone): the smallest stage, for the guess.
  return wanted.length ? wanted : ["dense"];
}

// `base` is a drawing ({width, height, strokes}) or a ready 28x28 input ({input}).
const request = latestRequest(
  async (base, stages) => {
    const data = await postJSON(url, {...base, stages});
    const images = {input: await inflateImage(data.input)};
    for (const name of ["fitted", "centered_box"]) {
      if (data.preprocessing) images[name] = await inflateImage(data.preprocessing[name]);
    }
    return {data, images, maps: await decodeAll(data.activations)};
  },
  ({data, images, maps}, base) => {
    if (last && last.base === base) {
      // More stages of the same drawing.
      Object.assign(last.maps, maps);
      last.data.prediction = data.prediction;
    } else {
      drawings += 1;
      last = {data, images, drawing: base.strokes ? base : null, base, maps};
    }
    render(Object.keys(maps));
    // The stages that did not fit, unless a newer drawing is already waiting.
    if (data.omitted?.length && Object.keys(maps).length && !request.hasPending()) {
      request(base, data.omitted);
    }
  },
  (error) => {
    status.textContent = error.message;
    root.dataset.state = "error";
  },
);
const send = throttle((drawing) => request(drawing, wantedStages()), THROTTLE_MS);

const observer = new IntersectionObserver((entries) => {
  const appeared = [];
  for (const entry of entries) {
    const name = entry.target.dataset.step;
    if (entry.isIntersecting) {
      if (!onScreen.has(name)) appeared.push(name);
      onScreen.add(name);
    } else {
      onScreen.delete(name);
    }
  }
  // Scrolled to a stage this drawing has no answer for yet: ask for it.
  const missing = appeared.filter((name) => last && !(name in last.maps));
  if (missing.length && !request.hasPending()) request(last.base, missing);
});
for (const name of STAGES) {
  const section = root.querySelector(`[data-step="${name}"]`);
  if (section) observer.observe(section);
}

// An MNIST digit opened from the data page (?mnist=N): a scanned image, shown
// in the drawing box, with a note on the steps that apply only to strokes;
// all of it goes away once the learner draws.
const sampleNotes = root.querySelectorAll("[data-sample-note], [data-sample-step-note]");
const sampleImage = root.querySelector("[data-sample-image]");

function dropSample() {
  for (const note of sampleNotes) note.hidden = true;
  if (sampleImage) sampleImage.hidden = true;
}

lessonPad(root, canvas, {send, request, reset, dropSample, ask: wantedStages});
scaleEach.addEventListener("change", () => last && renderMaps(Object.keys(last.maps)));

async function decodeAll(activations) {
  const maps = {};
  for (const [name, encoded] of Object.entries(activations)) maps[name] = await decodeMaps(encoded);
  return maps;
}

function reset() {
  last = null;
  drawings += 1;
  guessDigit.textContent = "?";
  status.textContent = "Draw a digit to begin.";
  root.dataset.state = "empty";
  for (const element of root.querySelectorAll("canvas:not([data-pad])")) {
    element.getContext("2d").clearRect(0, 0, element.width, element.height);
  }
  root.querySelector("[data-strokes-svg]").replaceChildren();
  root.querySelector("[data-probabilities]").replaceChildren();
  for (const facts of root.querySelectorAll("[data-facts]")) facts.textContent = "";
}

function render(received) {
  const {data} = last;
  const prediction = data.prediction;
  const p = prediction.probabilities[prediction.digit];
  guessDigit.textContent = String(prediction.digit);
  status.textContent = `${percent(p, {tiny: true})} sure`;
  if (data.preprocessing) {
    renderStrokes(root, last.drawing, data.preprocessing);
    renderPreprocessing(root, data.preprocessing, last.images);
  } else {
    renderReadyInput(root, last.images.input);
  }
  renderMaps(received);
  if (received.includes("dense")) renderDense();
  renderProbabilities();
  updates += 1;
  root.dataset.updates = String(updates);
  root.dataset.drawing = String(drawings);
  root.dataset.state = "ready";
}

// -- part two: the network ------------------------------------------------------------

function renderMaps(names) {
  for (const [name, layout] of Object.entries(MAP_LAYOUT)) {
    if (!names.includes(name)) continue;
    const target = root.querySelector(`[data-maps="${name}"]`);
    const stage = last.maps[name];
    paintTiles(target, stage, layout);
    // The exact maxima sent with the maps, not the quantised pixels.
    const peaks = Array.from(stage.max, (v) => Math.max(0, v));
    const strongest = peaks.indexOf(Math.max(...peaks));
    const silent = peaks.filter((v) => v <= 0).length;
    target.dataset.peak = String(peaks[strongest]);
    target.dataset.drawing = String(drawings);
    setFacts(root, name, `${stage.channels} maps of ${stage.height}x${stage.width}. ` +
      `Strongest: map ${strongest + 1} (up to ${peaks[strongest].toFixed(2)}). ` +
      (silent ? `${silent} stay blank for this drawing.` : "Every map responds somewhere.") +
      (stage.levels < 255 ? ` Drawn with ${stage.levels + 1} shades to keep the answer small.` : ""));
  }
}

function paintTiles(target, stage, {columns, cell}) {
  const {maps, width, height} = stage;
  const rows = Math.ceil(maps.length / columns);
  const tileW = width * cell;
  const tileH = height * cell;
  target.width = columns * (tileW + TILE_GAP) - TILE_GAP;
  target.height = rows * (tileH + TILE_GAP) - TILE_GAP;
  const ctx = target.getContext("2d");
  // The gaps between tiles in grey, so that a blank (white) map still reads as a tile.
  ctx.fillStyle = "#d9deea";
  ctx.fillRect(0, 0, target.width, target.height);
  const layerPeak = Math.max(1e-9, ...stage.max);
  maps.forEach((values, index) => {
    const peak = scaleEach.checked ? Math.max(1e-9, stage.max[index]) : layerPeak;
    const x = (index % columns) * (tileW + TILE_GAP);
    const y = Math.floor(index / columns) * (tileH + TILE_GAP);
    paintValues(ctx, values, width, height, {x, y, cell, colour: (v) => sequentialColour(v / peak)});
  });
  target.dataset.columns = String(columns);
  target.dataset.drawing = String(drawings);
  target.dataset.tile = `${tileW}x${tileH}`;
}

function renderDense() {
  const target = root.querySelector("[data-dense]");
  const values = last.maps.dense.maps[0];
  const columns = 16;
  const cell = 20;
  target.width = columns * cell;
  target.height = Math.ceil(values.length / columns) * cell;
  const ctx = target.getContext("2d");
  const peak = Math.max(1e-9, ...values);
  target.dataset.drawing = String(drawings);
  ctx.fillStyle = "#d9deea";
  ctx.fillRect(0, 0, target.width, target.height);
  values.forEach((v, i) => {
    const [r, g, b] = sequentialColour(v / peak);
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect((i % columns) * cell + 1, Math.floor(i / columns) * cell + 1, cell - 2, cell - 2);
  });
  const active = values.filter((v) => v > 0).length;
  setFacts(root, "dense", `${active} of ${values.length} neurons are active (above zero) for ` +
    `this drawing; the strongest reaches ${peak.toFixed(2)}.`);
}

function renderProbabilities() {
  const prediction = last.data.prediction;
  renderBars(root.querySelector("[data-probabilities]"), prediction.probabilities);
  const scores = prediction.logits.map((v, d) => `${d}: ${v.toFixed(1).replace(/^-0\.0$/, "0.0")}`)
    .join(", ");
  // The probabilities shown are softmax(scores / T), T the version's calibration
  // temperature (recognizer/calibration.py); its value is on the model page.
  setFacts(root, "probabilities", `Scores before softmax: ${scores}. The probabilities are ` +
    `softmax(scores / T), T being this version's temperature (see the model page). ` +
    `Model version ${prediction.model}.`);
}

// -- hovering ---------------------------------------------------------------------

root.querySelector('[data-image="input"]').addEventListener("mousemove", (event) => {
  if (!last) return;
  const target = event.currentTarget;
  const rect = target.getBoundingClientRect();
  const col = Math.floor(((event.clientX - rect.left) / rect.width) * 28);
  const row = Math.floor(((event.clientY - rect.top) / rect.height) * 28);
  if (col < 0 || col > 27 || row < 0 || row > 27) return;
  const value = last.images.input[row * 28 + col];
  setFacts(root, "input", `Row ${row + 1}, column ${col + 1}: ${value.toFixed(2)}`);
});

for (const [name, layout] of Object.entries(MAP_LAYOUT)) {
  root.querySelector(`[data-maps="${name}"]`).addEventListener("mousemove", (event) => {
    if (!last || !last.maps[name]) return;
    const stage = last.maps[name];
    const target = event.currentTarget;
    const rect = target.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * target.width;
    const y = ((event.clientY - rect.top) / rect.height) * target.height;
    const tileW = stage.width * layout.cell + TILE_GAP;
    const tileH = stage.height * layout.cell + TILE_GAP;
    const index = Math.floor(y / tileH) * layout.columns + Math.floor(x / tileW);
    if (index < 0 || index >= stage.maps.length) return;
    const peak = Math.max(0, stage.max[index]);
    setFacts(root, name, `Map ${index + 1} of ${stage.channels}: strongest response ${peak.toFixed(2)}.`);
  });
}

reset();
const sample = document.getElementById("mnist-sample");
if (sample) {
  const input = JSON.parse(sample.textContent).input;
  if (sampleImage) {
    paintValues(sampleImage.getContext("2d"), input.flat(), 28, 28, {colour: inkColour});
    sampleImage.dataset.painted = "true";
  }
  request({input}, wantedStages());
}
