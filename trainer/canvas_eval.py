"""A canvas-style evaluation set: MNIST test digits redrawn the way players draw.

A digit drawn on the site's canvas is not an MNIST scan: its strokes are thin
and even, it can be any size anywhere on a canvas of any size, and it arrives
as a list of points. To measure how the network does on that kind of input,
every MNIST test digit is

1. traced: thresholded, skeletonised and walked into polyline strokes
   (trace_strokes),
2. redrawn like a person would: at a random size and position on a random
   canvas, slightly rotated and stretched, with hand jitter and pointer-event
   timings (redraw_on_canvas),
3. sent through recognizer.preprocessing.strokes_to_input, the exact pipeline
   the API and the game use.

The result is cached under settings.VAR_DIR, keyed by seed, limit, the code
versions and the images themselves, so the trainer builds it once.
"""

import hashlib
import logging
import math
import time
from pathlib import Path

import numpy as np

from recognizer import preprocessing
from recognizer.atomic_files import atomic_writer

logger = logging.getLogger(__name__)

# Bump when a change here alters the generated strokes (old caches then miss).
CANVAS_EVAL_VERSION = 1

NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))

DEFAULT_CANVAS_SIZE = (200, 800)
DEFAULT_DIGIT_FRACTION = (0.15, 0.9)


# -- tracing -----------------------------------------------------------------


def _as_unit_float(image):
    image = np.asarray(image)
    if image.shape != (28, 28):
        raise ValueError(f"expected a 28x28 image, got shape {image.shape}")
    if image.dtype == np.uint8 or image.max() > 1.0:
        return image.astype(np.float64) / 255.0
    return image.astype(np.float64)


def _skeleton_graph(skeleton):
    """Adjacency of the 8-connected skeleton, without redundant diagonals.

    Where two diagonal neighbours are also joined through a shared orthogonal
    neighbour, the diagonal link is left out: otherwise every corner of the
    skeleton would be a little triangle, i.e. a false junction and a loop.
    """
    pixels = {(int(r), int(c)) for r, c in zip(*np.nonzero(skeleton), strict=True)}
    graph = {}
    for r, c in pixels:
        links = []
        for dr, dc in NEIGHBOURS:
            q = (r + dr, c + dc)
            if q not in pixels:
                continue
            if dr and dc and ((r + dr, c) in pixels or (r, c + dc) in pixels):
                continue
            links.append(q)
        graph[(r, c)] = links
    return graph


def trace_strokes(image28, threshold=0.5):
    """Polyline strokes along the skeleton of a 28x28 digit.

    `image28`: uint8 (255 = ink) or float in [0, 1]. Returns a list of
    strokes, each a list of (x, y) points in the image's pixel coordinates
    (x = column, y = row). Every skeleton link is walked exactly once: a
    stroke runs from an end or junction to the next end or junction, loops
    with no junction become one closed stroke, and a lone pixel is a
    one-point stroke. Returns [] for an image with no ink above `threshold`.
    """
    from skimage.morphology import skeletonize

    image = _as_unit_float(image28)
    skeleton = skeletonize(image >= threshold)
    graph = _skeleton_graph(skeleton)
    seen = set()

    def link(p, q):
        return (p, q) if p < q else (q, p)

    def walk(start, first):
        path = [start, first]
        seen.add(link(start, first))
        current = first
        while len(graph[current]) == 2:
            following = [q for q in graph[current] if link(current, q) not in seen]
            if not following:
                break
            seen.add(link(current, following[0]))
            current = following[0]
            path.append(current)
        return path

    strokes = []
    # Sorted, so that the same image always gives the same strokes.
    nodes = sorted(graph)
    for node in nodes:
        if len(graph[node]) == 0:
            strokes.append([node])
        elif len(graph[node]) != 2:
            for q in graph[node]:
                if link(node, q) not in seen:
                    strokes.append(walk(node, q))
    # What is left are closed loops (an "0" with no junction).
    for node in nodes:
        for q in graph[node]:
            if link(node, q) not in seen:
                strokes.append(walk(node, q))
    return [[(float(c), float(r)) for r, c in stroke] for stroke in strokes]


# -- redrawing ---------------------------------------------------------------


