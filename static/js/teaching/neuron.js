// One neuron's arithmetic on "How it works": click a feature map (then any
// position in the enlarged map), a dense neuron or a digit's bar, and the
// panel shows how the network computed that one value from the layer before,
// with the served model's own weights (POST /learn/api/neuron,
// recognizer/teaching/neuron.py). The panel moves into the card that was
// clicked; arrow keys move the position, [ and ] change the map.

import {latestRequest} from "../latest-only.js";
import {percent} from "../percent.js";
import {
  divergingColour,
  paintDivergingBar,
  paintValues,
  postJSON,
  retryWhenBusy,
  sequentialColour,
} from "./common.js";
import {kernelSlide} from "./kernel-slide.js";

// What each convolution's filter reads (conv1: the input, in the page's terms).
const READS = {conv2: "conv1", conv3: "pool1", conv4: "conv3"};
// The enlarged map is about this many CSS pixels wide, whatever its size.
const MAP_PIXELS = 224;
const NAMES = {
  normalised: "the rescaled input", conv1: "conv1", conv2: "conv2", pool1: "pool1",
  conv3: "conv3", conv4: "conv4", pool2: "pool2", dense: "the dense layer",
};

/** A number as the panel writes it: three decimals, a real minus sign. */
export function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  const text = Number(value).toFixed(digits);
  return /^-0\.0*$/.test(text) ? text.slice(1) : text.replace("-", "−");
}

/** A number that follows an operator: negatives in brackets, "− (−0.100)" not "− −0.100". */
function term(value) {
  return value < 0 ? `(${fmt(value)})` : fmt(value);
}

function html(strings, ...values) {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? values[i] : ""), "");
}

function grid(values, {cls = "", pixels = null} = {}) {
  const cells = values.map((v, i) => {
    const pixel = pixels && pixels[i] !== undefined
      ? `<small>${pixels[i] === null ? "edge" : `pixel ${fmt(pixels[i], 2)}`}</small>` : "";
    return `<td data-value="${v}">${fmt(v)}${pixel}</td>`;
  });
  const rows = [0, 1, 2].map((r) => `<tr>${cells.slice(r * 3, r * 3 + 3).join("")}</tr>`);
  return `<table class="neuron__grid ${cls}"><tbody>${rows.join("")}</tbody></table>`;
}

function relu(answer) {
  return html`<li data-neuron-relu><strong>ReLU</strong>: negative becomes zero:
    max(0, ${fmt(answer.before_relu)}) = <strong data-neuron-output="${answer.output}">${fmt(answer.output)}</strong></li>`;
}

function check(answer) {
  return html`<p class="neuron__check" data-neuron-network="${answer.network}">The network's own
    value here: <strong>${fmt(answer.network, 4)}</strong>${Math.abs(answer.network - answer.output) < 1e-4 ? " — the same." : "."}</p>`;
}

