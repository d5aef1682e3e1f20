"""A player's round ends once: its points, the player's score and the
drawing kept as a labelled sample with how the round ended for the player
(or, for a player who opted out, deleted).

Runs inside the callers' transactions, with the room locked: a round's end
(digitsite.game.rounds; ending `time`), a drawing that reached the target
with the pen up (`reached`) or `done` (digitsite.game.guesses), a
disconnect, a leave or a removal (`disconnected`, `left`, `kicked`;
digitsite.game.seats). A drawing kept after the player's round ended (it
arrived in time, its write came late; or the player opted back in before
the round's end) carries the ending the player's round had.
"""

import logging

from django.db.models import F

from digitsite.game import protocol, rules
from digitsite.game.models import Room, RoundProgress, Seat
from recognizer.prepared_queries import PreparedQuery

logger = logging.getLogger(__name__)


# A player's points added at every round's end: compiled once
# (recognizer/prepared_queries.py).
_ADD_POINTS = PreparedQuery(Seat, lambda seat_id, points: (
    Seat.objects.filter(pk=seat_id), {"score": F("score") + points}))


def _seconds_between(start, end):
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0), 3)


def finish(room, seat, progress, reason, at, *, locked=False):
    """Finish one player's round once: points, score and the stored drawing.

    Runs inside the caller's transaction with the room locked. Returns the
    `player_finished` message, or None if the round was already finished.

    `seat` must have been read (or refreshed) with the room locked, as every
    caller does: its score is then the database's, since only a locked room
    changes a score (here, and a new game's reset), and the new score is
    worked out here rather than read again. `locked`: the caller read
    `progress` in this transaction with its row locked (select_for_update),
    so it is read again only otherwise.
    """
    at = min(at, room.ends_at) if room.ends_at else at
    # The row as it is now, locked: the room's lock does not cover a
    # drawing's write (guess_update.update_latest), which may have landed
    # since the caller read it. Locked, a write that comes later finds the
    # round finished and leaves it. (SQLite's transactions here hold the
    # database's write lock from their start, so nothing lands meanwhile.)
    # One read and one write, where marking the row finished first, reading
    # it back and then writing its points took three statements.
    if not locked:
        progress.refresh_from_db(from_queryset=RoundProgress.objects.select_for_update())
    if progress.finished:
        return None
    total = room.round_seconds
    if progress.reached_at is not None:
        time_left = (room.ends_at - progress.reached_at).total_seconds()
        seconds = _seconds_between(room.round_started_at, progress.reached_at)
    else:
        time_left = 0.0
        seconds = (_seconds_between(room.round_started_at, at)
                   if progress.drawing is not None else None)
    if seconds is not None:
        seconds = min(seconds, total)
    points = 0
    if progress.drawing is not None:
        points = rules.score(progress.target_probability, progress.reached_at is not None,
                             time_left, total)
    progress.finished, progress.finished_at, progress.reason = True, at, reason
    progress.points, progress.seconds = points, seconds
    progress.save(update_fields=["finished", "finished_at", "reason", "points", "seconds"])
    _ADD_POINTS.update(seat_id=seat.pk, points=points)
    seat.score += points
    if progress.drawing is not None and not seat.opt_out:
        store_drawing(room, seat, progress)
    return protocol.message(
        "player_finished",
        round=progress.round_number,
        player=seat.player_id,
        name=seat.name,
        reason=reason,
        points=points,
        score=seat.score,
        seconds=seconds,
        target_probability=progress.target_probability,
    )


def store_drawing(room, seat, progress):
    """Keep the player's drawing of the round as a labelled sample, once,
    with how the player's round ended (`progress.reason`: reached, done,
    time, disconnected, left or kicked; set by `finish` before any store)."""
    from recognizer.collection import store_drawing
    from recognizer.models import Drawing

    ending = progress.reason
    if ending not in Drawing.Ending.values:
        # A way of ending a round the drawings do not know yet: the drawing
        # is still kept, as of an unknown ending, rather than the round's end
        # failing over it.
        logger.warning("room %s: round ending %r has no drawing ending; stored as unknown",
                       room.code, ending)
        ending = Drawing.Ending.UNKNOWN

    store_drawing(
        game_id=progress.game_id, round_number=progress.round_number,
        player_id=seat.player_id, player_name=seat.name, user_id=seat.user_id,
        room_code=room.code, label=progress.target, strokes=progress.drawing,
        input_image=progress.input_image, prediction=progress.prediction,
        probabilities=progress.probabilities, model_version=progress.model_version,
        ending=ending,
    )


def forget_opted_out_drawings(room, seats, game_id, round_number):
    """The round is over: delete every trace of opted-out players' drawings.

    The strokes (with their per-point times), the 28x28 input and the
    probabilities were kept while the round ran, because whichever process
    ends a player's round scores and stores the latest drawing. Once the
    round is over only the scoreboard needs the row: points, seconds, the
    reason, the guessed digit and the target's probability stay. A drawing
    stored before the player opted out (they finished first) goes too, as
    the opt-out covers the round that ends after it. Runs with the room
    locked.
    """
    from recognizer.models import Drawing

    opted_out = [seat for seat in seats if seat.opt_out]
    if not opted_out:
        return
    RoundProgress.objects.filter(
        room=room, game_id=game_id, round_number=round_number, seat__in=opted_out,
    ).update(drawing=None, input_image=None, probabilities=None, drawing_deleted=True)
    Drawing.objects.filter(
        game_id=game_id, round_number=round_number,
        player_id__in=[seat.player_id for seat in opted_out],
    ).delete()


def end_players_round(room, seat, reason, at, *, drew_only=False):
    """Finish the seat's part in the round being played, if it has one (with a
    drawing, when `drew_only`). Returns the `player_finished` message in a
    list, or []. Runs with the room locked."""
    if room.state != Room.State.PLAYING:
        return []
    # Locked as it is read: finish needs it as it is now (see there).
    progress = RoundProgress.objects.select_for_update().filter(
        seat=seat, game_id=room.game_id, round_number=room.round)
    if drew_only:
        progress = progress.filter(drawing__isnull=False)
    progress = progress.first()
    finished = progress and finish(room, seat, progress, reason, at, locked=True)
    return [finished] if finished else []
