"""Rooms, seats and rounds in the database: the game's state transitions.

Synchronous functions, safe to call from several processes at once. Every
change that must happen once locks the room row first (SELECT ... FOR UPDATE
on PostgreSQL; SQLite serialises writers by itself) and re-checks the state
it expects, so when two processes race to end the same round one of them
finds it already ended and does nothing.

Functions that change the game return the protocol messages to broadcast to
the room, in order; the caller sends them.
"""

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, FloatField, Q, Value
from django.db.models.functions import Greatest

from digitsite.game import clock, rules
from digitsite.game.codes import generate_code, normalise_code
from digitsite.game.rules import GameError
from digitsite.models import Room, RoundProgress, Seat

# A room nobody has connected to yet is listed for this long after creation.
NEW_ROOM_LISTED = timedelta(minutes=10)


def now():
    return clock.now()


def epoch_ms(moment):
    return None if moment is None else int(moment.timestamp() * 1000)


GRACE = timedelta(seconds=rules.ROUND_GRACE_SECONDS)


def closes_at(room):
    """When the server acts on the current phase: the round closes a grace after its end."""
    if room.ends_at is None:
        return None
    return room.ends_at + GRACE if room.state == Room.State.PLAYING else room.ends_at


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _default(value, name):
    return getattr(settings, name) if value is None else value


# -- the API the pages use ----------------------------------------------------


def create_room(host_name="", *, rounds=None, seconds=None, max_players=None, solo=False,
                target_confidence=None, results_seconds=None):
    """Create a room in the lobby; the first player to join it becomes the host."""
    room_settings = rules.room_settings(
        rounds=_default(rounds, "GAME_ROUNDS"),
        seconds=_default(seconds, "GAME_ROUND_SECONDS"),
        results_seconds=(
            getattr(settings, "GAME_RESULTS_SECONDS", 5.0)
            if results_seconds is None else results_seconds
        ),
        max_players=_default(max_players, "GAME_MAX_PLAYERS"),
        target_confidence=_default(target_confidence, "GAME_TARGET_CONFIDENCE"),
        solo=solo,
    )
    title = rules.clean_name(host_name) if host_name else ""
    for _ in range(20):
        try:
            with transaction.atomic():
                return Room.objects.create(
                    code=generate_code(),
                    title=title,
                    rounds=room_settings.rounds,
                    round_seconds=room_settings.seconds,
                    results_seconds=room_settings.results_seconds,
                    max_players=room_settings.max_players,
                    target_confidence=room_settings.target_confidence,
                    solo=room_settings.solo,
                    game_rounds=room_settings.rounds,
                )
        except IntegrityError:
            continue  # the code was taken: draw another
    raise GameError("internal", "could not find a free room code; try again")


def get_room(code):
    """The room for a code (any case, or a pasted link), or None."""
    code = normalise_code(code)
    if code is None:
        return None
    return Room.objects.filter(code=code).first()


def room_exists(code):
    return Room.objects.filter(code=code).exists()


def open_rooms(limit=50):
    """Rooms a visitor can join: not solo, someone there (or just created), a seat free."""
    fresh = now() - NEW_ROOM_LISTED
    rooms = (
        Room.objects.filter(solo=False)
        .annotate(
            players=Count("seats", filter=Q(seats__gone=False)),
            online=Count("seats", filter=Q(seats__gone=False, seats__connected=True)),
        )
        .filter(Q(online__gt=0) | Q(created__gte=fresh, players=0))
        .filter(players__lt=F("max_players"))
        .order_by("-created")[:limit]
    )
    return [
        {"code": room.code, "title": room.title, "players": room.players,
         "max_players": room.max_players, "state": room.state}
        for room in rooms
    ]


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
        players.append({
            "id": seat.player_id,
            "name": seat.name,
            "score": seat.score,
            "connected": seat.connected,
            "gone": seat.gone,
            "host": seat.player_id == room.host_player,
            "finished": seat.pk in finished,
            "opt_out": seat.opt_out,
            "rejoin_until": rejoin_until,
        })
    playing = room.state in (Room.State.PLAYING, Room.State.RESULTS)
    return {
        "code": room.code,
        "state": room.state,
        "game": room.game_id or None,
        "round": room.round,
        "rounds": room.game_rounds,
        "target": room.target if playing else None,
        "ends_at": epoch_ms(room.ends_at) if playing else None,
        "server_time": epoch_ms(now()),
        "host": room.host_player or None,
        "rule": rules.SCORING_RULE,
        "settings": {
            "rounds": room.rounds,
            "seconds": room.round_seconds,
            "results_seconds": room.results_seconds,
            "max_players": room.max_players,
            "target_confidence": room.target_confidence,
            "solo": room.solo,
        },
        "players": players,
    }


