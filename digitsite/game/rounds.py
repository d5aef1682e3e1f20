"""Games and rounds: starting a game, each round's start and end, the
results pause between rounds, and the deadlines that move a room on.

Every connection in a room keeps the room's timers and calls `advance` at
its deadlines; the room's lock lets exactly one caller act (see
digitsite.game.rooms), and the upkeep of every server process ends rounds
nobody is left to end (digitsite.game.upkeep).
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction

from digitsite.game import clock, protocol, rules
from digitsite.game.finishing import finish, forget_opted_out_drawings, store_drawing
from digitsite.game.models import Room, RoundProgress, Seat
from digitsite.game.rooms import lock_room
from digitsite.game.rules import GameError
from digitsite.game.snapshots import (
    count_change,
    room_message,
    room_snapshot,
    round_end_messages,
    round_start_message,
)
from recognizer.prepared_queries import PreparedQuery

GRACE = timedelta(seconds=rules.ROUND_GRACE_SECONDS)


def closes_at(room):
    """When the server acts on the current phase: the round closes a grace after its end."""
    if room.ends_at is None:
        return None
    return room.ends_at + GRACE if room.state == Room.State.PLAYING else room.ends_at


def start_game(code, player_id, rounds=None):
    """The host starts a game (or the next one: play again)."""
    at = clock.now()
    with transaction.atomic():
        room = lock_room(code)
        if room.host_player != player_id:
            raise GameError("not_host", "only the host can start the game")
        if room.state in (Room.State.PLAYING, Room.State.RESULTS):
            raise GameError("already_playing", "a game is already on")
        rounds = room.rounds if rounds is None else rules.check_rounds(rounds)
        if room.classroom and not _drawing_seats(room).filter(gone=False,
                                                              connected=True).exists():
            raise GameError("no_students", "no student has joined the class yet")
        # Progress of earlier games is only needed to show their results.
        RoundProgress.objects.filter(room=room).delete()
        Seat.objects.filter(room=room, gone=True).delete()
        Seat.objects.filter(room=room).update(score=0)
        targets = rules.pick_targets(rounds)
        room.game_id = uuid.uuid4().hex
        room.game_number += 1
        room.game_rounds = rounds
        room.targets = targets
        return _begin_round(room, 1, at,
                            game_fields=("game_id", "game_number", "game_rounds", "targets"))


def _begin_round(room, number, at, game_fields=()):
    """Start round `number` (from 1) of the room's game at `at`; the room is
    locked. `game_fields`: the room's fields the caller changed too.

    Only the changed fields are written: the row's other columns belong to
    other changes (the revision is counted with an UPDATE of its own,
    snapshots.count_change), and a whole-row save of a copy read before one
    of them would undo it."""
    room.round = number
    room.target = room.targets[number - 1]
    room.state = Room.State.PLAYING
    room.round_started_at = at
    room.ends_at = at + timedelta(seconds=room.round_seconds)
    room.save(update_fields=["round", "target", "state", "round_started_at", "ends_at",
                             *game_fields])
    return [round_start_message(room), room_message(room)]


@dataclass
class Phase:
    """What a connection needs to know to check its player's messages."""

    state: str
    game: str
    round: int
    target: int | None
    ends_at: object
    closes_at: object
    target_confidence: float


def phase(code):
    room = Room.objects.filter(code=code).first()
    if room is None:
        return None
    return Phase(room.state, room.game_id, room.round, room.target, room.ends_at,
                 closes_at(room), room.target_confidence)


def _teacher(room):
    """A class's teacher, who does not draw (digitsite.game.classroom), or None."""
    return room.host_player if room.classroom and room.host_player else None


def _seats_that_draw(room_id, teacher=None):
    seats = Seat.objects.filter(room_id=room_id)
    return seats.exclude(player_id=teacher) if teacher is not None else seats


def _drawing_seats(room):
    """The room's seats that draw: all but a class's teacher."""
    return _seats_that_draw(room.pk, _teacher(room))


def all_finished(room):
    """Every seated player has finished the round. A player whose connection
    dropped counts until their rejoin window ends (their seat is then gone):
    a reload, or a phone back on the network, finds the round still on."""
    # One query (is any seated player without a finished row?), where a
    # read of the seats and a count of their finished rows took two: a
    # finish asks it in its transaction, with the room locked.
    values = {"room_id": room.pk, "game_id": room.game_id, "round_number": room.round}
    if _teacher(room) is not None:
        values["teacher"] = _teacher(room)
    return not _DRAWING_WITHOUT_FINISHING.exists(**values)


def _drawing_without_finishing(room_id, game_id, round_number, teacher=None):
    """Seats of the room that draw (all but `teacher`, if one) with no
    finished row for the round."""
    finished = RoundProgress.objects.filter(
        room_id=room_id, game_id=game_id, round_number=round_number, finished=True,
    ).values("seat_id")
    return _seats_that_draw(room_id, teacher).filter(gone=False).exclude(pk__in=finished)


# Asked at every player's round end: compiled once (recognizer/prepared_queries.py).
_DRAWING_WITHOUT_FINISHING = PreparedQuery(Seat, _drawing_without_finishing)


