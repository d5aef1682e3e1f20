"""The rules of the game as plain functions: no database, no clock, no network."""

import math
import random
from dataclasses import dataclass

MIN_PLAYERS = 1
MAX_PLAYERS = 8
MIN_ROUNDS = 1
MAX_ROUNDS = 20
# The shortest round a room can be set to by its players. One second was
# accepted before: nobody can draw a digit in it, so every round was lost.
# Ten seconds fits a quick digit with the pen lifted once (the browser tests
# draw one in about 2 s; people take 3 to 6 s). The server's own API (tests,
# benchmarks) may still ask for down to TECHNICAL_MIN_SECONDS.
MIN_SECONDS = 10.0
TECHNICAL_MIN_SECONDS = 1.0
MAX_SECONDS = 300.0
MAX_RESULTS_SECONDS = 60.0
NAME_MAX_LENGTH = 24

# A drawing that reached the server before the round's end is still being
# scored and written for a moment after it; the round closes this much later
# than announced so that such a drawing counts, and is the one stored.
ROUND_GRACE_SECONDS = 0.5

# Every open connection renews its seat this often. A seat not renewed for
# SEAT_STALE_SECONDS belongs to a server process that died without closing
# its sockets (killed, machine lost): it is treated as disconnected then, so
# the host role moves on and the rejoin window starts.
SEAT_HEARTBEAT_SECONDS = 10.0
SEAT_STALE_SECONDS = 35.0

ACCURACY_POINTS = 100
SPEED_POINTS = 50

SCORING_RULE = (
    f"Each round you score {ACCURACY_POINTS} x the model's probability for the target digit "
    f"on your last drawing, plus up to {SPEED_POINTS} bonus points for speed once that "
    f"probability reaches the room's target confidence when you lift the pen (a stroke "
    f"still being drawn does not count): the bonus is the share of the round "
    f"still left at that moment."
)


class GameError(ValueError):
    """A request the game refuses; `code` is the protocol's error code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def score(target_probability, reached, time_left, total_time):
    """Points for one player's round.

    round(100 * p + 50 * share of time left when p first reached the
    threshold); no speed bonus without reaching it.
    """
    p = min(max(float(target_probability), 0.0), 1.0)
    bonus = 0.0
    if reached and total_time > 0:
        bonus = min(max(time_left / total_time, 0.0), 1.0)
    return int(round(ACCURACY_POINTS * p + SPEED_POINTS * bonus))


def pick_targets(rounds, rng=None):
    """Target digits for a game: no digit comes back before all ten were used,
    and never the same digit twice in a row."""
    rng = rng or random.SystemRandom()
    targets = []
    while len(targets) < rounds:
        batch = list(range(10))
        rng.shuffle(batch)
        if targets and batch[0] == targets[-1]:
            batch[0], batch[-1] = batch[-1], batch[0]
        targets.extend(batch)
    return targets[:rounds]


def leaderboard(players):
    """Rank players ({"player", "name", "score", "gone"}): those still in the
    room best first, equal scores sharing a rank (1, 1, 3); then those who
    left (`gone`), best first, with rank None. A player who left keeps their
    score on the list but wins nothing: a top scorer who walked out is not
    the game's winner."""
    present = sorted((p for p in players if not p["gone"]), key=lambda p: -p["score"])
    gone = sorted((p for p in players if p["gone"]), key=lambda p: -p["score"])
    rows = []
    rank = 0
    previous = None
    for index, player in enumerate(present, start=1):
        if player["score"] != previous:
            rank = index
            previous = player["score"]
        rows.append({"rank": rank, **player})
    rows.extend({"rank": None, **player} for player in gone)
    return rows


def clean_name(name):
    """A display name fit to show to others, or GameError('bad_name').

    The name rules live in digitsite.game.names (which needs GameError from
    here, hence the late import)."""
    from digitsite.game.names import clean_name as clean

    return clean(name)


@dataclass(frozen=True)
class RoomSettings:
    rounds: int
    seconds: float
    results_seconds: float
    max_players: int
    target_confidence: float
    solo: bool = False


def _int_setting(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise GameError("bad_message", f"{name} must be a whole number")
    if not low <= value <= high:
        raise GameError("bad_message", f"{name} must be between {low} and {high}")
    return value


def _float_setting(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GameError("bad_message", f"{name} must be a number")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise GameError("bad_message", f"{name} must be between {low:g} and {high:g}")
    return value


def check_rounds(value):
    return _int_setting(value, "rounds", MIN_ROUNDS, MAX_ROUNDS)


def check_seconds(value, minimum=MIN_SECONDS):
    return _float_setting(value, "round seconds", minimum, MAX_SECONDS)


def check_max_players(value, seated=0):
    """A room's seat count: in range, and not below the players already seated."""
    value = _int_setting(value, "max players", MIN_PLAYERS, MAX_PLAYERS)
    if value < seated:
        raise GameError("bad_message", f"max players cannot be below the {seated} players "
                                       "already in the room")
    return value


def room_settings(*, rounds, seconds, results_seconds, max_players, target_confidence, solo,
                  min_seconds=MIN_SECONDS):
    """Validate a room's settings; raise GameError with a readable message."""
    max_players = 1 if solo else _int_setting(max_players, "max players", MIN_PLAYERS, MAX_PLAYERS)
    return RoomSettings(
        rounds=check_rounds(rounds),
        seconds=check_seconds(seconds, min_seconds),
        results_seconds=_float_setting(results_seconds, "results seconds", 0.0,
                                       MAX_RESULTS_SECONDS),
        max_players=max_players,
        target_confidence=_float_setting(target_confidence, "target confidence", 0.0, 1.0),
        solo=bool(solo),
    )