def room_message(room):
    return {"type": "room", **room_snapshot(room)}


# -- joining and leaving ------------------------------------------------------


@dataclass
class JoinResult:
    room: Room
    seat: Seat
    token: str
    rejoined: bool
    # The channel of an older connection that held the seat: it must close.
    replaced_channel: str = ""
    events: list = field(default_factory=list)
    # Messages only the joiner needs: the last results when between rounds.
    catch_up: list = field(default_factory=list)


def _lock_room(code):
    room = Room.objects.select_for_update().filter(code=code).first()
    if room is None:
        raise GameError("room_not_found", f"there is no room {code}")
    return room


def _ensure_host(room):
    """Keep a connected host: hand over to the longest-seated connected player."""
    seats = list(Seat.objects.filter(room=room, gone=False))
    current = next((s for s in seats if s.player_id == room.host_player), None)
    if current is not None and current.connected:
        return False
    candidate = next((s for s in seats if s.connected), None)
    if candidate is None:
        candidate = current or (seats[0] if seats else None)
    new_host = candidate.player_id if candidate else ""
    if new_host == room.host_player:
        return False
    room.host_player = new_host
    Room.objects.filter(pk=room.pk).update(host_player=new_host)
    return True


def _expire(room, at):
    cutoff = at - timedelta(seconds=settings.GAME_REJOIN_SECONDS)
    return Seat.objects.filter(
        room=room, gone=False, connected=False, disconnected_at__lte=cutoff
    ).update(gone=True, channel_name="")


def join(code, *, name=None, token=None, user=None, channel_name="", opt_out=None):
    """Seat a player (or give a returning one their seat back)."""
    at = now()
    user = user if user is not None and getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        room = _lock_room(code)
        _expire(room, at)
        seat = None
        if isinstance(token, str) and token:
            seat = Seat.objects.filter(room=room, token_hash=hash_token(token), gone=False).first()
        if seat is None and user is not None:
            seat = Seat.objects.filter(room=room, user=user, gone=False).first()
        new_token = secrets.token_urlsafe(24)
        replaced = ""
        if seat is not None:
            rejoined = True
            if seat.connected and seat.channel_name != channel_name:
                replaced = seat.channel_name
            seat.token_hash = hash_token(new_token)
            seat.connected = True
            seat.channel_name = channel_name
            seat.last_seen = at
            seat.disconnected_at = None
            if opt_out is not None:
                seat.opt_out = bool(opt_out)
            seat.save(update_fields=["token_hash", "connected", "channel_name", "last_seen",
                                     "disconnected_at", "opt_out"])
        else:
            rejoined = False
            if user is not None:
                display = user.get_username()[: rules.NAME_MAX_LENGTH]
            else:
                display = rules.clean_name(name)
            if Seat.objects.filter(room=room, gone=False).count() >= room.max_players:
                raise GameError("room_full", f"room {room.code} is full "
                                             f"({room.max_players} players)")
            seat = Seat.objects.create(
                room=room, player_id=uuid.uuid4().hex[:12], token_hash=hash_token(new_token),
                name=display, user=user, connected=True, channel_name=channel_name,
                last_seen=at, opt_out=bool(opt_out),
            )
        _ensure_host(room)
        room.refresh_from_db()
    result = JoinResult(room, seat, new_token, rejoined, replaced)
    result.events = [room_message(room)]
    result.catch_up = _results_shown(room)
    return result


def _results_shown(room):
    """The last round's results (and the leaderboard) while the room shows them."""
    if room.state in (Room.State.RESULTS, Room.State.FINISHED) and room.game_id:
        return _round_end_messages(room, room.game_id, room.round)
    return []


def catch_up(code):
    """What a connection that missed the room's broadcasts needs to send its
    client: the room snapshot, then the results it shows. [] without a room."""
    room = Room.objects.filter(code=code).first()
    if room is None:
        return []
    return [room_message(room)] + _results_shown(room)


