// A drawing canvas for mouse, pen and touch, shared by the game and the teaching pages.
//
//   const pad = new DrawingPad(canvas, {onChange: (drawing, reason) => ..., lineWidth: 14});
//   pad.drawing   -> {width, height, strokes: [[[x, y, t], ...], ...]}
//   pad.clear(); pad.undo(); pad.setEnabled(false); pad.isEmpty(); pad.penDown;
//
// Coordinates are CSS pixels of the canvas as it was when the drawing started
// (y grows downward) and t is milliseconds since the drawing's first point,
// which is what the recognizer's payload format expects. `reason` tells the
// listener what happened: "start", "move", "end", "clear" or "undo".
//
// Also here: drawStrokes and renderDrawing (the pad's way of painting strokes,
// for any canvas) and bindPadControls (the pad's buttons and keys). `throttle`
// lives in throttle.js; the game's modules take it from here.

export {throttle} from "./throttle.js";

// Closer points than this add nothing visible but cost bytes in every message.
const MIN_DISTANCE = 1.5;
// The server refuses drawings with more points than this (RECOGNIZER_MAX_POINTS
// is larger, but live guesses travel over a WebSocket with a 64 KiB limit).
export const MAX_POINTS = 2000;

export class DrawingPad {
  constructor(canvas, {onChange = null, lineWidth = 14, ink = null} = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onChange = onChange;
    this.lineWidth = lineWidth;
    this.ink = ink;
    this.enabled = true;
    this._strokes = [];
    this._activePointer = null;
    this._startTime = null;
    this._startEpoch = null;
    this._frame = null;
    // The drawing's own coordinate space; fixed while there are strokes so a
    // resize (phone rotation) never rewrites what was already drawn.
    this._size = null;

    canvas.style.touchAction = "none";
    canvas.classList.add("drawing-pad");

    this._onDown = this._onDown.bind(this);
    this._onMove = this._onMove.bind(this);
    this._onUp = this._onUp.bind(this);
    canvas.addEventListener("pointerdown", this._onDown);
    canvas.addEventListener("pointermove", this._onMove);
    canvas.addEventListener("pointerup", this._onUp);
    canvas.addEventListener("pointercancel", this._onUp);
    canvas.addEventListener("lostpointercapture", this._onUp);
    // A long press on touch screens would otherwise open a context menu mid-stroke.
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());

