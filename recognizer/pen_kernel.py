"""The renderer's inner loop, compiled: each segment's distance to the pixels within its reach.

Why compiled. The same loop written as numpy array operations
(`_row_spans` and `_measure_pixels`, until this module) spent most of its
time in the operations' own overhead: about 30 array calls a render on
arrays of a few hundred elements, 2-4 renders a drawing, all holding the
interpreter. It was 15% of a game server's samples in a profile of 32
players, and 0.5 ms of the 0.6 ms that preprocessing a 260-point drawing
took. Compiled with numba, the same loop does the same arithmetic in tens
of microseconds, releases the interpreter while it runs (`nogil`), and
needs no intermediate arrays at all, so its memory is the 28x28 distance
field whatever the drawing (the numpy version worked in chunks of 16,384
(segment, pixel) pairs to bound it).

The arithmetic is the numpy version's, operation by operation: float32
points and directions, float64 distances, each pixel's nearest squared
distance kept as float32. numba compiles without fast-math, so nothing is
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
"""

import math

import numba
import numpy as np

# A hair wider than exact: a pixel too many is measured and gets 0.
SPAN_MARGIN = 1e-4


@numba.njit(cache=True, nogil=True)
def nearest_squared_distances(a, d, length2, low, high, reach, size, dist2):
    """Lower `dist2` (flat, float32) to each pixel's squared distance to its nearest segment.

    a, d: (n, 2) float32 starts and end - start; length2: (n,) float32
    squared lengths (1 for a dot); low, high: (n, 2) int64, the first pixel
    (x, y) within reach and one past the last. Returns how many (segment,
    pixel) pairs were measured.
    """
    pairs = 0
    for s in range(a.shape[0]):
        ax32 = a[s, 0]
        ay32 = a[s, 1]
        sx = d[s, 0]
        sy = d[s, 1]
        l2 = length2[s]
        ax = np.float64(ax32)
        ay = np.float64(ay32)
        dx = np.float64(sx)
        dy = np.float64(sy)
        for row in range(low[s, 1], high[s, 1]):
            # The part of the segment inside the band |y - row| <= reach, as t in [0, 1].
            if dy == 0.0:
                t_in = 0.0
                t_out = 1.0
            else:
                t_top = (row - reach - ay) / dy
                t_bottom = (row + reach - ay) / dy
                t_in = min(max(min(t_top, t_bottom), 0.0), 1.0)
                t_out = min(max(max(t_top, t_bottom), 0.0), 1.0)
            x_in = ax + t_in * dx
            x_out = ax + t_out * dx
            left = np.int64(math.floor(min(x_in, x_out) - reach - SPAN_MARGIN)) + 1
            right = np.int64(math.ceil(max(x_in, x_out) + reach + SPAN_MARGIN))
            left = max(left, low[s, 0])
            right = min(right, high[s, 0])
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
    return pairs


def warm_up():
    """Compile (or load from the cache) the kernel for the argument types the renderer passes."""
    a = np.zeros((1, 2), dtype=np.float32)
    corner = np.zeros((1, 2), dtype=np.int64)
    nearest_squared_distances(a, a, np.ones(1, dtype=np.float32), corner, corner + 1,
                              1.7, 28, np.full(28 * 28, np.inf, dtype=np.float32))
