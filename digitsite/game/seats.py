"""Seats: joining a room (or taking one's seat back), leaving it, being
removed by the host, disconnecting and the heartbeats that keep a seat.

Each change locks the room (digitsite.game.rooms.lock_room) and returns the
protocol messages to broadcast, as the rest of the game's state transitions.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from digitsite.game import classroom, clock, names, rules
from digitsite.game.finishing import end_players_round
from digitsite.game.models import Room, Seat
from digitsite.game.rooms import close_if_idle, lock_room
from digitsite.game.rounds import after_change
from digitsite.game.rules import GameError
from digitsite.game.snapshots import (
    count_change,
    drawing_in_progress,
    results_shown,
    room_message,
)

# Removed players a room remembers; beyond it the oldest are forgotten (a
# host removes a few players, not thousands).
MAX_KICKED = 100


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def hash_session(session_key):
    """What is kept of a Django session key: its hash ("" without a session)."""
    if not session_key:
        return ""
    return hashlib.sha256(b"session:" + session_key.encode()).hexdigest()


# -- joining ------------------------------------------------------------------


@dataclass
class JoinResult:
    room: Room
    seat: Seat
    token: str
    rejoined: bool
    # The channel of an older connection that held the seat: it must close.
    replaced_channel: str = ""
    # That older connection came from the same browser session: another tab
    # (or the page before a reload) of the same player.
    replaced_same_browser: bool = False
    events: list = field(default_factory=list)
    # Messages only the joiner needs: the last results when between rounds.
    catch_up: list = field(default_factory=list)
    # A returning player's drawing of the round under way, to put back on
    # the canvas (None: no round on, nothing drawn, or their part is over).
    drawing: dict | None = None


def ensure_host(room):
    """Keep a connected host: hand over to the longest-seated connected player.

    A class keeps its teacher as its host, connected or not: the host's seat
    is the teacher's, given when the teacher joins (`_new_seat`), never a
    student's (digitsite.game.classroom).
    """
    if room.classroom:
        return False
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

    `session_key`, the connection's Django session, marks the seat: the same
    browser gets it back without a token (a closed tab opened again, a
    second tab), and a player the host removes cannot come back from it.
    """
    at = clock.now()
    user = user if user is not None and getattr(user, "is_authenticated", False) else None
    session_hash = hash_session(session_key)
    # Closed on its own (autocommit) UPDATE: the refusal below must not roll it back.
    unlocked = Room.objects.filter(code=code).first()
    if unlocked is not None:
        close_if_idle(unlocked, at)
    with transaction.atomic():
        room = lock_room(code)
        if room.closed_at is not None:
            raise GameError("room_closed", f"room {room.code} was closed after standing "
                                           "empty; create a new one")
        _check_not_kicked(room, token=token, session_hash=session_hash, user=user)
        _expire(room, at)
        seat = returning_seat(room, token=token, user=user, session_hash=session_hash)
        new_token = secrets.token_urlsafe(24)
        result = JoinResult(room, seat, new_token, rejoined=seat is not None)
        if seat is not None:
            result.replaced_same_browser = bool(session_hash) and seat.session_hash == session_hash
            result.replaced_channel = _give_seat_back(
                seat, new_token, at, channel_name=channel_name, session_hash=session_hash,
                opt_out=opt_out)
            result.drawing = drawing_in_progress(room, seat)
        else:
            result.seat = _new_seat(room, new_token, at, name=name, user=user,
                                    channel_name=channel_name, session_hash=session_hash,
                                    opt_out=opt_out)
        ensure_host(room)
        count_change(room)
    result.events = [room_message(room, counted=True)]
    result.catch_up = results_shown(room)
    return result


