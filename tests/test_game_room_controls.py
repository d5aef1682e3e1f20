"""Rooms against abuse, without a server: rooms per client, idle rooms closed,
the lobby query bounded and indexed, private rooms, the host's settings and
kick, names checked against the room, and the shortest round."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from digitsite.game import guesses, lobby, rooms, rounds, rules, seats, snapshots
from digitsite.game.models import Room, Seat
from digitsite.game.rules import GameError

pytestmark = pytest.mark.django_db


def seat(code, name, channel=None, **fields):
    return seats.join(code, name=name, channel_name=channel or f"chan-{name}", **fields)


def refused(code, function, *args, **kwargs):
    with pytest.raises(GameError) as caught:
        function(*args, **kwargs)
    assert caught.value.code == code, caught.value
    return caught.value


# -- rooms per client -----------------------------------------------------------


def test_one_client_cannot_flood_the_site_with_rooms(settings):
    """Hostile input: 1,000 rooms in a burst from one session (as seen), here cut at 6."""
    settings.GAME_ROOMS_PER_SESSION = 5
    settings.GAME_ROOMS_PER_IP = 20
    settings.GAME_ROOMS_WINDOW_SECONDS = 60
    session = seats.hash_session("attacker-session")
    for _ in range(5):
        rooms.create_room("Eve", creator_ip="203.0.113.9", creator_session=session)
    error = refused("too_many_rooms", rooms.create_room, "Eve", creator_ip="203.0.113.9",
                    creator_session=session)
    assert "try again in" in error.message and Room.objects.count() == 5
    # Solo rooms count too: they are rooms in the database all the same.
    refused("too_many_rooms", rooms.create_room, "Eve", solo=True, creator_ip="203.0.113.9",
            creator_session=session)
    # Another visitor behind the same address still gets a room.
    rooms.create_room("Ada", creator_ip="203.0.113.9", creator_session=seats.hash_session("b"))


def test_fresh_sessions_from_one_address_hit_the_address_limit(settings):
    """Hostile input: a new session (cookie dropped) for every room, one address."""
    settings.GAME_ROOMS_PER_SESSION = 5
    settings.GAME_ROOMS_PER_IP = 3
    for n in range(3):
        rooms.create_room("", creator_ip="198.51.100.7",
                          creator_session=seats.hash_session(f"s{n}"))
    refused("too_many_rooms", rooms.create_room, "", creator_ip="198.51.100.7",
            creator_session=seats.hash_session("s-new"))
    rooms.create_room("", creator_ip="198.51.100.8", creator_session=seats.hash_session("x"))


def test_the_limit_is_a_sliding_window(settings):
    settings.GAME_ROOMS_PER_SESSION = 2
    settings.GAME_ROOMS_WINDOW_SECONDS = 60
    session = seats.hash_session("k")
    first = rooms.create_room("", creator_session=session)
    rooms.create_room("", creator_session=session)
    refused("too_many_rooms", rooms.create_room, "", creator_session=session)
    # The first room leaves the window: one more is allowed, not two.
    Room.objects.filter(pk=first.pk).update(created=timezone.now() - timedelta(seconds=61))
    rooms.create_room("", creator_session=session)
    refused("too_many_rooms", rooms.create_room, "", creator_session=session)


# -- idle rooms ------------------------------------------------------------------


def _age(room, minutes):
    Room.objects.filter(pk=room.pk).update(created=timezone.now() - timedelta(minutes=minutes))


def test_rooms_nobody_was_in_for_a_while_are_closed(settings):
    settings.GAME_EMPTY_ROOM_MINUTES = 10
    never_used = rooms.create_room("Nobody")
    left_long_ago = rooms.create_room("Left")
    in_use = rooms.create_room("Busy")
    just_left = rooms.create_room("Recent")
    young = rooms.create_room("Young")
    gone = seat(left_long_ago.code, "Ada")
    seats.disconnect(gone.seat.player_id, "chan-Ada")
    Seat.objects.filter(pk=gone.seat.pk).update(
        last_seen=timezone.now() - timedelta(minutes=11))
    seat(in_use.code, "Bob")
    recent = seat(just_left.code, "Cy")
    seats.disconnect(recent.seat.player_id, "chan-Cy")
    for room in (never_used, left_long_ago, in_use, just_left):
        _age(room, 60)
    _age(young, 5)

    assert rooms.close_idle_rooms() == 2
    closed = set(Room.objects.filter(closed_at__isnull=False).values_list("code", flat=True))
    assert closed == {never_used.code, left_long_ago.code}
    # A closed room takes nobody in, and is never listed.
    refused("room_closed", seat, never_used.code, "Dee")
    assert never_used.code not in [r["code"] for r in lobby.open_rooms()]


def test_idle_rooms_are_closed_in_short_batches_oldest_first(settings):
    settings.GAME_EMPTY_ROOM_MINUTES = 10
    made = [rooms.create_room("") for _ in range(7)]
    for minutes, room in enumerate(made, start=20):
        _age(room, minutes)  # the last made is the oldest
    with CaptureQueriesContext(connection) as queries:
        assert rooms.close_idle_rooms(batch=3, budget_seconds=0) == 3
    assert len([q for q in queries if q["sql"].startswith('UPDATE "game_room"')]) == 1
    oldest = {room.code for room in made[-3:]}
    assert set(Room.objects.filter(closed_at__isnull=False).values_list("code", flat=True)) \
        == oldest
    assert rooms.close_idle_rooms(batch=3) == 4  # no budget: until none is left
    assert not Room.objects.filter(closed_at__isnull=True).exists()


def _open_codes():
    return set(Room.objects.filter(closed_at__isnull=True).values_list("code", flat=True))


def test_a_database_outage_longer_than_the_cutoff_closes_no_room_in_use(
        settings, manual_clock, monkeypatch):
    """Hostile timing: no heartbeat could be written for 30 minutes (three
    times GAME_EMPTY_ROOM_MINUTES: the database was down), so every seat's
    last_seen is stale, and the sweep runs before the next heartbeat. Neither
    a room of connected players waiting in the lobby, nor a game in progress
    (playing, or between rounds, its players' seats not even connected) is
    closed; the lobby players' next heartbeat renews them as before."""
    settings.GAME_EMPTY_ROOM_MINUTES = 10
    waiting = rooms.create_room("Waiting")
    ada = seat(waiting.code, "Ada").seat
    live = {}
    for state in (Room.State.PLAYING, Room.State.RESULTS):
        room = rooms.create_room(state)
        player = seat(room.code, f"P-{state}").seat
        seats.disconnect(player.player_id, f"chan-P-{state}")
        Room.objects.filter(pk=room.pk).update(state=state)
        live[state] = room
    manual_clock.advance(30 * 60)

    monkeypatch.setattr(lobby, "_last_sweep", [float("-inf")])
    lobby.open_rooms()  # the lobby's own sweep, due at once
    assert rooms.close_idle_rooms() == 0
    assert _open_codes() == {waiting.code, *(room.code for room in live.values())}
    # The sweep may have taken Ada's seat for abandoned; her heartbeat takes it back.
    seats.heartbeat(waiting.code, ada.player_id, "chan-Ada")
    assert Seat.objects.get(pk=ada.pk).connected
    for _ in range(4):
        manual_clock.advance(5 * 60)
        seats.heartbeat(waiting.code, ada.player_id, "chan-Ada")
        assert rooms.close_idle_rooms() == 0
    assert waiting.code in _open_codes()
    # The game over, a room nobody is in closes as before.
    Room.objects.filter(pk=live[Room.State.RESULTS].pk).update(state=Room.State.FINISHED)
    assert rooms.close_idle_rooms() == 1
    assert live[Room.State.RESULTS].code not in _open_codes()


def test_seats_of_a_dead_server_process_are_released_then_their_room_closes(
        settings, manual_clock):
    """A process killed without closing its sockets leaves its seats marked
    connected, and nobody live is in the room to notice: the sweep releases
    them after GAME_EMPTY_ROOM_MINUTES and closes the room one cutoff later
    (so a connection only cut off by an outage has that long to come back)."""
    settings.GAME_EMPTY_ROOM_MINUTES = 10
    abandoned = rooms.create_room("Abandoned")
    seat(abandoned.code, "Ada")
    manual_clock.advance(11 * 60)
    assert rooms.close_idle_rooms() == 0
    assert not Seat.objects.filter(room=abandoned, connected=True).exists()
    manual_clock.advance(9 * 60)
    assert rooms.close_idle_rooms() == 0
    manual_clock.advance(2 * 60)
    assert rooms.close_idle_rooms() == 1
    assert abandoned.code not in _open_codes()


def test_joining_an_idle_room_closes_it_even_before_a_sweep(settings):
    settings.GAME_EMPTY_ROOM_MINUTES = 10
    room = rooms.create_room("Old")
    _age(room, 11)
    refused("room_closed", seat, room.code, "Ada")
    assert Room.objects.get(pk=room.pk).closed_at is not None


# -- the lobby query -------------------------------------------------------------


def test_the_lobby_query_walks_the_open_rooms_index_and_is_limited():
    """EXPLAIN on SQLite: the rooms are read through a partial index of open
    rooms in creation order (no sort of all rooms, no full scan), and the
    query carries a LIMIT however many rooms a caller asks for."""
    if connection.vendor != "sqlite":
        pytest.skip("the query plan is checked on SQLite")
    query = lobby.lobby_query(10_000)
    sql = str(query.query)
    assert sql.rstrip().endswith(f"LIMIT {lobby.MAX_LOBBY_ROOMS}")
    plan = query.explain()
    room_lines = [line for line in plan.splitlines() if "game_room" in line]
    assert room_lines and all("USING INDEX room_open_idx" in line for line in room_lines), plan
    assert "room_open_idx" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_the_lobby_is_one_query_however_many_rooms_are_closed(settings):
    settings.GAME_EMPTY_ROOM_MINUTES = 10
    Room.objects.bulk_create([
        Room(code=f"C{n:05d}", rounds=1, round_seconds=20, results_seconds=3, max_players=4,
             target_confidence=0.9, closed_at=timezone.now()) for n in range(500)
    ])
    listed = rooms.create_room("Ada")
    lobby._last_sweep[0] = float("inf")  # no sweep in this call: only the lobby's query
    with CaptureQueriesContext(connection) as queries:
        codes = [r["code"] for r in lobby.open_rooms()]
    assert codes == [listed.code]
    assert len(queries) == 1


def test_private_rooms_are_not_listed_but_can_be_joined_by_code():
    hidden = rooms.create_room("Ada", private=True)
    shown = rooms.create_room("Bob")
    seat(hidden.code, "Ada")
    seat(shown.code, "Bob")
    assert [r["code"] for r in lobby.open_rooms()] == [shown.code]
    assert seat(hidden.code, "Cy").room.code == hidden.code
    assert snapshots.room_snapshot(hidden)["settings"]["private"] is True


# -- the host's settings ---------------------------------------------------------


@pytest.fixture
def lobby_room(db):
    room = rooms.create_room("Ada", rounds=3, seconds=20, max_players=4)
    host = seat(room.code, "Ada")
    guest = seat(room.code, "Bob")
    return room, host, guest


def test_the_host_changes_the_settings_in_the_lobby(lobby_room):
    room, host, _ = lobby_room
    events = rooms.change_settings(room.code, host.seat.player_id,
                                   {"private": True, "rounds": 7, "seconds": 45,
                                    "max_players": 2})
    snapshot = events[-1]
    assert snapshot["type"] == "room" and snapshot["rounds"] == 7
    assert snapshot["settings"] == {**snapshot["settings"], "private": True, "rounds": 7,
                                    "seconds": 45.0, "max_players": 2}
    assert room.code not in [r["code"] for r in lobby.open_rooms()]
    rooms.change_settings(room.code, host.seat.player_id, {"private": False})
    assert Room.objects.get(pk=room.pk).private is False


@pytest.mark.parametrize("changes, fragment", [
    ({"seconds": 1}, "round seconds"),         # the 1-second round seen accepted
    ({"seconds": 9.5}, "between 10 and 300"),
    ({"seconds": float("nan")}, "round seconds"),
    ({"rounds": 0}, "rounds"),
    ({"rounds": "5"}, "rounds"),
    ({"max_players": 1}, "below the 2 players"),  # fewer seats than players seated
    ({"max_players": 99}, "max players"),
    ({"private": "yes"}, "private"),
    ({}, "at least one"),
])
def test_bad_settings_are_refused_and_change_nothing(lobby_room, changes, fragment):
    room, host, _ = lobby_room
    error = refused("bad_message", rooms.change_settings, room.code, host.seat.player_id,
                    changes)
    assert fragment in error.message
    after = Room.objects.get(pk=room.pk)
    assert (after.rounds, after.round_seconds, after.max_players, after.private) == (
        3, 20.0, 4, False)


def test_only_the_host_changes_settings_and_only_between_games(lobby_room):
    room, host, guest = lobby_room
    refused("not_host", rooms.change_settings, room.code, guest.seat.player_id,
            {"private": True})
    rounds.start_game(room.code, host.seat.player_id)
    refused("already_playing", rooms.change_settings, room.code, host.seat.player_id,
            {"seconds": 30})


def test_rounds_shorter_than_ten_seconds_are_refused_for_players():
    with pytest.raises(GameError):
        rules.room_settings(rounds=1, seconds=1, results_seconds=1, max_players=2,
                            target_confidence=0.9, solo=False)
    assert rules.MIN_SECONDS == 10.0


# -- kick ------------------------------------------------------------------------


def test_the_host_removes_a_player_who_cannot_come_back(lobby_room):
    room, host, guest = lobby_room
    user = User.objects.create_user("grace", password="x")
    grace = seat(room.code, "ignored", user=user, session_key="grace-session")
    result = seats.kick(room.code, host.seat.player_id, guest.seat.player_id)
    assert result.channel_name == "chan-Bob"
    players = {p["id"]: p for p in result.events[-1]["players"]}
    assert players[guest.seat.player_id]["gone"] is True
    # Not with the seat's token, under another name, nor as a new player.
    refused("kicked", seat, room.code, "Bob", token=guest.token)
    refused("kicked", seat, room.code, "Robert", token=guest.token)
    # A removed account, or a removed browser session, is kept out too.
    seats.kick(room.code, host.seat.player_id, grace.seat.player_id)
    refused("kicked", seat, room.code, "x", user=user)
    refused("kicked", seat, room.code, "Someone", session_key="grace-session")
    # Still out after the next game starts (the ban is the room's, not the seat's).
    rounds.start_game(room.code, host.seat.player_id)
    refused("kicked", seat, room.code, "Bob", token=guest.token)
    # Others are let in.
    assert seat(room.code, "Cy", session_key="cy-session").seat.name == "Cy"


def test_kick_during_a_round_finishes_the_players_round(lobby_room):
    room, host, guest = lobby_room
    rounds.start_game(room.code, host.seat.player_id)
    from tests.test_game_logic import DRAWING, INPUT, prediction

    r = Room.objects.get(pk=room.pk)
    guesses.record_guess(room.code, guest.seat.player_id, r.game_id, 1, drawing=DRAWING,
                         input_bytes=INPUT, prediction=prediction(r.target, 0.5))
    result = seats.kick(room.code, host.seat.player_id, guest.seat.player_id)
    finished = [m for m in result.events if m["type"] == "player_finished"]
    assert finished and finished[0]["reason"] == "kicked"


def test_kick_is_for_the_host_only_and_not_of_oneself(lobby_room):
    room, host, guest = lobby_room
    refused("not_host", seats.kick, room.code, guest.seat.player_id, host.seat.player_id)
    refused("bad_message", seats.kick, room.code, host.seat.player_id, host.seat.player_id)
    refused("no_such_player", seats.kick, room.code, host.seat.player_id, "nobody")


# -- names in a room ---------------------------------------------------------------


def test_a_name_imitating_a_seated_player_is_refused_at_join(lobby_room):
    """Hostile inputs: "ADA", "Ａｄａ" (full width), "A\\u200bda" (zero-width space)."""
    room, _, _ = lobby_room
    for imitation in ("ADA", "Ａｄａ", "A\u200bda", "bob"):
        refused("name_taken", seat, room.code, imitation)
    refused("name_reserved", seat, room.code, "Admin")
    refused("bad_name", seat, room.code, "\u202eAda")
    assert Seat.objects.filter(room=room).count() == 2


def test_a_name_becomes_free_when_its_player_is_gone(lobby_room):
    room, _, guest = lobby_room
    seats.leave(guest.seat.player_id)
    assert seat(room.code, "BOB").seat.name == "BOB"


def test_staff_accounts_may_use_reserved_names(lobby_room):
    room, _, _ = lobby_room
    staff = User.objects.create_user("admin", password="x", is_staff=True)
    assert seat(room.code, "", user=staff).seat.name == "admin"
    other = rooms.create_room("x")
    plain = User.objects.create_user("moderator", password="x")
    refused("name_reserved", seat, other.code, "", user=plain)


def test_the_command_closes_the_whole_backlog_of_idle_rooms(settings):
    from io import StringIO

    from django.core.management import call_command

    settings.GAME_EMPTY_ROOM_MINUTES = 10
    for _ in range(3):
        _age(rooms.create_room(""), 30)
    kept = rooms.create_room("")
    out = StringIO()
    call_command("close_idle_rooms", stdout=out)
    assert "closed 3 rooms" in out.getvalue()
    assert list(Room.objects.filter(closed_at__isnull=True)) == [kept]
