"""Hostile and extreme drawings within the documented limits, for tests and the benchmark.

Each maker returns a drawing payload ({"width", "height", "strokes"}, points
as [x, y] lists) the way a client would send it. `worst_drawings(max_points)`
is the catalogue bench/bench_worst_drawing.py and tests/test_worst_drawing.py
run on every entry point; `refused` says whether the ink limit must refuse it.
`peak_bytes` is how both measure the memory one of them costs.
"""

import math
import tracemalloc
from dataclasses import dataclass

import numpy as np

from recognizer import pen_kernel
from recognizer.preprocessing import BOX, MAX_INK_LENGTH, PEN_WIDTH

# Ink (in bounding boxes) a drawing meant to pass is given: just under the
# limit, allowing for the pen width each stroke counts.
NEAR_LIMIT = MAX_INK_LENGTH - 2 * PEN_WIDTH / (BOX - PEN_WIDTH)


def _payload(strokes, side):
    return {
        "width": side,
        "height": side,
        "strokes": [np.round(np.asarray(s, dtype=np.float64), 3).tolist() for s in strokes],
    }


def _along(path, count):
    """`count` points evenly spaced along the polyline `path` (n, 2)."""
    path = np.asarray(path, dtype=np.float64)
    arc = np.r_[0.0, np.cumsum(np.hypot(*np.diff(path, axis=0).T))]
    at = np.linspace(0.0, arc[-1], count)
    return np.column_stack([np.interp(at, arc, path[:, 0]), np.interp(at, arc, path[:, 1])])


def corner_zigzag(points, side=400):
    """Between opposite corners of the canvas, `points` times: the drawing that cost 1-2 s."""
    corners = np.array([[0.0, 0.0], [side, side]])
    return _payload([corners[np.arange(points) % 2]], side)


def sweep_zigzag(points, side=400, ink=NEAR_LIMIT):
    """Left-right sweeps down the canvas, `ink` bounding boxes of ink in `points` points."""
    sweeps = max(1, int(ink))
    ys = np.linspace(0.05 * side, 0.95 * side, sweeps + 1)
    xs = np.where(np.arange(sweeps + 1) % 2 == 0, 0.05 * side, 0.95 * side)
    return _payload([_along(np.column_stack([xs, ys]), points)], side)


def spiral(points, side=400, ink=NEAR_LIMIT):
    """An Archimedean spiral from the centre out, as many turns as `ink` allows."""
    # A spiral of `turns` turns out to radius R is a little over pi R turns
    # long, its box 2R.
    turns = 1.9 * ink / math.pi
    angle = np.linspace(0.0, 2 * math.pi * turns, 20_000)
    radius = 0.45 * side * angle / angle[-1]
    path = np.column_stack([side / 2 + radius * np.cos(angle), side / 2 + radius * np.sin(angle)])
    return _payload([_along(path, points)], side)


def circles(points, side=400, ink=NEAR_LIMIT):
    """One circle gone over and over, as long as `ink` bounding boxes."""
    turns = ink / math.pi
    angle = np.linspace(0.0, 2 * math.pi * turns, points)
    radius = 0.4 * side
    path = np.column_stack([side / 2 + radius * np.cos(angle), side / 2 + radius * np.sin(angle)])
    return _payload([path], side)


def scribble(points, side=400, ink=NEAR_LIMIT, seed=0):
    """A dense random scribble filling the canvas, `ink` bounding boxes long."""
    rng = np.random.default_rng(seed)
    heading = np.cumsum(rng.normal(0.0, 0.6, 50_000))
    walk = np.cumsum(np.column_stack([np.cos(heading), np.sin(heading)]), axis=0)
    # Folded back into the unit square, so it stays on the canvas.
    walk = np.abs(walk / 40.0 % 2.0 - 1.0)
    arc = np.r_[0.0, np.cumsum(np.hypot(*np.diff(walk, axis=0).T))]
    extent = np.ptp(walk, axis=0).max()
    walk = walk[: int(np.searchsorted(arc, ink * extent))]
    return _payload([_along(0.02 * side + walk * 0.96 * side, points)], side)


def dots(count, side=400, seed=0):
    """`count` one-point strokes spread over the canvas (taps)."""
    rng = np.random.default_rng(seed)
    return _payload([[point] for point in rng.uniform(0.0, side, (count, 2))], side)


def edge_zigzag(points, side=400):
    """Back and forth across the canvas's left edge: every segment is cut there."""
    xs = np.where(np.arange(points) % 2 == 0, -0.2 * side, 0.2 * side)
    ys = np.linspace(0.0, side, points)
    return _payload([np.column_stack([xs, ys])], side)


def one_dot(points, side=400):
    """Every point on the same spot: a dot, however many points."""
    return _payload([[[side / 2, side / 2]] * points], side)


def line(points, side=400):
    """A single straight stroke of `points` points: the thinning's best case."""
    return _payload([_along([[0.1 * side, 0.2 * side], [0.9 * side, 0.8 * side]], points)], side)


@dataclass(frozen=True)
class Case:
    name: str
    drawing: dict
    refused: bool


def worst_drawings(max_points, side=400):
    """The catalogue: every shape at `max_points` points (or the most a shape can use)."""
    limit_dots = int(NEAR_LIMIT / (PEN_WIDTH / (BOX - PEN_WIDTH)))
    return [
        Case(f"corner zigzag, {max_points} points", corner_zigzag(max_points, side), True),
        Case(f"sweeping zigzag at the ink limit, {max_points} points",
             sweep_zigzag(max_points, side), False),
        Case(f"spiral at the ink limit, {max_points} points", spiral(max_points, side), False),
        Case(f"circle gone over at the ink limit, {max_points} points",
             circles(max_points, side), False),
        Case(f"dense scribble at the ink limit, {max_points} points",
             scribble(max_points, side), False),
        Case(f"dense scribble 10x the ink limit, {max_points} points",
             scribble(max_points, side, ink=10 * MAX_INK_LENGTH), True),
        Case(f"{limit_dots} dots (the most the ink limit allows)", dots(limit_dots, side), False),
        Case(f"{max_points} dots", dots(max_points, side), True),
        Case(f"edge zigzag, {max_points} points", edge_zigzag(max_points, side), True),
        Case(f"one spot, {max_points} points", one_dot(max_points, side), False),
        Case(f"straight line, {max_points} points", line(max_points, side), False),
        Case(f"spiral at the ink limit on the largest canvas, {max_points} points",
             spiral(max_points, 10_000), False),
    ]


def peak_bytes(fn):
    """The most bytes Python and numpy held at once, beyond what was there, while `fn` ran.

    The renderer's compiled code is loaded first: loading it (or compiling
    it, on a first run after an install) is a process's once, megabytes
    the server spends at start-up (digitsite/asgi.py), not a drawing's.
    Traced, loading it from numba's cache made a process's first render
    measured look like 29 MB, against 0.01 MB for the same render after.
    """
    pen_kernel.warm_up()
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak
