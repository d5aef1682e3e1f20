"""What a player sends during a round: each scored drawing, kept as the
player's latest for the round (and finishing it on reaching the target with
the pen up), and `done`.

Reaching the target counts only for a drawing that ends with the pen lifted.
A stroke still being drawn often reads as another digit for a moment: of 150
digits drawn through the page, 39 passed through "at least 90% a 1" and 30
through "a 7" while being drawn (a 6 begins as a 1, a 7 as a "¬"). Rounds
that ended there kept a fragment as the player's drawing, and fragments
became training data.
"""

from django.db import transaction

from digitsite.game import clock, guess_update
from digitsite.game.finishing import finish, store_drawing
from digitsite.game.models import Room, RoundProgress, Seat
from digitsite.game.rooms import lock_room
from digitsite.game.rounds import GRACE, after_finish, all_finished, closes_at
from digitsite.game.rules import GameError
from digitsite.game.snapshots import count_change
from recognizer.prepared_queries import PreparedQuery

# The reads of a player's `done`, compiled once (recognizer/prepared_queries.py).
_SEAT = PreparedQuery(Seat, lambda player_id, room_id: Seat.objects.filter(
    player_id=player_id, room_id=room_id))
_PROGRESS_LOCKED = PreparedQuery(RoundProgress, lambda seat_id, game_id, round_number: (
    RoundProgress.objects.select_for_update().filter(
        seat_id=seat_id, game_id=game_id, round_number=round_number)))


def _progress_updates(prediction, p_target, drawing, input_bytes, *, pen_up, drawings=1,
                      best=None):
    """A scored drawing's write as the ORM's updates (the locked paths)."""
    return guess_update.orm_updates(
        guess_update.plain_values(prediction, p_target, drawing, input_bytes),
        drawings=drawings, best=_round_best(p_target, pen_up=pen_up, best=best))


def _round_best(p_target, *, pen_up, best):
    """What the round's best is raised to by this write (None: left as it is).

    The best of the round counts finished drawings only: mid-stroke readings
    jump (39 of 150 digits drawn through the page passed "at least 90% a 1"
    on the way), and the results would show a "best" the player never drew.
    `best` brings those of the pen-up drawings this write stands for that
    were held and replaced before their own write.
    """
    finished = [p for p in (best, p_target if pen_up else None) if p is not None]
    return max(finished) if finished else None


def record_guess(code, player_id, game_id, round_number, *, drawing, input_bytes, prediction,
                 target=None, received_at=None, pen_up=False, drawings=1, best=None):
    """Keep a scored drawing as the player's latest for the round.

    Returns (accepted, messages). Not accepted when the round or the player's
    part in it is over. Reaching the room's target confidence with the pen
    up (`pen_up`: the drawing's last stroke is complete) finishes the
    player's round at once; a drawing with the pen down never does, however
    sure the model is. `target`, when the caller knows it, allows the common
    case (a later drawing that does not reach the target) in one conditional
    UPDATE instead of a locked transaction. `received_at`, when the server
    got the drawing, lets a drawing that arrived in time but whose write came
    late (an overloaded server) still be kept. `drawings`: the scored
    drawings this write stands for (the progress counts them as `guesses`):
    held drawings it replaced unwritten (digitsite.game.drawing_writes) and itself.
    `best`: the highest target probability among the pen-up ones of those
    replaced drawings (None: none), which counts for the round's best as if
    each had been written: a finished digit the player saw read, then drew
    on from, within the second its write was held.
    """
    at = clock.now()
    if target is not None:
        p_target = float(prediction.probabilities[target])
        write = {
            "code": code, "player_id": player_id, "game_id": game_id,
            "round_number": round_number, "target": target, "ends_after": at - GRACE,
            "below": p_target if pen_up else None,
            "values": guess_update.plain_values(prediction, p_target, drawing, input_bytes),
            "drawings": drawings, "best": _round_best(p_target, pen_up=pen_up, best=best),
        }
        # The player's row for the round, written; or made, by their first
        # drawing. Else (the target reached, the round over for them, a
        # database without the game's SQL) the locked path below decides.
        if guess_update.update_latest(**write) or guess_update.insert_first(**write):
            return True, []
    with transaction.atomic():
        room = lock_room(code)

        def late():
            return received_at is not None and _record_late(
                room, player_id, game_id, round_number, drawing=drawing,
                input_bytes=input_bytes, prediction=prediction, received_at=received_at,
                pen_up=pen_up, drawings=drawings, best=best)

        if (room.state != Room.State.PLAYING or room.game_id != game_id
                or room.round != round_number or at >= closes_at(room)):
            return late(), []
        seat = _SEAT.first(player_id=player_id, room_id=room.pk)
        if seat is None or seat.gone:
            return False, []
        p_target = float(prediction.probabilities[room.target])
        reached = pen_up and p_target >= room.target_confidence
        progress = RoundProgress.objects.filter(seat=seat, game_id=game_id,
                                                round_number=round_number).first()
        if progress is None:
            # The player's first drawing of the round, here when it reaches
            # the target (or the caller did not know the target, or the
            # database has no game SQL: guess_update.insert_first makes the
            # others): one INSERT with its values. With get_or_create (a
            # read, a savepoint, the insert, its release) and an UPDATE,
            # this transaction made seven statements; now four. A round's
            # rows are made with the room locked (here, finish_player,
            # end_round) or waiting for its lock (insert_first), so none can
            # appear between the read and the insert.
            round_best = _round_best(p_target, pen_up=pen_up, best=best)
            progress = RoundProgress.objects.create(
                room=room, seat=seat, game_id=game_id, round_number=round_number,
                target=room.target, guesses=drawings, reached_at=at if reached else None,
                # The UPDATE's GREATEST(0.0, best): probabilities are not negative.
                best_target_probability=0.0 if round_best is None else round_best,
                **guess_update.plain_values(prediction, p_target, drawing, input_bytes))
        else:
            updates = _progress_updates(prediction, p_target, drawing, input_bytes,
                                        pen_up=pen_up, drawings=drawings, best=best)
            if reached:
                updates["reached_at"] = at
            if not RoundProgress.objects.filter(pk=progress.pk, finished=False).update(**updates):
                # The player's round ended (`done`, a disconnect) while this
                # drawing waited for its write.
                return late(), []
        if not reached:
            return True, []
        finished = finish(room, seat, progress, "reached", at)  # reads the row again
        count_change(room)
        everyone = all_finished(room)
    return True, after_finish(code, room, finished, everyone)


def _record_late(room, player_id, game_id, round_number, *, drawing, input_bytes, prediction,
                 received_at, pen_up, drawings=1, best=None):
    """Keep a drawing that reached the server before the player's round ended
    but was written after, when the round kept no drawing for the player.

    Under overload the write can land after the round closed (even after the
    next game began): the player drew in time, so the drawing is still kept.
    The points announced with the round's results stay as they were. Runs
    with the room locked.
    """
    progress = (RoundProgress.objects.select_related("seat")
                .filter(seat__player_id=player_id, room=room, game_id=game_id,
                        round_number=round_number, finished=True, drawing__isnull=True,
                        drawing_deleted=False)
                .first())
    if (progress is None or progress.seat.gone or progress.finished_at is None
            or received_at > progress.finished_at):
        return False
    round_over = (room.state != Room.State.PLAYING or room.game_id != game_id
                  or room.round != round_number)
    if progress.seat.opt_out and round_over:
        # The round's end deleted what an opted-out player drew; writing this
        # one now would leave it in the table for good.
        return False
    updates = _progress_updates(prediction, float(prediction.probabilities[progress.target]),
                                drawing, input_bytes, pen_up=pen_up, drawings=drawings,
                                best=best)
    if not RoundProgress.objects.filter(pk=progress.pk, drawing__isnull=True,
                                        drawing_deleted=False).update(**updates):
        return False
    progress.refresh_from_db()
    if not progress.seat.opt_out:
        store_drawing(room, progress.seat, progress)
    return True


def finish_player(code, player_id, game_id, round_number, reason):
    """The player's round ends (`done`). Returns messages, or raises GameError."""
    at = clock.now()
    with transaction.atomic():
        room = lock_room(code)
        if room.state != Room.State.PLAYING:
            raise GameError("not_playing", "no round is being played")
        if room.game_id != game_id or room.round != round_number:
            raise GameError("wrong_round", f"round {round_number} is not the current round")
        seat = _SEAT.first(player_id=player_id, room_id=room.pk)
        if seat is None or seat.gone:
            raise GameError("not_joined", "you have no seat in this room")
        # Locked as it is read: finish needs it as it is now (see there).
        # Made here for a player who drew nothing that was scored.
        progress = _PROGRESS_LOCKED.first(seat_id=seat.pk, game_id=game_id,
                                          round_number=round_number)
        if progress is None:
            progress, _ = RoundProgress.objects.select_for_update().get_or_create(
                seat=seat, game_id=game_id, round_number=round_number,
                defaults={"room": room, "target": room.target},
            )
        finished = finish(room, seat, progress, reason, at, locked=True)
        if finished is None:
            raise GameError("already_finished", "your round is already over")
        count_change(room)
        everyone = all_finished(room)
    return after_finish(code, room, finished, everyone)