def disconnect(player_id, channel_name):
    """The connection holding a seat closed: keep the seat for the rejoin window.

    A player who disconnects during a round has finished it, so their drawing
    is stored now rather than depending on a timer in some process.
    """
    seat = Seat.objects.filter(player_id=player_id).select_related("room").first()
    if seat is None:
        return []
    at = now()
    events = []
    with transaction.atomic():
        room = _lock_room(seat.room.code)
        changed = Seat.objects.filter(
            pk=seat.pk, channel_name=channel_name, connected=True
        ).update(connected=False, channel_name="", disconnected_at=at, last_seen=at)
        if not changed:
            return []  # replaced by a newer connection, or already left
        seat.refresh_from_db()
        events += _end_players_round(room, seat, "disconnected", at, drew_only=True)
        _ensure_host(room)
    return events + _after_change(room.code)


def _end_players_round(room, seat, reason, at, *, drew_only=False):
    """Finish the seat's part in the round being played, if it has one (with a
    drawing, when `drew_only`). Returns the `player_finished` message in a
    list, or []. Runs with the room locked."""
    if room.state != Room.State.PLAYING:
        return []
    progress = RoundProgress.objects.filter(seat=seat, game_id=room.game_id,
                                            round_number=room.round)
    if drew_only:
        progress = progress.filter(drawing__isnull=False)
    progress = progress.first()
    finished = progress and _finish(room, seat, progress, reason, at)
    return [finished] if finished else []


def heartbeat(code, player_id, channel_name):
    """A live connection renews its seat, and releases seats of dead processes.

    A process that dies without closing its sockets leaves its players'
    seats marked connected: they would keep the host role and count as still
    drawing for ever. Whichever live connection in the room notices a seat
    not renewed for SEAT_STALE_SECONDS disconnects it as if its socket had
    closed then. Returns messages to broadcast (none when nothing changed).
    """
    at = now()
    renewed = Seat.objects.filter(player_id=player_id, channel_name=channel_name,
                                  connected=True).update(last_seen=at)
    cutoff = at - timedelta(seconds=rules.SEAT_STALE_SECONDS)
    stale = Seat.objects.filter(room__code=code, connected=True, gone=False,
                                last_seen__lt=cutoff)
    if renewed and not stale.exists():
        return []
    events = []
    with transaction.atomic():
        room = _lock_room(code)
        if not renewed:
            # This connection was itself taken for dead (a stalled process):
            # it takes its seat back unless the seat moved on meanwhile.
            Seat.objects.filter(player_id=player_id, room=room, connected=False,
                                gone=False, channel_name="").update(
                connected=True, channel_name=channel_name, last_seen=at,
                disconnected_at=None)
        for seat in list(stale.filter(room=room)):
            # Conditional on the seat being unchanged since it was read.
            if not Seat.objects.filter(pk=seat.pk, channel_name=seat.channel_name,
                                       connected=True, last_seen__lt=cutoff).update(
                    connected=False, channel_name="", disconnected_at=seat.last_seen):
                continue
            seat.refresh_from_db()
            events += _end_players_round(room, seat, "disconnected", at, drew_only=True)
        _ensure_host(room)
    return events + _after_change(code)


def leave(player_id):
    """The player gives the seat up for good."""
    seat = Seat.objects.filter(player_id=player_id).select_related("room").first()
    if seat is None:
        return []
    at = now()
    events = []
    with transaction.atomic():
        room = _lock_room(seat.room.code)
        seat.refresh_from_db()
        if seat.gone:
            return []
        events += _end_players_round(room, seat, "left", at)
        Seat.objects.filter(pk=seat.pk).update(
            gone=True, connected=False, channel_name="", disconnected_at=at, last_seen=at
        )
        _ensure_host(room)
    return events + _after_change(room.code)


def expire_seats(code):
    """Seats whose rejoin window ran out become gone; returns messages if any did."""
    with transaction.atomic():
        room = _lock_room(code)
        if not _expire(room, now()):
            return []
        _ensure_host(room)
    return _after_change(code)


def set_opt_out(player_id, value):
    seat = Seat.objects.filter(player_id=player_id).select_related("room").first()
    if seat is None:
        return []
    Seat.objects.filter(pk=seat.pk).update(opt_out=bool(value))
    return [room_message(Room.objects.get(pk=seat.room_id))]


# -- games and rounds ---------------------------------------------------------


