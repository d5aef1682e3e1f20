// A drawing in a link (?d=<code>), and the lessons carrying it from page to
// page. The code's format is described in recognizer/teaching/share.py,
// which reads it: base64url of varints, points rounded to whole pixels,
// each point after a stroke's first as its step from the one before.

const FORMAT = 1;
// As share.py's SHARE_MAX_CHARS: a longer drawing is simplified to fit.
export const SHARE_MAX_CHARS = 2400;
// How far (canvas pixels) a point may be from the line through its
// neighbours and still be left out, tried in turn until the code fits.
const TOLERANCES = [0, 0.75, 1.5, 3, 5, 8];
const STORAGE_KEY = "teaching-drawing";

function varint(value, out) {
  let v = value;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function zigzag(value) {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function wholePoints(stroke, width, height) {
  const points = [];
  for (const [x, y] of stroke) {
    const px = Math.min(Math.max(Math.round(x), 0), width);
    const py = Math.min(Math.max(Math.round(y), 0), height);
    const last = points[points.length - 1];
    if (!last || last[0] !== px || last[1] !== py) points.push([px, py]);
  }
  return points;
}

/** Ramer-Douglas-Peucker: the points that keep the stroke within `tolerance`. */
function simplify(points, tolerance) {
  if (tolerance <= 0 || points.length < 3) return points;
  const keep = new Uint8Array(points.length);
  keep[0] = keep[points.length - 1] = 1;
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [first, last] = stack.pop();
    const [ax, ay] = points[first];
    const [bx, by] = points[last];
    const length = Math.hypot(bx - ax, by - ay) || 1;
    let worst = -1;
    let distance = 0;
    for (let i = first + 1; i < last; i++) {
      const [px, py] = points[i];
      const d = Math.abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / length;
      if (d > distance) {
        distance = d;
        worst = i;
      }
    }
    if (worst >= 0 && distance > tolerance) {
      keep[worst] = 1;
      stack.push([first, worst], [worst, last]);
    }
  }
  return points.filter((_, i) => keep[i]);
}

function pack(width, height, strokes) {
  const out = [FORMAT];
  varint(width, out);
  varint(height, out);
  varint(strokes.length, out);
  for (const points of strokes) {
    varint(points.length, out);
    varint(points[0][0], out);
    varint(points[0][1], out);
    for (let i = 1; i < points.length; i++) {
      varint(zigzag(points[i][0] - points[i - 1][0]), out);
      varint(zigzag(points[i][1] - points[i - 1][1]), out);
    }
  }
  let binary = "";
  for (const byte of out) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The code of a drawing, simplified as little as needed to fit
 * SHARE_MAX_CHARS; null for an empty drawing or one that does not fit even
 * simplified (hundreds of strokes, or a zigzag whose every point is a corner).
 */
export function encodeDrawing(drawing) {
  if (!drawing?.strokes?.length) return null;
  const width = Math.round(drawing.width);
  const height = Math.round(drawing.height);
  const strokes = drawing.strokes.map((s) => wholePoints(s, width, height)).filter((s) => s.length);
  for (const tolerance of TOLERANCES) {
    const code = pack(width, height, strokes.map((s) => simplify(s, tolerance)));
    if (code.length <= SHARE_MAX_CHARS) return code;
  }
  return null;
}

/** The address of `path` showing the drawing (`code`) or the MNIST digit (`mnist`). */
export function lessonAddress(path, {code = null, mnist = null} = {}) {
  const url = new URL(path, location.href);
  url.searchParams.delete("d");
  url.searchParams.delete("mnist");
  if (code) url.searchParams.set("d", code);
  else if (mnist !== null) url.searchParams.set("mnist", String(mnist));
  return url.pathname + url.search;
}

/** What the lessons carry now ({code} or {mnist}), from this tab's storage. */
export function carried() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
  } catch {
    return null;
  }
}

/**
 * The drawing on show is `what` ({code}, {mnist} or null for none): the
 * address bar and every link to a drawing lesson (a[data-carry]) take it,
 * and so does this tab's storage, so that the lessons without a drawing pad
 * pass it on too.
 */
export function carry(what) {
  try {
    if (what) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(what));
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage refused (private mode): the links on this page still carry it.
  }
  history.replaceState(history.state, "", lessonAddress(location.href, what || {}));
  carryLinks(what);
}

/** Point every a[data-carry] at its lesson with `what` on show. */
export function carryLinks(what) {
  for (const link of document.querySelectorAll("a[data-carry]")) {
    link.href = lessonAddress(link.getAttribute("href"), what || {});
  }
}
