"""Validation of drawings sent by clients, shared by the HTTP API and the game.

A drawing is {"width": W, "height": H, "strokes": [[[x, y], ...], ...]} in
canvas pixels with y growing downward; a point may carry a third number, its
time in milliseconds. Anything else is refused with a message that says what
is wrong, never with an exception a server would turn into a 500.
"""

import math
from dataclasses import dataclass
from itertools import chain

from django.conf import settings

MAX_CANVAS_SIDE = 10_000


class PayloadError(ValueError):
    """The client sent something that is not a valid drawing."""


@dataclass(frozen=True)
class StrokeDrawing:
    """A drawing as a client sent it, checked: canvas size and strokes.

    Not recognizer.models.Drawing, the stored drawing with its label and review.
    """

    width: float
    height: float
    # Each stroke is a list of (x, y) or (x, y, t) tuples of floats.
    strokes: tuple

    @property
    def point_count(self):
        return sum(len(stroke) for stroke in self.strokes)

    def as_json(self):
        return {
            "width": self.width,
            "height": self.height,
            "strokes": [[list(point) for point in stroke] for stroke in self.strokes],
        }


def _number(value, what):
    # bool is an int in Python; a drawing made of true/false is still garbage.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"{what} must be a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float: JSON allows any length
        raise PayloadError(f"{what} must be finite") from None
    if not math.isfinite(value):
        raise PayloadError(f"{what} must be finite")
    return value


_NUMBER_TYPES = {int, float}


def _fast_strokes(raw_strokes, max_points):
    """The strokes as tuples of float tuples if all is well, else None.

    The common case, checked a whole drawing at a time with C-level loops
    (about 0.5 us a point instead of 1.2 us point by point: 7 ms saved on a
    10,000-point drawing); anything unusual goes through _checked_strokes,
    whose error names the stroke or point at fault.
    """
    if not all(type(stroke) is list for stroke in raw_strokes):
        return None
    points = list(chain.from_iterable(raw_strokes))
    if len(points) > max_points:
        return None
    converted = converted_points(points)
    if converted is None:
        return None
    strokes, start = [], 0
    for raw_stroke in raw_strokes:
        end = start + len(raw_stroke)
        if end > start:
            strokes.append(tuple(converted[start:end]))
        start = end
    return strokes


def converted_points(points):
    """A list of points ([x, y] or [x, y, t] lists of numbers) as a list of
    float tuples, as parse_drawing stores them; None for anything unusual
    (a point of another shape, a value that is not an int or a float, one
    not finite), which parse_drawing then reads point by point to name it.
    """
    if not all(type(point) is list and 2 <= len(point) <= 3 for point in points):
        return None
    # type() is exact: bool (a subclass of int) is not a number here.
    if not set(map(type, chain.from_iterable(points))) <= _NUMBER_TYPES:
        return None
    try:
        converted = [tuple(map(float, point)) for point in points]
    except OverflowError:
        return None
    if not all(map(math.isfinite, chain.from_iterable(converted))):
        return None
    return converted


def _checked_strokes(raw_strokes, max_points):
    strokes = []
    total = 0
    for s_index, raw_stroke in enumerate(raw_strokes):
        if not isinstance(raw_stroke, list):
            raise PayloadError(f"stroke {s_index} must be a list of points")
        total += len(raw_stroke)
        if total > max_points:
            raise PayloadError(f"too many points: at most {max_points} in one drawing")
        stroke = []
        for p_index, raw_point in enumerate(raw_stroke):
            where = f"point {p_index} of stroke {s_index}"
            if not isinstance(raw_point, list) or len(raw_point) not in (2, 3):
                raise PayloadError(f"{where} must be [x, y] or [x, y, t]")
            stroke.append(tuple(_number(v, where) for v in raw_point))
        if stroke:
            strokes.append(tuple(stroke))
    return strokes


def parse_drawing(data, max_points=None, allow_empty=False):
    """Check a decoded JSON object and return a StrokeDrawing; raise PayloadError."""
    max_points = settings.RECOGNIZER_MAX_POINTS if max_points is None else max_points
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object with width, height and strokes")
    for key in ("width", "height", "strokes"):
        if key not in data:
            raise PayloadError(f"missing field '{key}'")
    width = _number(data["width"], "width")
    height = _number(data["height"], "height")
    for name, side in (("width", width), ("height", height)):
        if not 1 <= side <= MAX_CANVAS_SIDE:
            raise PayloadError(f"{name} must be between 1 and {MAX_CANVAS_SIDE}")
    raw_strokes = data["strokes"]
    if not isinstance(raw_strokes, list):
        raise PayloadError("strokes must be a list of strokes")
    # Empty strokes cost a loop step each too: a 1 MiB body holds 350,000.
    if len(raw_strokes) > max_points:
        raise PayloadError(f"too many strokes: at most {max_points} in one drawing")
    strokes = _fast_strokes(raw_strokes, max_points)
    if strokes is None:
        strokes = _checked_strokes(raw_strokes, max_points)
    if not strokes and not allow_empty:
        raise PayloadError("the drawing is empty: draw something first")
    return StrokeDrawing(width, height, tuple(strokes))
