// The filter sliding over its input, in the neuron panel's enlarged map: an
// optional animation (a Play button, never on its own). Cells not reached yet
// show what the filter reads, in greys (conv1: the input; deeper layers: the
// maps it reads, averaged); a 3x3 frame marks the filter's place; reached
// cells show the output, in the map's own colours, and the line under it
// the value there, the same number the arithmetic ends on. Pause, and the
// panel shows the arithmetic of the position reached; play again to go on.
// With prefers-reduced-motion the filter moves a whole row at a time.

import {fmt} from "./neuron.js";
import {paintValues, sequentialColour} from "./common.js";

// A whole map fills in this long: conv1's 784 positions at about 100 a second.
const SECONDS_PER_MAP = 8;
// With reduced motion: one row, then a pause this long before the next.
const ROW_MS = 700;
const FRAME_COLOUR = "#e66101";

/** Light grey paper to mid grey ink: what the filter reads, below the colours. */
function grey(t) {
  const shade = 245 - 130 * Math.min(1, Math.max(0, t));
  return [shade, shade, shade];
}

/**
 * `canvas` the enlarged map, `controls` the [data-neuron-play-controls]
 * element, `cellFor(stage)` the inspector's cell size, `onPause({y, x})`
 * what the panel does when the animation stops at a position.
 */
export function kernelSlide({canvas, controls, cellFor, onPause}) {
  const button = controls.querySelector("[data-neuron-play]");
  const status = controls.querySelector("[data-neuron-play-status]");
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)");
  let scene = null; // {key, layer, stage, map, input}
  let filled = 0;
  let frame = null;
  let startedAt = null;
  let filledAtStart = 0;

  const total = () => scene.stage.width * scene.stage.height;
  const partial = () => scene !== null && filled > 0 && filled < total();

  function setState(state) {
    controls.dataset.state = state;
    controls.dataset.filled = String(filled);
    const playing = state === "playing";
    button.setAttribute("aria-pressed", String(playing));
    button.textContent = playing ? "Pause" : state === "paused" ? "Play on" : "Play: slide the filter";
  }

  function paint(boxIndex) {
    const {stage, map, input} = scene;
    const cell = cellFor(stage);
    const width = stage.width;
    canvas.width = width * cell;
    canvas.height = stage.height * cell;
    const values = stage.maps[map];
    const peak = Math.max(1e-9, stage.max[map]);
    const inputPeak = input ? Math.max(1e-9, ...input) : 1;
    const ctx = canvas.getContext("2d");
    paintValues(ctx, values, width, stage.height, {
      cell,
      colour: (v, i) => (i < filled ? sequentialColour(v / peak) : grey(input ? input[i] / inputPeak : 0)),
    });
    const y = Math.floor(boxIndex / width);
    const x = boxIndex % width;
    ctx.strokeStyle = FRAME_COLOUR;
    ctx.lineWidth = 2;
    ctx.strokeRect((x - 1) * cell + 1, (y - 1) * cell + 1, 3 * cell - 2, 3 * cell - 2);
    ctx.strokeRect(x * cell + 1, y * cell + 1, cell - 2, cell - 2);
    status.textContent = `row ${y + 1}, column ${x + 1}: ${fmt(values[boxIndex])}`;
  }

  function tick(now) {
    if (startedAt === null) startedAt = now;
    const elapsed = now - startedAt;
    const width = scene.stage.width;
    const next = reduced.matches
      ? (Math.floor(filledAtStart / width) + Math.floor(elapsed / ROW_MS) + 1) * width
      : filledAtStart + Math.ceil((elapsed * total()) / (SECONDS_PER_MAP * 1000)) + 1;
    filled = Math.min(total(), Math.max(filled, next));
    paint(filled - 1);
    controls.dataset.filled = String(filled);
    if (filled >= total()) {
      frame = null;
      setState("done");
      return;
    }
    frame = requestAnimationFrame(tick);
  }

  function play() {
    if (!scene) return;
    if (filled >= total()) filled = 0;
    startedAt = null;
    filledAtStart = filled;
    setState("playing");
    frame = requestAnimationFrame(tick);
  }

  function pause() {
    if (frame !== null) cancelAnimationFrame(frame);
    frame = null;
    setState("paused");
    const width = scene.stage.width;
    onPause({y: Math.floor((filled - 1) / width), x: (filled - 1) % width});
  }

  button.addEventListener("click", () => (frame !== null ? pause() : play()));

  function stop() {
    if (frame !== null) cancelAnimationFrame(frame);
    frame = null;
    filled = 0;
    status.textContent = "";
    setState("idle");
  }

  return {
    /**
     * The panel shows `place` (conv layers: `stage` its maps, `input` what
     * the filter reads, one value a position); true when this painted the
     * map (an animation under way or paused), false to paint it as usual.
     */
    show(place, stage, input) {
      const key = place && stage ? `${place.layer}/${place.map}/${stage.width}` : null;
      if (!key || !/^conv/.test(place.layer)) {
        stop();
        scene = null;
        controls.hidden = true;
        return false;
      }
      if (!scene || scene.key !== key || scene.stage !== stage) {
        stop();
        scene = {key, stage, map: place.map, input};
      }
      controls.hidden = false;
      if (frame !== null) return true; // the next frame paints
      if (partial()) {
        paint(place.y * stage.width + place.x);
        return true;
      }
      return false;
    },
    stop,
  };
}
