"""Drawings and images to the network's 28x28 input, the way MNIST was made.

One pipeline serves the game, the API, the trainer and the teaching pages, so
a digit is seen the same way wherever it comes from. MNIST's conventions
(LeCun et al.): the digit's bounding box is scaled to fit a 20x20 box keeping
its aspect ratio, anti-aliased, and placed in a 28x28 field so that its centre
of mass is at the centre. Values are floats in [0, 1] with ink = 1.

Coordinates in the 28x28 field are pixel indices: pixel (row i, column j) has
its centre at (x=j, y=i), so the centre of mass lands on (14, 14), which is
where MNIST's digits have theirs (mean (14.00, 13.99) over the test set).

Strokes are vectors, so they are rendered straight at the final scale and
position from their distance field: a pixel's ink is the part of it a round
pen of width PEN_WIDTH covers (the box-filtered coverage, which 4x or 8x
supersampling approximates). Pillow's ImageDraw was tried first; it rounds
every coordinate to whole (supersampled) pixels, which turns a sub-pixel
centre-of-mass shift into a jittery one, and its round joins cost more than
this renderer for a few hundred points.

Pen width: MNIST's test digits measure 2.77 pixels (mean of ink divided by
skeleton length; median 2.61), and so do MNIST digits traced and redrawn
through this pipeline with PEN_WIDTH = 2.4, with the same ink per digit
(94 against 95); the estimator reads above the true width because a
skeleton's pixel count falls short of a diagonal's length. The pen width is
defined in the normalised field, not on the canvas, so a digit comes out
equally thick whatever the canvas size and however big it was drawn; the
skeleton is scaled to (20 - PEN_WIDTH) so that the ink, pen included, fills
the 20x20 box like MNIST's does. See docs/preprocessing.md.

The module is long (about 800 lines) because it is the one pipeline for
strokes and for uploaded images, whose steps share its constants, its
centring and its errors; the renderer's steps are named functions below, and
tests/reference_renderer.py holds a plain version it must match bit for bit.
"""

import io
import math
import warnings
from itertools import chain
from operator import itemgetter

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from recognizer import pen_kernel
from recognizer.images import png_bytes
from recognizer.pen_kernel import segments as segment_ends

# Bump when a change alters the inputs produced from the same drawing, so
# caches of preprocessed data (the canvas-style evaluation set) are rebuilt.
PIPELINE_VERSION = 1
# In 28x28 pixels; chosen so that redrawn MNIST digits measure as wide as the
# originals with the same estimator (docs/preprocessing.md).
PEN_WIDTH = 2.4
SIZE = 28
BOX = 20
# Index coordinate of the centre of the 20x20 box placed at pixels 4..23, and
# of the whole field, where the centre of mass goes.
BOX_CENTRE = (SIZE - 1) / 2
TARGET_CENTRE = SIZE / 2
# How close (pixels) the centre of mass must end to the centre.
COM_TOLERANCE = 0.02
# Points closer together than this along a stroke (28x28 pixels) are
# thinned out before rendering.
MIN_STEP = 0.1
# A drawing smaller than this (canvas pixels) has no shape to scale up: it is
# a dot, drawn as one pen-wide disc.
MIN_EXTENT = 1.0
# The longest ink a drawing may have, in lengths of the longer side of its
# own bounding box, each stroke counting one pen width more for its round
# ends (so taps are not free). Real digits are far below it: at most 6.4
# (99th percentile 4.3, median 2.7) on the 10,000 canvas-style redrawn MNIST
# test digits, whose traced strokes are split at every junction, and 5.6 on
# 8,000 simulated players' drawings; an "8" is about 3.5, a "0" gone over
# five times 16. A scribble or zigzag of thousands of points across the
# canvas measures hundreds to thousands: it is refused with InkLimitError
# before anything is rendered. The limit also bounds the renderer's work
# (docs/preprocessing.md): at most 17.6 * 20 = 352 pixels of path, so at
# most ~3,500 segments once thinned to one point per MIN_STEP.
MAX_INK_LENGTH = 20.0

