// "How it works": draw, and every stage of the preprocessing and the network
// is redrawn from what the server computed (POST /learn/api/stages). The
// preprocessing's steps are painted by preprocessing-steps.js, the network's
// stages here.

import {latestRequest} from "../latest-only.js";
import {percent} from "../percent.js";
import {throttle} from "../throttle.js";
import {
  announce, decodeMaps, describe, inflateImage, inkColour, lessonPad, openShown, paintValues,
  postJSON, renderBars, retryWhenBusy, sequentialColour, setFacts, settledAnswer,
} from "./common.js";
import {gridKeys} from "./grid-keys.js";
import {guessChip} from "./guess-chip.js";
import {neuronInspector, paintFilters, paintWeightKey} from "./neuron.js";
import {renderPreprocessing, renderReadyInput, renderStrokes} from "./preprocessing-steps.js";

// How the feature maps are tiled: columns of tiles and screen pixels per value,
// and the columns on a narrow screen. A canvas is shrunk to its card's width
// (about 300 CSS pixels on a 360-pixel phone): 16 columns of 14x14 maps were
// 717 pixels wide, so a map came out 19 pixels across (1.3 a value); 8
// columns make it 38, and a 7x7 map 35 instead of 18. conv1 keeps its 8
// columns on every screen, so that its filters stay beside their maps.
const MAP_LAYOUT = {
  conv1: {columns: 8, narrow: 8, cell: 2},
  conv2: {columns: 8, narrow: 8, cell: 2},
  pool1: {columns: 8, narrow: 6, cell: 4},
  conv3: {columns: 16, narrow: 8, cell: 3},
  conv4: {columns: 16, narrow: 8, cell: 3},
  pool2: {columns: 16, narrow: 8, cell: 5},
};
const NARROW = matchMedia("(max-width: 640px)");
const TILE_GAP = 3;
// The outline of the tile chosen with the keyboard (orange, like the chosen
// position in the enlarged map; it reads on the blue maps and on paper).
const CHOSEN_COLOUR = "#e66101";
// The dense layer's 128 neurons: columns of squares, screen pixels per square.
const DENSE_COLUMNS = 16;
const DENSE_CELL = 20;
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
// What was announced last: an answer to the drawing sent just before the pen
// lifted can arrive after the lift, hold the finished drawing, and be
// announced; the pen-up's own request for the same drawing must not say it again.
let announced = null;
// Cards came on screen while a request was on its way: its answer asks for them.
let cardsWaiting = false;

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
  retryWhenBusy(async (base, stages) => {
    const data = await postJSON(url, {...base, stages});
    const images = {input: await inflateImage(data.input)};
    for (const name of ["fitted", "centered_box"]) {
      if (data.preprocessing) images[name] = await inflateImage(data.preprocessing[name]);
    }
    return {data, images, maps: await decodeAll(data.activations)};
  }, showBusy),
  ({data, images, maps}, base) => {
    const changed = !last || last.base !== base;
    if (changed) {
      drawings += 1;
      last = {data, images, drawing: base.strokes ? base : null, base, maps};
    } else {
      // More stages of the same drawing.
      Object.assign(last.maps, maps);
      last.data.prediction = data.prediction;
    }
    render(Object.keys(maps));
    // The arithmetic on show follows the drawing.
    if (changed) inspector.refresh();
    const said = base.strokes ? JSON.stringify(base.strokes) : base;
    if (changed && settledAnswer(pad, base) && said !== announced) {
      announced = said;
      const {digit, probabilities} = data.prediction;
      announce(root, `The network reads ${digit}, ${percent(probabilities[digit], {tiny: true})} sure.`);
    }
    // The stages that did not fit, and the cards scrolled onto the screen
    // while this answer was on its way, unless a newer drawing is already waiting.
    cardsWaiting = false;
    const missing = STAGES.filter((name) => !(name in last.maps)
      && (onScreen.has(name) || data.omitted?.includes(name)));
    if (missing.length && Object.keys(maps).length && !request.hasPending()) {
      request(base, missing);
    }
  },
  (error) => {
    status.textContent = error.message;
    root.dataset.state = "error";
    // Cards scrolled into view while the failed request was on its way
    // waited for its answer: they are asked for once, for the drawing on show.
    if (cardsWaiting && last && !request.hasPending()) {
      cardsWaiting = false;
      const missing = STAGES.filter((name) => onScreen.has(name) && !(name in last.maps));
      if (missing.length) request(last.base, missing);
    }
  },
);
const send = throttle((drawing) => request(drawing, wantedStages()), THROTTLE_MS);

// Refused for now (429): say so until the drawing is sent again and answered.
function showBusy(message) {
  status.textContent = message;
  root.dataset.state = "waiting";
}

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
  // Scrolled to a stage this drawing has no answer for yet: ask for it, unless
  // a request is on its way: it may be a newer drawing's, which the older one
  // must not overtake (its answer asks for the cards on screen then).
  const missing = appeared.filter((name) => last && !(name in last.maps));
  if (!missing.length) return;
  if (request.isIdle()) request(last.base, missing);
  else cardsWaiting = true;
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

const pad = lessonPad(root, canvas, {send, request, reset, dropSample, ask: wantedStages});
scaleEach.addEventListener("change", () => last && renderMaps(Object.keys(last.maps)));

async function decodeAll(activations) {
  const maps = {};
  for (const [name, encoded] of Object.entries(activations)) maps[name] = await decodeMaps(encoded);
  return maps;
}

function reset() {
  inspector.close();
  last = null;
  drawings += 1;
  guessDigit.textContent = "?";
  status.textContent = "Draw a digit to begin.";
  root.dataset.state = "empty";
  // Not the filters and their key: the model's weights, whatever the drawing.
  for (const element of root.querySelectorAll("canvas:not([data-pad], [data-filters], [data-filters-key])")) {
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
  const inked = last.images.input.filter((v) => v > 0).length;
  describe(root.querySelector('[data-image="input"]'), `${inked} of its 784 pixels hold some ink.`);
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
    const facts = `${stage.channels} maps of ${stage.height}x${stage.width}. ` +
      `Strongest: map ${strongest + 1} (up to ${peaks[strongest].toFixed(2)}). ` +
      (silent ? `${silent} stay blank for this drawing.` : "Every map responds somewhere.");
    setFacts(root, name, facts +
      (stage.levels < 255 ? ` Drawn with ${stage.levels + 1} shades to keep the answer small.` : ""));
    describe(target, facts);
  }
}

function columnsOf(name) {
  return NARROW.matches ? MAP_LAYOUT[name].narrow : MAP_LAYOUT[name].columns;
}

function paintTiles(target, stage, {cell}) {
  const {maps, width, height} = stage;
  const name = target.dataset.maps;
  const columns = columnsOf(name);
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
  const chosen = mapKeys[name]?.chosen();
  if (chosen !== null && chosen !== undefined) {
    outline(ctx, (chosen % columns) * (tileW + TILE_GAP), Math.floor(chosen / columns) * (tileH + TILE_GAP),
      tileW, tileH);
  }
}

function outline(ctx, x, y, width, height) {
  ctx.strokeStyle = CHOSEN_COLOUR;
  ctx.lineWidth = 3;
  ctx.strokeRect(x + 1.5, y + 1.5, width - 3, height - 3);
}

