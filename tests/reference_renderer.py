"""The stroke renderer as it was before it became linear in the ink's length: the reference.

Kept verbatim (only renamed) so that tests and bench/bench_worst_drawing.py
can compare today's renderer with it: it lists every (segment, pixel) pair of
each segment's bounding box at once and takes the nearest per pixel by
sorting, so a long diagonal zigzag costs segments x 784 pairs (a 10,000-point
corner-to-corner zigzag: about 1.4 s and 530 MB). It has no ink limit.

It repeats much of recognizer/preprocessing.py on purpose: it is the tests'
independent oracle, so it must not share the code it checks.
"""

import math

import numpy as np

from recognizer.preprocessing import (
    BOX,
    BOX_CENTRE,
    COM_TOLERANCE,
    MIN_EXTENT,
    MIN_STEP,
    PEN_WIDTH,
    SIZE,
    TARGET_CENTRE,
    DrawingError,
)


def center_of_mass(image):
    """(x, y) of an image's ink in pixel-index coordinates; None if it is empty.

    numpy's sums and dot products, as the site measured it before its
    compiled version (recognizer.pen_kernel.mass_centre): for rendered
    strokes every sum is exact, so the two agree to the bit.
    """
    image = np.asarray(image, dtype=np.float64)
    total = image.sum()
    if total <= 0:
        return None
    ys = np.arange(image.shape[0], dtype=np.float64)
    xs = np.arange(image.shape[1], dtype=np.float64)
    return float(image.sum(axis=0) @ xs / total), float(image.sum(axis=1) @ ys / total)


def _center(render):
    """Render unshifted, measure the centre of mass, render again shifted onto
    the centre, correcting up to twice: (unshifted, com, shift, final)."""
    unshifted = render(0.0, 0.0)
    com = center_of_mass(unshifted)
    if com is None:
        raise DrawingError("the drawing has no ink")
    dx, dy = TARGET_CENTRE - com[0], TARGET_CENTRE - com[1]
    final = render(dx, dy)
    for _ in range(2):
        after = center_of_mass(final)
        if after is None:
            break
        ex, ey = TARGET_CENTRE - after[0], TARGET_CENTRE - after[1]
        if max(abs(ex), abs(ey)) < COM_TOLERANCE:
            break
        dx, dy = dx + ex, dy + ey
        final = render(dx, dy)
    return unshifted, com, (dx, dy), final


