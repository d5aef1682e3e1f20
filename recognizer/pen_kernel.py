"""The renderer, compiled: each segment moved into place and measured against the pixels in reach.

Why compiled. The same work written as numpy array operations (the
segments' boxes, `_row_spans` and `_measure_pixels`, until this module)
spent most of its time in the operations' own overhead: dozens of array
calls a render on arrays of a few hundred elements, 2-4 renders a drawing,
all holding the interpreter. It was 15% of a game server's samples in a
profile of 32 players; a 260-point drawing took 0.52 ms from strokes to
input, and takes 0.18 ms with this module (README, Inference). Compiled
with numba, the loop does the same arithmetic in tens of microseconds,
releases the interpreter while it runs (`nogil`), and allocates nothing
per (segment, pixel) pair, only the 28x28 distance field (the numpy
version worked in chunks of 16,384 pairs to bound its memory).

The arithmetic is the numpy version's, operation by operation (`render`'s
docstring lists the types). numba compiles without fast-math, so nothing is
reordered or fused, and the images are the same to the bit
(tests/test_worst_drawing.py checks them against tests/reference_renderer.py
on thousands of drawings).

What is measured, per segment: only the rows within reach of it, and in
each row only the columns within reach of the part of the segment inside
the band |y - row| <= reach, widened by SPAN_MARGIN, so a segment L pixels
long costs about (2 reach + 1)(L + 2 reach + 1) pixel measurements, not its
bounding box's (784 for a corner-to-corner diagonal).

The compiled code is cached beside this module (numba's `cache=True`), so
only the first process after an install compiles it, in about a second;
`warm_up()` does that at start-up rather than on a player's first drawing.
numba compiles once per combination of argument types, so callers pass
exactly the types `warm_up()` does (float64 ends and shift, a float reach,
an int size, a float32 image; tests/test_pen_kernel.py checks every entry
point). The same holds for `segments`, which scales and thins the strokes
into the segments `render` draws (float64 points and ends, int64 starts,
float scalars), and for the centring and the steps around it (`centred`,
`mass_centre`, `whole_pieces`, `bounds`, `piece_steps`: float64 points,
int64 starts and counts, float32 images). `mass_centre` alone has two
versions, both warmed up: `centred` measures its float32 renders with it,
and preprocessing.center_of_mass any image as float64.
"""

import logging
import math

import numba
import numpy as np

logger = logging.getLogger(__name__)

# A hair wider than exact: a pixel too many is measured and gets 0.
SPAN_MARGIN = 1e-4


def _compiled(function):
    """`function` compiled without the interpreter, its machine code cached on disk.

    numba picks its cache folder as the function is decorated, and with no
    writable folder (beside the module, the user's cache, NUMBA_CACHE_DIR)
    it raises: every import of the preprocessing would then fail, and the
    site with it. Without a cache each process compiles on its first call
    instead, about a second, which the server's warm-up takes at start-up.
    """
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError as exc:
        logger.warning("the renderer's compiled code cannot be cached (%s): each process "
                       "compiles it as it starts; set NUMBA_CACHE_DIR to a writable folder", exc)
        return numba.njit(nogil=True)(function)


@_compiled
def _floor(value, size):
    """floor(value) as an integer, for a value to be clipped to [0, size] afterwards.

    Clamped first: numba's conversion of a float far outside int64 (or of
    an infinity) is undefined, where numpy's astype gives int64's minimum.
    Within the clamp it is math.floor itself, so the result after clipping
    is the same.
    """
    return np.int64(math.floor(min(max(value, -2.0), size + 2.0)))


@_compiled
def _ceil(value, size):
    """ceil(value) as an integer, clamped as _floor is."""
    return np.int64(math.ceil(min(max(value, -2.0), size + 2.0)))


