// "How it works": draw, and every stage of the preprocessing and the network
// is redrawn from what the server computed (POST /learn/api/stages).

import {withArticle} from "../article.js";
import {DrawingPad, bindPadControls, throttle} from "../drawing-pad.js";
import {latestRequest} from "../latest-only.js";
import {percent} from "../percent.js";
import {
  EXAMPLES, decodeMaps, drawPixelGrid, inflateImage, inkColour, paintValues, postJSON, renderBars,
  sequentialColour,
} from "./common.js";

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
const SVG_NS = "http://www.w3.org/2000/svg";

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

const pad = new DrawingPad(canvas, {
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
    request(pad.drawing, wantedStages());
  });
}
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
    renderStrokes();
    renderPreprocessing();
  } else {
    renderReadyInput();
  }
  renderMaps(received);
  if (received.includes("dense")) renderDense();
  renderProbabilities();
  updates += 1;
  root.dataset.updates = String(updates);
  root.dataset.drawing = String(drawings);
  root.dataset.state = "ready";
}

// -- part one: the drawing ----------------------------------------------------------

function renderStrokes() {
  const {drawing, data} = last;
  const svg = root.querySelector("[data-strokes-svg]");
  const size = Math.max(drawing.width, drawing.height);
  svg.setAttribute("viewBox", `0 0 ${drawing.width} ${drawing.height}`);
  const dot = size / 110;
  const children = [];
  const frame = element("rect", {x: 0, y: 0, width: drawing.width, height: drawing.height,
    class: "strokes__paper"});
  children.push(frame);
  for (const stroke of drawing.strokes) {
    children.push(element("polyline", {
      points: stroke.map(([x, y]) => `${x},${y}`).join(" "),
      class: "strokes__line", "stroke-width": size / 60,
    }));
    for (const [x, y] of stroke) children.push(element("circle", {cx: x, cy: y, r: dot, class: "strokes__point"}));
  }
  const box = data.preprocessing.bbox;
  children.push(element("rect", {
    x: box.left, y: box.top, width: Math.max(box.width, 0.5), height: Math.max(box.height, 0.5),
    class: "strokes__bbox", "stroke-width": size / 150,
  }));
  svg.replaceChildren(...children);
  setFacts("strokes", `${plural(data.preprocessing.strokes, "stroke")}, ` +
    `${plural(data.preprocessing.points, "point")}; box ${Math.round(box.width)} x ` +
    `${Math.round(box.height)} pixels of ${withArticle(Math.round(drawing.width))} x ` +
    `${Math.round(drawing.height)} canvas.`);
}

/** An MNIST digit: it was cropped, scaled and centred when MNIST was made. */
function renderReadyInput() {
  root.querySelector("[data-strokes-svg]").replaceChildren();
  for (const name of ["fitted", "centered_box"]) {
    const target = root.querySelector(`[data-image="${name}"]`);
    target.getContext("2d").clearRect(0, 0, target.width, target.height);
  }
  const input = last.images.input;
  paintImage(root.querySelector('[data-image="shifted"]'), input, 28, 7);
  paintImage(root.querySelector('[data-image="input"]'), input, 28, 10);
  for (const name of ["strokes", "fitted"]) setFacts(name, "");
  const com = centreOfMass(input, 28);
  setFacts("center", com ? `Its centre of mass is at (${com[0].toFixed(1)}, ${com[1].toFixed(1)}).` : "");
  setFacts("input", `${input.filter((v) => v > 0).length} of 784 pixels have some ink.`);
}

