"""Class rooms: the rules of a game a teacher runs for a class, in plain Python.

A class room is a room (Room.classroom) played on a projector and the
students' phones. Its host is the teacher, whose seat does not draw: it gets
no target to draw, scores nothing, has no result and is not on the
leaderboard. The teacher's seat is not counted against the class's size, so
a class seats the teacher and up to GAME_CLASS_MAX_STUDENTS students.

Who sees what: the teacher's projector shows every student's drawing live
(`class_drawing`, throttled here) and, after each round, the class's results
(`class_round`); a student sees only their own drawing, their own guesses and,
in `round_end`, their own result. `visible_to` is the one place that decides
what a connection of a class may be sent.

Nothing here touches the database, the clock or the network: the database
side is digitsite.game.class_reports, the connection's side
digitsite.game.class_feed.
"""

import math
from itertools import chain

import numpy as np

from digitsite.game.rules import GameError
from recognizer.preprocessing import point_columns

# -- the live drawings on the projector ----------------------------------------
# (and, with the same bounds, on the live canvases of an ordinary room:
# digitsite.game.live_feed)

# Each student's drawing goes to the projector at most this often; the newest
# drawing waits for its turn, so the projector always ends on the latest one.
# Students draw at about 10 guesses a second (the protocol's pace): the
# projector gets a third of that, which still looks live.
LIVE_UPDATES_PER_SECOND = 3
LIVE_INTERVAL = 1.0 / LIVE_UPDATES_PER_SECOND
# A live drawing is sent with integer coordinates on a grid this many units
# wide along the drawing's longer side, without point times, and with at most
# LIVE_MAX_POINTS points: a 150-pixel tile needs no more, and it bounds every
# `class_drawing` to LIVE_MAX_BYTES however large the student's drawing.
LIVE_GRID = 100
LIVE_MAX_POINTS = 150
# The most bytes one `class_drawing` takes as a text frame (checked by the
# tests against a worst-case drawing): each point "[100,100]," plus one
# stroke's brackets, and the message's other fields.
LIVE_MAX_BYTES = 2_300


def live_bandwidth(students):
    """The most bytes a second the projector receives of live drawings."""
    return students * LIVE_UPDATES_PER_SECOND * LIVE_MAX_BYTES


def room_live_bandwidth(players, processes=1):
    """The most bytes a second one player of an ordinary room of `players`
    receives of the live drawings (`live_drawings`, the same bounds per
    drawing): from each server process the room has players on, 3 messages
    a second holding at most every player's drawing, their own included."""
    if players < 2:
        return 0
    return processes * LIVE_UPDATES_PER_SECOND * players * LIVE_MAX_BYTES


# The pause between a class's rounds: time to look at the results, the
# drawings the model got wrong and the confusion matrix together. (The
# game's default pause, a few seconds, suits players glancing at their own.)
CLASS_RESULTS_SECONDS = 20.0

# "What your class taught the model": the class's kept drawings shown at the
# end of a game, at most this many, drawn smaller than the live tiles.
SUMMARY_MAX_DRAWINGS = 200
SUMMARY_MAX_POINTS = 60


# -- seats -----------------------------------------------------------------------


def is_teacher(classroom, host_id, player_id):
    """This seat is a class's teacher: the host of a class room."""
    return bool(classroom and host_id and player_id == host_id)


def draws(classroom, host_id, player_id):
    """This seat draws in the room's rounds (everyone but a class's teacher)."""
    return not is_teacher(classroom, host_id, player_id)


def receives_live_drawings(classroom, host_id, player_id):
    """Only a class's teacher is sent the students' drawings as they draw."""
    return is_teacher(classroom, host_id, player_id)


def sends_live_drawings(classroom, host_id, player_id):
    """A class's students' drawings go to the teacher as they draw."""
    return bool(classroom) and not is_teacher(classroom, host_id, player_id)


def is_teachers_session(creator_session, session_hash):
    """The browser session that opened the class (both hashes, see seats.hash_session)."""
    return bool(creator_session) and session_hash == creator_session


def joins_as_teacher(*, teacher_seated, creator_session, session_hash):
    """A new seat in a class room is the teacher's when the class has no
    teacher seated and the join comes from the browser that opened the class
    (from anyone first, for a class opened without a browser: tests, scripts).

    A student never becomes the teacher: the class waits for its teacher
    instead of handing the host role on as an ordinary room does.
    """
    if teacher_seated:
        return False
    return not creator_session or is_teachers_session(creator_session, session_hash)


def students(seated_ids, host_id, *, classroom):
    """The seats that count against the room's size: a class's teacher does not."""
    if not classroom:
        return list(seated_ids)
    return [player for player in seated_ids if player != host_id]


def is_full(max_players, seated_ids, host_id, *, classroom, joining_teacher=False):
    """No seat is left for one more player (a class always seats its teacher)."""
    if classroom and joining_teacher:
        return False
    return len(students(seated_ids, host_id, classroom=classroom)) >= max_players