    if (typeof ResizeObserver !== "undefined") {
      this._resizeObserver = new ResizeObserver(() => this._resize());
      this._resizeObserver.observe(canvas);
    }
    this._resize();
  }

  get drawing() {
    const size = this._size || this._cssSize();
    return {
      width: size.width,
      height: size.height,
      strokes: this._strokes.map((stroke) => stroke.map((point) => point.slice())),
    };
  }

  /** Wall-clock time (ms since the epoch) of the drawing's first point, or null. */
  get startedAt() {
    return this._startEpoch;
  }

  /** Whether a stroke is being drawn now: the drawing's last stroke is not complete. */
  get penDown() {
    return this._activePointer !== null;
  }

  get pointCount() {
    return this._strokes.reduce((sum, stroke) => sum + stroke.length, 0);
  }

  isEmpty() {
    return this._strokes.length === 0;
  }

  clear() {
    this._endStroke(false);
    this._strokes = [];
    this._startTime = null;
    this._startEpoch = null;
    this._size = null;
    this._render();
    this._emit("clear");
  }

  undo() {
    if (this._strokes.length === 0) return;
    this._endStroke(false);
    this._strokes.pop();
    if (this._strokes.length === 0) {
      this._startTime = null;
      this._startEpoch = null;
      this._size = null;
    }
    this._render();
    this._emit("undo");
  }

  setEnabled(enabled) {
    this.enabled = Boolean(enabled);
    if (!this.enabled) this._endStroke(true);
    this.canvas.classList.toggle("is-disabled", !this.enabled);
    this.canvas.setAttribute("aria-disabled", String(!this.enabled));
  }

  /**
   * Replace the content, e.g. to show a stored drawing. Fires no change.
   * `startedAt` (ms since the epoch): when the drawing's t = 0 was, for a
   * drawing to go on with (the game's, restored after a reload): the points
   * added then count their times from the same moment.
   */
  load(drawing, {startedAt = null} = {}) {
    this._endStroke(false);
    this._strokes = (drawing?.strokes || []).map((stroke) => stroke.map((p) => p.slice()));
    this._size = this._strokes.length ? {width: drawing.width, height: drawing.height} : null;
    const timed = startedAt !== null && this._strokes.length > 0;
    this._startEpoch = timed ? startedAt : null;
    this._startTime = timed ? performance.now() - (Date.now() - startedAt) : null;
    this._render();
  }

  destroy() {
    this._resizeObserver?.disconnect();
    this.canvas.removeEventListener("pointerdown", this._onDown);
    this.canvas.removeEventListener("pointermove", this._onMove);
    this.canvas.removeEventListener("pointerup", this._onUp);
    this.canvas.removeEventListener("pointercancel", this._onUp);
    this.canvas.removeEventListener("lostpointercapture", this._onUp);
  }

  // -- input ------------------------------------------------------------------

  _onDown(event) {
    if (!this.enabled || this._activePointer !== null) return;
    // Only the primary mouse button draws; pens and fingers always do.
    if (event.pointerType === "mouse" && event.button !== 0) return;
    if (this.pointCount >= MAX_POINTS) return;
    event.preventDefault();
    // The pen touched now: the first point of a drawing is at t = 0, however
    // long the pointer capture and layout below take.
    const now = performance.now();
    this._activePointer = event.pointerId;
    try {
      this.canvas.setPointerCapture(event.pointerId);
    } catch {
      // Synthetic events may have no capturable pointer; drawing still works.
    }
    if (this._startTime === null) {
      this._startTime = now;
      this._startEpoch = Date.now();
    }
    if (this._size === null) this._size = this._cssSize();
    this._strokes.push([this._point(event, now)]);
    this._scheduleRender();
    this._emit("start");
  }

  _onMove(event) {
    if (event.pointerId !== this._activePointer) return;
    event.preventDefault();
    const stroke = this._strokes[this._strokes.length - 1];
    // Coalesced events carry the samples the browser merged into this one,
    // which keeps fast strokes round instead of polygonal.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    let added = false;
    for (const sample of events.length ? events : [event]) {
      if (this.pointCount >= MAX_POINTS) break;
      const point = this._point(sample);
      const last = stroke[stroke.length - 1];
      if (Math.hypot(point[0] - last[0], point[1] - last[1]) < MIN_DISTANCE) continue;
      stroke.push(point);
      added = true;
    }
    if (added) {
      this._scheduleRender();
      this._emit("move");
    }
  }

  _onUp(event) {
    if (event.pointerId !== this._activePointer) return;
    if (event.type === "pointerup") {
      const stroke = this._strokes[this._strokes.length - 1];
      const point = this._point(event);
      const last = stroke[stroke.length - 1];
      if (point[0] !== last[0] || point[1] !== last[1]) stroke.push(point);
    }
    this._endStroke(true);
  }

  _endStroke(emit) {
    if (this._activePointer === null) return;
    try {
      if (this.canvas.hasPointerCapture(this._activePointer)) {
        this.canvas.releasePointerCapture(this._activePointer);
      }
    } catch {
      // The pointer is already gone.
    }
    this._activePointer = null;
    this._render();
    if (emit) this._emit("end");
  }

  _point(event, now = performance.now()) {
    const rect = this.canvas.getBoundingClientRect();
    const css = this._cssSize();
    const size = this._size || css;
    const sx = size.width / css.width;
    const sy = size.height / css.height;
    // Measured from the drawing surface, inside the canvas's CSS border.
    const x = clamp((event.clientX - rect.left - this.canvas.clientLeft) * sx, 0, size.width);
    const y = clamp((event.clientY - rect.top - this.canvas.clientTop) * sy, 0, size.height);
    const t = Math.round(now - this._startTime);
    return [round1(x), round1(y), t];
  }

  _emit(reason) {
    if (this.onChange) this.onChange(this.drawing, reason);
  }

  // -- output -----------------------------------------------------------------

  /** The drawing surface's size in CSS pixels: the canvas box without its border. */
  _cssSize() {
    return surfaceSize(this.canvas);
  }

  _resize() {
    const {width, height} = this._cssSize();
    const ratio = window.devicePixelRatio || 1;
    const pixelWidth = Math.round(width * ratio);
    const pixelHeight = Math.round(height * ratio);
    if (this.canvas.width !== pixelWidth || this.canvas.height !== pixelHeight) {
      this.canvas.width = pixelWidth;
      this.canvas.height = pixelHeight;
    }
    this._render();
  }

  _scheduleRender() {
    if (this._frame !== null) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = null;
      this._render();
    });
  }

  _render() {
    const css = this._cssSize();
    const size = this._size || css;
    const ratio = this.canvas.width / css.width;
    const scale = css.width / size.width;
    const ink = this.ink || getComputedStyle(this.canvas).color || "#111";
    drawStrokes(this.ctx, this._strokes, {
      pixelScale: ratio * scale,
      lineWidth: this.lineWidth / scale,
      ink,
      canvasWidth: this.canvas.width,
      canvasHeight: this.canvas.height,
    });
  }
}