def _order_strokes(strokes):
    """Top to bottom, each starting at its upper end, the order people write in."""
    oriented = []
    for stroke in strokes:
        stroke = np.asarray(stroke, dtype=np.float64)
        if (stroke[-1, 1], stroke[-1, 0]) < (stroke[0, 1], stroke[0, 0]):
            stroke = stroke[::-1]
        oriented.append(stroke)
    return sorted(oriented, key=lambda s: (s[:, 1].min(), s[:, 0].min()))


def _smooth(stroke):
    """A [1, 2, 1] average keeping the ends: pixel staircases become curves."""
    if len(stroke) < 3:
        return stroke
    smoothed = stroke.copy()
    smoothed[1:-1] = (stroke[:-2] + 2 * stroke[1:-1] + stroke[2:]) / 4
    return smoothed


def _resample(stroke, spacing):
    """Points every `spacing` along the polyline, ends included."""
    if len(stroke) == 1:
        return stroke
    steps = np.hypot(*np.diff(stroke, axis=0).T)
    arc = np.r_[0.0, np.cumsum(steps)]
    if arc[-1] == 0:
        return stroke[:1]
    count = max(2, int(math.ceil(arc[-1] / spacing)) + 1)
    at = np.linspace(0.0, arc[-1], count)
    return np.column_stack([np.interp(at, arc, stroke[:, 0]), np.interp(at, arc, stroke[:, 1])])


def redraw_on_canvas(strokes, rng, canvas_size=DEFAULT_CANVAS_SIZE,
                     digit_fraction=DEFAULT_DIGIT_FRACTION, jitter=0.004):
    """Draw traced strokes again the way a player would, on a random canvas.

    The canvas is `canvas_size` (low, high) pixels on each side; the digit's
    longer side is `digit_fraction` of the canvas's shorter side, placed at a
    random spot, turned by a few degrees and stretched by a few percent. The
    pen moves along each stroke at a pace that makes the whole digit take
    0.3 to 1 s, reporting a point every 8 to 17 ms (pointer events), with
    `jitter` (a fraction of the digit's size) of hand tremor; strokes are
    separated by a pen lift of 80 to 300 ms.

    Returns (strokes, width, height): strokes as lists of (x, y, t) with t in
    milliseconds, all inside the canvas, as recognizer.payloads would pass
    them on.
    """
    strokes = [s for s in _order_strokes(strokes) if len(s)]
    if not strokes:
        raise ValueError("there are no strokes to redraw")
    low, high = canvas_size
    width = int(rng.integers(low, high + 1))
    height = int(rng.integers(low, high + 1))

    everything = np.vstack(strokes)
    centre = (everything.min(axis=0) + everything.max(axis=0)) / 2
    angle = math.radians(rng.normal(0.0, 4.0))
    stretch = np.exp(rng.normal(0.0, 0.04, size=2))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shaped = [((_smooth(s) - centre) * stretch) @ rotation.T for s in strokes]
    everything = np.vstack(shaped)
    extent = max(float(np.ptp(everything[:, 0])), float(np.ptp(everything[:, 1])), 1.0)
    size = rng.uniform(*digit_fraction) * min(width, height)
    scale = size / extent
    shaped = [s * scale for s in shaped]
    everything = np.vstack(shaped)
    lows, highs = everything.min(axis=0), everything.max(axis=0)
    margin = 2.0
    room_x = max(width - 2 * margin - (highs[0] - lows[0]), 0.0)
    room_y = max(height - 2 * margin - (highs[1] - lows[1]), 0.0)
    offset = np.array([margin + rng.uniform(0, room_x), margin + rng.uniform(0, room_y)]) - lows

    total = sum(float(np.hypot(*np.diff(s, axis=0).T).sum()) for s in shaped)
    duration = rng.uniform(300.0, 1000.0)
    interval = rng.uniform(8.0, 17.0)
    speed = max(total, 1.0) / duration  # canvas pixels per millisecond
    clock = 0.0
    result = []
    for stroke in shaped:
        points = _resample(stroke, speed * interval) + offset
        points = points + rng.normal(0.0, jitter * size, size=points.shape)
        points[:, 0] = np.clip(points[:, 0], 0.0, width)
        points[:, 1] = np.clip(points[:, 1], 0.0, height)
        times = clock + interval * np.arange(len(points)) * rng.uniform(0.9, 1.1, len(points))
        times = np.maximum.accumulate(times)
        result.append([
            (round(float(x), 2), round(float(y), 2), round(float(t), 1))
            for (x, y), t in zip(points, times, strict=True)
        ])
        clock = float(times[-1]) + rng.uniform(80.0, 300.0)
    return result, width, height