def returning_seat(room, *, token=None, user=None, session_hash=""):
    """The seat a joining player already holds in the room, or None.

    Found by what only that player has: the seat's token (kept by the page
    per room, across tabs and reloads), their account, or their browser
    session (its hash; the session cookie is as secret as the token). Never
    by name: another browser typing the same name gets no one's seat.
    """
    mine = Seat.objects.filter(room=room, gone=False)
    if isinstance(token, str) and token:
        seat = mine.filter(token_hash=hash_token(token)).first()
        if seat is not None:
            return seat
    if user is not None:
        seat = mine.filter(user=user).first()
        if seat is not None:
            return seat
    # A class's teacher, in the browser that opened the class.
    if room.classroom and classroom.is_teachers_session(room.creator_session, session_hash):
        seat = _teacher_seat(room)
        if seat is not None:
            return seat
    if session_hash:
        # A session holds one seat per room; should an older page have taken
        # two, the one last seen is the one the player is playing.
        return mine.filter(session_hash=session_hash).order_by("-last_seen", "-pk").first()
    return None


def _teacher_seat(room):
    """A class's teacher's seat while the teacher holds it, else None."""
    if not room.host_player:
        return None
    return Seat.objects.filter(room=room, player_id=room.host_player, gone=False).first()


def _give_seat_back(seat, new_token, at, *, channel_name, session_hash, opt_out):
    """A returning player (by token, account or session) takes their seat again. Returns
    the channel of an older connection that still held it ("" if none)."""
    replaced = ""
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
    return replaced


def _new_seat(room, new_token, at, *, name, user, channel_name, session_hash, opt_out):
    """A new player takes a free seat, under a name nobody seated reads the same."""
    if user is not None:
        display = user.get_username()[: rules.NAME_MAX_LENGTH]
    else:
        display = rules.clean_name(name)
    teacher = room.classroom and classroom.joins_as_teacher(
        teacher_seated=_teacher_seat(room) is not None,
        creator_session=room.creator_session, session_hash=session_hash)
    seated = list(Seat.objects.filter(room=room, gone=False).values_list("player_id", "name"))
    if classroom.is_full(room.max_players, [player for player, _ in seated], room.host_player,
                         classroom=room.classroom, joining_teacher=teacher):
        raise GameError("room_full", f"room {room.code} is full ({room.max_players} "
                                     f"{'students' if room.classroom else 'players'})")
    names.check_name_for_room(display, taken=[name for _, name in seated],
                              staff=user is not None and user.is_staff)
    seat = Seat.objects.create(
        room=room, player_id=uuid.uuid4().hex[:12], token_hash=hash_token(new_token),
        name=display, user=user, connected=True, channel_name=channel_name,
        last_seen=at, opt_out=bool(opt_out), session_hash=session_hash,
    )
    if teacher:
        room.host_player = seat.player_id
        Room.objects.filter(pk=room.pk).update(host_player=seat.player_id)
    return seat


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


# -- the host removes a player ------------------------------------------------


@dataclass
class KickResult:
    events: list
    # The connection of the removed player, to tell and close ("" if offline).
    channel_name: str


def kick(code, player_id, target_id):
    """The host removes a player: the seat is given up, and the player's token,
    session and account cannot take a seat in this room again."""
    at = clock.now()
    with transaction.atomic():
        room = lock_room(code)
        if room.host_player != player_id:
            raise GameError("not_host", "only the host can remove players")
        if target_id == player_id:
            raise GameError("bad_message", "the host cannot remove themselves; use leave")
        seat = Seat.objects.filter(room=room, player_id=target_id, gone=False).first()
        if seat is None:
            raise GameError("no_such_player", "there is no such player in this room")
        events = end_players_round(room, seat, "kicked", at)
        channel = seat.channel_name if seat.connected else ""
        Seat.objects.filter(pk=seat.pk).update(
            gone=True, connected=False, channel_name="", disconnected_at=at, last_seen=at)
        entry = {"token": seat.token_hash, "session": seat.session_hash, "user": seat.user_id}
        room.kicked = ([*(room.kicked or []), entry])[-MAX_KICKED:]
        Room.objects.filter(pk=room.pk).update(kicked=room.kicked)
        ensure_host(room)
        count_change(room)
    return KickResult(events + after_change(room.code), channel)


# -- leaving, and seats kept --------------------------------------------------


