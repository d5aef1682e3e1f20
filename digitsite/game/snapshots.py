"""What a room shows, read from the database: its snapshot, a round's results
and the game's leaderboard, as the protocol's messages (digitsite.game.protocol).

Reads only. The functions that change the game (seats, rounds, guesses)
return these messages for their callers to broadcast; a connection that
missed broadcasts gets them again from `catch_up`.
"""

import base64
from datetime import timedelta

from django.conf import settings
from django.db.models import F

from digitsite.game import clock, protocol, rules
from digitsite.game.models import Room, RoundProgress, Seat
from digitsite.game.protocol import epoch_ms
from recognizer.prepared_queries import PreparedQuery


def room_snapshot(room, seats=None):
    """The fields of the protocol's `room` message."""
    if seats is None:
        seats = list(Seat.objects.filter(room=room))
    finished = set()
    if room.state in (Room.State.PLAYING, Room.State.RESULTS) and room.game_id:
        finished = set(
            RoundProgress.objects.filter(
                room=room, game_id=room.game_id, round_number=room.round, finished=True
            ).values_list("seat_id", flat=True)
        )
    rejoin = timedelta(seconds=settings.GAME_REJOIN_SECONDS)
    players = []
    for seat in seats:
        rejoin_until = None
        if not seat.connected and not seat.gone and seat.disconnected_at:
            rejoin_until = epoch_ms(seat.disconnected_at + rejoin)
        players.append(protocol.record(
            "player",
            id=seat.player_id,
            name=seat.name,
            score=seat.score,
            connected=seat.connected,
            gone=seat.gone,
            host=seat.player_id == room.host_player,
            finished=seat.pk in finished,
            opt_out=seat.opt_out,
            rejoin_until=rejoin_until,
        ))
    playing = room.state in (Room.State.PLAYING, Room.State.RESULTS)
    return protocol.record(
        "room",
        code=room.code,
        state=room.state,
        game=room.game_id or None,
        round=room.round,
        rounds=room.game_rounds,
        target=room.target if playing else None,
        ends_at=epoch_ms(room.ends_at) if playing else None,
        server_time=epoch_ms(clock.now()),
        revision=room.revision,
        host=room.host_player or None,
        rule=rules.SCORING_RULE,
        settings=protocol.record(
            "settings",
            rounds=room.rounds,
            seconds=room.round_seconds,
            results_seconds=room.results_seconds,
            max_players=room.max_players,
            target_confidence=room.target_confidence,
            solo=room.solo,
            private=room.private,
            classroom=room.classroom,
        ),
        players=players,
    )


# Every change of a room's state counts itself: compiled once
# (recognizer/prepared_queries.py).
_COUNT_CHANGE = PreparedQuery(Room, lambda room_id: (
    Room.objects.filter(pk=room_id), {"revision": F("revision") + 1}))


def count_change(room):
    """Count a change the room will announce: its revision goes up by one.

    In the transaction that made the change when there is one, else on its
    own (one UPDATE). The counts are serialised by the row's lock
    (PostgreSQL) or the database's (SQLite).
    """
    _COUNT_CHANGE.update(room_id=room.pk)


def room_message(room, *, counted=False):
    """The room's snapshot to announce after a change, counted here unless
    the change's transaction did (`counted`).

    Connections pass on only snapshots newer than their last
    (digitsite.game.room_view.RoomView.is_stale), whatever order the
    broadcasts of different connections and processes arrive in. That is
    safe because a snapshot shows at least every change made before the
    revision it carries: a change is committed no later than its count, and
    the snapshot is read after the count (the room's row, with the revision
    it then has, first). It is read outside the count's lock: 30 joins at
    once each reading the room's seats under the lock made a join 1.35x
    slower on PostgreSQL, and a count in a transaction of its own after the
    join's, 1.35x slower on SQLite (bench/bench_class_join.py).
    """
    if not counted:
        count_change(room)
    room.refresh_from_db()
    return protocol.message("room", **room_snapshot(room))