/**
 * Paint strokes with quadratic curves through the midpoints of successive
 * points, the usual way to turn sampled pointer positions into a smooth line.
 */
export function drawStrokes(ctx, strokes, {pixelScale = 1, lineWidth = 14, ink = "#111",
  canvasWidth = ctx.canvas.width, canvasHeight = ctx.canvas.height} = {}) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvasWidth, canvasHeight);
  ctx.setTransform(pixelScale, 0, 0, pixelScale, 0, 0);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = lineWidth;
  ctx.strokeStyle = ink;
  ctx.fillStyle = ink;
  for (const stroke of strokes) {
    if (!stroke.length) continue;
    if (stroke.length === 1) {
      ctx.beginPath();
      ctx.arc(stroke[0][0], stroke[0][1], lineWidth / 2, 0, Math.PI * 2);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(stroke[0][0], stroke[0][1]);
    for (let i = 1; i < stroke.length - 1; i++) {
      const midX = (stroke[i][0] + stroke[i + 1][0]) / 2;
      const midY = (stroke[i][1] + stroke[i + 1][1]) / 2;
      ctx.quadraticCurveTo(stroke[i][0], stroke[i][1], midX, midY);
    }
    const last = stroke[stroke.length - 1];
    ctx.lineTo(last[0], last[1]);
    ctx.stroke();
  }
  ctx.setTransform(1, 0, 0, 1, 0, 0);
}

/** Draw a stored drawing into any canvas (thumbnails of other players' drawings). */
export function renderDrawing(canvas, drawing, {lineWidth = null, ink = null, padding = 0.08} = {}) {
  const ratio = window.devicePixelRatio || 1;
  const {width: cssWidth, height: cssHeight} = surfaceSize(canvas);
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const ctx = canvas.getContext("2d");
  const width = drawing?.width || cssWidth;
  const height = drawing?.height || cssHeight;
  const fit = Math.min(cssWidth / width, cssHeight / height) * (1 - padding);
  const scale = fit * ratio;
  const offsetX = (canvas.width - width * scale) / 2;
  const offsetY = (canvas.height - height * scale) / 2;
  const strokes = (drawing?.strokes || []).map((stroke) =>
    stroke.map(([x, y]) => [x + offsetX / scale, y + offsetY / scale]));
  drawStrokes(ctx, strokes, {
    pixelScale: scale,
    lineWidth: lineWidth ?? Math.max(width, height) / 20,
    ink: ink || getComputedStyle(canvas).color || "#111",
  });
}

/**
 * Wire buttons marked data-pad-action="clear" / "undo" inside `root` to the
 * pad, and Ctrl/Cmd+Z (undo) and, unless `escape` is false, Escape (clear)
 * when focus is not in a field.
 */
export function bindPadControls(pad, root = document, {keyboard = true, escape = true} = {}) {
  for (const button of root.querySelectorAll("[data-pad-action]")) {
    button.addEventListener("click", () => {
      if (!pad.enabled) return;
      if (button.dataset.padAction === "clear") pad.clear();
      if (button.dataset.padAction === "undo") pad.undo();
    });
  }
  if (!keyboard) return;
  document.addEventListener("keydown", (event) => {
    if (!pad.enabled || event.target.closest?.("input, textarea, select, [contenteditable]")) return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      pad.undo();
    } else if (escape && event.key === "Escape") {
      pad.clear();
    }
  });
}

function surfaceSize(canvas) {
  // clientWidth leaves out the border; a canvas not laid out yet has none.
  return {
    width: Math.max(1, canvas.clientWidth || canvas.width),
    height: Math.max(1, canvas.clientHeight || canvas.height),
  };
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

function round1(value) {
  return Math.round(value * 10) / 10;
}