function renderDense() {
  const target = root.querySelector("[data-dense]");
  const values = last.maps.dense.maps[0];
  const columns = DENSE_COLUMNS;
  const cell = DENSE_CELL;
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
  const chosen = denseKeys.chosen();
  if (chosen !== null) outline(ctx, (chosen % columns) * cell, Math.floor(chosen / columns) * cell, cell, cell);
  const active = values.filter((v) => v > 0).length;
  const facts = `${active} of ${values.length} neurons are active (above zero) for ` +
    `this drawing; the strongest reaches ${peak.toFixed(2)}.`;
  setFacts(root, "dense", facts);
  describe(target, facts);
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

/** The map and the position in it under a pointer event on a stage's tiles, or null. */
function tileAt(event, name) {
  const stage = last?.maps[name];
  if (!stage) return null;
  const {cell} = MAP_LAYOUT[name];
  const target = event.currentTarget;
  const columns = Number(target.dataset.columns);
  const rect = target.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * target.width;
  const y = ((event.clientY - rect.top) / rect.height) * target.height;
  const tileW = stage.width * cell + TILE_GAP;
  const tileH = stage.height * cell + TILE_GAP;
  const index = Math.floor(y / tileH) * columns + Math.floor(x / tileW);
  const col = Math.floor((x % tileW) / cell);
  const row = Math.floor((y % tileH) / cell);
  if (index < 0 || index >= stage.maps.length || col >= stage.width || row >= stage.height) return null;
  return {stage, index, row, col};
}

const mapKeys = {};

for (const name of Object.keys(MAP_LAYOUT)) {
  const tiles = root.querySelector(`[data-maps="${name}"]`);
  tiles.addEventListener("mousemove", (event) => {
    const at = tileAt(event, name);
    if (!at) return;
    const peak = Math.max(0, at.stage.max[at.index]);
    setFacts(root, name, `Map ${at.index + 1} of ${at.stage.channels}: strongest response ` +
      `${peak.toFixed(2)}. Row ${at.row + 1}, column ${at.col + 1}: ` +
      `${at.stage.maps[at.index][at.row * at.stage.width + at.col].toFixed(2)}. Click for its arithmetic.`);
  });
  // The keyboard: arrow keys choose a map, Enter opens its arithmetic at its
  // middle, and the focus moves to the enlarged map, whose arrow keys move
  // the position from there.
  mapKeys[name] = gridKeys(tiles, {
    count: () => last?.maps[name]?.maps.length ?? 0,
    columns: () => columnsOf(name),
    onChoose(index) {
      const stage = last?.maps[name];
      if (!stage) return;
      paintTiles(tiles, stage, MAP_LAYOUT[name]);
      if (index === null) return;
      const words = `Map ${index + 1} of ${stage.channels} chosen: strongest response ` +
        `${Math.max(0, stage.max[index]).toFixed(2)}. Enter shows its arithmetic.`;
      setFacts(root, name, words);
      describe(tiles, words);
    },
    onOpen(index) {
      const stage = last.maps[name];
      inspector.open({layer: name, map: index, y: Math.floor(stage.height / 2),
        x: Math.floor(stage.width / 2)}, stepCard(name));
      root.querySelector("[data-neuron-map]").focus();
    },
  });
  // A click picks the map and the position under the pointer; the panel's
  // enlarged map then picks other positions.
  tiles.addEventListener("click", (event) => {
    const at = tileAt(event, name);
    if (at) inspector.open({layer: name, map: at.index, y: at.row, x: at.col}, stepCard(name));
  });
}

function stepCard(name) {
  return root.querySelector(`[data-step="${name}"]`);
}

const inspector = neuronInspector({
  panel: root.querySelector("[data-neuron]"),
  url: root.dataset.neuronUrl,
  getBase: () => last?.base ?? null,
  getStage: (layer) => last?.maps[layer] ?? null,
  getInput: () => last?.images.input ?? null,
  topDigits: JSON.parse(document.getElementById("top-digits")?.textContent ?? "null"),
});

const denseCanvas = root.querySelector("[data-dense]");
const denseKeys = gridKeys(denseCanvas, {
  count: () => last?.maps.dense?.maps[0].length ?? 0,
  columns: () => DENSE_COLUMNS,
  onChoose(index) {
    if (!last?.maps.dense) return;
    renderDense();
    if (index === null) return;
    const words = `Neuron ${index + 1} of ${last.maps.dense.maps[0].length} chosen: ` +
      `${last.maps.dense.maps[0][index].toFixed(2)}. Enter shows its arithmetic.`;
    setFacts(root, "dense", words);
    describe(denseCanvas, words);
  },
  onOpen: (index) => inspector.open({layer: "dense", map: index}, stepCard("dense")),
});

// A narrower or wider screen: the maps take their columns again.
NARROW.addEventListener("change", () => {
  if (last) renderMaps(Object.keys(last.maps));
});

denseCanvas.addEventListener("click", (event) => {
  if (!last?.maps.dense) return;
  const target = event.currentTarget;
  const rect = target.getBoundingClientRect();
  const col = Math.floor(((event.clientX - rect.left) / rect.width) * DENSE_COLUMNS);
  const row = Math.floor(((event.clientY - rect.top) / rect.height) * (target.height / DENSE_CELL));
  const unit = row * DENSE_COLUMNS + col;
  if (unit >= 0 && unit < last.maps.dense.maps[0].length) {
    inspector.open({layer: "dense", map: unit}, stepCard("dense"));
  }
});

// A digit's bar: its probability, softmax with the numbers plugged in.
const bars = root.querySelector("[data-step=\"probabilities\"] [data-probabilities]");
bars.addEventListener("click", (event) => {
  const item = event.target.closest("li");
  if (!item || !last) return;
  inspector.open({layer: "softmax", map: [...bars.children].indexOf(item)}, stepCard("probabilities"));
});

// conv1's filters beside its maps, tile for tile (the model's own weights,
// sent with the page); a click on one opens its map's arithmetic in the middle.
const filtersScript = document.getElementById("conv1-filters");
const filtersCanvas = root.querySelector("[data-filters]");
if (filtersScript && filtersCanvas) {
  const {columns, cell} = MAP_LAYOUT.conv1;
  const filters = JSON.parse(filtersScript.textContent);
  paintFilters(filtersCanvas, filters, {columns, tile: 28 * cell, gap: TILE_GAP});
  const key = root.querySelector("[data-filters-key]");
  if (key) paintWeightKey(key, filters.peak);
  filtersCanvas.addEventListener("click", (event) => {
    const rect = filtersCanvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * filtersCanvas.width;
    const y = ((event.clientY - rect.top) / rect.height) * filtersCanvas.height;
    const index = Math.floor(y / (28 * cell + TILE_GAP)) * columns + Math.floor(x / (28 * cell + TILE_GAP));
    if (last && index >= 0 && index < 32) inspector.open({layer: "conv1", map: index, y: 14, x: 14}, stepCard("conv1"));
  });
}

guessChip(root);
reset();
const sampleScript = document.getElementById("mnist-sample");
const sample = sampleScript ? JSON.parse(sampleScript.textContent) : null;
if (sample && sampleImage) {
  paintValues(sampleImage.getContext("2d"), sample.input.flat(), 28, 28, {colour: inkColour});
  sampleImage.dataset.painted = "true";
}
openShown(root, pad, {request, ask: wantedStages, sample,
  askSample: () => request({input: sample.input}, wantedStages())});
