// Shared by the teaching pages: the drawing pad with its buttons, talking to
// the server, decoding what it sends, and painting numbers as pixels.

import {DrawingPad, bindPadControls} from "../drawing-pad.js";
import {RetryLater} from "../latest-only.js";
import {percent} from "../percent.js";
import {carry, encodeDrawing, lessonAddress} from "./share.js";

/**
 * The lesson's drawing pad on `canvas`, its buttons under `root` wired (undo,
 * clear and the example digits). Every change first drops the MNIST sample on
 * show (`dropSample`); a cleared pad cancels what is waiting (`send`, the
 * throttled sender, and `request`, the latest-only request) and `reset`s the
 * page; any other change is sent. An example is asked for at once, with
 * `ask()` as the request's second argument. Whenever the drawing settles
 * (pen up, undo, clear, an example) the link to it is brought up to date
 * (`settle`).
 */
export function lessonPad(root, canvas, {send, request, reset, dropSample, ask}) {
  const follow = followDrawing({send, request, reset});
  const pad = new DrawingPad(canvas, {
    onChange(drawing, reason) {
      dropSample();
      if (reason === "end" || reason === "undo" || reason === "clear") settle(root, drawing);
      follow(drawing, reason);
    },
  });
  // Escape does not clear the drawing: a key that wipes a learner's work
  // from anywhere on the page (closing a menu, leaving a field) is a trap.
  bindPadControls(pad, root, {escape: false});
  for (const button of root.querySelectorAll("[data-example]")) {
    button.addEventListener("click", () => {
      dropSample();
      pad.load(EXAMPLES[button.dataset.example]);
      settle(root, pad.drawing);
      request(pad.drawing, ask());
    });
  }
  bindShare(root);
  return pad;
}

/**
 * A drawing pad's onChange for a page that answers every drawing: a cleared
 * or empty pad cancels what is waiting (`send`, the throttled sender, and
 * `request`, the latest-only request) and `reset`s the page; any other
 * change is sent. The lessons' pads and the teach page's comparison pad.
 */
export function followDrawing({send, request, reset}) {
  return (drawing, reason) => {
    if (reason === "clear" || drawing.strokes.length === 0) {
      send.cancel();
      request.reset();
      reset();
      return;
    }
    send(drawing);
  };
}

/**
 * What the page opens with, once it is set up: the drawing shared in its
 * link (?d=, the "shared-drawing" script), loaded on the pad and asked for,
 * or the MNIST digit `sample` ({index, input}), asked for by `askSample`.
 * Either way the links to the other lessons carry it; without either they
 * carry nothing.
 */
export function openShown(root, pad, {request, ask, sample = null, askSample = null}) {
  const shared = document.getElementById("shared-drawing");
  if (shared) {
    pad.load(JSON.parse(shared.textContent));
    settle(root, pad.drawing);
    request(pad.drawing, ask());
  } else if (sample) {
    settle(root, null, {mnist: sample.index});
    askSample();
  } else {
    settle(root, null);
  }
}

/**
 * The drawing on show changed to `drawing` (or, with `mnist`, to that MNIST
 * test digit): the page's address, the links to the other lessons and the
 * share button follow it.
 */
export function settle(root, drawing, {mnist = null} = {}) {
  const code = mnist === null ? encodeDrawing(drawing) : null;
  const what = code ? {code} : mnist !== null ? {mnist} : null;
  carry(what);
  const strokes = drawing?.strokes?.length || 0;
  describe(root.querySelector("[data-pad]"), mnist !== null ? `Showing MNIST test digit ${mnist}.`
    : strokes ? `Your drawing: ${strokes} stroke${strokes === 1 ? "" : "s"}.` : "Empty.");
  const button = root.querySelector("[data-share-copy]");
  if (!button) return;
  button.disabled = !what;
  button.dataset.address = what ? new URL(lessonAddress(location.href, what), location.href).href : "";
  const tooLong = mnist === null && drawing?.strokes?.length && !code;
  root.querySelector("[data-share-status]").textContent = tooLong
    ? "This drawing is too long for a link: too many strokes or points." : "";
  root.querySelector("[data-share-link]").hidden = true;
}