def after_change(code):
    """Messages after a player's state changed: the snapshot, and the round's end
    when nobody seated is still drawing. The change's transaction counted it
    (snapshots.count_change), so that no change is committed uncounted: a
    process that stopped between the two would leave a change no snapshot
    revision covers."""
    # The room is read after the change's count, so the snapshot built from
    # it is room_message's without its second read of the row; and the
    # snapshot already says who finished, which all_finished would read
    # again (two queries). A round the snapshot shows over is ended by
    # end_round, which checks again under the room's lock.
    room = Room.objects.get(code=code)
    snapshot = room_snapshot(room)
    if room.state == Room.State.PLAYING and _all_finished_in(room, snapshot):
        ended = end_round(code, room.game_id, room.round, early=True)
        if ended:
            return ended
    return [protocol.message("room", **snapshot)]


def after_finish(code, room, finished, everyone):
    """Messages after a player's round ended by `done` or by reaching the
    target (`finished`: its `player_finished`): that message alone, or with
    the round's end when `everyone` seated has finished (read in the
    finish's transaction, with the room locked, so that of players finishing
    at once only the last finds everyone done).

    No `room` snapshot follows a finish: `player_finished` says who finished
    with their score, all a finish changes in the snapshot, and clients mark
    it there. Snapshots were 0.36 messages a player received per guess at
    128 players, most of them after a finish (bench/results/
    load-128-messages-by-type.json), and the read after a `done` was a fifth
    of its database time in a profile. The finish still counts the room's
    revision (in its transaction): a player joining as it happens catches up
    by that count (snapshots.catch_up_after), and every later snapshot shows
    it.
    """
    if everyone:  # the callers finished a player of the round being played
        ended = end_round(code, room.game_id, room.round, early=True)
        if ended:
            return [finished] + ended
    return [finished]


def _all_finished_in(room, snapshot):
    """all_finished, as a snapshot of the room's current round shows it."""
    teacher = room.host_player if room.classroom else None
    return all(player["finished"] for player in snapshot["players"]
               if not player["gone"] and not (teacher and player["id"] == teacher))


def end_round(code, game_id, round_number, *, early=False):
    """End the round if it is still on and due (time up, or `early`: all finished).

    Exactly one caller wins; the others get [].
    """
    at = clock.now()
    with transaction.atomic():
        room = lock_room(code)
        if (room.state != Room.State.PLAYING or room.game_id != game_id
                or room.round != round_number):
            return []
        if at < closes_at(room) and not (early and all_finished(room)):
            return []
        at = min(at, room.ends_at)
        seats = {s.pk: s for s in _drawing_seats(room)}
        # One read of the drawings the round stored already, rather than a
        # store attempt (two reads) per finished player below.
        from recognizer.models import Drawing

        stored = set(Drawing.objects.filter(game_id=game_id, round_number=round_number)
                     .order_by().values_list("player_id", flat=True))
        present = set()
        # Locked as they are read: finish needs each as it is now (see there).
        for progress in RoundProgress.objects.select_for_update().filter(
                room=room, game_id=game_id, round_number=round_number, seat_id__in=list(seats)):
            present.add(progress.seat_id)
            seat = seats[progress.seat_id]
            if not progress.finished:
                # Away when the round ended: the drawing they left counts.
                reason = "time" if seat.connected else "disconnected"
                finish(room, seat, progress, reason, at, locked=True)
            elif (progress.drawing is not None and not seat.opt_out
                  and seat.player_id not in stored):
                # Finished while opted out, then opted back in: the choice
                # in force when the round ends decides.
                store_drawing(room, seat, progress)
        forget_opted_out_drawings(room, seats.values(), game_id, round_number)
        # Those who drew nothing get a row too: the round's results are then
        # fixed, whoever joins the room later.
        RoundProgress.objects.bulk_create([
            RoundProgress(room=room, seat=seat, game_id=game_id, round_number=round_number,
                          target=room.target, finished=True, finished_at=at, reason="absent")
            for pk, seat in seats.items() if pk not in present and not seat.gone
        ])
        final = round_number >= room.game_rounds
        room.state = Room.State.FINISHED if final else Room.State.RESULTS
        room.ends_at = None if final else clock.now() + timedelta(seconds=room.results_seconds)
        room.save(update_fields=["state", "ends_at"])
        count_change(room)
    return round_end_messages(room, game_id, round_number) + [room_message(room, counted=True)]


def next_round(code, game_id, round_number):
    """Start the round after `round_number` once the results pause is over."""
    at = clock.now()
    with transaction.atomic():
        room = lock_room(code)
        if (room.state != Room.State.RESULTS or room.game_id != game_id
                or room.round != round_number or at < room.ends_at):
            return []
        return _begin_round(room, round_number + 1, at)


def advance(code):
    """Move the room on if its current phase's deadline passed. Messages or []."""
    room = Room.objects.filter(code=code).first()
    if room is None or room.ends_at is None or clock.now() < closes_at(room):
        if room is not None and room.state == Room.State.PLAYING and all_finished(room):
            return end_round(code, room.game_id, room.round, early=True)
        return []
    if room.state == Room.State.PLAYING:
        return end_round(code, room.game_id, room.round)
    if room.state == Room.State.RESULTS:
        return next_round(code, room.game_id, room.round)
    return []