def check_class_size(value, seated, cap):
    """A class's size: 1 to `cap` students, and not below the `seated` ones."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise GameError("bad_message", "max players must be a whole number")
    if not 1 <= value <= cap:
        raise GameError("bad_message", f"a class has between 1 and {cap} students")
    if value < seated:
        raise GameError("bad_message", f"max players cannot be below the {seated} students "
                                       "already in the class")
    return value


# -- what a connection of a class is sent ---------------------------------------

# Messages for the teacher's projector only.
TEACHER_MESSAGES = frozenset({"class_drawing", "class_round", "class_summary"})


def visible_to(message, player_id, *, teacher):
    """The message as a connection of a class room may see it, or None.

    The teacher sees everything. A student is never sent another student's
    drawing: not the projector's messages, and of a `round_end` only their
    own result.
    """
    if teacher:
        return message
    kind = message.get("type")
    if kind in TEACHER_MESSAGES or kind in ("live_drawing", "live_drawings"):
        # An ordinary room's live drawings never go out in a class; held
        # here too, so no path can send one to a student.
        return None
    if kind == "round_end":
        return {**message, "results": [r for r in message["results"]
                                       if r["player"] == player_id]}
    if kind == "gallery":
        # Read for the student alone already (digitsite.game.gallery); held
        # here too, so no path can send them a classmate's drawing.
        return {**message, "drawings": [d for d in message["drawings"]
                                        if d["player"] == player_id]}
    return message


class LiveThrottle:
    """At most one live drawing per `interval` seconds from one student."""

    def __init__(self, interval=LIVE_INTERVAL):
        self.interval = interval
        self.last = None

    def wait(self, now):
        """Seconds until the next drawing may go (0: now); `now` on a monotonic clock."""
        if self.last is None:
            return 0.0
        return max(0.0, self.last + self.interval - now)

    def sent(self, now):
        self.last = now


def simplify_drawing(drawing, grid=LIVE_GRID, max_points=LIVE_MAX_POINTS):
    """A drawing ({"width", "height", "strokes": [[[x, y(, t)], ...], ...]}) as
    a small one: integer points on a `grid`-unit canvas (its longer side),
    no times, repeated points dropped, evenly thinned to at most `max_points`.

    It runs on the event loop for every live drawing that goes out: point by
    point in Python, the largest drawing (5,000 points) took 2.5 ms, now one
    array of all the points, 0.7 ms, with the same result for every drawing
    the old way could simplify (Python's round and numpy's rint both round
    halves to even).
    """
    width = float(drawing.get("width") or 1)
    height = float(drawing.get("height") or 1)
    scale = grid / max(width, height)
    strokes = on_grid([stroke for stroke in drawing.get("strokes") or [] if stroke],
                      scale, grid)
    total = sum(len(stroke) for stroke in strokes)
    if total > max_points:
        step = math.ceil(total / max_points)
        strokes = [stroke[::step] + ([stroke[-1]] if (len(stroke) - 1) % step else [])
                   for stroke in strokes]
    kept, budget = [], max_points
    for stroke in strokes:
        if budget <= 0:
            break
        kept.append(stroke[:budget])
        budget -= len(kept[-1])
    return {"width": max(1, round(width * scale)), "height": max(1, round(height * scale)),
            "strokes": kept}


def on_grid(strokes, scale, grid):
    """Non-empty strokes' points scaled, rounded and clamped to 0..grid, a point
    equal to the one before it in its stroke dropped: lists of [x, y] ints."""
    if not strokes:
        return []
    points = list(chain.from_iterable(strokes))
    try:
        # (It runs on the event loop for every live drawing that goes out.)
        xy = np.column_stack(point_columns(points))
    except (TypeError, ValueError, IndexError, KeyError):
        xy = np.array([point[:2] for point in points], dtype=np.float64)
    # A coordinate the validation lets through but the scale overflows (1e307 on
    # a canvas 1 wide) is inf here, clamped to the grid's edge like any other
    # point off the canvas; point by point, round(inf) raised on the event loop.
    with np.errstate(over="ignore"):
        rounded = np.clip(np.rint(xy * scale), 0, grid).astype(np.int64)
    stroke_of = np.repeat(np.arange(len(strokes)), [len(stroke) for stroke in strokes])
    kept = np.ones(len(rounded), dtype=bool)
    kept[1:] = (rounded[1:] != rounded[:-1]).any(axis=1) | (stroke_of[1:] != stroke_of[:-1])
    flat = rounded[kept].tolist()
    # Each stroke keeps its first point, so none comes out empty.
    ends = np.cumsum(np.bincount(stroke_of[kept], minlength=len(strokes))).tolist()
    return [flat[start:end] for start, end in zip([0] + ends[:-1], ends, strict=True)]


# -- after each round -------------------------------------------------------------


def confusion_matrix(pairs):
    """10x10 counts, rows the digit asked for, columns the model's guess, from
    (target, guess) pairs; a pair without a guess (nothing drawn) is left out."""
    matrix = [[0] * 10 for _ in range(10)]
    for target, guess in pairs:
        if target is not None and guess is not None and 0 <= target <= 9 and 0 <= guess <= 9:
            matrix[target][guess] += 1
    return matrix


def round_summary(results, target):
    """A round of a class from its `round_end` results: how many students
    were in it, drew, were recognised and were guessed right, and the
    drawings the model got wrong (simplified for the projector)."""
    drawn = [r for r in results if r["digit"] is not None]
    wrong = [{"player": r["player"], "name": r["name"], "digit": r["digit"],
              "probability": _probability_of(r, r["digit"]),
              "drawing": simplify_drawing(r["drawing"]) if r["drawing"] else None}
             for r in drawn if r["digit"] != target]
    return {
        "students": len(results),
        "drawn": len(drawn),
        "recognised": sum(1 for r in results if r["reached"]),
        "correct": sum(1 for r in drawn if r["digit"] == target),
        "wrong": wrong,
    }


def _probability_of(result, digit):
    probabilities = result.get("probabilities")
    if not probabilities:
        return None
    return float(probabilities[digit])
