"""The round's drawing as one connection's `draw` messages build it (protocol 2).

In protocol 1 every `draw` carries the whole drawing so far: a player ten
seconds into a digit sends its first points a hundred times. In protocol 2 a
`draw` may carry only what was added since an earlier one: `base` (the seq
of that drawing), `extend` (points added to its last stroke) and `strokes`
(new strokes). The connection keeps the drawing of its newest accepted
`draw` of the round (one drawing, at most MAX_POINTS points) and builds the
next from it. A `draw` whose `base` is not that drawing (a frame dropped by
the rate limit, a refused `draw`, a new connection, a new round) is refused
with `stale_base`, and any error answering a `draw` forgets the drawing:
the client then sends the whole drawing, which is always allowed.

What the server scores, stores and says is kept is always the whole drawing
built, so the drawing kept for a round is exactly the one the client had
when it sent the `draw` its `guess` (or `kept`) answers.

Plain Python. A whole drawing's points are checked when it is scored
(recognizer.payloads), as for protocol 1; what a delta adds is checked here,
as it arrives: each new point is [x, y] or [x, y, t] of numbers, and the
built drawing has at most MAX_POINTS strokes and MAX_POINTS points. Without
these bounds empty strokes (counted as no points) or "points" of any size
would grow one connection's drawing without limit, ~20,000 strokes a frame,
and each `draw` copies the whole list on the event loop.

The checked form of the drawing (recognizer.payloads.StrokeDrawing, what the
renderer reads) is built the same way, once its base's is known: the
scorer hands back each drawing it checked whole (`learn`), kept if it is
still the connection's newest, and a delta on it converts only the points
it adds. The page waits for each guess before it sends its next drawing
(static/js/latest-only.js), so its drawing is the newest when scored; a
client that does not wait may keep the server checking whole drawings, as
every `draw` was before. Checking the whole drawing at every `draw` cost a
drawing's life time quadratic in its points: 44 us a `draw` of a 120-point
digit sent in 30 `draw`s, 1.6 ms of a 5,000-point drawing, against 9.4 us
and 117 us by the deltas (bench/bench_drawing_deltas.py). The price is
memory: the checked form shares the decoded drawing's float values, but an
int (the page's times, and its whole-pixel coordinates) becomes a float of
its own; a 5,000-point drawing of the page's (x and y to a tenth of a
pixel, t in whole milliseconds) takes 0.85 MB as decoded and about 1.35 MB
with its checked form.
"""

from typing import NamedTuple

from digitsite.game.protocol import MAX_POINTS
from digitsite.game.rules import GameError
from recognizer.payloads import StrokeDrawing, converted_points


def count_points(drawing):
    strokes = drawing.get("strokes")
    if not isinstance(strokes, list):
        return 0
    return sum(len(stroke) for stroke in strokes if isinstance(stroke, list))


def points_and_strokes(drawing):
    """A drawing's points, each stroke counting as one more: what validating
    and rendering it steps through (an empty stroke holds no point but costs
    a loop step all the same)."""
    strokes = drawing.get("strokes")
    if not isinstance(strokes, list):
        return 0
    return len(strokes) + count_points(drawing)


def _too_many(points):
    if points > MAX_POINTS:
        raise GameError("too_many_points", f"a drawing has at most {MAX_POINTS} points")


def _too_many_strokes(strokes):
    # As recognizer.payloads.parse_drawing: an empty stroke costs a loop step
    # and a list slot though it holds no point.
    if strokes > MAX_POINTS:
        raise GameError("bad_drawing", f"too many strokes: at most {MAX_POINTS} in one drawing")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_points(points, where):
    for index, point in enumerate(points):
        if not (isinstance(point, list) and len(point) in (2, 3)
                and all(_is_number(value) for value in point)):
            raise GameError("bad_drawing", f"point {index} of {where} must be [x, y] or "
                                           "[x, y, t] of numbers")


class _CheckedStrokes(NamedTuple):
    """A built drawing's checked form: its canvas, and one tuple of float
    tuples for each of its strokes, empty ones included (parse_drawing
    leaves those out; kept here, a delta's `extend` adds to the right one)."""

    width: float
    height: float
    strokes: list

    def drawing(self):
        return StrokeDrawing(self.width, self.height,
                             tuple(stroke for stroke in self.strokes if stroke))