def disconnect(player_id, channel_name, *, finish_round=False):
    """The connection holding a seat closed: keep the seat for the rejoin window.

    A player who disconnects during a round keeps their part in it: a reload,
    the room opened again after closing its tab, or a phone that dropped the
    page comes back to the drawing and goes on. The round waits for them as
    for a player still drawing (digitsite.game.rounds), until their rejoin
    window ends; their latest scored drawing, already in the database,
    counts when the round ends. `finish_round` (a server process stopping)
    ends it now instead, storing the drawing before the process exits.
    """

    def release(room, seat, at):
        changed = Seat.objects.filter(
            pk=seat.pk, channel_name=channel_name, connected=True
        ).update(connected=False, channel_name="", disconnected_at=at, last_seen=at)
        if not changed:
            return None  # replaced by a newer connection, or already left
        if not finish_round:
            return []
        seat.refresh_from_db()
        return end_players_round(room, seat, "disconnected", at, drew_only=True)

    return _change_seat(player_id, release)


def heartbeat(code, player_id, channel_name):
    """A live connection renews its seat, and releases seats of dead processes.

    A process that dies without closing its sockets leaves its players'
    seats marked connected: they would keep the host role and count as still
    drawing for ever. Whichever live connection in the room notices a seat
    not renewed for SEAT_STALE_SECONDS disconnects it as if its socket had
    closed then. Returns messages to broadcast (none when nothing changed).
    """
    at = clock.now()
    renewed = Seat.objects.filter(player_id=player_id, channel_name=channel_name,
                                  connected=True).update(last_seen=at)
    cutoff = at - timedelta(seconds=rules.SEAT_STALE_SECONDS)
    stale = Seat.objects.filter(room__code=code, connected=True, gone=False,
                                last_seen__lt=cutoff)
    if renewed and not stale.exists():
        return []
    events = []
    with transaction.atomic():
        room = lock_room(code)
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
            events += end_players_round(room, seat, "disconnected", at, drew_only=True)
        ensure_host(room)
        count_change(room)
    return events + after_change(code)


def leave(player_id):
    """The player gives the seat up for good."""

    def give_up(room, seat, at):
        seat.refresh_from_db()
        if seat.gone:
            return None
        events = end_players_round(room, seat, "left", at)
        Seat.objects.filter(pk=seat.pk).update(
            gone=True, connected=False, channel_name="", disconnected_at=at, last_seen=at
        )
        return events

    return _change_seat(player_id, give_up)


def _change_seat(player_id, change):
    """Apply `change(room, seat, at)` to the player's seat under the room's lock.

    `change` returns the messages of the player's round it ended ([] for
    none), or None when it changed nothing: then nothing is announced.
    Otherwise the host role moves on if its holder left (ensure_host), and
    after_change's messages (the room's snapshot, or the round's end when
    nobody is still drawing) follow those. Returns messages to broadcast.
    `disconnect` and `leave` share it: both read the seat, lock the room and
    announce alike, and differ only in what they change.
    """
    seat = Seat.objects.filter(player_id=player_id).select_related("room").first()
    if seat is None:
        return []
    at = clock.now()
    with transaction.atomic():
        room = lock_room(seat.room.code)
        events = change(room, seat, at)
        if events is None:
            return []
        ensure_host(room)
        count_change(room)
    return events + after_change(room.code)


def expire_seats(code):
    """Seats whose rejoin window ran out become gone; returns messages if any did."""
    with transaction.atomic():
        room = lock_room(code)
        if not _expire(room, clock.now()):
            return []
        ensure_host(room)
        count_change(room)
    return after_change(code)


def set_opt_out(player_id, value):
    seat = Seat.objects.filter(player_id=player_id).select_related("room").first()
    if seat is None:
        return []
    with transaction.atomic():
        # Under the room's lock: a round that ends at the same moment reads
        # the choice either before or after, never half-way.
        room = lock_room(seat.room.code)
        Seat.objects.filter(pk=seat.pk).update(opt_out=bool(value))
        count_change(room)
    return [room_message(room, counted=True)]