def start_game(code, player_id, rounds=None):
    """The host starts a game (or the next one: play again)."""
    at = now()
    with transaction.atomic():
        room = _lock_room(code)
        if room.host_player != player_id:
            raise GameError("not_host", "only the host can start the game")
        if room.state in (Room.State.PLAYING, Room.State.RESULTS):
            raise GameError("already_playing", "a game is already on")
        rounds = room.rounds if rounds is None else rules.check_rounds(rounds)
        # Progress of earlier games is only needed to show their results.
        RoundProgress.objects.filter(room=room).delete()
        Seat.objects.filter(room=room, gone=True).delete()
        Seat.objects.filter(room=room).update(score=0)
        targets = rules.pick_targets(rounds)
        room.game_id = uuid.uuid4().hex
        room.game_number += 1
        room.game_rounds = rounds
        room.targets = targets
        return _begin_round(room, 1, at)


def _begin_round(room, number, at):
    """Start round `number` (from 1) of the room's game at `at`; the room is locked."""
    room.round = number
    room.target = room.targets[number - 1]
    room.state = Room.State.PLAYING
    room.round_started_at = at
    room.ends_at = at + timedelta(seconds=room.round_seconds)
    room.save()
    return [round_start_message(room), room_message(room)]


def round_start_message(room):
    return {
        "type": "round_start",
        "game": room.game_id,
        "round": room.round,
        "rounds": room.game_rounds,
        "target": room.target,
        "seconds": room.round_seconds,
        "ends_at": epoch_ms(room.ends_at),
        "server_time": epoch_ms(now()),
    }


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


def _progress_updates(prediction, p_target, drawing, input_bytes):
    return {
        "drawing": drawing,
        "input_image": bytes(input_bytes),
        "prediction": prediction.digit,
        "probabilities": [float(p) for p in prediction.probabilities],
        "model_version": prediction.version or "",
        "target_probability": p_target,
        "best_target_probability": Greatest(
            "best_target_probability", Value(p_target, output_field=FloatField())),
        "guesses": F("guesses") + 1,
    }


def record_guess(code, player_id, game_id, round_number, *, drawing, input_bytes, prediction,
                 target=None, received_at=None):
    """Keep a scored drawing as the player's latest for the round.

    Returns (accepted, messages). Not accepted when the round or the player's
    part in it is over. Reaching the room's target confidence finishes the
    player's round at once. `target`, when the caller knows it, allows the
    common case (a later drawing that does not reach the target) in one
    conditional UPDATE instead of a locked transaction. `received_at`, when
    the server got the drawing, lets a drawing that arrived in time but whose
    write came late (an overloaded server) still be kept.
    """
    at = now()
    if target is not None:
        p_target = float(prediction.probabilities[target])
        # Every condition is in the WHERE clause, so a round that ended or a
        # player who finished meanwhile simply matches no row.
        if RoundProgress.objects.filter(
            seat__player_id=player_id, game_id=game_id, round_number=round_number,
            target=target, finished=False,
            room__code=code, room__state=Room.State.PLAYING, room__game_id=game_id,
            room__round=round_number, room__ends_at__gt=at - GRACE,
            room__target_confidence__gt=p_target,
        ).update(**_progress_updates(prediction, p_target, drawing, input_bytes)):
            return True, []
    with transaction.atomic():
        room = _lock_room(code)

        def late():
            return received_at is not None and _record_late(
                room, player_id, game_id, round_number, drawing=drawing,
                input_bytes=input_bytes, prediction=prediction, received_at=received_at)

        if (room.state != Room.State.PLAYING or room.game_id != game_id
                or room.round != round_number or at >= closes_at(room)):
            return late(), []
        seat = Seat.objects.filter(player_id=player_id, room=room).first()
        if seat is None or seat.gone:
            return False, []
        progress, _ = RoundProgress.objects.get_or_create(
            seat=seat, game_id=game_id, round_number=round_number,
            defaults={"room": room, "target": room.target},
        )
        p_target = float(prediction.probabilities[room.target])
        reached = p_target >= room.target_confidence
        updates = _progress_updates(prediction, p_target, drawing, input_bytes)
        if reached:
            updates["reached_at"] = at
        if not RoundProgress.objects.filter(pk=progress.pk, finished=False).update(**updates):
            # The player's round ended (`done`, a disconnect) while this
            # drawing waited for its write.
            return late(), []
        if not reached:
            return True, []
        progress.refresh_from_db()
        finished = _finish(room, seat, progress, "reached", at)
    return True, [finished] + _after_change(code)