class RoundDrawing:
    """The drawing of this connection's newest accepted `draw`, with its seq."""

    def __init__(self):
        self.round = None  # (game, round number)
        self.seq = None
        self.drawing = None
        self.points = 0
        # `drawing`'s checked strokes (a _CheckedStrokes), when known: see the
        # module's docstring.
        self._checked = None
        self.incremental = False  # whether the last `take` was for protocol 2 or 3

    @property
    def checked(self):
        """The drawing `take` returned last, checked as
        recognizer.payloads.parse_drawing would (a StrokeDrawing, equal to
        its result), or None: not known, to be checked whole when scored.
        (A checked base has a point, as parse_drawing asks, and deltas only
        add to it.)"""
        return None if self._checked is None else self._checked.drawing()

    def learn(self, raw, checked):
        """`checked`: parse_drawing's result for `raw`, a drawing `take`
        returned. Kept if `raw` is still the newest (the base of the next
        delta) of a connection that sends deltas."""
        if raw is not self.drawing or self._checked is not None or not self.incremental:
            return
        # parse_drawing leaves empty strokes out: put them back in their
        # places, where the raw drawing has them, for an `extend` to find
        # the right last stroke.
        nonempty = iter(checked.strokes)
        strokes = [next(nonempty) if stroke else () for stroke in raw["strokes"]]
        self._checked = _CheckedStrokes(checked.width, checked.height, strokes)

    def forget(self):
        self.round = self.seq = self.drawing = self._checked = None
        self.points = 0

    def take(self, fields, game, round_number, *, incremental):
        """The whole drawing a `draw` stands for (its fields as protocol.read
        gives them); it becomes the base of the next. `incremental`: the
        connection speaks protocol 2. GameError when it is refused (and the
        drawing is then forgotten)."""
        try:
            drawing, points, checked = self._build(fields, (game, round_number), incremental)
        except GameError:
            self.forget()
            raise
        self.round, self.seq, self.drawing, self.points, self._checked = (
            (game, round_number), fields["seq"], drawing, points, checked)
        self.incremental = incremental
        return drawing

    def _build(self, fields, round_key, incremental):
        whole = fields["drawing"]
        parts = [fields[name] for name in ("base", "extend", "strokes")]
        if whole is not None:
            if any(part is not None for part in parts):
                raise GameError("bad_message", "a draw carries either 'drawing' or 'base' "
                                               "with 'extend' and 'strokes', not both")
            points = count_points(whole)
            _too_many(points)
            old = whole.get("strokes")
            _too_many_strokes(len(old) if isinstance(old, list) else 0)
            return whole, points, None
        if not incremental:
            raise GameError("bad_message", "'drawing' is required (protocol 1 sends the "
                                           "whole drawing; join with protocol 2 to send "
                                           "only what was added)")
        base, extend, strokes = fields["base"], fields["extend"] or [], fields["strokes"] or []
        if base is None:
            raise GameError("bad_message", "a draw needs 'drawing' (the whole drawing) or "
                                           "'base' (the seq of the drawing it adds to)")
        if self.drawing is None or self.round != round_key or base != self.seq:
            have = ("no drawing of this round" if self.drawing is None or self.round != round_key
                    else f"the drawing of seq {self.seq}")
            raise GameError("stale_base", f"the server has {have}, not seq {base}: "
                                          "send the whole drawing")
        if not all(isinstance(stroke, list) for stroke in strokes):
            raise GameError("bad_message", "'strokes' must be a list of strokes")
        points = self.points + len(extend) + sum(len(stroke) for stroke in strokes)
        _too_many(points)
        old = self.drawing.get("strokes")
        if not isinstance(old, list):
            old = []
        _too_many_strokes(len(old) + len(strokes))
        # Only the points added are checked: the base's were, or are checked
        # when it is scored (a whole drawing). Converted at C speed (0.3 us a
        # point); point by point (1 us) only when that fails, to name the
        # point at fault or let a point it doubts (one not finite) through
        # to parse_drawing, which names it when the drawing is scored.
        added = converted_points(extend)
        new = [converted_points(stroke) for stroke in strokes]
        doubtful = added is None or None in new
        if doubtful:
            _check_points(extend, "'extend'")
            for index, stroke in enumerate(strokes):
                _check_points(stroke, f"new stroke {index}")
        if extend:
            if not old or not isinstance(old[-1], list):
                raise GameError("bad_message", "'extend' adds to the last stroke, and the "
                                               "drawing has none")
            # New lists only: a drawing handed to the scorer is never changed.
            old = [*old[:-1], old[-1] + extend]
        checked = None if doubtful else self._checked_with(added, new)
        return dict(self.drawing, strokes=[*old, *strokes]), points, checked

    def _checked_with(self, added, new):
        """The base's checked strokes with a delta's points added (`added` to
        its last stroke, `new` strokes; converted_points' results), or None:
        the base's are not known."""
        if self._checked is None:
            return None
        strokes = self._checked.strokes
        if added:
            strokes = [*strokes[:-1], strokes[-1] + tuple(added)]
        return self._checked._replace(strokes=[*strokes, *map(tuple, new)])
