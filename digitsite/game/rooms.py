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
import math
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Greatest

from digitsite.game import clock, names, rules
from digitsite.game.codes import generate_code, normalise_code
from digitsite.game.models import Room, RoundProgress, Seat
from digitsite.game.rules import GameError

# A room nobody has connected to yet is listed for this long after creation.
NEW_ROOM_LISTED = timedelta(minutes=10)
# The lobby closes idle rooms at most this often per process: the sweep reads
# the open rooms, cheap but not free, and the lobby is polled every 4 s by
# every visitor of the home page.
SWEEP_EVERY_SECONDS = 30.0
# Idle rooms closed per write, and the time the lobby's sweep may take.
CLOSE_BATCH = 500
SWEEP_BUDGET_SECONDS = 0.2
# Removed players a room remembers; beyond it the oldest are forgotten (a
# host removes a few players, not thousands).
MAX_KICKED = 100


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


def hash_session(session_key):
    """What is kept of a Django session key: its hash ("" without a session)."""
    if not session_key:
        return ""
    return hashlib.sha256(b"session:" + session_key.encode()).hexdigest()


def _default(value, name):
    return getattr(settings, name) if value is None else value


# -- the API the pages use ----------------------------------------------------


def check_creation_limit(*, creator_ip=None, creator_session="", at=None):
    """Refuse a new room when this client made too many lately.

    GameError('too_many_rooms') says when the next one is allowed (also as
    its `retry_after`, in seconds). Counted in the database (indexed by
    creator and time), so every server process sees the same count.
    """
    at = at or now()
    window = timedelta(seconds=settings.GAME_ROOMS_WINDOW_SECONDS)
    since = at - window
    waits = []
    for field_name, value, limit in (
            ("creator_session", creator_session, settings.GAME_ROOMS_PER_SESSION),
            ("creator_ip", creator_ip, settings.GAME_ROOMS_PER_IP)):
        if not value or limit <= 0:
            continue
        recent = list(Room.objects.filter(**{field_name: value}, created__gte=since)
                      .order_by("-created").values_list("created", flat=True)[:limit])
        if len(recent) >= limit:
            # The oldest of the last `limit` rooms leaves the window first.
            waits.append((recent[-1] + window - at).total_seconds())
    if waits:
        seconds = max(1, math.ceil(max(waits)))
        error = GameError("too_many_rooms", f"you created too many rooms in a short time; "
                                            f"try again in {seconds} s, or join one")
        error.retry_after = seconds
        raise error


