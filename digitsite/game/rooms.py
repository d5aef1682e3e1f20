"""A room itself: creating one (within the per-client limit), finding it,
locking it, changing its settings, and closing it once it stands idle.

Synchronous functions, safe to call from several processes at once. Every
change that must happen once locks the room row first (SELECT ... FOR UPDATE
on PostgreSQL; SQLite serialises writers by itself) and
re-checks the state it expects, so when two processes race to end the same
round one of them finds it already ended and does nothing. The seats, rounds
and guesses modules change the game this way; functions that change it
return the protocol messages to broadcast to the room, in order, and the
caller sends them.
"""

import hashlib
import math
import time
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef

from digitsite.game import clock, rules
from digitsite.game.classroom import CLASS_RESULTS_SECONDS, check_class_size, students
from digitsite.game.codes import generate_code, normalise_code
from digitsite.game.models import Room, Seat
from digitsite.game.rules import GameError
from digitsite.game.snapshots import count_change, room_message
from recognizer.prepared_queries import PreparedQuery

# Idle rooms closed per write.
CLOSE_BATCH = 500


def _default(value, name):
    return getattr(settings, name) if value is None else value


def check_creation_limit(*, creator_ip=None, creator_session="", at=None):
    """Refuse a new room when this client made too many lately.

    GameError('too_many_rooms') says when the next one is allowed (also as
    its `retry_after`, in seconds). Counted in the database (indexed by
    creator and time), so every server process sees the same count.
    """
    at = at or clock.now()
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
                creator_ip=None, creator_session="", min_seconds=rules.TECHNICAL_MIN_SECONDS,
                classroom=False):
    """Create a room in the lobby; the first player to join it becomes the host.

    `creator_ip` and `creator_session` (a hash, see seats.hash_session) identify the
    client for the per-client limit; pages pass them, and then the players'
    minimum round length, rules.MIN_SECONDS, as `min_seconds`.

    `classroom`: a class (digitsite.game.classroom): the teacher's seat hosts
    and does not draw, up to GAME_CLASS_MAX_STUDENTS students draw; it is
    private, and pauses longer between rounds unless `results_seconds` is given.
    """
    if classroom:
        private, solo = True, False
        if results_seconds is None:
            results_seconds = CLASS_RESULTS_SECONDS
    room_settings = rules.room_settings(
        rounds=_default(rounds, "GAME_ROUNDS"),
        seconds=_default(seconds, "GAME_ROUND_SECONDS"),
        results_seconds=_default(results_seconds, "GAME_RESULTS_SECONDS"),
        max_players=1 if classroom else _default(max_players, "GAME_MAX_PLAYERS"),
        target_confidence=_default(target_confidence, "GAME_TARGET_CONFIDENCE"),
        solo=solo,
        min_seconds=min_seconds,
    )
    if classroom:
        room_settings = replace(room_settings, max_players=check_class_size(
            _default(max_players, "GAME_CLASS_MAX_STUDENTS"), 0,
            settings.GAME_CLASS_MAX_STUDENTS))
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
                    classroom=bool(classroom),
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


# The room's row locked, read at every change of a room's state: compiled
# once (recognizer/prepared_queries.py).
_ROOM_LOCKED = PreparedQuery(Room, lambda code: Room.objects.select_for_update().filter(code=code))


def lock_room(code):
    """The room, its row locked until the caller's transaction ends; GameError
    ('room_not_found') without one."""
    room = _ROOM_LOCKED.first(code=code)
    if room is None:
        raise GameError("room_not_found", f"there is no room {code}")
    return room


def change_settings(code, player_id, changes):
    """The host changes the room's settings between games. Returns messages.

    `changes` may hold `private` (bool), `rounds`, `seconds`, `max_players`;
    each is checked as on creation, with the players' minimum round length.
    """
    with transaction.atomic():
        room = lock_room(code)
        if room.host_player != player_id:
            raise GameError("not_host", "only the host can change the room's settings")
        if room.state not in (Room.State.LOBBY, Room.State.FINISHED):
            raise GameError("already_playing", "settings can be changed only between games")
        fields = []
        if "private" in changes:
            if not isinstance(changes["private"], bool):
                raise GameError("bad_message", "'private' must be true or false")
            if room.classroom and not changes["private"]:
                raise GameError("bad_message", "a class is always private: students join "
                                               "with its code")
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
            seated = students(Seat.objects.filter(room=room, gone=False).values_list(
                "player_id", flat=True), room.host_player, classroom=room.classroom)
            room.max_players = (
                check_class_size(changes["max_players"], len(seated),
                                 settings.GAME_CLASS_MAX_STUDENTS)
                if room.classroom else rules.check_max_players(changes["max_players"],
                                                               len(seated)))
            fields.append("max_players")
        if not fields:
            raise GameError("bad_message", "name at least one of private, rounds, seconds, "
                                           "max_players")
        room.save(update_fields=fields)
        count_change(room)
    return [room_message(room, counted=True)]


# -- closing idle rooms -------------------------------------------------------

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
    the connection's next heartbeat takes its seat back (see seats.heartbeat), and
    the release stamps `last_seen`, so the room can only be closed after
    another GAME_EMPTY_ROOM_MINUTES in which no heartbeat came.
    """
    at = at or clock.now()
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
    at = at or clock.now()
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


def close_if_idle(room, at):
    """Close this one room if it is idle; True when it is (now) closed."""
    if room.closed_at is not None:
        return True
    if _idle_rooms(at).filter(pk=room.pk).update(closed_at=at):
        room.closed_at = at
        return True
    return False


def close_room_if_idle(room):
    """For the room page: close the room now if it stands idle (see seats.join)."""
    return room.closed_at is not None or close_if_idle(room, clock.now())