def round_start_message(room):
    return protocol.message(
        "round_start",
        game=room.game_id,
        round=room.round,
        rounds=room.game_rounds,
        target=room.target,
        seconds=room.round_seconds,
        ends_at=epoch_ms(room.ends_at),
        server_time=epoch_ms(clock.now()),
    )


# -- results ------------------------------------------------------------------


def input_data_url(input_bytes):
    """The 28x28 input as a PNG data URL, white ink on black as the model sees it."""
    if not input_bytes:
        return None
    from recognizer.preprocessing import bytes_to_input, input_to_png

    png = input_to_png(bytes_to_input(bytes(input_bytes)))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def round_results(room, game_id, round_number):
    progress = {
        p.seat_id: p for p in RoundProgress.objects.filter(
            room=room, game_id=game_id, round_number=round_number)
    }
    results = []
    for seat in Seat.objects.filter(room=room):
        entry = progress.get(seat.pk)
        if entry is None:
            continue  # not in the room when the round ended
        results.append(protocol.record(
            "result",
            player=seat.player_id,
            name=seat.name,
            drawing=entry.drawing,
            input=input_data_url(entry.input_image),
            drawing_deleted=entry.drawing_deleted,
            digit=entry.prediction,
            probabilities=entry.probabilities,
            target_probability=entry.target_probability,
            best_target_probability=entry.best_target_probability,
            reached=entry.reached_at is not None,
            points=entry.points,
            score=seat.score,
            seconds=entry.seconds,
            reason=entry.reason or "time",
        ))
    return results


def leaderboard(room, game_id):
    """The game's players (those in the room at some round's end), best first."""
    played = RoundProgress.objects.filter(room=room, game_id=game_id).values("seat_id")
    return [protocol.record("rank", **row) for row in rules.leaderboard([
        {"player": s.player_id, "name": s.name, "score": s.score, "gone": s.gone}
        for s in Seat.objects.filter(room=room, pk__in=played)
    ])]


def round_end_messages(room, game_id, round_number):
    """`round_end` for the round, and `game_over` after the game's last one."""
    final = room.state == Room.State.FINISHED
    target = room.targets[round_number - 1] if room.targets else room.target
    messages = [protocol.message(
        "round_end",
        game=game_id,
        round=round_number,
        rounds=room.game_rounds,
        target=target,
        final=final,
        next_round_at=None if final else epoch_ms(room.ends_at),
        server_time=epoch_ms(clock.now()),
        results=round_results(room, game_id, round_number),
    )]
    if final:
        messages.append(protocol.message(
            "game_over",
            game=game_id,
            rounds=room.game_rounds,
            rule=rules.SCORING_RULE,
            leaderboard=leaderboard(room, game_id),
        ))
    return messages


def results_shown(room):
    """The last round's results (and the leaderboard) while the room shows them."""
    if room.state in (Room.State.RESULTS, Room.State.FINISHED) and room.game_id:
        return round_end_messages(room, room.game_id, room.round)
    return []


def drawing_in_progress(room, seat):
    """The seat's latest scored drawing of the round under way, while its part
    in the round is not over: what a returning player's canvas showed. None
    otherwise."""
    if room.state != Room.State.PLAYING or not room.game_id:
        return None
    return (RoundProgress.objects
            .filter(seat=seat, game_id=room.game_id, round_number=room.round, finished=False)
            .values_list("drawing", flat=True).first())


def catch_up(code):
    """What a connection that missed the room's broadcasts needs to send its
    client: the room snapshot, then the results it shows. [] without a room."""
    room = Room.objects.filter(code=code).first()
    if room is None:
        return []
    # As it is, its revision not counted up: nothing changed.
    return [protocol.message("room", **room_snapshot(room))] + results_shown(room)


def catch_up_after(code, revision):
    """catch_up(code) if the room counted a change after `revision`, else []:
    one indexed read when nothing was missed."""
    latest = Room.objects.filter(code=code).values_list("revision", flat=True).first()
    return catch_up(code) if latest is not None and latest > revision else []