def _creation_lock_key(kind, value):
    """A PostgreSQL advisory lock key (a signed 64-bit integer) for one client."""
    digest = hashlib.sha256(f"room-creation:{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _serialise_creations(creator_ip, creator_session):
    """Make the caller's transaction the only room creation of this client
    (its address, and its session) until it ends.

    PostgreSQL: transaction-scoped advisory locks, one per key, taken in key
    order so that two clients sharing an address (one key each of theirs)
    never wait on each other in a cycle; a row lock cannot serve, as the rows
    to count may not exist yet. SQLite: the settings begin every transaction
    IMMEDIATE, which takes the database's write lock at BEGIN, so the count
    already runs with every other writer waiting.
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted({_creation_lock_key(kind, value)
                   for kind, value in (("ip", creator_ip), ("session", creator_session))
                   if value})
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def create_room(host_name="", *, rounds=None, seconds=None, max_players=None, solo=False,
                target_confidence=None, results_seconds=None, private=False,
                creator_ip=None, creator_session="", min_seconds=rules.TECHNICAL_MIN_SECONDS):
    """Create a room in the lobby; the first player to join it becomes the host.

    `creator_ip` and `creator_session` (a hash, see hash_session) identify the
    client for the per-client limit; pages pass them, and then the players'
    minimum round length, rules.MIN_SECONDS, as `min_seconds`.
    """
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
        min_seconds=min_seconds,
    )
    title = rules.clean_name(host_name) if host_name else ""
    limited = bool(creator_ip or creator_session)
    for _ in range(20):
        try:
            with transaction.atomic():
                # Counted and inserted in one transaction that no other
                # creation by this client runs beside: counted before it, as
                # it was, 20 simultaneous POSTs from one client all found
                # room under the limit and all made a room.
                if limited:
                    _serialise_creations(creator_ip, creator_session)
                    check_creation_limit(creator_ip=creator_ip,
                                         creator_session=creator_session)
                return Room.objects.create(
                    code=generate_code(),
                    title=title,
                    rounds=room_settings.rounds,
                    round_seconds=room_settings.seconds,
                    results_seconds=room_settings.results_seconds,
                    max_players=room_settings.max_players,
                    target_confidence=room_settings.target_confidence,
                    solo=room_settings.solo,
                    private=bool(private),
                    game_rounds=room_settings.rounds,
                    creator_ip=creator_ip or None,
                    creator_session=creator_session or "",
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


# Between rounds or during one, a room is a game in progress: the upkeep of
# every server process takes it on to its end (digitsite.game.upkeep), and
# only then may it be found idle.
LIVE_STATES = (Room.State.PLAYING, Room.State.RESULTS)


def _idle_rooms(at):
    """Open rooms nobody was seen in for GAME_EMPTY_ROOM_MINUTES (and older than that).

    A connected seat renews `last_seen` every SEAT_HEARTBEAT_SECONDS, and a
    disconnect stamps it, so "no seat seen since the cutoff" means nobody
    connected or seated for that long - unless the heartbeats could not be
    written: after a database outage longer than the cutoff every seat is
    stale, the live ones included, and closing on `last_seen` alone closed
    rooms full of players. So a room with a seat still marked connected, or
    with a game on, is not idle whatever its `last_seen`. The seats of a
    server process that died without closing its sockets stay marked
    connected; release_abandoned_seats frees them.
    """
    cutoff = at - timedelta(minutes=settings.GAME_EMPTY_ROOM_MINUTES)
    seen = Seat.objects.filter(room=OuterRef("pk"), last_seen__gte=cutoff)
    connected = Seat.objects.filter(room=OuterRef("pk"), connected=True)
    return (Room.objects.filter(closed_at__isnull=True, created__lt=cutoff)
            .exclude(state__in=LIVE_STATES)
            .filter(~Exists(seen), ~Exists(connected)))


def release_abandoned_seats(at=None):
    """Seats marked connected but not renewed for GAME_EMPTY_ROOM_MINUTES, in
    rooms with no game on, are disconnected as of `at`; returns how many.

    A server process killed without closing its sockets leaves its players'
    seats marked connected, and a room with connected seats is never idle.
    The heartbeat of any live player in the room frees such seats within
    SEAT_STALE_SECONDS; this frees them where nobody live is left. Releasing
    is what an outage may do to a live player too, so it is undone as easily:
    the connection's next heartbeat takes its seat back (see heartbeat), and
    the release stamps `last_seen`, so the room can only be closed after
    another GAME_EMPTY_ROOM_MINUTES in which no heartbeat came.
    """
    at = at or now()
    cutoff = at - timedelta(minutes=settings.GAME_EMPTY_ROOM_MINUTES)
    # Only rooms open since before the cutoff (room_open_idx), not every seat.
    candidates = Room.objects.filter(closed_at__isnull=True, created__lt=cutoff).exclude(
        state__in=LIVE_STATES)
    return Seat.objects.filter(room__in=candidates, connected=True, gone=False,
                               last_seen__lt=cutoff).update(
        connected=False, channel_name="", disconnected_at=at, last_seen=at)


def close_idle_rooms(at=None, *, budget_seconds=None, batch=CLOSE_BATCH):
    """Close rooms found idle, oldest first, `batch` at a time; returns how many.

    Each batch is its own short write: one UPDATE over a 200,000-room backlog
    held SQLite's write lock for 7.8 s (bench/bench_lobby.py), stalling every
    room's moves meanwhile. With `budget_seconds`, stops after the batch that
    passes it (the lobby's sweep: a backlog then clears over several polls).
    Seats abandoned by a dead process are released first (one more short
    write), so their rooms close a cutoff later.
    """
    at = at or now()
    started = time.monotonic()
    release_abandoned_seats(at)
    closed = 0
    while True:
        ids = list(_idle_rooms(at).order_by("created").values_list("pk", flat=True)[:batch])
        if ids:
            closed += Room.objects.filter(pk__in=ids, closed_at__isnull=True).update(
                closed_at=at)
        if len(ids) < batch or (budget_seconds is not None
                                and time.monotonic() - started >= budget_seconds):
            return closed


def _close_if_idle(room, at):
    """Close this one room if it is idle; True when it is (now) closed."""
    if room.closed_at is not None:
        return True
    if _idle_rooms(at).filter(pk=room.pk).update(closed_at=at):
        room.closed_at = at
        return True
    return False


def close_room_if_idle(room):
    """For the room page: close the room now if it stands idle (see join)."""
    return room.closed_at is not None or _close_if_idle(room, now())


_last_sweep = [float("-inf")]


def _sweep_now_and_then():
    stamp = time.monotonic()
    if stamp - _last_sweep[0] >= SWEEP_EVERY_SECONDS:
        _last_sweep[0] = stamp
        close_idle_rooms(budget_seconds=SWEEP_BUDGET_SECONDS)


MAX_LOBBY_ROOMS = 100


def lobby_query(limit=50):
    """The lobby's query (see open_rooms), at most MAX_LOBBY_ROOMS rows."""
    limit = max(1, min(int(limit), MAX_LOBBY_ROOMS))
    fresh = now() - NEW_ROOM_LISTED
    # Counted per room in correlated subqueries rather than one JOIN and GROUP
    # BY: grouping made the database count the seats of every open room and
    # sort them all before the LIMIT; this way it walks room_open_idx newest
    # first and stops once `limit` rooms qualify.
    seats = Seat.objects.filter(room=OuterRef("pk"), gone=False)
    return (
        Room.objects.filter(closed_at__isnull=True, solo=False, private=False)
        .annotate(
            players=_count(seats),
            online=_count(seats.filter(connected=True)),
        )
        .filter(Q(online__gt=0) | Q(created__gte=fresh, players=0))
        .filter(players__lt=F("max_players"))
        .order_by("-created")[:limit]
    )


def _count(queryset):
    """COUNT(*) of `queryset` as a scalar subquery (0, not NULL, when empty)."""
    return Coalesce(Subquery(queryset.order_by().values("room").annotate(n=Count("pk"))
                             .values("n"), output_field=IntegerField()), 0)


def open_rooms(limit=50):
    """Rooms a visitor can join: open, listed, not solo, someone there (or just
    created), a seat free. Newest first, at most `limit` (capped at MAX_LOBBY_ROOMS).

    The rooms are read newest first through the partial index of open rooms
    (room_open_idx), and idle rooms are closed as the lobby is polled, so the
    rows read follow the rooms in use, not every room ever made.
    """
    _sweep_now_and_then()
    rooms = lobby_query(limit)
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
            "private": room.private,
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


def _check_not_kicked(room, *, token, session_hash, user):
    for entry in room.kicked or []:
        if ((token and entry.get("token") == hash_token(token))
                or (session_hash and entry.get("session") == session_hash)
                or (user is not None and entry.get("user") == user.pk)):
            raise GameError("kicked", f"the host removed you from room {room.code}; "
                                      "you cannot rejoin it")


def join(code, *, name=None, token=None, user=None, channel_name="", opt_out=None,
         session_key=None):
    """Seat a player (or give a returning one their seat back).

    `session_key`, the connection's Django session, marks the seat so that a
    player the host removes cannot come back from the same browser.
    """
    at = now()
    user = user if user is not None and getattr(user, "is_authenticated", False) else None
    session_hash = hash_session(session_key)
    # Closed on its own (autocommit) UPDATE: the refusal below must not roll it back.
    unlocked = Room.objects.filter(code=code).first()
    if unlocked is not None:
        _close_if_idle(unlocked, at)
    with transaction.atomic():
        room = _lock_room(code)
        if room.closed_at is not None:
            raise GameError("room_closed", f"room {room.code} was closed after standing "
                                           "empty; create a new one")
        _check_not_kicked(room, token=token, session_hash=session_hash, user=user)
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
            if session_hash:
                seat.session_hash = session_hash
            if opt_out is not None:
                seat.opt_out = bool(opt_out)
            seat.save(update_fields=["token_hash", "connected", "channel_name", "last_seen",
                                     "disconnected_at", "opt_out", "session_hash"])
        else:
            rejoined = False
            if user is not None:
                display = user.get_username()[: rules.NAME_MAX_LENGTH]
            else:
                display = rules.clean_name(name)
            seated = list(Seat.objects.filter(room=room, gone=False).values_list("name",
                                                                                 flat=True))
            if len(seated) >= room.max_players:
                raise GameError("room_full", f"room {room.code} is full "
                                             f"({room.max_players} players)")
            names.check_name_for_room(display, taken=seated,
                                      staff=user is not None and user.is_staff)
            seat = Seat.objects.create(
                room=room, player_id=uuid.uuid4().hex[:12], token_hash=hash_token(new_token),
                name=display, user=user, connected=True, channel_name=channel_name,
                last_seen=at, opt_out=bool(opt_out), session_hash=session_hash,
            )
        _ensure_host(room)
        room.refresh_from_db()
    result = JoinResult(room, seat, new_token, rejoined, replaced)
    result.events = [room_message(room)]
    result.catch_up = _results_shown(room)
    return result


def session_holds_seat(room, session_key, user=None):
    """This browser session (or account) already has a seat in the room."""
    session_hash = hash_session(session_key)
    mine = Q(session_hash=session_hash) if session_hash else Q(pk__in=[])
    if user is not None and getattr(user, "is_authenticated", False):
        mine |= Q(user=user)
    return Seat.objects.filter(mine, room=room, gone=False).exists()


def is_kicked(room, session_key, user=None):
    """The host removed this browser session (or account) from the room."""
    try:
        _check_not_kicked(room, token=None, session_hash=hash_session(session_key),
                          user=user if getattr(user, "is_authenticated", False) else None)
    except GameError:
        return True
    return False


# -- the host's controls ------------------------------------------------------


def change_settings(code, player_id, changes):
    """The host changes the room's settings between games. Returns messages.

    `changes` may hold `private` (bool), `rounds`, `seconds`, `max_players`;
    each is checked as on creation, with the players' minimum round length.
    """
    with transaction.atomic():
        room = _lock_room(code)
        if room.host_player != player_id:
            raise GameError("not_host", "only the host can change the room's settings")
        if room.state not in (Room.State.LOBBY, Room.State.FINISHED):
            raise GameError("already_playing", "settings can be changed only between games")
        fields = []
        if "private" in changes:
            if not isinstance(changes["private"], bool):
                raise GameError("bad_message", "'private' must be true or false")
            room.private = changes["private"]
            fields.append("private")
        if "rounds" in changes:
            room.rounds = rules.check_rounds(changes["rounds"])
            room.game_rounds = room.rounds
            fields += ["rounds", "game_rounds"]
        if "seconds" in changes:
            room.round_seconds = rules.check_seconds(changes["seconds"])
            fields.append("round_seconds")
        if "max_players" in changes:
            if room.solo:
                raise GameError("bad_message", "a solo room has one seat")
            seated = Seat.objects.filter(room=room, gone=False).count()
            room.max_players = rules.check_max_players(changes["max_players"], seated)
            fields.append("max_players")
        if not fields:
            raise GameError("bad_message", "name at least one of private, rounds, seconds, "
                                           "max_players")
        room.save(update_fields=fields)
    return [room_message(room)]


@dataclass
class KickResult:
    events: list
    # The connection of the removed player, to tell and close ("" if offline).
    channel_name: str


def kick(code, player_id, target_id):
    """The host removes a player: the seat is given up, and the player's token,
    session and account cannot take a seat in this room again."""
    at = now()
    with transaction.atomic():
        room = _lock_room(code)
        if room.host_player != player_id:
            raise GameError("not_host", "only the host can remove players")
        if target_id == player_id:
            raise GameError("bad_message", "the host cannot remove themselves; use leave")
        seat = Seat.objects.filter(room=room, player_id=target_id, gone=False).first()
        if seat is None:
            raise GameError("no_such_player", "there is no such player in this room")
        events = _end_players_round(room, seat, "kicked", at)
        channel = seat.channel_name if seat.connected else ""
        Seat.objects.filter(pk=seat.pk).update(
            gone=True, connected=False, channel_name="", disconnected_at=at, last_seen=at)
        entry = {"token": seat.token_hash, "session": seat.session_hash, "user": seat.user_id}
        room.kicked = ([*(room.kicked or []), entry])[-MAX_KICKED:]
        Room.objects.filter(pk=room.pk).update(kicked=room.kicked)
        _ensure_host(room)
    return KickResult(events + _after_change(room.code), channel)


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
    with transaction.atomic():
        # Under the room's lock: a round that ends at the same moment reads
        # the choice either before or after, never half-way.
        room = _lock_room(seat.room.code)
        Seat.objects.filter(pk=seat.pk).update(opt_out=bool(value))
    return [room_message(room)]


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
                                drawing, input_bytes)
    if not RoundProgress.objects.filter(pk=progress.pk, drawing__isnull=True,
                                        drawing_deleted=False).update(**updates):
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


def _forget_opted_out_drawings(room, seats, game_id, round_number):
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
            seat = seats[progress.seat_id]
            if not progress.finished:
                _finish(room, seat, progress, "time", at)
            elif progress.drawing is not None and not seat.opt_out:
                # Finished while opted out, then opted back in: the choice
                # in force when the round ends decides (a no-op if stored).
                _store_drawing(room, seat, progress)
        _forget_opted_out_drawings(room, seats.values(), game_id, round_number)
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
            "drawing_deleted": entry.drawing_deleted,
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