@_compiled
def render(seg_a, seg_b, dx, dy, reach, size, image):
    """Fill `image` (flat, float32) with the pen's ink along the segments, moved by (dx, dy).

    seg_a, seg_b: (n, 2) float64 segment ends in pixel-index coordinates. A
    pixel's value is clip(reach - d, 0, 1), d the distance from its centre
    to the nearest segment. Returns how many (segment, pixel) pairs were
    measured.

    Each step is written as the numpy expression it replaces would compute
    it, in the same types: the moved ends are float64 sums cast to float32;
    the direction, squared length and the box within reach are float32 (a
    Python float meeting a float32 array is a float32 in numpy); the band
    and the distances are float64; the nearest squared distance is kept as
    float32, and the ink is float32.
    """
    reach32 = np.float32(reach)
    dist2 = np.full(size * size, np.inf, dtype=np.float32)
    pairs = 0
    for s in range(seg_a.shape[0]):
        ax32 = np.float32(seg_a[s, 0] + dx)
        ay32 = np.float32(seg_a[s, 1] + dy)
        sx = np.float32(seg_b[s, 0] + dx) - ax32
        sy = np.float32(seg_b[s, 1] + dy) - ay32
        l2 = sx * sx + sy * sy
        if l2 == 0:
            # A zero-length segment is a dot: t is 0 and the distance is to its point.
            l2 = np.float32(1.0)
        # The box of pixels within reach: (x, y) of the first, and one past the last.
        bx32 = ax32 + sx
        by32 = ay32 + sy
        low_x = min(max(_floor(min(ax32, bx32) - reach32, size) + 1, 0), size)
        low_y = min(max(_floor(min(ay32, by32) - reach32, size) + 1, 0), size)
        high_x = min(max(_ceil(max(ax32, bx32) + reach32, size), 0), size)
        high_y = min(max(_ceil(max(ay32, by32) + reach32, size), 0), size)
        ax = np.float64(ax32)
        ay = np.float64(ay32)
        dx64 = np.float64(sx)
        dy64 = np.float64(sy)
        for row in range(low_y, high_y):
            # The part of the segment inside the band |y - row| <= reach, as t in [0, 1].
            if dy64 == 0.0:
                t_in = 0.0
                t_out = 1.0
            else:
                t_top = (row - reach - ay) / dy64
                t_bottom = (row + reach - ay) / dy64
                t_in = min(max(min(t_top, t_bottom), 0.0), 1.0)
                t_out = min(max(max(t_top, t_bottom), 0.0), 1.0)
            x_in = ax + t_in * dx64
            x_out = ax + t_out * dx64
            left = _floor(min(x_in, x_out) - reach - SPAN_MARGIN, size) + 1
            right = _ceil(max(x_in, x_out) + reach + SPAN_MARGIN, size)
            left = max(left, low_x)
            right = min(right, high_x)
            ey0 = row - ay32
            for column in range(left, right):
                ex = column - ax32
                ey = ey0
                t = (ex * sx + ey * sy) / l2
                t = min(max(t, 0.0), 1.0)
                ex -= t * sx
                ey -= t * sy
                nearest = np.float32(ex * ex + ey * ey)
                pixel = row * size + column
                if nearest < dist2[pixel]:
                    dist2[pixel] = nearest
            pairs += max(right - left, 0)
    for pixel in range(size * size):
        image[pixel] = min(max(reach32 - np.sqrt(dist2[pixel]), np.float32(0.0)),
                           np.float32(1.0))
    return pairs