# Uploaded images.
MAX_IMAGE_PIXELS = 25_000_000
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# Larger images are reduced before any per-pixel work; a digit in a photo
# stays far above the 20 pixels it ends as.
WORK_SIDE = 1024
# The cropped digit is analysed (skeleton, pen) at most this big: 8 times
# the 20x20 box is plenty, and a skeleton of a megapixel crop is slow.
ANALYSIS_SIDE = 160
# Resolution of the cropped digit before the final resampling: the 20x20 box
# at 4 pixels per output pixel.
IMAGE_OVERSAMPLE = 4
# Below this contrast between ink and background an image holds no digit.
MIN_CONTRAST = 0.12
# An island of ink holding less than this share of all the ink is a speck.
SPECK_FRACTION = 0.01
# Ink weaker than this fraction of the strongest ink is paper texture or
# compression noise.
INK_FLOOR = 0.2


class DrawingError(ValueError):
    """Input that cannot become a digit; the message says why."""


class InkLimitError(DrawingError):
    """Strokes far too long for their size to be one digit (see MAX_INK_LENGTH)."""


# -- shared geometry ---------------------------------------------------------


def center_of_mass(image):
    """(x, y) of an image's ink in pixel-index coordinates; None if it is empty.

    Compiled (pen_kernel.mass_centre), with its sums in one fixed order, so
    that the result is the same to the bit on every machine, and the same
    as the strokes' renderer computes inside its compiled centring.
    """
    image = np.asarray(image, dtype=np.float64)
    rows, columns = image.shape
    centre = np.empty(2)
    if not pen_kernel.mass_centre(_kernel_array(image).reshape(-1), rows, columns,
                                  centre) > 0:
        return None
    return float(centre[0]), float(centre[1])


def _center(render):
    """Render unshifted, measure the centre of mass, render again shifted onto the centre.

    `render(dx, dy)` returns the 28x28 image with the fitted box centred in the
    field and moved by (dx, dy) pixels. Returns (unshifted, com, shift, final).
    Strokes take the same steps in compiled code (_centre_segments).
    """
    unshifted = render(0.0, 0.0)
    com = center_of_mass(unshifted)
    if com is None:
        raise DrawingError("the drawing has no ink")
    dx, dy = TARGET_CENTRE - com[0], TARGET_CENTRE - com[1]
    final = render(dx, dy)
    # A digit whose centre of mass is far off-centre (a "7") can be pushed
    # partly out of the field, which moves its centre of mass again; a
    # correction or two puts what remains on the centre.
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


# -- strokes -----------------------------------------------------------------


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


_X, _Y = itemgetter(0), itemgetter(1)


def point_columns(points):
    """The x and the y of a list of points ((x, y) or (x, y, t) sequences) as
    two float64 arrays.

    Through map and itemgetter, C-level iteration: a quarter of the time of a
    generator expression (88 us against 20 us for 260 points) and of np.array
    on the point lists. Raises TypeError, ValueError, IndexError or KeyError
    for points it cannot read; the callers then go point by point.
    """
    return (np.fromiter(map(_X, points), np.float64, len(points)),
            np.fromiter(map(_Y, points), np.float64, len(points)))


def _point_array(raw):
    """Every stroke's points in one (n, 2) array, and each stroke's number of points.

    One conversion for the whole drawing: stroke by stroke costs a few
    microseconds a stroke (26 ms for 10,000 one-point strokes, against 1.8 ms
    here). Anything the fast path cannot read goes stroke by stroke, whose
    error names the stroke.
    """
    try:
        counts = np.fromiter(map(len, raw), np.int64, len(raw))
        # x and y apart: a third of the time of np.array on the point tuples.
        xs, ys = point_columns(list(chain.from_iterable(raw)))
    except (TypeError, ValueError, IndexError, KeyError):
        xs = None
    if xs is not None and np.isfinite(xs).all() and np.isfinite(ys).all():
        return np.column_stack([xs, ys]), counts
    arrays = [_as_points(stroke, s_index) for s_index, stroke in enumerate(raw)]
    counts = np.array([len(points) for points in arrays], dtype=np.int64)
    return (np.vstack(arrays) if arrays else np.zeros((0, 2))), counts


