// Replays a collected drawing's strokes on a canvas in the order and at the
// pace they were drawn, so a reviewer can tell a real attempt from a scribble.
//
// Markup: <div data-replay="ID"> holding a <canvas>, the controls, and
// <script type="application/json" id="ID"> with {"width", "height",
// "strokes": [[[x, y, t?], ...], ...]}. Points without a time are replayed
// at a steady pace.

const STEADY_STEP_MS = 12;   // per point, when the drawing carries no timings
const STROKE_GAP_MS = 180;   // between strokes without timings
const MAX_PAUSE_MS = 600;    // long hesitations are shortened, not replayed in full

function finite(value) {
  return typeof value === "number" && Number.isFinite(value);
}

// [{x, y, at}] per stroke, with `at` in ms from the start of the replay.
export function timeline(data) {
  const strokes = Array.isArray(data && data.strokes) ? data.strokes : [];
  const result = [];
  let clock = 0;
  let lastTime = null;
  for (const raw of strokes) {
    if (!Array.isArray(raw)) continue;
    const stroke = [];
    for (const point of raw) {
      if (!Array.isArray(point) || !finite(point[0]) || !finite(point[1])) continue;
      const time = finite(point[2]) ? point[2] : null;
      if (time !== null && lastTime !== null && time >= lastTime) {
        clock += Math.min(time - lastTime, MAX_PAUSE_MS);
      } else if (lastTime !== null || stroke.length || result.length) {
        clock += stroke.length ? STEADY_STEP_MS : STROKE_GAP_MS;
      }
      if (time !== null) lastTime = time;
      stroke.push({ x: point[0], y: point[1], at: clock });
    }
    if (stroke.length) result.push(stroke);
  }
  return result;
}

function setup(root) {
  const source = document.getElementById(root.dataset.replay);
  const canvas = root.querySelector("canvas");
  if (!source || !canvas) return;
  let data;
  try {
    data = JSON.parse(source.textContent);
  } catch (error) {
    root.querySelector(".stroke-replay__status").textContent = "the stored strokes cannot be read";
    return;
  }
  const strokes = timeline(data);
  const width = finite(data && data.width) && data.width > 0 ? data.width : 280;
  const height = finite(data && data.height) && data.height > 0 ? data.height : 280;
  const side = 280;
  const scale = side / Math.max(width, height);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * scale * ratio);
  canvas.height = Math.round(height * scale * ratio);
  canvas.style.width = `${Math.round(width * scale)}px`;
  canvas.style.height = `${Math.round(height * scale)}px`;
  const context = canvas.getContext("2d");
  context.setTransform(scale * ratio, 0, 0, scale * ratio, 0, 0);
  context.lineCap = "round";
  context.lineJoin = "round";
  context.lineWidth = Math.max(width, height) / 28;

  const total = strokes.length ? strokes[strokes.length - 1].slice(-1)[0].at : 0;
  const status = root.querySelector(".stroke-replay__status");
  const speedSelect = root.querySelector(".stroke-replay__speed");
  let frame = null;

  function paint(elapsed) {
    context.fillStyle = "#fff";
    context.fillRect(0, 0, width, height);
    // The whole drawing faintly underneath, the replayed part on top.
    for (const [colour, limit] of [["#ddd", Infinity], ["#111", elapsed]]) {
      context.strokeStyle = colour;
      for (const stroke of strokes) {
        if (stroke[0].at > limit) break;
        context.beginPath();
        context.moveTo(stroke[0].x, stroke[0].y);
        if (stroke.length === 1) context.lineTo(stroke[0].x + 0.01, stroke[0].y);
        for (const point of stroke.slice(1)) {
          if (point.at > limit) break;
          context.lineTo(point.x, point.y);
        }
        context.stroke();
      }
    }
  }

  function play() {
    if (frame !== null) cancelAnimationFrame(frame);
    const speed = Number(speedSelect.value) || 1;
    const started = performance.now();
    const step = (now) => {
      const elapsed = (now - started) * speed;
      paint(elapsed);
      if (elapsed < total) {
        status.textContent = `${(elapsed / 1000).toFixed(1)} s of ${(total / 1000).toFixed(1)} s`;
        frame = requestAnimationFrame(step);
      } else {
        status.textContent = `${strokes.length} stroke${strokes.length === 1 ? "" : "s"}, ` +
          `${(total / 1000).toFixed(1)} s`;
        frame = null;
        root.dataset.replayed = "true";
      }
    };
    root.dataset.replayed = "false";
    frame = requestAnimationFrame(step);
  }

  root.querySelector(".stroke-replay__play").addEventListener("click", play);
  if (!strokes.length) {
    paint(0);
    status.textContent = "no strokes stored";
    root.dataset.replayed = "true";
    return;
  }
  play();
}

for (const root of document.querySelectorAll("[data-replay]")) setup(root);