@_compiled
def segments(points, starts, cx, cy, factor, centre, min_step, seg_a, seg_b):
    """The pieces' points scaled into the field and thinned, as segments: how many.

    points: (n, 2) float64 canvas points; starts: int64 index where each
    piece starts. Each point becomes ((x - cx) * factor + centre, likewise
    y); then, along each piece, only the first point of each `min_step` of
    path is kept, and the last when the piece has any length; a piece left
    with one point is one zero-length segment (a dot). The segments' ends
    go into seg_a and seg_b, (n, 2) float64 each, from the start.

    It is the numpy version's arithmetic (tests/reference_renderer.py
    `_segments`, which the tests compare it with), step by step, in the
    same order and types: the path is a running sum of math.hypot of the
    steps, as np.cumsum of np.hypot is (both call the C library's hypot),
    and a point is kept where np.floor(path / min_step) changes. Written as
    array operations, on a 120-point drawing those steps took about a third
    of the time from strokes to input, in the operations' own overhead
    (bench/bench_preprocessing.py). Empty pieces are skipped: nothing here
    reads past a piece's end, as numba does not check bounds.
    """
    count = 0
    pieces = starts.shape[0]
    for k in range(pieces):
        begin = starts[k]
        end = starts[k + 1] if k + 1 < pieces else points.shape[0]
        if end <= begin:
            continue  # an empty piece draws nothing (and has no point to read)
        x0 = (points[begin, 0] - cx) * factor + centre
        y0 = (points[begin, 1] - cy) * factor + centre
        first = count
        kept_x = x0
        kept_y = y0
        previous_x = x0
        previous_y = y0
        arc = 0.0
        bucket = 0.0
        for i in range(begin + 1, end):
            x = (points[i, 0] - cx) * factor + centre
            y = (points[i, 1] - cy) * factor + centre
            arc += math.hypot(x - previous_x, y - previous_y)
            previous_x = x
            previous_y = y
            here = np.floor(arc / min_step)
            keep = here != bucket
            bucket = here
            if i == end - 1:
                keep = arc > 0
            if keep:
                seg_a[count, 0] = kept_x
                seg_a[count, 1] = kept_y
                seg_b[count, 0] = x
                seg_b[count, 1] = y
                count += 1
                kept_x = x
                kept_y = y
        if count == first:
            # One point, or nothing kept after the first: a dot.
            seg_a[count, 0] = x0
            seg_a[count, 1] = y0
            seg_b[count, 0] = x0
            seg_b[count, 1] = y0
            count += 1
    return count


@_compiled
def mass_centre(values, rows, columns, out):
    """The centre of mass of an image's ink, (x, y) in pixel indices, into
    `out`; returns the total ink (<= 0: no ink, `out` left as it was).

    values: the image row by row, flat (float32 or float64), each value
    taken as float64. Every sum runs in one fixed order: the total row by
    row, pixel by pixel; each row's sum along it; each column's sum down the
    rows; then x = sum over columns of (column sum * column) / total, and y
    likewise over the rows. numpy's version (nine array operations,
    13 us a call, two to four calls a drawing) summed in blocks and left
    the moments to the BLAS library's dot product, whose order of additions
    depends on the processor. For a rendered drawing the order does not
    matter: each pixel is clip(reach - sqrt(d), 0, 1) in float32, a
    multiple of 2^-33 or coarser, so 784 of them and their moments add up
    exactly in float64 in any order, and the result is numpy's to the bit.
    For an uploaded image (arbitrary float32 values from Pillow's resize)
    the last bit may differ from numpy's, which differed between machines.
    """
    # One pass: the total pixel by pixel, each row's sum along it, and each
    # column's sum down the rows, kept per column.
    column_sums = np.zeros(columns)
    total = 0.0
    y_moment = 0.0
    for row in range(rows):
        row_sum = 0.0
        for column in range(columns):
            value = np.float64(values[row * columns + column])
            total += value
            row_sum += value
            column_sums[column] += value
        y_moment += row_sum * row
    if not total > 0.0:
        return total
    x_moment = 0.0
    for column in range(columns):
        x_moment += column_sums[column] * column
    out[0] = x_moment / total
    out[1] = y_moment / total
    return total


@_compiled
def centred(seg_a, seg_b, reach, size, target, tolerance, unshifted, final, found, work):
    """Render the segments, measure their centre of mass and render them
    again moved onto `target`, correcting up to twice more: the steps of
    preprocessing._center, which it runs for a drawing's segments.

    unshifted, final: flat float32 images the renders go into. found,
    float64[7]: the unshifted image's centre of mass (x, y), the shift
    (dx, dy), the final image's centre of mass (x, y) and 1.0 when it has
    ink (else 0.0). work, int64[2]: renders done and (segment, pixel) pairs
    measured, added to. Returns False when the drawing has no ink.

    One call instead of a Python round trip per render and per measure:
    those, with numpy's centre of mass, were about half of the time from
    strokes to input for a 120-point digit.
    """
    centre = np.empty(2)
    work[1] += render(seg_a, seg_b, 0.0, 0.0, reach, size, unshifted)
    work[0] += 1
    if not mass_centre(unshifted, size, size, centre) > 0.0:
        return False
    found[0] = centre[0]
    found[1] = centre[1]
    dx = target - centre[0]
    dy = target - centre[1]
    work[1] += render(seg_a, seg_b, dx, dy, reach, size, final)
    work[0] += 1
    # A digit whose centre of mass is far off-centre (a "7") can be pushed
    # partly out of the field, which moves its centre of mass again; a
    # correction or two puts what remains on the centre.
    has_ink = True
    measured = False
    for _ in range(2):
        has_ink = mass_centre(final, size, size, centre) > 0.0
        measured = True
        if not has_ink:
            break
        ex = target - centre[0]
        ey = target - centre[1]
        if max(abs(ex), abs(ey)) < tolerance:
            break
        dx = dx + ex
        dy = dy + ey
        work[1] += render(seg_a, seg_b, dx, dy, reach, size, final)
        work[0] += 1
        measured = False
    # The final image's centre of mass: the measure that ended the
    # corrections, or, after the second correction, one more.
    if not measured:
        has_ink = mass_centre(final, size, size, centre) > 0.0
    found[2] = dx
    found[3] = dy
    found[4] = centre[0] if has_ink else 0.0
    found[5] = centre[1] if has_ink else 0.0
    found[6] = 1.0 if has_ink else 0.0
    return True