def _record_late(room, player_id, game_id, round_number, *, drawing, input_bytes, prediction,
                 received_at):
    """Keep a drawing that reached the server before the player's round ended
    but was written after, when the round kept no drawing for the player.

    Under overload the write can land after the round closed (even after the
    next game began): the player drew in time, so the drawing is still kept.
    The points announced with the round's results stay as they were. Runs
    with the room locked.
    """
    progress = (RoundProgress.objects.select_related("seat")
                .filter(seat__player_id=player_id, room=room, game_id=game_id,
                        round_number=round_number, finished=True, drawing__isnull=True)
                .first())
    if (progress is None or progress.seat.gone or progress.finished_at is None
            or received_at > progress.finished_at):
        return False
    updates = _progress_updates(prediction, float(prediction.probabilities[progress.target]),
                                drawing, input_bytes)
    if not RoundProgress.objects.filter(pk=progress.pk, drawing__isnull=True).update(**updates):
        return False
    progress.refresh_from_db()
    if not progress.seat.opt_out:
        _store_drawing(room, progress.seat, progress)
    return True


def finish_player(code, player_id, game_id, round_number, reason):
    """The player's round ends (`done`). Returns messages, or raises GameError."""
    at = now()
    with transaction.atomic():
        room = _lock_room(code)
        if room.state != Room.State.PLAYING:
            raise GameError("not_playing", "no round is being played")
        if room.game_id != game_id or room.round != round_number:
            raise GameError("wrong_round", f"round {round_number} is not the current round")
        seat = Seat.objects.filter(player_id=player_id, room=room).first()
        if seat is None or seat.gone:
            raise GameError("not_joined", "you have no seat in this room")
        progress, _ = RoundProgress.objects.get_or_create(
            seat=seat, game_id=game_id, round_number=round_number,
            defaults={"room": room, "target": room.target},
        )
        finished = _finish(room, seat, progress, reason, at)
        if finished is None:
            raise GameError("already_finished", "your round is already over")
    return [finished] + _after_change(code)


def _seconds_between(start, end):
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0), 3)


def _finish(room, seat, progress, reason, at):
    """Finish one player's round once: points, score and the stored drawing.

    Runs inside the caller's transaction with the room locked. Returns the
    `player_finished` message, or None if the round was already finished.
    """
    at = min(at, room.ends_at) if room.ends_at else at
    if not RoundProgress.objects.filter(pk=progress.pk, finished=False).update(
            finished=True, finished_at=at, reason=reason):
        return None
    progress.refresh_from_db()
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
    RoundProgress.objects.filter(pk=progress.pk).update(points=points, seconds=seconds)
    Seat.objects.filter(pk=seat.pk).update(score=F("score") + points)
    seat.refresh_from_db()
    if progress.drawing is not None and not seat.opt_out:
        _store_drawing(room, seat, progress)
    return {
        "type": "player_finished",
        "round": progress.round_number,
        "player": seat.player_id,
        "name": seat.name,
        "reason": reason,
        "points": points,
        "score": seat.score,
        "seconds": seconds,
        "target_probability": progress.target_probability,
    }


def _store_drawing(room, seat, progress):
    from recognizer.models import Drawing, ModelVersion

    version = (ModelVersion.objects.filter(version=progress.model_version).first()
               if progress.model_version else None)
    # The unique constraint (game, round, player) makes a second attempt a no-op.
    Drawing.objects.get_or_create(
        game_id=progress.game_id,
        round_number=progress.round_number,
        player_id=seat.player_id,
        defaults={
            "label": progress.target,
            "strokes": progress.drawing,
            "input_image": bytes(progress.input_image),
            "prediction": progress.prediction,
            "probabilities": progress.probabilities,
            "model_version": version,
            "player_name": seat.name,
            "user_id": seat.user_id,
            "room_code": room.code,
            "source": "game",
            "status": Drawing.Status.PENDING,
        },
    )


def _all_finished(room):
    active = list(
        Seat.objects.filter(room=room, gone=False, connected=True).values_list("pk", flat=True)
    )
    done = RoundProgress.objects.filter(
        room=room, game_id=room.game_id, round_number=room.round, finished=True,
        seat_id__in=active,
    ).count()
    return done >= len(active)