function bindShare(root) {
  const button = root.querySelector("[data-share-copy]");
  if (!button) return;
  const field = root.querySelector("[data-share-link]");
  const status = root.querySelector("[data-share-status]");
  button.addEventListener("click", async () => {
    field.value = button.dataset.address;
    field.hidden = false;
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      status.textContent = "Link copied: it opens this drawing in any lesson.";
    } catch {
      // No clipboard (an insecure origin, a refused permission): the link is selected.
      status.textContent = "Copy the link above: it opens this drawing in any lesson.";
    }
  });
}

/**
 * A canvas's text alternative: its own description (its aria-label as the
 * page was served) followed by what it shows now, or the description alone.
 */
export function describe(canvas, now = "") {
  if (!canvas) return;
  if (canvas.dataset.alt === undefined) canvas.dataset.alt = canvas.getAttribute("aria-label") || "";
  canvas.setAttribute("aria-label", now ? `${canvas.dataset.alt}. ${now}` : canvas.dataset.alt);
}

/**
 * Say `text` in the page's live region (under `root`), for screen readers.
 * The pages call it only once the pen is up: an answer for every few
 * milliseconds of a stroke would drown the reader.
 */
export function announce(root, text) {
  const region = root.querySelector("[data-announce]");
  if (!region) return;
  region.textContent = text;
  region.dataset.count = String(Number(region.dataset.count || 0) + 1);
}

/**
 * Whether the answer to `asked` (the drawing sent) is the answer to the
 * drawing as it stands, the pen lifted: the moment to announce it.
 */
export function settledAnswer(pad, asked) {
  if (!asked?.strokes) return true; // a ready input (an MNIST digit): nothing is being drawn
  if (pad.penDown) return false;
  const points = asked.strokes.reduce((sum, stroke) => sum + stroke.length, 0);
  return asked.strokes.length === pad.drawing.strokes.length && points === pad.pointCount;
}

/** Put `text` in the step card's facts line `name` under `root`, if the page has one. */
export function setFacts(root, name, text) {
  const facts = root.querySelector(`[data-facts="${name}"]`);
  if (facts) facts.textContent = text;
}

/** Decode base64 bytes (how the server sends images and maps) into a Uint8Array. */
export function decodeBase64(text) {
  const binary = atob(text || "");
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * POST JSON and return the decoded answer; throws an Error carrying the
 * server's own message when it refuses the request.
 */
export async function postJSON(url, body, {signal} = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "Accept": "application/json"},
    body: JSON.stringify(body),
    signal,
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON: a proxy's error page, for instance. Reported below.
  }
  // 429: this browser's or this address's limits; 503 with a wait: the
  // server's own queue is full. Either way the page waits and asks again.
  if (response.status === 429 || (response.status === 503 && data?.retry_after)) {
    const seconds = Number(data?.retry_after ?? response.headers.get("Retry-After"));
    throw new Busy(Number.isFinite(seconds) && seconds > 0 ? seconds : 1,
                   response.status === 503 ? "The server is busy" : undefined);
  }
  if (!response.ok) {
    throw new Error(data?.error || `the server answered ${response.status}`);
  }
  return data;
}

/**
 * A 429: too many requests from this browser, or from its address (a whole
 * school shares one). The lessons say so and send the newest drawing again
 * after the wait the server asked for (see retryWhenBusy).
 */
export class Busy extends Error {
  constructor(seconds, reason = "Many requests at once from this computer or your school") {
    super(`${reason}: trying again in ${seconds} s…`);
    this.seconds = seconds;
  }
}

/**
 * `send(...args)` for latestRequest: a Busy refusal is shown with `show(message)`
 * and becomes RetryLater, so the page waits and then sends the newest drawing;
 * any other error goes on to the page's onError.
 */
export function retryWhenBusy(send, show) {
  return async (...args) => {
    try {
      return await send(...args);
    } catch (error) {
      if (!(error instanceof Busy)) throw error;
      show(error.message);
      throw new RetryLater(error.seconds * 1000);
    }
  };
}