def _as_points(stroke, s_index):
    try:
        points = np.array([tuple(point)[:2] for point in stroke], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DrawingError(f"stroke {s_index} must be a list of (x, y) points") from exc
    if points.size == 0:
        return np.zeros((0, 2))
    if points.ndim != 2 or points.shape[1] != 2:
        raise DrawingError(f"stroke {s_index} must be a list of (x, y) points")
    if not np.isfinite(points).all():
        raise DrawingError(f"stroke {s_index} has a coordinate that is not a finite number")
    return points


def _clip_segment(p, q, width, height):
    """The part of segment p-q inside [0, width] x [0, height] (Liang-Barsky), or None."""
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for denom, num in ((-dx, p[0]), (dx, width - p[0]), (-dy, p[1]), (dy, height - p[1])):
        if denom == 0:
            if num < 0:
                return None
            continue
        t = num / denom
        if denom < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return (p[0] + t0 * dx, p[1] + t0 * dy), (p[0] + t1 * dx, p[1] + t1 * dy)


def _clip_stroke(points, width, height):
    """Split a stroke into the pieces that lie on the canvas.

    The canvas shows only what is inside it, so ink dragged past the edge is
    cut there rather than squashed onto the border.
    """
    inside = (
        (points[:, 0] >= 0) & (points[:, 0] <= width)
        & (points[:, 1] >= 0) & (points[:, 1] <= height)
    )
    if inside.all():
        return [points]
    if len(points) == 1:
        return []
    pieces, current = [], []
    for p, q in zip(points[:-1], points[1:], strict=True):
        clipped = _clip_segment(p, q, width, height)
        if clipped is None:
            if current:
                pieces.append(current)
                current = []
            continue
        a, b = clipped
        if not current:
            current = [a]
        elif current[-1] != a:
            pieces.append(current)
            current = [a]
        current.append(b)
        if b != (q[0], q[1]):  # the segment leaves the canvas
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return [np.array(piece, dtype=np.float64) for piece in pieces]


def _segments(pieces):
    """Polylines as arrays of segment start and end points.

    Repeated points are dropped; a stroke that is a single point becomes a
    zero-length segment, which the renderer draws as a dot.
    """
    starts, ends = [], []
    for points in pieces:
        if len(points) > 1:
            # Keep about one point per MIN_STEP of path: a dense stylus trace
            # keeps its shape (within MIN_STEP) at a fraction of the cost,
            # and repeated points go too.
            arc = np.r_[0.0, np.cumsum(np.hypot(*np.diff(points, axis=0).T))]
            bucket = np.floor(arc / MIN_STEP)
            keep = np.r_[True, bucket[1:] != bucket[:-1]]
            keep[-1] = arc[-1] > 0
            points = points[keep]
        if len(points) == 1:
            starts.append(points)
            ends.append(points)
        else:
            starts.append(points[:-1])
            ends.append(points[1:])
    return np.vstack(starts), np.vstack(ends)


def _render_segments(seg_a, seg_b, pen_width, size=SIZE):
    """Rasterise line segments (index coordinates) with a round pen, anti-aliased.

    A pixel's value is clip(r + 0.5 - d, 0, 1) with d the distance from its
    centre to the nearest segment and r the pen's radius: the covered area
    for a straight edge, and the same total ink per unit of length
    (pen_width) at every position and angle, so sub-pixel moves are exact.

    Each segment is measured only against the pixels it can reach: all
    (segment, pixel) pairs are listed at once and the nearest per pixel is
    found by sorting, with no Python loop over points.
    """
    reach = pen_width / 2 + 0.5
    a = seg_a.astype(np.float32)
    d = seg_b.astype(np.float32) - a
    length2 = (d * d).sum(axis=1)
    # A zero-length segment is a dot: t is 0 and the distance is to its point.
    length2[length2 == 0] = 1.0
    low = np.clip(np.floor(np.minimum(a, a + d) - reach).astype(np.int64) + 1, 0, size)
    high = np.clip(np.ceil(np.maximum(a, a + d) + reach).astype(np.int64), 0, size)
    span = np.maximum(high - low, 0)
    counts = span[:, 0] * span[:, 1]
    seg = np.repeat(np.arange(len(a)), counts)
    local = np.arange(len(seg)) - np.repeat(np.cumsum(counts) - counts, counts)
    width = span[seg, 0]
    px = low[seg, 0] + local % width
    py = low[seg, 1] + local // width
    ax = px - a[seg, 0]
    ay = py - a[seg, 1]
    sx, sy = d[seg, 0], d[seg, 1]
    t = np.clip((ax * sx + ay * sy) / length2[seg], 0.0, 1.0)
    ex = ax - t * sx
    ey = ay - t * sy
    pixel = py * size + px
    order = np.argsort(pixel, kind="stable")
    pixel = pixel[order]
    d2 = (ex * ex + ey * ey)[order]
    dist2 = np.full(size * size, np.inf, dtype=np.float32)
    if len(pixel):
        first = np.flatnonzero(np.r_[True, pixel[1:] != pixel[:-1]])
        dist2[pixel[first]] = np.minimum.reduceat(d2, first)
    return np.clip(reach - np.sqrt(dist2), 0.0, 1.0).reshape(size, size)


def _prepare_strokes(strokes, width, height):
    try:
        width, height = float(width), float(height)
    except (TypeError, ValueError) as exc:
        raise DrawingError("the canvas width and height must be numbers") from exc
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise DrawingError("the canvas width and height must be positive numbers")
    if strokes is None or isinstance(strokes, (str, bytes)):
        raise DrawingError("strokes must be a list of strokes")
    try:
        raw = list(strokes)
    except TypeError as exc:
        raise DrawingError("strokes must be a list of strokes") from exc
    given = 0
    kept = []
    for s_index, stroke in enumerate(raw):
        points = _as_points(stroke, s_index)
        if len(points) == 0:
            continue
        given += 1
        kept.extend(_clip_stroke(points, width, height))
    if not kept:
        if given:
            raise DrawingError("the drawing is entirely outside the canvas")
        raise DrawingError("the drawing is empty: draw something first")
    return kept, width, height


def reference_stages(strokes, width, height, pen_width=PEN_WIDTH):
    """The reference's version of recognizer.preprocessing.strokes_to_stages.

    Returns plain data: numbers, tuples, dicts, and float32 arrays in [0, 1]
    for the images (call .tolist() to serialise them):

    - canvas: {"width", "height"} in canvas pixels
    - strokes, points: how many strokes and points were drawn (after cutting
      what lies outside the canvas)
    - bbox: {"left", "top", "right", "bottom", "width", "height"} in canvas pixels
    - pen_width: in pixels of the 28x28 input
    - scale: 28x28 pixels per canvas pixel, None for a dot (nothing to scale)
    - fitted: the 20x20 box with the digit scaled into it, aspect ratio kept
    - centered_box: the 28x28 field with that box in the middle (pixels 4..23)
    - center_of_mass: (x, y) of centered_box's ink, in 28x28 pixel indices
    - shift: (dx, dy) applied to move the centre of mass to (14, 14)
    - input: the final 28x28 input, the array strokes_to_input returns
    - final_center_of_mass: (x, y) of the input's ink
    """
    pieces, width, height = _prepare_strokes(strokes, width, height)
    everything = np.vstack(pieces)
    left, top = everything.min(axis=0)
    right, bottom = everything.max(axis=0)
    extent = max(right - left, bottom - top)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    scale = (BOX - pen_width) / extent if extent >= MIN_EXTENT else None
    factor = scale if scale is not None else 0.0
    # Scale once; both renders below differ only by a translation.
    seg_a, seg_b = _segments([(piece - (cx, cy)) * factor + BOX_CENTRE for piece in pieces])

    def render(dx, dy):
        return _render_segments(seg_a + (dx, dy), seg_b + (dx, dy), pen_width)

    unshifted, com, shift, final = _center(render)
    margin = (SIZE - BOX) // 2
    return {
        "canvas": {"width": width, "height": height},
        "strokes": len(pieces),
        "points": int(sum(len(piece) for piece in pieces)),
        "bbox": {
            "left": float(left), "top": float(top), "right": float(right),
            "bottom": float(bottom), "width": float(right - left),
            "height": float(bottom - top),
        },
        "pen_width": float(pen_width),
        "scale": None if scale is None else float(scale),
        "fitted": unshifted[margin:margin + BOX, margin:margin + BOX].copy(),
        "centered_box": unshifted,
        "center_of_mass": com,
        "shift": (float(shift[0]), float(shift[1])),
        "input": final,
        "final_center_of_mass": center_of_mass(final),
    }


def reference_input(strokes, width, height):
    """The reference renderer's (28, 28) input for canvas strokes."""
    return reference_stages(strokes, width, height)["input"]