def _after_change(code):
    """Messages after a player's state changed: the snapshot, and the round's end
    when nobody connected is still drawing."""
    room = Room.objects.get(code=code)
    if room.state == Room.State.PLAYING and _all_finished(room):
        ended = end_round(code, room.game_id, room.round, early=True)
        if ended:
            return ended
    return [room_message(room)]


def end_round(code, game_id, round_number, *, early=False):
    """End the round if it is still on and due (time up, or `early`: all finished).

    Exactly one caller wins; the others get [].
    """
    at = now()
    with transaction.atomic():
        room = _lock_room(code)
        if (room.state != Room.State.PLAYING or room.game_id != game_id
                or room.round != round_number):
            return []
        if at < closes_at(room) and not (early and _all_finished(room)):
            return []
        at = min(at, room.ends_at)
        seats = {s.pk: s for s in Seat.objects.filter(room=room)}
        present = set()
        for progress in RoundProgress.objects.filter(
                room=room, game_id=game_id, round_number=round_number):
            present.add(progress.seat_id)
            if not progress.finished:
                _finish(room, seats[progress.seat_id], progress, "time", at)
        # Those who drew nothing get a row too: the round's results are then
        # fixed, whoever joins the room later.
        RoundProgress.objects.bulk_create([
            RoundProgress(room=room, seat=seat, game_id=game_id, round_number=round_number,
                          target=room.target, finished=True, finished_at=at, reason="absent")
            for pk, seat in seats.items() if pk not in present and not seat.gone
        ])
        final = round_number >= room.game_rounds
        room.state = Room.State.FINISHED if final else Room.State.RESULTS
        room.ends_at = None if final else now() + timedelta(seconds=room.results_seconds)
        room.save(update_fields=["state", "ends_at"])
    return _round_end_messages(room, game_id, round_number) + [room_message(room)]


def next_round(code, game_id, round_number):
    """Start the round after `round_number` once the results pause is over."""
    at = now()
    with transaction.atomic():
        room = _lock_room(code)
        if (room.state != Room.State.RESULTS or room.game_id != game_id
                or room.round != round_number or at < room.ends_at):
            return []
        return _begin_round(room, round_number + 1, at)


def advance(code):
    """Move the room on if its current phase's deadline passed. Messages or []."""
    room = Room.objects.filter(code=code).first()
    if room is None or room.ends_at is None or now() < closes_at(room):
        if room is not None and room.state == Room.State.PLAYING and _all_finished(room):
            return end_round(code, room.game_id, room.round, early=True)
        return []
    if room.state == Room.State.PLAYING:
        return end_round(code, room.game_id, room.round)
    if room.state == Room.State.RESULTS:
        return next_round(code, room.game_id, room.round)
    return []


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
        results.append({
            "player": seat.player_id,
            "name": seat.name,
            "drawing": entry.drawing,
            "input": input_data_url(entry.input_image),
            "digit": entry.prediction,
            "probabilities": entry.probabilities,
            "target_probability": entry.target_probability,
            "best_target_probability": entry.best_target_probability,
            "reached": entry.reached_at is not None,
            "points": entry.points,
            "score": seat.score,
            "seconds": entry.seconds,
            "reason": entry.reason or "time",
        })
    return results


def leaderboard(room, game_id):
    """The game's players (those in the room at some round's end), best first."""
    played = RoundProgress.objects.filter(room=room, game_id=game_id).values("seat_id")
    return rules.leaderboard([
        {"player": s.player_id, "name": s.name, "score": s.score, "gone": s.gone}
        for s in Seat.objects.filter(room=room, pk__in=played)
    ])


def _round_end_messages(room, game_id, round_number):
    final = room.state == Room.State.FINISHED
    target = room.targets[round_number - 1] if room.targets else room.target
    messages = [{
        "type": "round_end",
        "game": game_id,
        "round": round_number,
        "rounds": room.game_rounds,
        "target": target,
        "final": final,
        "next_round_at": None if final else epoch_ms(room.ends_at),
        "server_time": epoch_ms(now()),
        "results": round_results(room, game_id, round_number),
    }]
    if final:
        messages.append({
            "type": "game_over",
            "game": game_id,
            "rounds": room.game_rounds,
            "rule": rules.SCORING_RULE,
            "leaderboard": leaderboard(room, game_id),
        })
    return messages