/** Deflated (zlib) bytes sent as base64 -> Uint8Array. */
async function inflate(text) {
  const stream = new Blob([decodeBase64(text)]).stream()
    .pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Little-endian float32 values sent as base64 -> Float32Array, exactly. */
export function decodeFloats(text) {
  const bytes = decodeBase64(text);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float32Array(bytes.length / 4);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(i * 4, true);
  return values;
}

/**
 * One stage as sent by /learn/api/stages (see recognizer/teaching/encoding.py):
 * either exact float32 values (the dense layer) or deflated bytes quantised to
 * `levels` steps between each map's exact min and max.
 */
export async function decodeMaps(encoded) {
  const shape = encoded.shape;
  const channels = encoded.channels;
  const maps = [];
  let low;
  let high;
  if (encoded.float32) {
    const values = decodeFloats(encoded.float32);
    maps.push(values);
    low = [values.reduce((m, v) => Math.min(m, v), Infinity)];
    high = [values.reduce((m, v) => Math.max(m, v), -Infinity)];
  } else {
    const bytes = await inflate(encoded.data);
    low = decodeFloats(encoded.min);
    high = decodeFloats(encoded.max);
    const size = bytes.length / channels;
    for (let c = 0; c < channels; c++) {
      const span = high[c] - low[c];
      const values = new Float32Array(size);
      for (let i = 0; i < size; i++) values[i] = low[c] + (bytes[c * size + i] / encoded.levels) * span;
      maps.push(values);
    }
  }
  return {
    maps,
    channels,
    min: low,
    max: high,
    levels: encoded.levels ?? null,
    height: shape.length === 3 ? shape[1] : 1,
    width: shape.length === 3 ? shape[2] : shape[0],
  };
}

/** An image sent deflated ({shape, deflated}) or as base64 uint8 ({shape, data}) -> [0, 1]. */
export async function inflateImage(encoded) {
  if (!encoded.deflated) return decodeImage(encoded);
  return Float32Array.from(await inflate(encoded.deflated), (b) => b / 255);
}

/** A 28x28 image sent as base64 uint8 (255 = ink) -> Float32Array in [0, 1]. */
export function decodeImage(encoded) {
  const bytes = decodeBase64(encoded.data);
  return Float32Array.from(bytes, (b) => b / 255);
}

// A sequential colour map from paper white through blue to deep purple: strong
// activations read as "ink", like the drawing itself.
const SEQUENTIAL = [
  [255, 255, 255], [214, 228, 248], [140, 180, 235], [66, 120, 214], [42, 62, 170], [40, 16, 96],
];

export function sequentialColour(t) {
  return interpolate(SEQUENTIAL, t);
}

// Diverging: blue (against) - white (no effect) - orange (for). Blue and
// orange, not blue and red: the pair that every common kind of colour
// blindness tells apart, and the one the model page's matrix uses
// (recognizer/metrics_display.py RIGHT_RGB, MISTAKE_RGB). Dark blue and a
// lighter orange, so that in greyscale (a black-and-white print, a pale
// projector) the two ends and white are three different greys: luminance
// 0.07, 1 and 0.31 (tests/test_colour_scales.py).
export const DIVERGING = [[30, 64, 175], [110, 150, 230], [255, 255, 255], [252, 200, 130], [235, 120, 0]];

export function divergingColour(t) {
  return interpolate(DIVERGING, (t + 1) / 2);
}

/** The diverging scale as an outlined bar, -1 at `left`, +1 at `left + width`
 * (the keys under the neuron's maps and the attention maps). */
export function paintDivergingBar(ctx, left, width, top, height) {
  for (let x = 0; x <= width; x++) {
    const [r, g, b] = divergingColour((2 * x) / width - 1);
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect(left + x, top, 1, height);
  }
  ctx.strokeStyle = "rgba(120, 130, 150, 0.8)";
  ctx.strokeRect(left + 0.5, top + 0.5, width, height - 1);
}

function interpolate(stops, t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/**
 * Paint one (width x height) array of values into a canvas at (x, y), `cell`
 * px per value; `colour(value, index)` gives each value's [r, g, b].
 */
export function paintValues(ctx, values, width, height, {x = 0, y = 0, cell = 1, colour}) {
  const image = ctx.createImageData(width * cell, height * cell);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const [r, g, b] = colour(values[row * width + col], row * width + col);
      for (let dy = 0; dy < cell; dy++) {
        let offset = ((row * cell + dy) * width * cell + col * cell) * 4;
        for (let dx = 0; dx < cell; dx++) {
          image.data[offset] = r;
          image.data[offset + 1] = g;
          image.data[offset + 2] = b;
          image.data[offset + 3] = 255;
          offset += 4;
        }
      }
    }
  }
  ctx.putImageData(image, x, y);
}

/** Greyscale ink on paper for [0, 1] images, the way the network's input is shown. */
export function inkColour(v) {
  const shade = 255 * (1 - Math.min(1, Math.max(0, v)));
  return [shade, shade, shade];
}