# -- the evaluation set ------------------------------------------------------


def canvas_input(image28, rng):
    """One MNIST digit as the network would see it drawn on the canvas."""
    strokes = trace_strokes(image28)
    if not strokes:
        # A very faint digit: trace whatever ink there is.
        strokes = trace_strokes(image28, threshold=0.1)
    if not strokes:
        raise ValueError("the image has no ink to trace")
    drawn, width, height = redraw_on_canvas(strokes, rng)
    return preprocessing.strokes_to_input(drawn, width, height)


def seeded_canvas_input(image28, seed, index):
    """canvas_input with the generator of digit `index` of the set seeded `seed`."""
    # One generator per digit, seeded by (seed, index): digit i is the same
    # whatever the limit and the number of processes, and any subset can be
    # rebuilt on its own.
    try:
        return canvas_input(image28, np.random.default_rng([seed, index]))
    except ValueError as exc:
        raise ValueError(f"image {index}: {exc}") from exc


def _build(images, seed, workers=None):
    from trainer.parallel import map_stacked

    if not len(images):
        return np.empty((0, 28, 28), dtype=np.float32)
    items = [(image, seed, index) for index, image in enumerate(images)]
    return map_stacked(seeded_canvas_input, items, workers).astype(np.float32, copy=False)


def _cache_path(cache_dir, images, labels, seed, limit):
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    digest.update(repr((preprocessing.PIPELINE_VERSION, preprocessing.PEN_WIDTH)).encode())
    count = "all" if limit is None else str(limit)
    name = (
        f"canvas-eval-v{CANVAS_EVAL_VERSION}-seed{seed}-{count}-{digest.hexdigest()[:16]}.npz"
    )
    return Path(cache_dir) / name


def _load_cache(path, count):
    try:
        with np.load(path) as data:
            inputs, labels = data["inputs"], data["labels"]
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged cache is rebuilt, never trusted
        logger.warning("ignoring the unreadable canvas set cache %s: %s", path, exc)
        return None
    if inputs.shape != (count, 28, 28) or labels.shape != (count,):
        logger.warning("ignoring the canvas set cache %s: wrong shape", path)
        return None
    return inputs.astype(np.float32, copy=False), labels.astype(np.int64, copy=False)


def _save_cache(path, inputs, labels):
    with atomic_writer(path) as handle:
        np.savez_compressed(handle, inputs=inputs, labels=labels)


def default_cache_dir():
    from django.conf import settings

    return Path(settings.VAR_DIR) / "cache"


def build_canvas_eval_set(images, labels, seed=0, limit=None, cache_dir=None, use_cache=True,
                          workers=None):
    """Inputs (N, 28, 28) float32 and labels (N,) int64 of MNIST redrawn canvas-style.

    `images`: (N, 28, 28) uint8 (255 = ink) or floats in [0, 1]; `labels`:
    (N,). Only the first `limit` digits are used when `limit` is given. The
    same seed always gives the same set; the result is cached in `cache_dir`
    (default VAR_DIR/cache) unless `use_cache` is false. `workers`: processes
    that render (default: every core, trainer.parallel).
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if limit is not None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        images, labels = images[:limit], labels[:limit]
    labels = labels.astype(np.int64)
    path = None
    if use_cache:
        path = _cache_path(cache_dir or default_cache_dir(), images, labels, seed, limit)
        cached = _load_cache(path, len(images))
        if cached is not None:
            return cached
    started = time.monotonic()
    inputs = _build(images, seed, workers)
    logger.info("built the canvas-style set: %d digits in %.1f s", len(images),
                time.monotonic() - started)
    if path is not None:
        _save_cache(path, inputs, labels)
    return inputs, labels