function convSteps(answer) {
  const norm = answer.batch_norm;
  const reads = NAMES[answer.reads];
  const detail = answer.detailed.map((channel) => {
    const products = channel.patch.map((v, i) => v * channel.weights[i]);
    const label = answer.in_channels > 1 ? `<p class="neuron__label">map ${channel.channel + 1} of ${reads}</p>` : "";
    return html`<div class="neuron__channel" data-neuron-channel="${channel.channel}">${label}
      <div class="neuron__product">
        <figure>${grid(channel.patch, {cls: "neuron__grid--patch", pixels: answer.pixels})}<figcaption>${answer.in_channels > 1 ? "patch" : "the 3x3 patch of the rescaled input"}</figcaption></figure>
        <span class="neuron__op">×</span>
        <figure>${grid(channel.weights, {cls: "neuron__grid--weights"})}<figcaption>the filter's weights</figcaption></figure>
        <span class="neuron__op">=</span>
        <figure>${grid(products, {cls: "neuron__grid--products"})}<figcaption>products</figcaption></figure>
      </div>
      <p class="small">Sum of the 9 products: <strong data-neuron-channel-sum="${channel.sum}">${fmt(channel.sum)}</strong></p></div>`;
  }).join("");
  const intro = answer.in_channels > 1
    ? `<p>This filter reads all ${answer.in_channels} maps of ${reads} at once: a 3x3 patch of each, ${answer.in_channels * 9} weights and products. The ${answer.detailed.length} maps that add the most (up or down):</p>`
    : "<p>The filter lays its 9 weights on the 3x3 patch around this position (rescaled: paper is −0.42), multiplies each pair and adds the products up.</p>";
  const sums = answer.in_channels > 1
    ? html`<details class="neuron__sums"><summary>The sums of all ${answer.in_channels} maps</summary>
      <p class="small mono" data-neuron-sums>${answer.channel_sums.map((v, i) => `${i + 1}: ${fmt(v)}`).join(", ")}</p></details>`
    : "";
  return html`${intro}${detail}${sums}
    <ol class="neuron__chain">
      <li><strong>Weighted sum</strong>${answer.in_channels > 1 ? ` of the ${answer.in_channels} maps' sums` : ""}:
        <strong data-neuron-sum="${answer.weighted_sum}">${fmt(answer.weighted_sum)}</strong>${answer.bias === null ? " (no bias: batch norm's shift does that job)" : ` + bias ${fmt(answer.bias)}`}</li>
      <li data-neuron-batch-norm><strong>Batch norm</strong>: ${fmt(answer.weighted_sum)} × scale <span data-neuron-scale="${norm.scale}">${term(norm.scale)}</span> + shift <span data-neuron-shift="${norm.shift}">${term(norm.shift)}</span>
        = <span data-neuron-before-relu="${answer.before_relu}">${fmt(answer.before_relu)}</span>
        <span class="muted small">(scale = γ / √(variance + ε) = ${fmt(norm.gamma)} / √(${fmt(norm.variance)} + ${norm.eps});
        shift = β − mean × scale = ${fmt(norm.beta)} − ${term(norm.mean)} × ${term(norm.scale)}: four numbers learned in training)</span></li>
      ${relu(answer)}
    </ol>${check(answer)}`;
}

function poolSteps(answer) {
  const [top, left] = answer.top_left;
  const cells = answer.window.map((v) => `<td data-value="${v}"${v === answer.output ? ' class="is-max"' : ""}>${fmt(v)}</td>`);
  return html`<p>Max pooling looks at a 2x2 window of ${NAMES[answer.reads]}'s map ${answer.map + 1}
    (rows ${top + 1}-${top + 2}, columns ${left + 1}-${left + 2}) and keeps the largest value. No weights, nothing learned.</p>
    <table class="neuron__grid neuron__grid--window"><tbody><tr>${cells[0]}${cells[1]}</tr><tr>${cells[2]}${cells[3]}</tr></tbody></table>
    <p>The largest: <strong data-neuron-output="${answer.output}">${fmt(answer.output)}</strong></p>${check(answer)}`;
}

function productRows(top, describe) {
  return top.map((p) => html`<tr data-neuron-product><td>${describe(p)}</td><td class="num">${fmt(p.input)}</td>
    <td class="num">${fmt(p.weight)}</td><td class="num" data-value="${p.product}">${fmt(p.product)}</td></tr>`).join("");
}

function denseSteps(answer) {
  const rows = productRows(answer.top, (p) => `pool2 map ${p.map + 1}, row ${p.y + 1}, column ${p.x + 1}`);
  return html`<p>Neuron ${answer.map + 1} multiplies every one of the ${answer.inputs.toLocaleString("en")} values of pool2
    (${answer.inputs_above_zero} of them above zero for this drawing; the others add nothing) by a weight of its own, and adds them up.
    The ${answer.top.length} biggest products:</p>
    <div class="table-scroll"><table class="data-table neuron__products"><thead><tr><th>input</th><th class="num">value</th><th class="num">weight</th><th class="num">product</th></tr></thead>
    <tbody>${rows}<tr><td colspan="3">the other ${answer.rest_count.toLocaleString("en")} products together</td><td class="num" data-neuron-rest="${answer.rest_sum}">${fmt(answer.rest_sum)}</td></tr></tbody></table></div>
    <ol class="neuron__chain">
      <li><strong>Weighted sum</strong>: <strong data-neuron-sum="${answer.weighted_sum}">${fmt(answer.weighted_sum)}</strong></li>
      <li><strong>Bias</strong>: ${fmt(answer.weighted_sum)} + ${term(answer.bias)} = <span data-neuron-before-relu="${answer.before_relu}">${fmt(answer.before_relu)}</span></li>
      ${relu(answer)}
    </ol>${check(answer)}`;
}

function exponent(value) {
  return value >= 1e5 || (value > 0 && value < 1e-3) ? value.toExponential(2).replace("e+", " × 10^").replace("e-", " × 10^−") : fmt(value);
}

function softmaxSteps(answer) {
  const d = answer.digit;
  const T = answer.temperature;
  const rows = answer.logits.map((z, k) => html`<tr${k === d ? ' class="is-target"' : ""}><td>${k}</td>
    <td class="num">${fmt(z)}</td><td class="num">${fmt(answer.scaled[k])}</td><td class="num" data-value="${answer.exp[k]}">${exponent(answer.exp[k])}</td></tr>`).join("");
  const score = answer.score;
  const scoreRows = productRows(score.top, (p) => `dense neuron ${p.index + 1}`);
  const shift = answer.exp_shift ? ` (every term divided by e^${fmt(answer.exp_shift, 1)} to stay readable: the fraction is the same)` : "";
  return html`<p class="neuron__formula">P(${d}) = e<sup>z<sub>${d}</sub> / T</sup> ÷ (e<sup>z<sub>0</sub> / T</sup> + … + e<sup>z<sub>9</sub> / T</sup>), with T = ${fmt(T)}</p>
    <div class="table-scroll"><table class="data-table neuron__softmax"><thead><tr><th>digit</th><th class="num">score z</th><th class="num">z / T</th><th class="num">e<sup>z / T</sup></th></tr></thead>
    <tbody>${rows}</tbody><tfoot><tr><th colspan="3">sum</th><td class="num" data-neuron-exp-sum="${answer.exp_sum}">${exponent(answer.exp_sum)}</td></tr></tfoot></table></div>
    <p>P(${d}) = ${exponent(answer.exp[d])} ÷ ${exponent(answer.exp_sum)} = <strong data-neuron-output="${answer.output}">${percent(answer.output, {tiny: true})}</strong>${shift}.
    Dividing by T (below 1) spreads the scores apart, so the biggest takes a bigger share.</p>
    ${check(answer).replace(fmt(answer.network, 4), percent(answer.network, {tiny: true}))}
    <details class="neuron__sums"><summary>Where the score of ${d} comes from</summary>
    <p>Like a dense neuron: the 128 values of the dense layer, each times a weight of digit ${d}'s own, added up, plus a bias. The biggest products:</p>
    <div class="table-scroll"><table class="data-table neuron__products"><thead><tr><th>input</th><th class="num">value</th><th class="num">weight</th><th class="num">product</th></tr></thead>
    <tbody>${scoreRows}<tr><td colspan="3">the other ${score.rest_count} products together</td><td class="num">${fmt(score.rest_sum)}</td></tr>
    <tr><td colspan="3">bias</td><td class="num">${fmt(score.bias)}</td></tr></tbody>
    <tfoot><tr><th colspan="3">score z<sub>${d}</sub></th><td class="num">${fmt(score.output)}</td></tr></tfoot></table></div></details>`;
}

const STEPS = {conv: convSteps, pool: poolSteps, dense: denseSteps, softmax: softmaxSteps};

function title(answer) {
  if (answer.kind === "dense") return `Dense neuron ${answer.map + 1} of ${answer.maps}`;
  if (answer.kind === "softmax") return `The probability of ${answer.digit}`;
  return `${answer.layer}, map ${answer.map + 1}, row ${answer.y + 1}, column ${answer.x + 1}`;
}

/**
 * The inspector: `panel` is the page's [data-neuron] section; `getBase()`
 * the drawing or ready input on show (null when none), `getStage(layer)` the
 * decoded maps of a stage (for the enlarged map), `url` the endpoint.
 */
export function neuronInspector({panel, url, getBase, getStage, getInput = () => null, topDigits = null}) {
  const titleElement = panel.querySelector("[data-neuron-title]");
  const steps = panel.querySelector("[data-neuron-steps]");
  const mapFigure = panel.querySelector("[data-neuron-map-figure]");
  const mapCanvas = panel.querySelector("[data-neuron-map]");
  let place = null; // {layer, map, y, x}
  let answers = 0;
  const top = topDigitsStrip(panel, topDigits);
  const cellFor = (stage) => Math.max(2, Math.floor(MAP_PIXELS / stage.width));
  const slide = kernelSlide({
    canvas: mapCanvas,
    controls: panel.querySelector("[data-neuron-play-controls]"),
    cellFor,
    onPause: (where) => move(where),
  });

  /** What a conv layer's filter reads, one value a position: the input, or the maps before, averaged. */
  function filterInput(layer) {
    if (layer === "conv1") return getInput();
    const before = getStage(READS[layer]);
    if (!before) return null;
    const sum = new Float32Array(before.maps[0].length);
    before.maps.forEach((values) => values.forEach((v, i) => { sum[i] += v; }));
    return sum;
  }

  const request = latestRequest(
    retryWhenBusy((body) => postJSON(url, body), (message) => {
      panel.dataset.state = "waiting";
      steps.textContent = message;
    }),
    (answer) => render(answer),
    (error) => {
      panel.dataset.state = "error";
      steps.textContent = error.message;
    },
  );

  function ask() {
    const base = getBase();
    if (!base || !place) return;
    panel.dataset.state = "computing";
    request({...base, ...place});
  }

  function render(answer) {
    answers += 1;
    titleElement.textContent = title(answer);
    steps.innerHTML = STEPS[answer.kind](answer);
    panel.dataset.layer = answer.layer;
    panel.dataset.map = String(answer.map);
    panel.dataset.y = String(answer.y);
    panel.dataset.x = String(answer.x);
    panel.dataset.answers = String(answers);
    panel.dataset.state = "ready";
    paintMap();
  }

  function paintMap() {
    top.show(place);
    const stage = place && getStage(place.layer);
    const spatial = stage && stage.height > 1;
    mapFigure.hidden = !spatial;
    if (slide.show(spatial ? place : null, stage, spatial ? filterInput(place.layer) : null)) return;
    if (!spatial) return;
    const cell = cellFor(stage);
    mapCanvas.width = stage.width * cell;
    mapCanvas.height = stage.height * cell;
    const values = stage.maps[place.map];
    const peak = Math.max(1e-9, stage.max[place.map]);
    const ctx = mapCanvas.getContext("2d");
    paintValues(ctx, values, stage.width, stage.height, {cell, colour: (v) => sequentialColour(v / peak)});
    ctx.strokeStyle = "#e66101";
    ctx.lineWidth = 2;
    ctx.strokeRect(place.x * cell + 1, place.y * cell + 1, cell - 2, cell - 2);
    mapCanvas.setAttribute("aria-label", `Map ${place.map + 1} of ${place.layer}, ${stage.height} by ` +
      `${stage.width}, enlarged; the chosen position is row ${place.y + 1}, column ${place.x + 1}. ` +
      "Arrow keys move it; [ and ] change the map.");
  }

  function move(next) {
    place = {...place, ...next};
    ask();
    paintMap();
  }

  mapCanvas.addEventListener("click", (event) => {
    const stage = place && getStage(place.layer);
    if (!stage) return;
    const rect = mapCanvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) / rect.width) * stage.width);
    const y = Math.floor(((event.clientY - rect.top) / rect.height) * stage.height);
    if (x >= 0 && x < stage.width && y >= 0 && y < stage.height) move({x, y});
  });
  mapCanvas.addEventListener("keydown", (event) => {
    const stage = place && getStage(place.layer);
    if (!stage) return;
    const keys = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0]};
    if (keys[event.key]) {
      const [dy, dx] = keys[event.key];
      move({y: clamp(place.y + dy, stage.height), x: clamp(place.x + dx, stage.width)});
    } else if (event.key === "[" || event.key === "]") {
      move({map: clamp(place.map + (event.key === "]" ? 1 : -1), stage.channels)});
    } else {
      return;
    }
    event.preventDefault();
  });
  panel.querySelector("[data-neuron-close]").addEventListener("click", () => close());

  function close() {
    slide.stop();
    place = null;
    panel.hidden = true;
    request.reset();
  }

  return {
    /** Show the arithmetic of `where` ({layer, map, y, x}) inside the card `card`. */
    open(where, card) {
      place = {y: 0, x: 0, ...where};
      if (panel.parentElement !== card) card.append(panel);
      panel.hidden = false;
      ask();
      paintMap();
    },
    /** The drawing changed: the same place, computed again. */
    refresh() {
      if (place && !panel.hidden) ask();
    },
    close,
  };
}

// The cell size of the top digits' strip: the sprite's 28 px digits at 37 px.
const TOP_CELL = 37;
const TOP_NAMES = {conv2: "map", conv3: "map", conv4: "map", dense: "neuron"};

/**
 * The training digits that excite the chosen map most (recognizer/teaching/
 * top_digits.py): one row of the layer's sprite, shown as the strip's
 * background, with the digits' labels in its text alternative. `data` is
 * what the page embedded: the layers, or a note (being prepared, no MNIST).
 */
export function topDigitsStrip(panel, data) {
  const figure = panel.querySelector("[data-neuron-top]");
  const strip = panel.querySelector("[data-neuron-top-strip]");
  const caption = panel.querySelector("[data-neuron-top-caption]");
  function show(place) {
    const what = place && TOP_NAMES[place.layer];
    figure.hidden = !what || !data;
    if (figure.hidden) return;
    if (!data.layers) {
      strip.hidden = true;
      caption.textContent = data.note;
      figure.dataset.state = data.preparing ? "preparing" : "unavailable";
      return;
    }
    const layer = data.layers[place.layer];
    const shown = data.shown;
    const labels = layer.labels.slice(place.map * shown, (place.map + 1) * shown).split("");
    const players = layer.players.slice(place.map * shown, (place.map + 1) * shown);
    strip.hidden = false;
    strip.style.backgroundImage = `url("${layer.sprite}")`;
    strip.style.backgroundSize = `${shown * TOP_CELL}px ${layer.maps * TOP_CELL}px`;
    strip.style.backgroundPosition = `0 ${-place.map * TOP_CELL}px`;
    const fromPlayers = [...players].filter((flag) => flag === "1").length;
    const source = data.players
      ? `${data.sample.toLocaleString("en")} MNIST training digits and ${data.players.toLocaleString("en")} players' drawings`
      : `${data.sample.toLocaleString("en")} MNIST training digits`;
    strip.setAttribute("aria-label", `The ${shown} digits that excite ${what} ${place.map + 1} of ` +
      `${place.layer} most: ${labels.join(", ")}`);
    caption.textContent = `Of ${source}, the ${shown} that excite this ${what} most` +
      `${fromPlayers ? ` (${fromPlayers} drawn by players)` : ""}: ${labels.join(", ")}.`;
    figure.dataset.state = "ready";
    figure.dataset.labels = labels.join("");
  }
  return {show};
}

function clamp(value, size) {
  return Math.max(0, Math.min(size - 1, value));
}

/**
 * conv1's filters, painted like its maps (same columns, same order): each a
 * 3x3 picture of its weights, orange for positive (ink there raises the map),
 * blue for negative, on one scale for all 32 (`filters.peak`).
 */
export function paintFilters(canvas, filters, {columns, tile, gap}) {
  const cell = Math.floor(tile / 3);
  const size = cell * 3;
  const rows = Math.ceil(filters.weights.length / columns);
  canvas.width = columns * (tile + gap) - gap;
  canvas.height = rows * (tile + gap) - gap;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#d9deea";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const flipped = new Set(filters.flipped);
  filters.weights.forEach((weights, index) => {
    const sign = flipped.has(index) ? -1 : 1;
    const x = (index % columns) * (tile + gap) + Math.floor((tile - size) / 2);
    const y = Math.floor(index / columns) * (tile + gap) + Math.floor((tile - size) / 2);
    paintValues(ctx, weights, 3, 3, {x, y, cell, colour: (w) => divergingColour((sign * w) / filters.peak)});
  });
  canvas.dataset.painted = String(filters.weights.length);
}

/**
 * The filters' key: the diverging colour bar from −peak (blue) through 0
 * (white) to +peak (orange), with those three numbers written under it,
 * signs included, so that it reads in greyscale too.
 */
export function paintWeightKey(canvas, peak) {
  const ctx = canvas.getContext("2d");
  const margin = 18;
  const width = canvas.width - 2 * margin;
  const barTop = 4;
  const barHeight = 14;
  paintDivergingBar(ctx, margin, width, barTop, barHeight);
  ctx.fillStyle = getComputedStyle(canvas).color || "#111";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const labels = [[-1, `−${fmt(peak, 2)}`], [0, "0"], [1, `+${fmt(peak, 2)}`]];
  for (const [t, label] of labels) {
    const x = Math.round(margin + ((t + 1) / 2) * width);
    ctx.fillRect(x, barTop + barHeight, 1, 4);
    ctx.fillText(label, x, barTop + barHeight + 7);
  }
  canvas.dataset.labels = labels.map(([, label]) => label).join(" ");
}