/** Thin lines between pixels, so that a 28x28 image reads as a grid of numbers. */
export function drawPixelGrid(ctx, width, height, cell, {colour = "rgba(120, 130, 150, 0.35)"} = {}) {
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let i = 0; i <= width; i++) {
    ctx.moveTo(i * cell + 0.5, 0);
    ctx.lineTo(i * cell + 0.5, height * cell);
  }
  for (let j = 0; j <= height; j++) {
    ctx.moveTo(0, j * cell + 0.5);
    ctx.lineTo(width * cell, j * cell + 0.5);
  }
  ctx.stroke();
  ctx.restore();
}

/** Fill a <ol data-bars> with one bar per digit (the same markup as the game's). */
export function renderBars(list, probabilities, {target = null} = {}) {
  const top = probabilities.indexOf(Math.max(...probabilities));
  if (list.children.length !== probabilities.length) {
    list.replaceChildren(...probabilities.map((_, digit) => {
      const item = document.createElement("li");
      item.className = "bar";
      item.innerHTML = `<span class="bar__digit">${digit}</span>` +
        '<span class="bar__track"><span class="bar__fill"></span></span>' +
        '<span class="bar__value"></span>';
      return item;
    }));
  }
  probabilities.forEach((p, digit) => {
    const item = list.children[digit];
    item.classList.toggle("is-top", digit === top);
    item.classList.toggle("is-target", digit === target);
    item.dataset.probability = String(p);
    item.querySelector(".bar__fill").style.width = `${(p * 100).toFixed(2)}%`;
    item.querySelector(".bar__value").textContent = percent(p, {tiny: true});
  });
}

// Two ready-made drawings for visitors who would rather not draw: strokes in
// a 300x300 canvas, as the drawing pad records them.
export const EXAMPLES = {
  7: {width: 300, height: 300, strokes: [
    line([[80, 70], [220, 70], [200, 110], [170, 160], [145, 215], [130, 250]]),
    line([[120, 160], [200, 160]]),
  ]},
  3: {width: 300, height: 300, strokes: [
    arc(150, 105, 58, 48, -160, 90),
    arc(150, 195, 65, 55, -90, 160),
  ]},
  // Hard cases, each read two ways by the shipped model (its probabilities
  // when they were drawn: a teacher asks the class which they see first).
  // A 1 with a long flat flag: 1 at 65%, 7 at 35%.
  "1or7": {width: 300, height: 300, strokes: [line([[130, 58], [170, 55], [150, 250]])]},
  // A 4 whose top is closed but for a gap: 4 at 65%, 9 at 28%.
  "4or9": {width: 300, height: 300, strokes: [
    line([[130, 60], [115, 150], [200, 150]]),
    line([[190, 60], [190, 250]]),
    line([[150, 60], [190, 60]]),
  ]},
  // A 3 whose top stroke turns back like a 5's: 3 at 54%, 5 at 45%.
  "3or5": {width: 300, height: 300, strokes: [
    line([[100, 60], [200, 60], [148, 75.6], [120, 140]]),
    arc(150, 195, 65, 55, -120, 160),
  ]},
  // A 4 whose top is open, for lesson 2's experiment; CLOSING_STROKE closes it.
  // With the shipped model closing it took 9 from 0.03% to 36%.
  open4: {width: 300, height: 300, strokes: [
    line([[125, 60], [115, 150], [200, 150]]),
    line([[190, 60], [190, 250]]),
  ]},
};

export const CLOSING_STROKE = line([[125, 60], [190, 60]]);

function line(points) {
  const out = [];
  for (let i = 0; i < points.length - 1; i++) {
    const [x0, y0] = points[i];
    const [x1, y1] = points[i + 1];
    const steps = Math.max(1, Math.round(Math.hypot(x1 - x0, y1 - y0) / 6));
    for (let s = 0; s < steps; s++) out.push([x0 + ((x1 - x0) * s) / steps, y0 + ((y1 - y0) * s) / steps]);
  }
  out.push(points[points.length - 1]);
  return out.map(([x, y], t) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10, t * 16]);
}

function arc(cx, cy, rx, ry, fromDegrees, toDegrees) {
  const out = [];
  const steps = 30;
  for (let s = 0; s <= steps; s++) {
    const a = ((fromDegrees + ((toDegrees - fromDegrees) * s) / steps) * Math.PI) / 180;
    out.push([cx + rx * Math.cos(a), cy + ry * Math.sin(a)]);
  }
  return out.map(([x, y], t) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10, t * 16]);
}