function renderPreprocessing() {
  const pre = last.data.preprocessing;
  const fitted = root.querySelector('[data-image="fitted"]');
  paintImage(fitted, last.images.fitted, 20, 10);
  setFacts("fitted", pre.scale === null
    ? "A single dot: there is nothing to scale."
    : `Scale: ${pre.scale.toFixed(3)} (each pixel of your canvas became ` +
      `${pre.scale.toFixed(3)} pixels here), pen ${pre.pen_width.toFixed(1)} pixels wide.`);

  const cell = 7;
  const boxCanvas = root.querySelector('[data-image="centered_box"]');
  paintImage(boxCanvas, last.images.centered_box, 28, cell);
  const ctx = boxCanvas.getContext("2d");
  // The 20x20 box inside the 28x28 field.
  ctx.save();
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = "rgba(79, 70, 229, 0.8)";
  ctx.lineWidth = 2;
  ctx.strokeRect(4 * cell, 4 * cell, 20 * cell, 20 * cell);
  ctx.restore();
  const [cx, cy] = pre.center_of_mass;
  const centre = 14;
  arrow(ctx, (cx + 0.5) * cell, (cy + 0.5) * cell, (centre + 0.5) * cell, (centre + 0.5) * cell);
  cross(ctx, (centre + 0.5) * cell, (centre + 0.5) * cell, "#2563eb");
  cross(ctx, (cx + 0.5) * cell, (cy + 0.5) * cell, "#dc2626");

  const shifted = root.querySelector('[data-image="shifted"]');
  const input = last.images.input;
  paintImage(shifted, input, 28, cell);
  const sctx = shifted.getContext("2d");
  cross(sctx, (centre + 0.5) * cell, (centre + 0.5) * cell, "#2563eb");
  if (pre.final_center_of_mass) {
    const [fx, fy] = pre.final_center_of_mass;
    cross(sctx, (fx + 0.5) * cell, (fy + 0.5) * cell, "#dc2626");
  }
  const [dx, dy] = pre.shift;
  setFacts("center", `Centre of mass at (${cx.toFixed(1)}, ${cy.toFixed(1)}), moved by ` +
    `${signed(dx)} pixels across and ${signed(dy)} down to (14, 14).`);

  const inputCanvas = root.querySelector('[data-image="input"]');
  paintImage(inputCanvas, input, 28, 10);
  const inked = input.filter((v) => v > 0).length;
  inputCanvas.dataset.inked = String(inked);
  setFacts("input", `${inked} of 784 pixels have some ink.`);
}

/** (x, y) of an image's ink in pixel-index coordinates, as the server measures it; null if blank. */
function centreOfMass(values, side) {
  let total = 0;
  let x = 0;
  let y = 0;
  values.forEach((v, i) => {
    total += v;
    x += v * (i % side);
    y += v * Math.floor(i / side);
  });
  return total > 0 ? [x / total, y / total] : null;
}

function paintImage(target, values, side, cell) {
  target.width = side * cell + 1;
  target.height = side * cell + 1;
  const ctx = target.getContext("2d");
  paintValues(ctx, values, side, side, {cell, colour: inkColour});
  drawPixelGrid(ctx, side, side, cell);
}

function cross(ctx, x, y, colour) {
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(x - 8, y);
  ctx.lineTo(x + 8, y);
  ctx.moveTo(x, y - 8);
  ctx.lineTo(x, y + 8);
  ctx.stroke();
  ctx.restore();
}

function arrow(ctx, x0, y0, x1, y1) {
  const length = Math.hypot(x1 - x0, y1 - y0);
  if (length < 4) return;
  const angle = Math.atan2(y1 - y0, x1 - x0);
  ctx.save();
  ctx.strokeStyle = "#f59e0b";
  ctx.fillStyle = "#f59e0b";
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - 9 * Math.cos(angle - 0.45), y1 - 9 * Math.sin(angle - 0.45));
  ctx.lineTo(x1 - 9 * Math.cos(angle + 0.45), y1 - 9 * Math.sin(angle + 0.45));
  ctx.closePath();
  ctx.fill();
  ctx.restore();
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
    setFacts(name, `${stage.channels} maps of ${stage.height}x${stage.width}. ` +
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
  setFacts("dense", `${active} of ${values.length} neurons are active (above zero) for ` +
    `this drawing; the strongest reaches ${peak.toFixed(2)}.`);
}

function renderProbabilities() {
  const prediction = last.data.prediction;
  renderBars(root.querySelector("[data-probabilities]"), prediction.probabilities);
  const scores = prediction.logits.map((v, d) => `${d}: ${v.toFixed(1).replace(/^-0\.0$/, "0.0")}`)
    .join(", ");
  // The probabilities shown are softmax(scores / T), T the version's calibration
  // temperature (recognizer/calibration.py); its value is on the model page.
  setFacts("probabilities", `Scores before softmax: ${scores}. The probabilities are ` +
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
  setFacts("input", `Row ${row + 1}, column ${col + 1}: ${value.toFixed(2)}`);
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
    setFacts(name, `Map ${index + 1} of ${stage.channels}: strongest response ${peak.toFixed(2)}.`);
  });
}

// -- helpers -----------------------------------------------------------------------------

function setFacts(name, text) {
  const facts = root.querySelector(`[data-facts="${name}"]`);
  if (facts) facts.textContent = text;
}

function element(name, attributes) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function signed(value) {
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}`;
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
