"""The end-of-game gallery: every drawing of the game, and a player's
correction of their own ("this was wrong, it was a ...").

After `game_over` each connection reads the gallery for its own client
(digitsite.game.session): every player's drawing of every round, as what the
model saw of it (the 28x28 input), the target, the model's reading and how
sure it was. It is what the rounds' `round_end` messages showed, in one
place, for a player who came late or reloaded too.

Bounds:
- a room has at most rules.MAX_PLAYERS (8) players and a game at most
  rules.MAX_ROUNDS (20) rounds: at most 160 drawings. Each is the input as
  a PNG data URL (430 bytes for a drawn 8) and about 170 bytes of fields:
  at most about 95 kB, once a game per player (160 thin diagonal inputs
  measured 64 kB; tests/test_game_gallery.py holds it under 100 kB);
- a class's student sees only their own drawings (a student is never sent
  another student's drawing) and the teacher gets none (the projector has
  the class's own summary), so a class of 40 costs no more than a room;
- the data is the room's round progress, which retention deletes with the
  room (digitsite.game.retention): the gallery, and the corrections it
  offers, last as long as the room's data.

A correction is the player's word on a drawing stored as training data; it
is recorded for the reviewers by recognizer.collection.corrections, once
per drawing, and only for the player's own drawing: the seat is the
connection's own, never one named in the message.
"""

import asyncio

from digitsite.game import protocol, snapshots
from digitsite.game.database import db
from digitsite.game.models import Room, RoundProgress, Seat
from digitsite.game.rules import GameError
from recognizer.collection.corrections import CorrectionError, record_player_label
from recognizer.models import Drawing

# What _room_gallery answers for a class: each student's gallery is their own.
PER_PLAYER = object()
# The room-wide reads on their way, by (room code, game id): at a game's end
# every connection of a room asks for the same gallery at once. Read once per
# room, a room of 8 with 3 rounds made 8 queries and 192 PNG encodings of the
# same 24 inputs; in the load benchmark (a game every 40 s or so) that was 13%
# of the time the server held the GIL.
_room_reads = {}


async def gallery_for(code, game_id, player_id):
    """gallery_message for one connection, the room's read shared by every
    connection of the process that asks while it runs."""
    key = (code, game_id)
    read = _room_reads.get(key)
    if read is None:
        read = asyncio.ensure_future(db(_room_gallery)(code, game_id))
        _room_reads[key] = read
        read.add_done_callback(lambda _: _room_reads.pop(key, None))
    # shield: one connection closing does not cancel the others' read.
    shared = await asyncio.shield(read)
    if shared is PER_PLAYER:
        return await db(gallery_message)(code, game_id, player_id)
    return shared


def _room_gallery(code, game_id):
    """The gallery every player of an ordinary room sees, None, or PER_PLAYER for a class."""
    room = Room.objects.filter(code=code).first()
    if room is not None and room.classroom:
        return PER_PLAYER
    return gallery_message(code, game_id, None, room=room)


def gallery_message(code, game_id, player_id, room=None):
    """The `gallery` of game `game_id` of room `code` as player `player_id`
    may see it, or None (no such room or game; a class's teacher).

    In an ordinary room every player sees the same gallery (`player_id` may
    be None); in a class, a student sees only their own drawings."""
    room = room or Room.objects.filter(code=code).first()
    if room is None or not game_id:
        return None
    if room.classroom and (player_id is None or room.host_player == player_id):
        return None
    # Every round a player drew in: the model's reading is kept even when an
    # opted-out player's drawing was deleted (the scoreboard shows it).
    rows = (RoundProgress.objects.filter(room=room, game_id=game_id, prediction__isnull=False)
            .select_related("seat").order_by("round_number", "seat__joined", "seat_id"))
    if room.classroom:
        rows = rows.filter(seat__player_id=player_id)
    rows = list(rows)
    if not rows:
        return None
    stored = {(pid, number): label for pid, number, label in Drawing.objects.filter(
        game_id=game_id, player_id__in={row.seat.player_id for row in rows},
    ).values_list("player_id", "round_number", "player_label")}
    return protocol.message(
        "gallery",
        game=game_id,
        rounds=room.game_rounds if room.game_id == game_id else max(r.round_number for r in rows),
        drawings=[_entry(row, stored) for row in rows],
    )


def _entry(row, stored):
    key = (row.seat.player_id, row.round_number)
    digit = row.prediction
    probability = (float(row.probabilities[digit])
                   if digit is not None and row.probabilities else None)
    return protocol.record(
        "gallery_drawing",
        player=row.seat.player_id,
        name=row.seat.name,
        round=row.round_number,
        target=row.target,
        input=snapshots.input_data_url(row.input_image),
        digit=digit,
        probability=probability,
        target_probability=row.target_probability,
        drawing_deleted=row.drawing_deleted,
        kept=key in stored,
        correction=stored.get(key),
    )


# The collection's refusals as the protocol's errors.
CORRECTION_ERRORS = {
    "not_kept": "no_drawing",
    "not_a_digit": "bad_message",
    "same_as_guess": "bad_message",
    "already_corrected": "already_corrected",
}


def correct(code, player_id, game_id, round_number, digit):
    """Record player `player_id`'s word that their drawing of round
    `round_number` of game `game_id` is a `digit`. Returns the `corrected`
    message for their client; GameError otherwise."""
    seat = Seat.objects.filter(player_id=player_id, room__code=code).first()
    if seat is None:
        raise GameError("not_joined", "you have no seat in this room")
    progress = RoundProgress.objects.filter(seat=seat, game_id=game_id,
                                            round_number=round_number).first()
    if progress is None or progress.drawing_deleted or progress.prediction is None:
        raise GameError("no_drawing", "no drawing of yours is kept for that round")
    if not progress.finished:
        raise GameError("no_drawing", "that round is not over for you yet")
    try:
        record_player_label(game_id=game_id, round_number=round_number, player_id=player_id,
                            digit=digit)
    except CorrectionError as exc:
        raise GameError(CORRECTION_ERRORS[exc.code], exc.message) from exc
    return protocol.message("corrected", game=game_id, round=round_number, digit=digit)