@_compiled
def whole_pieces(points, counts, width, height, starts):
    """For strokes wholly on the canvas (the usual case): where each non-empty
    stroke starts in `points`, into `starts`; returns how many strokes start.
    Returns -1 as soon as a point lies off the canvas: the strokes must then
    be cut (preprocessing._clip).
    """
    n = points.shape[0]
    for i in range(n):
        x = points[i, 0]
        y = points[i, 1]
        if not (x >= 0.0 and x <= width and y >= 0.0 and y <= height):
            return -1
    pieces = 0
    offset = 0
    for k in range(counts.shape[0]):
        if counts[k] > 0:
            starts[pieces] = offset
            pieces += 1
        offset += counts[k]
    return pieces


@_compiled
def bounds(points, box):
    """The points' (left, top, right, bottom) into `box` (left as it was
    for no points). Ties keep the first point's value: of 0.0 and -0.0,
    whichever comes first."""
    if points.shape[0] == 0:
        return
    left = right = points[0, 0]
    top = bottom = points[0, 1]
    for i in range(1, points.shape[0]):
        x = points[i, 0]
        y = points[i, 1]
        if x < left:
            left = x
        if x > right:
            right = x
        if y < top:
            top = y
        if y > bottom:
            bottom = y
    box[0] = left
    box[1] = top
    box[2] = right
    box[3] = bottom


@_compiled
def piece_steps(points, starts, steps):
    """The length of each step between two points of the same piece, in
    order, into `steps`; returns how many. math.hypot is the C library's
    hypot, as np.hypot is, so the values are numpy's to the bit."""
    count = 0
    piece = 1
    pieces = starts.shape[0]
    for i in range(points.shape[0] - 1):
        while piece < pieces and starts[piece] <= i:
            piece += 1
        if piece < pieces and starts[piece] == i + 1:
            continue  # i ends its piece; i + 1 starts the next
        steps[count] = math.hypot(points[i + 1, 0] - points[i, 0],
                                  points[i + 1, 1] - points[i, 1])
        count += 1
    return count


def warm_up():
    """Compile (or load from the cache) the kernels for the argument types the renderer passes."""
    ends = np.zeros((1, 2))
    render(ends, ends, 0.0, 0.0, 1.7, 28, np.zeros(28 * 28, dtype=np.float32))
    segments(ends, np.zeros(1, dtype=np.int64), 0.0, 0.0, 1.0, 13.5, 0.1, np.zeros((1, 2)),
             np.zeros((1, 2)))
    image = np.zeros(28 * 28, dtype=np.float32)
    centred(ends, ends, 1.7, 28, 14.0, 0.02, image, image.copy(), np.zeros(7),
            np.zeros(2, dtype=np.int64))
    # Both versions: `centred` compiles the float32 one only when it is not
    # loaded from the cache itself.
    mass_centre(image, 28, 28, np.zeros(2))
    mass_centre(np.zeros(28 * 28), 28, 28, np.zeros(2))
    whole_pieces(ends, np.ones(1, dtype=np.int64), 1.0, 1.0, np.zeros(1, dtype=np.int64))
    piece_steps(ends, np.zeros(1, dtype=np.int64), np.zeros(1))
    bounds(ends, np.zeros(4))
