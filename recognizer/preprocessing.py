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
"""

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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


# -- shared geometry ---------------------------------------------------------


def center_of_mass(image):
    """(x, y) of an image's ink in pixel-index coordinates; None if it is empty."""
    image = np.asarray(image, dtype=np.float64)
    total = image.sum()
    if total <= 0:
        return None
    ys = np.arange(image.shape[0], dtype=np.float64)
    xs = np.arange(image.shape[1], dtype=np.float64)
    return float(image.sum(axis=0) @ xs / total), float(image.sum(axis=1) @ ys / total)


def _center(render):
    """Render unshifted, measure the centre of mass, render again shifted onto the centre.

    `render(dx, dy)` returns the 28x28 image with the fitted box centred in the
    field and moved by (dx, dy) pixels.
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
    pixels = np.rint(_check_input(array) * 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    if scale > 1:
        image = image.resize((SIZE * scale, SIZE * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