def _clip_segments(p, q, width, height):
    """Liang-Barsky for many segments p-q against [0, width] x [0, height].

    Returns (kept, a, b): which segments reach the canvas and the ends of the
    part that does. The arithmetic is the scalar algorithm's, element by
    element, so the cut points are the same to the last bit.
    """
    t0 = np.zeros(len(p))
    t1 = np.ones(len(p))
    kept = np.ones(len(p), dtype=bool)
    dx, dy = q[:, 0] - p[:, 0], q[:, 1] - p[:, 1]
    sides = ((-dx, p[:, 0]), (dx, width - p[:, 0]), (-dy, p[:, 1]), (dy, height - p[:, 1]))
    for denom, num in sides:
        flat = denom == 0
        kept &= ~(flat & (num < 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = num / np.where(flat, 1.0, denom)
        entering, leaving = denom < 0, denom > 0
        t0 = np.where(entering, np.maximum(t0, t), t0)
        t1 = np.where(leaving, np.minimum(t1, t), t1)
    kept &= t0 <= t1
    a = np.column_stack([p[:, 0] + t0 * dx, p[:, 1] + t0 * dy])
    b = np.column_stack([p[:, 0] + t1 * dx, p[:, 1] + t1 * dy])
    return kept, a, b


def _clip(points, counts, width, height):
    """The pieces of the strokes that lie on the canvas: (points, index where each piece starts).

    The canvas shows only what is inside it, so ink dragged past the edge is
    cut there rather than squashed onto the border: a segment that leaves the
    canvas ends its piece, and the next piece starts where a segment comes
    back. A stroke wholly inside is one piece, as it was drawn. All strokes at
    once, without a Python loop over points: a 10,000-point zigzag across the
    canvas edge is cut in 2 ms (40 ms segment by segment).
    """
    offsets = np.empty(len(counts), dtype=np.int64)
    points = _kernel_array(points)
    pieces = pen_kernel.whole_pieces(points, counts, float(width), float(height), offsets)
    if pieces >= 0:
        # Every point on the canvas (the usual case): nothing to cut.
        return points, offsets[:pieces]
    counts = counts[counts > 0]
    offsets = np.cumsum(counts) - counts
    inside = (
        (points[:, 0] >= 0) & (points[:, 0] <= width)
        & (points[:, 1] >= 0) & (points[:, 1] <= height)
    )
    whole = np.logical_and.reduceat(inside, offsets) if len(offsets) else inside[:0]
    stroke_of = np.repeat(np.arange(len(counts)), counts)
    # Strokes wholly inside keep their points; the others are cut segment by
    # segment (a one-point stroke outside is dropped).
    keep_point = whole[stroke_of]
    cut = ~whole & (counts > 1)
    j = np.flatnonzero(cut[stroke_of][:-1] & (stroke_of[:-1] == stroke_of[1:]))
    first = np.isin(j, offsets)
    p, q = points[j], points[j + 1]
    kept, a, b = _clip_segments(p, q, width, height)
    # The scalar algorithm, as masks: a kept segment starts a new piece when
    # it is its stroke's first, or the one before was dropped, left the
    # canvas (its cut end is not its end point) or ended elsewhere.
    prev_kept = np.r_[False, kept[:-1]]
    prev_left = np.r_[False, (b[:-1] != q[:-1]).any(axis=1)]
    prev_elsewhere = np.r_[False, (a[1:] != b[:-1]).any(axis=1)]
    starts = kept & (first | ~prev_kept | prev_left | prev_elsewhere)
    # Each kept segment adds its cut end; one that starts a piece adds its start first.
    emits = np.column_stack([starts, kept])
    emitted = np.stack([a, b], axis=1)[emits]
    emitted_start = np.column_stack([starts, np.zeros_like(starts)])[emits]
    emitted_stroke = np.repeat(stroke_of[j], kept.astype(np.int64) + starts)
    whole_points = points[keep_point]
    whole_start = np.zeros(len(points), dtype=bool)
    whole_start[offsets] = True
    # Back into stroke order, the order they were drawn in.
    stroke = np.r_[stroke_of[keep_point], emitted_stroke]
    order = np.argsort(stroke, kind="stable")
    merged = np.vstack([whole_points, emitted])[order]
    merged_start = np.r_[whole_start[keep_point], emitted_start][order]
    return merged, np.flatnonzero(merged_start)


def _segments(points, starts, centre, factor):
    """The pieces' points moved by -centre, scaled by `factor` and put on the
    box's centre, as arrays of segment start and end points.

    Along each piece about one point per MIN_STEP of path is kept: a dense
    stylus trace keeps its shape (within MIN_STEP) at a fraction of the
    cost, and repeated points go too. A piece left with one point (or made
    of one) becomes a zero-length segment, which the renderer draws as a
    dot. Compiled (pen_kernel.segments), in the arithmetic of the numpy
    version tests/reference_renderer.py keeps.
    """
    points = _kernel_array(points)
    if len(starts) == 0 or starts[0] != 0:
        raise ValueError("pieces must start at the first point")
    seg_a = np.empty_like(points)
    seg_b = np.empty_like(points)
    count = segment_ends(points, np.ascontiguousarray(starts, dtype=np.int64),
                         float(centre[0]), float(centre[1]), float(factor), BOX_CENTRE,
                         MIN_STEP, seg_a, seg_b)
    return seg_a[:count], seg_b[:count]


def _kernel_array(points):
    """Points as the kernel was compiled for: a contiguous, writable float64 array
    (numba compiles again, in the middle of a request, for any other kind)."""
    array = np.ascontiguousarray(points, dtype=np.float64)
    return array if array.flags.writeable else array.copy()


def _pen_reach(pen_width):
    """How far from a segment a pixel's centre still gets ink: the pen's
    radius and half a pixel."""
    return float(pen_width) / 2 + 0.5


def _centre_segments(seg_a, seg_b, pen_width, work=None):
    """Render line segments (index coordinates) with a round pen, anti-aliased,
    and centre them: _center's steps, in one compiled call
    (pen_kernel.centred). Returns (unshifted, com, shift, final, final com);
    the final com is None when no ink is left in the field.

    A pixel's value is clip(r + 0.5 - d, 0, 1) with d the distance from its
    centre to the nearest segment and r the pen's radius: the covered area
    for a straight edge, and the same total ink per unit of length
    (pen_width) at every position and angle, so sub-pixel moves are exact.

    Each segment is measured only against the pixels within reach of it, row
    by row (`pen_kernel.render`): a segment L pixels long touches about
    (2 reach + 1) (L + 2 reach + 1) pixels instead of its whole bounding box,
    which for a corner-to-corner diagonal is 784, and nothing is allocated
    per pair, so memory stays bounded whatever the drawing. A pixel left out
    is one whose value would be 0, so the image is the bounding-box
    renderer's (tests/reference_renderer.py) to the bit.

    Each render and each centre of mass was a Python round trip, and
    numpy's centre of mass nine array operations: together about half the
    time from strokes to input for a 120-point digit, now one call.

    `work`, a dict, if given, counts what was done: "renders", "segments"
    and "pairs" (segment-pixel distances measured), for tests and benchmarks.
    """
    unshifted = np.empty(SIZE * SIZE, dtype=np.float32)
    final = np.empty(SIZE * SIZE, dtype=np.float32)
    found = np.zeros(7)
    done = np.zeros(2, dtype=np.int64)
    has_ink = pen_kernel.centred(
        _kernel_array(seg_a), _kernel_array(seg_b), _pen_reach(pen_width), SIZE,
        float(TARGET_CENTRE), float(COM_TOLERANCE), unshifted, final, found, done)
    if work is not None:
        work["pairs"] = work.get("pairs", 0) + int(done[1])
        work["renders"] = work.get("renders", 0) + int(done[0])
        work["segments"] = max(work.get("segments", 0), len(seg_a))
    if not has_ink:
        raise DrawingError("the drawing has no ink")
    final_com = (float(found[4]), float(found[5])) if found[6] else None
    return (unshifted.reshape(SIZE, SIZE), (float(found[0]), float(found[1])),
            (float(found[2]), float(found[3])), final.reshape(SIZE, SIZE), final_com)


def _ink_length(points, starts, extent, pen_width):
    """The ink's length in lengths of the bounding box's longer side.

    The pen's path, each piece counting one pen width more for its two round
    ends (so a dot is not free).
    """
    steps = np.empty(max(len(points) - 1, 0))
    # Each step's length in compiled code (the C library's hypot, as
    # np.hypot); the sum stays numpy's, over the same values in the same order.
    count = pen_kernel.piece_steps(_kernel_array(points),
                                   np.ascontiguousarray(starts, dtype=np.int64), steps)
    return float(steps[:count].sum()) / extent + len(starts) * pen_width / (BOX - pen_width)


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
    points, counts = _point_array(raw)
    if len(points) == 0:
        raise DrawingError("the drawing is empty: draw something first")
    points, starts = _clip(points, counts, width, height)
    if len(points) == 0:
        raise DrawingError("the drawing is entirely outside the canvas")
    return points, starts, width, height


def _box_scale(points, starts, extent, pen_width):
    """(scale, ink length, (points, starts) to draw) of strokes `extent` canvas pixels across.

    Scale and ink length are None for a dot (nothing to scale). Raises
    InkLimitError when the ink is longer than MAX_INK_LENGTH bounding boxes.
    """
    if extent < MIN_EXTENT:
        # A dot: every piece lands on the centre, and one of them draws the same.
        return None, None, (points[:1], starts[:1])
    scale = (BOX - pen_width) / extent
    ink_length = _ink_length(points, starts, extent, pen_width)
    if ink_length > MAX_INK_LENGTH:
        raise InkLimitError(
            f"too much ink for one digit: its strokes are {ink_length:.0f} times as long "
            f"as the drawing is wide or high, at most {MAX_INK_LENGTH:g} are accepted"
        )
    return scale, ink_length, (points, starts)


def strokes_to_stages(strokes, width, height, pen_width=PEN_WIDTH):
    """Every step from canvas strokes to the network input, for the teaching pages.

    Returns plain data: numbers, tuples, dicts, and float32 arrays in [0, 1]
    for the images (call .tolist() to serialise them):

    - canvas: {"width", "height"} in canvas pixels
    - strokes, points: how many strokes and points were drawn (after cutting
      what lies outside the canvas)
    - bbox: {"left", "top", "right", "bottom", "width", "height"} in canvas pixels
    - pen_width: in pixels of the 28x28 input
    - scale: 28x28 pixels per canvas pixel, None for a dot (nothing to scale)
    - ink_length: the ink's length in bounding boxes (see MAX_INK_LENGTH),
      None for a dot
    - fitted: the 20x20 box with the digit scaled into it, aspect ratio kept
    - centered_box: the 28x28 field with that box in the middle (pixels 4..23)
    - center_of_mass: (x, y) of centered_box's ink, in 28x28 pixel indices
    - shift: (dx, dy) applied to move the centre of mass to (14, 14)
    - input: the final 28x28 input, the array strokes_to_input returns
    - final_center_of_mass: (x, y) of the input's ink

    Raises DrawingError when there is nothing to draw, and InkLimitError (a
    DrawingError) when the ink is longer than MAX_INK_LENGTH bounding boxes.
    """
    points, starts, width, height = _prepare_strokes(strokes, width, height)
    box = np.empty(4)
    pen_kernel.bounds(_kernel_array(points), box)
    left, top, right, bottom = box
    cx, cy = (left + right) / 2, (top + bottom) / 2
    piece_count = len(starts)
    scale, ink_length, (drawn, drawn_starts) = _box_scale(
        points, starts, max(right - left, bottom - top), pen_width)
    factor = scale if scale is not None else 0.0
    # Scale once; both renders below differ only by a translation.
    seg_a, seg_b = _segments(drawn, drawn_starts, (cx, cy), factor)
    unshifted, com, shift, final, final_com = _centre_segments(seg_a, seg_b, pen_width)
    margin = (SIZE - BOX) // 2
    return {
        "canvas": {"width": width, "height": height},
        "strokes": piece_count,
        "points": len(points),
        "bbox": {
            "left": float(left), "top": float(top), "right": float(right),
            "bottom": float(bottom), "width": float(right - left),
            "height": float(bottom - top),
        },
        "pen_width": float(pen_width),
        "scale": None if scale is None else float(scale),
        "ink_length": ink_length,
        "fitted": unshifted[margin:margin + BOX, margin:margin + BOX].copy(),
        "centered_box": unshifted,
        "center_of_mass": com,
        "shift": (float(shift[0]), float(shift[1])),
        "input": final,
        "final_center_of_mass": final_com,
    }


def strokes_to_input(strokes, width, height):
    """Canvas strokes -> (28, 28) float32 input in [0, 1], ink = 1.

    `strokes`: a sequence of strokes, each a sequence of (x, y) or (x, y, t)
    points in canvas pixels with y downward. Raises DrawingError when there is
    nothing to recognise.
    """
    return strokes_to_stages(strokes, width, height)["input"]


# -- uploaded images ---------------------------------------------------------


def _open_image(data):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DrawingError("the image must be given as bytes")
    if len(data) == 0:
        raise DrawingError("the image file is empty")
    try:
        with warnings.catch_warnings():
            # Our own pixel cap below is the stricter one; Pillow's warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(bytes(data)), formats=IMAGE_FORMATS)
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DrawingError(
                    f"the image is too large ({width}x{height}): at most "
                    f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels"
                )
            if width < 1 or height < 1:
                raise DrawingError("the image has no pixels")
            image.load()
            image = ImageOps.exif_transpose(image)
    except DrawingError:
        raise
    except UnidentifiedImageError as exc:
        raise DrawingError(
            "not an image Pillow can read as " + ", ".join(IMAGE_FORMATS)
        ) from exc
    except Image.DecompressionBombError as exc:
        raise DrawingError("the image is too large to decode") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DrawingError(f"the image file is damaged or truncated ({exc})") from exc
    except Exception as exc:  # decoders raise many kinds for hostile files
        raise DrawingError(f"the image cannot be decoded ({type(exc).__name__})") from exc
    return image


def _greyscale(image):
    """Luminance in [0, 1] as a float array, transparency resolved."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = np.asarray(image.convert("F"), dtype=np.float32)
        top = 65535.0 if grey.max() > 255 else 255.0
        return np.clip(grey / top, 0, 1)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32) * np.float32(1 / 255)
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) * np.float32(1 / 255)
    alpha = rgba[..., 3]
    lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    opaque = alpha > 0.5
    if opaque.all() or not opaque.any():
        return lum
    # Ink drawn on a transparent background: lay it on whichever plain
    # background it contrasts with, then it is an ordinary picture.
    backdrop = 1.0 if np.median(lum[opaque]) < 0.5 else 0.0
    return lum * alpha + backdrop * (1 - alpha)


def _ink(grey):
    """Ink in [0, 1] (1 = strongest ink) whatever the polarity; DrawingError if blank."""
    h, w = grey.shape
    band = max(1, round(min(h, w) * 0.02))
    border = np.concatenate([
        grey[:band].ravel(), grey[-band:].ravel(), grey[:, :band].ravel(), grey[:, -band:].ravel()
    ])
    background = float(np.median(border))
    # The background is whatever fills the border; ink is what differs from it
    # in the other direction (dark on light paper, or chalk on a dark board).
    raw = background - grey if background >= 0.5 else grey - background
    strong = raw[raw > MIN_CONTRAST]
    if strong.size == 0:
        raise DrawingError("the image is blank: no digit found")
    # The typical level of the inked pixels, not the single darkest one, so a
    # speck of dust does not set the scale.
    level = float(np.percentile(strong, 90))
    ink = np.clip(raw / level, 0, 1)
    ink[ink < INK_FLOOR] = 0
    return ink


def _reduce_large(image):
    factor = math.ceil(max(image.size) / WORK_SIDE)
    if factor > 1:
        if image.mode.startswith("I"):
            image = image.convert("F")  # 16-bit greys keep their depth
        elif image.mode not in ("L", "LA", "RGB", "RGBA", "F"):
            image = image.convert("RGBA")
        image = image.reduce(factor)
    return image


def _drop_specks(ink):
    """Remove ink islands too small to be part of the digit (dust, noise)."""
    from scipy import ndimage

    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    if count <= 1:
        return ink
    mass = ndimage.sum_labels(ink, labels, index=np.arange(1, count + 1))
    small = np.flatnonzero(mass < SPECK_FRACTION * mass.sum()) + 1
    if small.size:
        ink = np.where(np.isin(labels, small), 0.0, ink)
    return ink


def _with_pen(ink):
    """Ink at least as thick as the canvas pen, once scaled to the 20x20 box.

    A digit photographed with a fine pen would shrink to a faint hairline; it
    is redrawn along its skeleton with the pen the strokes path uses, and the
    original ink is kept where it is thicker, so bold digits stay bold.
    """
    from scipy import ndimage
    from skimage.morphology import skeletonize

    # A fine pen in a large picture is faint once reduced; its core is
    # whatever reaches half the strokes' typical strength.
    core = 0.5 * min(1.0, float(np.percentile(ink[ink > 0], 90)))
    skeleton = skeletonize(ink >= core)
    if not skeleton.any():
        skeleton = skeletonize(ink > 0)
    rows = np.flatnonzero(skeleton.any(axis=1))
    cols = np.flatnonzero(skeleton.any(axis=0))
    extent = max(rows[-1] - rows[0], cols[-1] - cols[0])
    # The same geometry as strokes: skeleton to (20 - pen), so the pen's
    # radius in this image's pixels is:
    radius = PEN_WIDTH / 2 * max(extent, MIN_EXTENT) / (BOX - PEN_WIDTH)
    pad = math.ceil(radius) + 1
    ink = np.pad(ink, pad)
    skeleton = np.pad(skeleton, pad)
    distance = ndimage.distance_transform_edt(~skeleton)
    return np.maximum(ink, np.clip(radius + 0.5 - distance, 0.0, 1.0))


def _fit_within(ink, side):
    """Area-average an ink array down so its longer side is at most `side`."""
    h, w = ink.shape
    if max(h, w) <= side:
        return ink
    factor = side / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    image = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32))
    return np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float32)


def _ink_box(ink):
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise DrawingError("the image is blank: no digit found")
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def image_to_input(data):
    """An uploaded PNG/JPEG (bytes) -> (28, 28) float32 input in [0, 1], ink = 1.

    Any size, colour or greyscale, dark ink on a light background or light on
    dark (told apart by the border), or ink on a transparent background. The
    digit is cropped to its ink, given at least the canvas pen's thickness,
    fitted into 20x20 keeping its aspect ratio and moved so its centre of
    mass is at the centre. Raises DrawingError for anything that is not a
    readable image holding some ink.
    """
    image = _open_image(data)
    ink = _drop_specks(_ink(_greyscale(_reduce_large(image))))
    top, bottom, left, right = _ink_box(ink)
    ink = _with_pen(_fit_within(ink[top:bottom, left:right], ANALYSIS_SIDE))
    top, bottom, left, right = _ink_box(ink)
    box_w, box_h = right - left, bottom - top
    digit = Image.fromarray(np.ascontiguousarray(ink[top:bottom, left:right], dtype=np.float32))
    # Bring the digit to 4 pixels per output pixel once (area-averaged when
    # shrinking): the final resampling, twice for the centre of mass, then
    # works on a small image.
    work_scale = BOX * IMAGE_OVERSAMPLE / max(box_w, box_h)
    work_w = max(1, round(box_w * work_scale))
    work_h = max(1, round(box_h * work_scale))
    digit = digit.resize((work_w, work_h), Image.Resampling.BOX)
    fitted_w, fitted_h = work_w / IMAGE_OVERSAMPLE, work_h / IMAGE_OVERSAMPLE

    def render(dx, dy):
        # Pillow's boxes count pixel edges (pixel j spans [j, j + 1)), half a
        # pixel off the index coordinates: the fitted box's left edge, then
        # the whole field mapped back onto the work image.
        left_edge = BOX_CENTRE + 0.5 - fitted_w / 2 + dx
        top_edge = BOX_CENTRE + 0.5 - fitted_h / 2 + dy
        src = (
            -left_edge * IMAGE_OVERSAMPLE, -top_edge * IMAGE_OVERSAMPLE,
            (SIZE - left_edge) * IMAGE_OVERSAMPLE, (SIZE - top_edge) * IMAGE_OVERSAMPLE,
        )
        # Pillow resamples only inside the source image, so cut the window
        # out first (crop pads with 0 = no ink) and resample the whole crop.
        x0, y0 = math.floor(src[0]) - 1, math.floor(src[1]) - 1
        x1, y1 = math.ceil(src[2]) + 1, math.ceil(src[3]) + 1
        window = digit.crop((x0, y0, x1, y1))
        box = (src[0] - x0, src[1] - y0, src[2] - x0, src[3] - y0)
        # BILINEAR (a triangle filter as wide as the reduction) honours a
        # fractional box; Pillow's BOX filter snaps it to whole pixels.
        out = window.resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=box)
        return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)

    return _center(render)[3]


# -- storage and display -----------------------------------------------------


def _check_input(array):
    array = np.asarray(array, dtype=np.float32)
    if array.shape != (SIZE, SIZE):
        raise DrawingError(f"expected a 28x28 input, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise DrawingError("the input has values that are not finite numbers")
    return np.clip(array, 0.0, 1.0)


def input_to_bytes(array):
    """784 bytes, row by row, 0 = background, 255 = ink (Drawing.input_image)."""
    return np.rint(_check_input(array) * 255).astype(np.uint8).tobytes()


def bytes_to_input(data):
    """The inverse of input_to_bytes: (28, 28) float32 in [0, 1]."""
    data = bytes(data)
    if len(data) != SIZE * SIZE:
        raise DrawingError(f"a stored input is {SIZE * SIZE} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(SIZE, SIZE).astype(np.float32) / 255.0


def input_to_png(array, scale=1):
    """The input as a PNG, white ink on black, enlarged `scale` times with hard pixels."""
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 64:
        raise DrawingError("scale must be a whole number from 1 to 64")
    return png_bytes(np.rint(_check_input(array) * 255).astype(np.uint8), scale)
