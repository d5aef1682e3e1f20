"""The game over WebSockets: whole games, reconnects, host hand-over, opt-out and
hostile clients, through the real ASGI application (origin check, auth, routing).

The game's timers run in virtual time (the `manual_clock` fixture): a round
ends by its timer only when a test fires it with `run_timers`, so a slow
machine can neither end a round under a test nor make one last. Waiting for
a message has a generous real-time limit, for the same reason.
"""

import asyncio
import itertools
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from digitsite.asgi import application
from digitsite.game import protocol, rules
from digitsite.game.models import Room, Seat
from digitsite.game.rooms import create_room
from recognizer.models import Drawing
from tests.support import eventually
from tests.tables import rows_containing

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://localhost"
# How long a test waits for a message, in real seconds. Only a broken server
# takes this long; a loaded machine takes a few seconds at worst.
WAIT = 30


@pytest.fixture(autouse=True)
def game_clock(manual_clock):
    return manual_clock


def seven(offset=0.0):
    """A 7 on a 280x280 canvas, with timings."""
    return {
        "width": 280, "height": 280,
        "strokes": [[[60 + offset, 50, 0], [200 + offset, 50, 120], [110 + offset, 240, 400]]],
    }


def one(offset=0.0):
    return {"width": 280, "height": 280,
            "strokes": [[[140 + offset, 30, 0], [140 + offset, 250, 300]]]}


class Client:
    """A test player: a communicator plus a log of everything it received."""

    def __init__(self, communicator):
        self.ws = communicator
        self.seen = []
        self.you = None

    async def send(self, type_, **fields):
        await self.ws.send_to(text_data=json.dumps({"type": type_, **fields}))

    async def next(self, timeout=WAIT):
        output = await self.ws.receive_output(timeout)
        if output["type"] == "websocket.close":
            message = {"type": "__closed__", "code": output.get("code")}
        else:
            message = json.loads(output["text"])
        self.seen.append(message)
        return message

    async def expect(self, type_, timeout=WAIT, **match):
        """The next message of `type_` whose fields equal `match` (others are kept in .seen)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {type_} {match} within {timeout}s; saw "
                                     f"{[m['type'] for m in self.seen[-15:]]}")
            message = await self.next(remaining)
            if message["type"] == type_ and all(message.get(k) == v for k, v in match.items()):
                return message
            if message["type"] == "__closed__":
                raise AssertionError(f"closed with {message['code']} while waiting for {type_}")

    async def error(self, code, timeout=WAIT):
        message = await self.expect("error", timeout)
        assert message["code"] == code, message
        return message

    async def closed(self, timeout=WAIT):
        return (await self.expect("__closed__", timeout))["code"]

    async def close(self):
        await self.ws.disconnect()


async def connect(code, origin=ORIGIN, cookie=None):
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, f"/ws/v1/rooms/{code}/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return Client(communicator)


async def join(code, name, cookie=None, protocol=1, **fields):
    client = await connect(code, cookie=cookie)
    await client.send("join", protocol=protocol, name=name, **fields)
    welcome = await client.expect("welcome")
    client.you = welcome["you"]
    client.welcome = welcome
    return client


def make_room(**settings):
    # Virtual seconds: long rounds cost nothing.
    settings.setdefault("seconds", 20.0)
    settings.setdefault("results_seconds", 3.0)
    settings.setdefault("target_confidence", 1.0)
    return create_room("Test", **settings)


new_room = sync_to_async(make_room)


@sync_to_async
def stored_drawings(**filters):
    return list(Drawing.objects.filter(**filters).order_by("round_number", "player_name"))


@sync_to_async
def seat_of(player_id):
    return Seat.objects.get(player_id=player_id)



@sync_to_async
def room_row(code):
    return Room.objects.get(code=code)


async def test_solo_round_is_scored_and_stored(active_model):
    room = await new_room(rounds=1, solo=True)
    ada = await join(room.code, "Ada")
    assert ada.welcome["room"]["host"] == ada.you["id"] and ada.you["host"]
    assert ada.welcome["room"]["settings"]["solo"] is True
    await ada.send("start")
    start = await ada.expect("round_start")
    await ada.send("draw", round=1, seq=5, drawing=seven())
    guess = await ada.expect("guess")
    assert guess["seq"] == 5 and len(guess["probabilities"]) == 10
    assert guess["digit"] == max(range(10), key=lambda d: guess["probabilities"][d])
    assert guess["top3"][0] == [guess["digit"], guess["probabilities"][guess["digit"]]]
    assert guess["target_probability"] == guess["probabilities"][start["target"]]
    assert guess["kept"] is True and guess["reached"] is False
    await ada.send("done", round=1)
    finished = await ada.expect("player_finished")
    end = await ada.expect("round_end")
    over = await ada.expect("game_over")
    assert finished["reason"] == "done"
    assert end["final"] and end["target"] == start["target"] and end["next_round_at"] is None
    # No speed bonus without reaching the target confidence (1.0 here).
    assert finished["points"] == round(100 * guess["target_probability"])
    assert over["leaderboard"] == [{"rank": 1, "player": ada.you["id"], "name": "Ada",
                                    "score": finished["points"], "gone": False}]
    result = end["results"][0]
    assert result["input"].startswith("data:image/png;base64,")
    assert result["drawing"] == seven() and result["digit"] == guess["digit"]
    drawings = await stored_drawings()
    assert len(drawings) == 1
    stored = drawings[0]
    assert (stored.label, stored.strokes, stored.prediction) == (
        start["target"], seven(), guess["digit"])
    assert stored.probabilities == guess["probabilities"]
    assert stored.model_version_id == active_model.pk
    assert stored.room_code == room.code and stored.round_number == 1
    assert stored.player_id == ada.you["id"] and stored.status == "pending"
    assert len(bytes(stored.input_image)) == 784 and any(bytes(stored.input_image))
    await ada.close()


async def test_whole_game_with_three_players(active_model, game_clock):
    room = await new_room(rounds=2)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    cy = await join(room.code, "Cy")
    lobby = await ada.expect("room")
    while len(lobby["players"]) < 3:
        lobby = await ada.expect("room")
    assert [p["name"] for p in lobby["players"]] == ["Ada", "Bob", "Cy"]
    assert [p["host"] for p in lobby["players"]] == [True, False, False]

    await bob.send("start")
    await bob.error("not_host")
    await ada.send("start")
    submitted = {}
    targets = []
    for round_number in (1, 2):
        # Round 2 starts when the results pause is over.
        await game_clock.run_timers(ada.expect("round_start", round=round_number), within=3.1)
        starts = [ada.seen[-1]] + [await c.expect("round_start", round=round_number)
                                   for c in (bob, cy)]
        assert len({(s["target"], s["ends_at"]) for s in starts}) == 1
        targets.append(starts[0]["target"])
        # Ada and Bob draw and say done; Cy draws and lets the timer end the round.
        for index, client in enumerate((ada, bob, cy)):
            drawing = seven(offset=10 * index + round_number) if index != 1 else one(index)
            await client.send("draw", round=round_number, seq=round_number, drawing=drawing)
            guess = await client.expect("guess", seq=round_number)
            submitted[(client.you["id"], round_number)] = (drawing, guess)
        await ada.send("done", round=round_number)
        await bob.send("done", round=round_number)
        # Their rounds are over before the clock moves: the deadline's own
        # write could otherwise end the round first, and a `done` still on
        # its way would find it over.
        await ada.expect("player_finished", player=ada.you["id"])
        await bob.expect("player_finished", player=bob.you["id"])
        # Cy's round ends by the timer (20 s and the grace).
        await game_clock.run_timers(ada.expect("round_end", round=round_number), within=21)
        ends = [ada.seen[-1]] + [await c.expect("round_end", round=round_number)
                                 for c in (bob, cy)]
        end = ends[0]
        assert all(e == end for e in ends[1:]), "everyone sees the same results"
        assert end["final"] is (round_number == 2)
        reasons = {r["name"]: r["reason"] for r in end["results"]}
        assert reasons == {"Ada": "done", "Bob": "done", "Cy": "time"}
        for result in end["results"]:
            drawing, guess = submitted[(result["player"], round_number)]
            assert result["drawing"] == drawing
            assert result["digit"] == guess["digit"]
            assert result["points"] == round(100 * guess["target_probability"])
    assert targets[0] != targets[1]

    over = await cy.expect("game_over")
    totals = {}
    for (player, _), (_, guess) in submitted.items():
        totals[player] = totals.get(player, 0) + round(100 * guess["target_probability"])
    assert {row["player"]: row["score"] for row in over["leaderboard"]} == totals
    scores = [row["score"] for row in over["leaderboard"]]
    assert scores == sorted(scores, reverse=True)
    assert over["rule"]

    drawings = await stored_drawings(room_code=room.code)
    assert len(drawings) == len(submitted) == 6
    for stored in drawings:
        drawing, guess = submitted[(stored.player_id, stored.round_number)]
        assert stored.strokes == drawing
        assert stored.label == targets[stored.round_number - 1]
        assert stored.prediction == guess["digit"]

    # Play again: the host starts a new game, scores start from zero.
    await ada.send("start", rounds=1)
    again = await bob.expect("round_start")
    assert again["game"] != over["game"] and again["rounds"] == 1
    snapshot = await bob.expect("room", state="playing")
    assert all(p["score"] == 0 for p in snapshot["players"])
    for client in (ada, bob, cy):
        await client.close()


async def test_reaching_the_target_ends_a_players_round_early_with_a_bonus(active_model):
    room = await new_room(rounds=1, target_confidence=0.0)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await ada.send("start")
    await ada.expect("round_start")
    await bob.expect("round_start")
    await ada.send("draw", round=1, drawing=seven(), pen_up=True)
    guess = await ada.expect("guess")
    assert guess["reached"] is True
    finished = await bob.expect("player_finished", player=ada.you["id"])
    assert finished["reason"] == "reached"
    # The clock stood still: all of the round was left, the whole bonus.
    assert finished["seconds"] == 0
    assert finished["points"] == round(100 * guess["target_probability"] + 50)
    # Her round is over; Bob's is not: the round goes on until he finishes.
    await ada.send("draw", round=1, drawing=one())
    await ada.error("already_finished")
    await bob.send("draw", round=1, drawing=one(), pen_up=True)
    await bob.expect("guess")
    # Her `player_finished` was the announcement: no snapshot followed it,
    # and the round went on (a snapshot would have been sent right after it).
    between = bob.seen[bob.seen.index(finished) + 1:]
    assert not [m["type"] for m in between if m["type"] in ("room", "round_end")], between
    end = await ada.expect("round_end")
    assert {r["reason"] for r in end["results"]} == {"reached"}
    assert len(await stored_drawings(room_code=room.code)) == 2
    await ada.close()
    await bob.close()


async def test_a_rooms_connections_in_one_process_move_it_on_with_one_read(
        active_model, game_clock, monkeypatch):
    """At the results' deadline every connection of the room wakes (each a
    little jittered); those of one process wait for the first's read and
    transaction instead of each making their own, and the next round's
    start is broadcast once."""
    calls = count_advances(monkeypatch)
    players, end = await three_players_see_round_one_end()
    calls.clear()  # each join looked too (a room may have missed a deadline)
    # Past every connection's jittered deadline at once (51 ms at most).
    game_clock.advance((end["next_round_at"] - end["server_time"]) / 1000 + 0.1)
    for client in players:
        await client.expect("round_start", round=2)
    assert calls == ["done"]
    await round_start_came_once(players)


async def test_a_failed_move_on_is_tried_again_and_a_failed_look_too(
        active_model, game_clock, monkeypatch, caplog):
    """The shared try at the deadline fails (the database, the channel
    layer): it is logged once and made again a second later. The next try
    finds nothing to do (as when another process moved the room on), so a
    second later the connections, which heard no broadcast, look at the
    room, and that look fails too (the database away again): logged once,
    and their timers try again at once rather than end. The room moves on."""
    from django.db import OperationalError

    from digitsite.game import rounds

    monkeypatch.setattr(rules, "SEAT_HEARTBEAT_SECONDS", 3600.0)
    players, end = await three_players_see_round_one_end()
    tries, looks = [], []
    real_advance, real_phase = rounds.advance, rounds.phase

    def advance(code):
        tries.append(code)
        if len(tries) == 1:
            raise OperationalError("database is locked")
        if len(tries) == 2:
            return []  # nothing due, as if another process had moved the room on
        return real_advance(code)

    def phase(code):
        looks.append(code)
        if len(looks) == 1:
            raise OperationalError("database is locked")
        return real_phase(code)

    monkeypatch.setattr(rounds, "advance", advance)
    monkeypatch.setattr(rounds, "phase", phase)
    game_clock.advance((end["next_round_at"] - end["server_time"]) / 1000 + 0.1)
    await game_clock.run_timers(players[0].expect("round_start", round=2), within=5)
    for client in players[1:]:
        await client.expect("round_start", round=2)
    assert len(tries) == 3 and len(looks) == 1, (tries, looks)
    messages = [record.getMessage() for record in caplog.records]
    assert sum("moving the room on" in m for m in messages) == 1
    assert sum("could not read the room" in m for m in messages) == 1
    await round_start_came_once(players)


async def test_while_the_database_is_away_a_rooms_timers_try_together_and_less_often(
        active_model, game_clock, monkeypatch, caplog):
    """The database away for the room's first four tries at its deadline:
    its three connections share each try (one move on, one log line), 1, 2,
    4 and 8 s apart, not one each a second, and nobody reads the room
    meanwhile; the fifth try moves the room on. Tried: with each
    connection retrying on its own, 3 tries a second."""
    from django.db import OperationalError

    from digitsite.game import clock, rounds

    monkeypatch.setattr(rules, "SEAT_HEARTBEAT_SECONDS", 3600.0)
    players, end = await three_players_see_round_one_end()
    away_for = 4
    tries, looks = [], []
    real_advance = rounds.advance

    def advance(code):
        tries.append(clock.monotonic())
        if len(tries) <= away_for:
            raise OperationalError("could not connect to server")
        return real_advance(code)

    def phase(code):
        looks.append(code)
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(rounds, "advance", advance)
    monkeypatch.setattr(rounds, "phase", phase)
    game_clock.advance((end["next_round_at"] - end["server_time"]) / 1000 + 0.1)
    # Time moves only once the next try is set, to exactly when it is due:
    # the round's first deadline still has its (superseded) timers asleep,
    # which a clock jumping on its own could reach first.
    for made, wait in enumerate((1, 2, 4, 8), start=1):

        def next_try_is_set(made=made, wait=wait):
            return len(tries) == made and any(
                abs(at - (tries[-1] + wait)) < 1e-6 for at in game_clock.wakes())

        await eventually(next_try_is_set, lambda: (tries, game_clock.wakes()))
        game_clock.advance(wait)
    for client in players:
        await client.expect("round_start", round=2)
    assert len(tries) == away_for + 1, tries
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    assert gaps == pytest.approx([1, 2, 4, 8], abs=1e-6)
    assert looks == []
    failures = [record for record in caplog.records if "moving the room on" in record.getMessage()]
    assert [record.getMessage().rsplit("; ", 1)[1] for record in failures] == [
        f"trying again in {wait} s" for wait in (1, 2, 4, 8)]
    assert failures[0].exc_info and not any(record.exc_info for record in failures[1:])
    await round_start_came_once(players)


async def test_the_tries_stop_once_no_connection_waits_for_the_deadline(
        active_model, game_clock, monkeypatch):
    """The database away for good from this process: once the room's
    connections here are gone (closed, or moved on by another process's
    broadcast), the task trying to move the room on stops instead of trying
    every 30 s for as long as the outage lasts. Tried: without the check,
    a second try a second later."""
    from django.db import OperationalError

    from digitsite.game import clock, rounds, timers

    monkeypatch.setattr(rules, "SEAT_HEARTBEAT_SECONDS", 3600.0)
    players, end = await three_players_see_round_one_end()
    tries = []

    def advance(code):
        tries.append(clock.monotonic())
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(rounds, "advance", advance)
    game_clock.advance((end["next_round_at"] - end["server_time"]) / 1000 + 0.1)
    await eventually(lambda: len(tries) == 1 and tries[0] + 1 in game_clock.wakes(),
                     lambda: (tries, game_clock.wakes()))
    running = timers._advancing[asyncio.get_running_loop()]
    [task] = running.values()
    waiting = list(task.waiters)
    assert len(waiting) == 3
    for client in players:
        await client.close()
    await eventually(lambda: all(t.session.closed for t in waiting), "the sessions closing")
    game_clock.advance(1)
    assert await asyncio.wait_for(task, 30) is False
    assert len(tries) == 1 and not running


async def test_a_move_on_whose_broadcast_fails_is_not_made_again_and_clients_catch_up(
        active_model, game_clock, monkeypatch, caplog):
    """The room moves on at its deadline but the broadcast of it fails (the
    channel layer away): the room is not moved on again (nothing would be
    due), and each connection, hearing nothing, looks at the room and
    catches its client up with the room as it is. Tried: retrying the
    broadcast's failure as the database's, two moves on."""
    from digitsite.game.session import PlayerSession

    monkeypatch.setattr(rules, "SEAT_HEARTBEAT_SECONDS", 3600.0)
    calls = count_advances(monkeypatch)
    players, end = await three_players_see_round_one_end()
    real_broadcast_all = PlayerSession.broadcast_all
    failed = []

    async def broadcast_all(self, messages):
        if not failed and any(m["type"] == "round_start" for m in messages):
            failed.append(messages)
            raise RuntimeError("the channel layer is away")
        return await real_broadcast_all(self, messages)

    monkeypatch.setattr(PlayerSession, "broadcast_all", broadcast_all)
    calls.clear()
    game_clock.advance((end["next_round_at"] - end["server_time"]) / 1000 + 0.1)
    for client in players:
        snapshot = await game_clock.run_timers(
            client.expect("room", state="playing", round=2), within=10)
        assert snapshot["target"] == failed[0][0]["target"]
    assert calls == ["done"]
    assert not [m for client in players for m in client.seen
                if m["type"] == "round_start" and m.get("round") == 2]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("the broadcast failed" in m for m in messages) == 1
    for client in players:
        await client.close()


async def test_a_failed_catch_up_is_tried_again_until_the_clients_are_current(
        active_model, game_clock, monkeypatch, caplog):
    """The broadcast that moves the room on fails (Redis away), and the
    database is away too when the connections, hearing nothing, read the
    room to catch their clients up: the room's connections share one read,
    made again 1 and then 2 s later, each failure logged once, and the
    clients get the room as it is. Tried: a failed catch-up ended the
    connections' timers, and the clients stayed in the last round until
    some broadcast came."""
    from django.db import OperationalError

    from digitsite.game import clock, snapshots
    from digitsite.game.session import PlayerSession

    monkeypatch.setattr(rules, "SEAT_HEARTBEAT_SECONDS", 3600.0)
    players, end = await three_players_see_round_one_end()
    real_broadcast_all, real_catch_up = PlayerSession.broadcast_all, snapshots.catch_up
    failed, reads = [], []

    async def broadcast_all(self, messages):
        if not failed and any(m["type"] == "round_start" for m in messages):
            failed.append(messages)
            raise RuntimeError("the channel layer is away")
        return await real_broadcast_all(self, messages)

    def catch_up(code):
        reads.append(clock.monotonic())
        if len(reads) <= 2:
            raise OperationalError("could not connect to server")
        return real_catch_up(code)

    monkeypatch.setattr(PlayerSession, "broadcast_all", broadcast_all)
    monkeypatch.setattr(snapshots, "catch_up", catch_up)
    game_clock.advance((end["next_round_at"] - end["server_time"]) / 1000 + 0.1)
    for client in players:
        snapshot = await game_clock.run_timers(
            client.expect("room", state="playing", round=2), within=30)
        assert snapshot["target"] == failed[0][0]["target"]
    assert len(reads) == 3, reads
    assert [later - earlier for earlier, later in itertools.pairwise(reads)] == pytest.approx(
        [1, 2], abs=1e-6)
    failures = [record for record in caplog.records
                if "catching clients up failed" in record.getMessage()]
    assert [record.getMessage().rsplit("; ", 1)[1] for record in failures] == [
        "trying again in 1 s", "trying again in 2 s"]
    assert failures[0].exc_info and not failures[1].exc_info
    assert sum("did not arrive" in record.getMessage() for record in caplog.records) == 1
    for client in players:
        await client.close()


async def test_while_the_database_is_away_heartbeats_log_a_line_a_minute_not_a_traceback_each(
        active_model, game_clock, monkeypatch, caplog):
    """A room of three in the lobby, its seats' heartbeats failing for over
    two minutes of the clock: the first failure is logged with its
    traceback, the others counted in a line a minute at most, and the first
    heartbeat that succeeds again says how many failed. Tried: each failure
    logged its own traceback (39 here; 4 a second for a class of 40)."""
    from django.db import OperationalError

    from digitsite.game import clock, seats, timers

    room = await new_room()
    players = [await join(room.code, name) for name in ("Ada", "Bob", "Cy")]
    real_heartbeat = seats.heartbeat
    failures, beats = [], []

    def heartbeat(code, player_id, channel_name):
        if len(failures) < 39:
            failures.append(clock.monotonic())
            raise OperationalError("could not connect to server")
        beats.append(clock.monotonic())
        return real_heartbeat(code, player_id, channel_name)

    monkeypatch.setattr(seats, "heartbeat", heartbeat)

    def heartbeat_lines():
        return [record for record in caplog.records
                if record.name == timers.logger.name and "seat heartbeats" in record.getMessage()]

    await game_clock.run_timers(eventually(lambda: heartbeat_lines()[-1:] and "succeed again"
                                           in heartbeat_lines()[-1].getMessage(),
                                           lambda: (len(failures), len(beats))), within=600)
    first, *counts, recovered = heartbeat_lines()
    assert first.levelname == "ERROR" and first.exc_info
    assert f"(first: room {room.code})" in first.getMessage()
    outage = failures[-1] - failures[0]
    assert outage >= 108  # 13 beats a connection, 9 s apart at least
    assert 1 <= len(counts) <= outage // 60
    assert all("still failing" in r.getMessage() and not r.exc_info for r in counts)
    assert recovered.getMessage().startswith("seat heartbeats succeed again, after 39 failures")
    for client in players:
        await client.close()


def count_advances(monkeypatch):
    """rounds.advance, each call noted as "done" in the list returned."""
    from digitsite.game import rounds

    calls = []
    real = rounds.advance

    def counted(code):
        calls.append("done")
        return real(code)

    monkeypatch.setattr(rounds, "advance", counted)
    return calls


async def three_players_see_round_one_end():
    room = await new_room(rounds=2)
    players = [await join(room.code, name) for name in ("Ada", "Bob", "Cy")]
    await players[0].send("start")
    for client in players:
        await client.expect("round_start", round=1)
    for client in players:
        await client.send("done", round=1)
    end = await players[0].expect("round_end", round=1)
    for client in players[1:]:
        await client.expect("round_end", round=1)
    # Every connection's timer for the results' deadline is set before a
    # test moves the clock past it: on a loaded machine one still handling
    # the round's end would set it after the move, wake after the others'
    # shared try had ended, and try again on its own.
    ends_in = game_clock_now().monotonic() + (end["next_round_at"] - end["server_time"]) / 1000
    await eventually(
        lambda: sum(at <= ends_in + 0.1 for at in game_clock_now().wakes()) >= len(players),
        lambda: (ends_in, game_clock_now().wakes()))
    return players, end


def game_clock_now():
    from digitsite.game import clock

    return clock.current()


async def round_start_came_once(players):
    for client in players:
        await client.send("ping")
        await client.expect("pong")
        starts = [m for m in client.seen if m["type"] == "round_start"]
        assert len(starts) == 2, "the next round's start came once"
        await client.close()


async def test_disconnect_and_rejoin_keeps_seat_score_and_round(active_model, game_clock):
    room = await new_room(rounds=2)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await ada.send("start")
    await bob.expect("round_start")
    await bob.send("draw", round=1, drawing=one())
    await bob.expect("guess")
    # Bob's connection drops right after drawing: his seat and his round wait
    # for him.
    await bob.close()
    while True:
        snapshot = await ada.expect("room")
        bob_row = next((p for p in snapshot["players"] if p["id"] == bob.you["id"]), {})
        if bob_row.get("connected") is False:
            break
    assert bob_row["gone"] is False and bob_row["finished"] is False
    assert bob_row["rejoin_until"] > snapshot["server_time"]
    # Ada is done; the round still waits for Bob.
    await ada.send("done", round=1)
    await ada.expect("player_finished", player=ada.you["id"])
    assert not [m for m in ada.seen if m["type"] == "player_finished"
                and m["player"] == bob.you["id"]]

    back = await join(room.code, "Bob again", token=bob.you["token"])
    assert back.welcome["rejoined"] is True
    # The round still waits for Bob; the snapshot he gets shows Ada's finish,
    # which no snapshot announced.
    assert back.welcome["room"]["state"] == "playing"
    assert next(p for p in back.welcome["room"]["players"] if p["id"] == ada.you["id"])["finished"]
    assert back.you["id"] == bob.you["id"] and back.you["name"] == "Bob"
    assert back.you["token"] != bob.you["token"]
    me = next(p for p in back.welcome["room"]["players"] if p["id"] == bob.you["id"])
    assert me["connected"] and not me["finished"] and me["score"] == 0
    assert len(back.welcome["room"]["players"]) == 2
    # His drawing comes back with the welcome, and he goes on drawing.
    assert back.welcome["drawing"] == one()
    await back.send("draw", round=1, drawing=one(5))
    again = await back.expect("guess")
    assert again["kept"] is True
    await back.send("done", round=1)
    finished = await back.expect("player_finished", player=bob.you["id"])
    assert finished["reason"] == "done"
    assert finished["points"] == round(100 * again["target_probability"])
    await back.expect("round_end", round=1)
    stored = await stored_drawings(room_code=room.code)
    assert [(d.player_id, d.strokes) for d in stored] == [(bob.you["id"], one(5))]
    # The next round he plays as before.
    await game_clock.run_timers(back.expect("round_start", round=2), within=3.1)
    await back.send("draw", round=2, drawing=one())
    await back.expect("guess")
    await back.send("done", round=2)
    # Ada says done once her own connection has the round (as her page would).
    await ada.expect("round_start", round=2)
    await ada.send("done", round=2)
    over = await back.expect("game_over")
    bob_total = next(r["score"] for r in over["leaderboard"] if r["player"] == bob.you["id"])
    assert bob_total >= finished["points"]
    await ada.close()
    await back.close()


async def test_a_player_who_does_not_come_back_keeps_the_drawing_they_left(
        active_model, settings, game_clock):
    settings.GAME_REJOIN_SECONDS = 30
    room = await new_room(rounds=1, seconds=120.0)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await ada.send("start")
    await bob.expect("round_start")
    await bob.send("draw", round=1, drawing=one())
    guess = await bob.expect("guess")
    await bob.close()
    await ada.expect("round_start")
    await ada.send("done", round=1)
    await ada.expect("player_finished", player=ada.you["id"])
    # Once his rejoin window ends his seat is gone and the round ends; the
    # drawing he left counts and is stored.
    end = await game_clock.run_timers(ada.expect("round_end", round=1), within=31)
    bobs = next(r for r in end["results"] if r["player"] == bob.you["id"])
    assert bobs["reason"] == "disconnected" and bobs["drawing"] == one()
    assert bobs["points"] == round(100 * guess["target_probability"])
    stored = await stored_drawings(room_code=room.code)
    assert [(d.player_id, d.strokes) for d in stored] == [(bob.you["id"], one())]
    await ada.close()


async def test_a_seat_not_reclaimed_in_time_is_gone(active_model, settings, game_clock):
    settings.GAME_REJOIN_SECONDS = 60
    room = await new_room()
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await bob.close()

    def bobs(snapshot):
        return next((p for p in snapshot["players"] if p["id"] == bob.you["id"]), None)

    async def bob_seat(**state):
        while True:
            row = bobs(await ada.expect("room"))
            if row is not None and all(row[k] == v for k, v in state.items()):
                return row

    assert (await bob_seat(connected=False))["gone"] is False
    # Still his a moment before the rejoin window closes (heartbeats fire
    # meanwhile)...
    await game_clock.run_for(59.5)
    assert not any(m["type"] == "room" and (bobs(m) or {}).get("gone") for m in ada.seen)
    # ... gone once it has.
    await game_clock.run_timers(bob_seat(gone=True), within=1)
    late = await join(room.code, "Bob", token=bob.you["token"])
    assert late.welcome["rejoined"] is False and late.you["id"] != bob.you["id"]
    await ada.close()
    await late.close()


async def test_a_rejoin_window_whose_end_fails_is_ended_once_the_database_is_back(
        active_model, settings, game_clock, monkeypatch, caplog):
    """The database is away when a disconnected player's rejoin window
    ends: the two connections left share one try, made again 1, 2 and 4 s
    later, each failure logged once, and the seat goes once the database is
    back. A snapshot repeating the window meanwhile starts no second round
    of tries. Tried: a failed end was not made again, and the seat stayed
    the player's until some broadcast brought another window."""
    from django.db import OperationalError

    from digitsite.game import clock, seats

    monkeypatch.setattr(rules, "SEAT_HEARTBEAT_SECONDS", 3600.0)
    settings.GAME_REJOIN_SECONDS = 60
    room = await new_room()
    ada = await join(room.code, "Ada")
    cy = await join(room.code, "Cy")
    bob = await join(room.code, "Bob")
    real_expire, tries = seats.expire_seats, []

    def expire_seats(code):
        tries.append(clock.monotonic())
        if len(tries) <= 3:
            raise OperationalError("could not connect to server")
        return real_expire(code)

    def bobs(snapshot):
        return next((p for p in snapshot["players"] if p["id"] == bob.you["id"]), None)

    monkeypatch.setattr(seats, "expire_seats", expire_seats)
    await bob.close()
    for client in (ada, cy):
        while (row := bobs(await client.expect("room"))) is None or row["connected"]:
            pass
        assert row["gone"] is False
    window = row["rejoin_until"]
    # Past the window's end and both connections' jitter (0.15 s at most):
    # the first try fails. Then Cy's connection hears the window again (in
    # a snapshot, as any change in the room brings).
    game_clock.advance(window / 1000 - game_clock.time() + 0.2)
    await eventually(lambda: len(tries) == 1 and len(_timers_of_room(room.code)) == 2,
                     lambda: (tries, _timers_of_room(room.code)))
    [cys] = [t for t in _timers_of_room(room.code) if t.session.player_id == cy.you["id"]]
    cys.set_expiry(window)
    while (row := bobs(await game_clock.run_timers(ada.expect("room"), within=120))) and (
            not row["gone"]):
        pass
    await cy.expect("room")
    assert len(tries) == 4, tries
    assert [later - earlier for earlier, later in itertools.pairwise(tries)] == pytest.approx(
        [1, 2, 4], abs=1e-6)
    failures = [record for record in caplog.records
                if "ending rejoin windows" in record.getMessage()]
    assert [record.getMessage().rsplit("; ", 1)[1] for record in failures] == [
        "trying again in 1 s", "trying again in 2 s", "trying again in 4 s"]
    assert failures[0].exc_info and not any(record.exc_info for record in failures[1:])
    await ada.close()
    await cy.close()


def _timers_of_room(code):
    """The RoomTimers of this process's connections of the room (the shared
    tasks' waiters)."""
    from digitsite.game import timers

    running = timers._advancing.get(asyncio.get_running_loop(), {})
    return {waiter for key, task in running.items() if key[0] == code
            for waiter in task.waiters}


async def test_same_token_twice_replaces_the_older_connection(active_model):
    room = await new_room()
    ada = await join(room.code, "Ada")
    again = await join(room.code, "Ada", token=ada.you["token"])
    assert again.you["id"] == ada.you["id"]
    await ada.error("replaced")
    assert await ada.closed() == protocol.CLOSE_REPLACED
    await ada.close()
    seat = await seat_of(again.you["id"])
    assert seat.connected, "the replaced connection's close must not unseat the new one"
    await again.close()


async def test_host_hand_over_when_the_host_leaves_or_drops(active_model):
    room = await new_room(rounds=1)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    cy = await join(room.code, "Cy")
    await ada.send("leave")
    assert await ada.closed() == 1000
    await ada.close()
    snapshot = await bob.expect("room")
    while snapshot["host"] == ada.you["id"]:
        snapshot = await bob.expect("room")
    assert snapshot["host"] == bob.you["id"]
    assert next(p for p in snapshot["players"] if p["id"] == ada.you["id"])["gone"]
    # A left seat cannot be reclaimed with its token.
    ghost = await join(room.code, "Ada", token=ada.you["token"])
    assert ghost.welcome["rejoined"] is False
    await ghost.close()
    # The new host drops: the host moves on again, and that player can start.
    await bob.close()
    snapshot = await cy.expect("room", host=cy.you["id"])
    await cy.send("start")
    await cy.expect("round_start")
    await cy.close()


async def test_opted_out_players_drawings_are_not_stored(active_model, game_clock):
    room = await new_room(rounds=2)
    ada = await join(room.code, "Ada", opt_out=True)
    bob = await join(room.code, "Bob")
    assert ada.you["opt_out"] is True
    await ada.send("start")
    for client, drawing in ((ada, seven()), (bob, one())):
        await client.expect("round_start")
        await client.send("draw", round=1, drawing=drawing)
        await client.expect("guess")
        await client.send("done", round=1)
    await ada.expect("round_end", round=1)
    assert [d.player_id for d in await stored_drawings(room_code=room.code)] == [bob.you["id"]]
    # Bob opts out during the game, Ada opts back in.
    await bob.send("opt_out", value=True)
    await ada.send("opt_out", value=False)
    await game_clock.run_timers(ada.expect("round_start", round=2), within=3.1)
    for client, drawing in ((ada, seven()), (bob, one())):
        if client is bob:
            await client.expect("round_start", round=2)
        await client.send("draw", round=2, drawing=drawing)
        await client.expect("guess")
        await client.send("done", round=2)
    over = await ada.expect("game_over")
    stored = await stored_drawings(room_code=room.code)
    assert [(d.player_id, d.round_number) for d in stored] == [
        (bob.you["id"], 1), (ada.you["id"], 2)]
    # Someone arriving after the game sees its last results and leaderboard.
    late = await join(room.code, "Late")
    assert late.welcome["room"]["state"] == "finished"
    last = await late.expect("round_end")
    assert last["round"] == 2 and last["final"]
    assert {r["player"] for r in last["results"]} == {ada.you["id"], bob.you["id"]}
    assert (await late.expect("game_over"))["leaderboard"] == over["leaderboard"]
    for client in (ada, bob, late):
        await client.close()


async def test_a_player_who_opts_out_mid_round_leaves_no_drawing_once_it_ends(active_model):
    """Over the socket: Ada draws while opted in, opts out mid-round, says
    `done`; Bob draws and says `done`, which ends the round. While it was on,
    her progress held her drawing; after `round_end` no strokes, 28x28 input
    or probabilities of hers remain in any table, and the results (and a late
    joiner's catch-up) show her points with `drawing_deleted`. Bob's drawing
    is stored. The round ends by everyone finishing: no timer is waited on."""
    room = await new_room(rounds=1, seconds=120.0)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await ada.send("start")
    for client in (ada, bob):
        await client.expect("round_start")
    await ada.send("draw", round=1, seq=1, drawing=seven(offset=0.123456))
    guess = await ada.expect("guess", seq=1)
    progress = await round_progress(ada.you["id"], 1)
    assert progress.drawing == seven(offset=0.123456)
    # Her coordinate, her input and the probabilities other than the target's
    # (whose value the scoreboard keeps as target_probability).
    target = (await room_row(room.code)).target
    needles = (60.123456, bytes(progress.input_image),
               *(p for digit, p in enumerate(guess["probabilities"]) if digit != target))
    await ada.send("opt_out", value=True)
    while not any(player["id"] == ada.you["id"] and player["opt_out"]
                  for player in (await ada.expect("room", timeout=10))["players"]):
        pass
    await ada.send("done", round=1)
    await ada.expect("player_finished", player=ada.you["id"])
    await bob.send("draw", round=1, seq=1, drawing=one())
    await bob.expect("guess", seq=1)
    await bob.send("done", round=1)
    ended = await ada.expect("round_end", timeout=10)

    assert await sync_to_async(rows_containing)(*needles) == []
    results = {r["player"]: r for r in ended["results"]}
    mine = results[ada.you["id"]]
    assert mine["drawing_deleted"] is True and mine["reason"] == "done"
    assert mine["drawing"] is None and mine["input"] is None and mine["probabilities"] is None
    assert mine["points"] == round(100 * guess["target_probability"])
    assert results[bob.you["id"]]["drawing"] == one()
    assert [d.player_id for d in await stored_drawings(room_code=room.code)] == [bob.you["id"]]
    late = await join(room.code, "Late")
    caught_up = await late.expect("round_end")
    assert caught_up["results"] == ended["results"]
    for client in (ada, bob, late):
        await client.close()


@sync_to_async
def round_progress(player_id, round_number):
    from digitsite.game.models import RoundProgress

    return RoundProgress.objects.get(seat__player_id=player_id, round_number=round_number)


async def test_a_drawing_is_said_kept_only_once_it_is_written(active_model, game_clock):
    """What a guess, or a `kept` message, says is kept is in the database
    before it arrives, so the drawing last said kept is the one the round
    keeps. Drawings within a second of a write are answered `held` and
    written when the second is up."""
    room = await new_room(rounds=1, solo=True)
    ada = await join(room.code, "Ada")
    await ada.send("start")
    await ada.expect("round_start")

    async def check_written(seq, guesses):
        progress = await round_progress(ada.you["id"], 1)
        assert progress.drawing == seven(offset=10 * seq)
        assert progress.guesses == guesses

    await ada.send("draw", round=1, seq=1, drawing=seven(offset=10), pen_up=False)
    guess = await ada.expect("guess", seq=1)
    assert guess["kept"] is True and guess["held"] is False
    await check_written(1, 1)
    progress = await round_progress(ada.you["id"], 1)
    assert progress.prediction == guess["digit"]
    assert progress.probabilities == guess["probabilities"]
    for seq in (2, 3):
        await ada.send("draw", round=1, seq=seq, drawing=seven(offset=10 * seq), pen_up=False)
        guess = await ada.expect("guess", seq=seq)
        assert guess["kept"] is False and guess["held"] is True
        await check_written(1, 1)  # not yet
    game_clock.advance(1.0)
    kept = await ada.expect("kept")
    assert kept == {"type": "kept", "round": 1, "seq": 3}
    await check_written(3, 3)  # the write counts the drawing it replaced
    # A drawing a second or more after the last write is written before its guess.
    game_clock.advance(1.0)
    await ada.send("draw", round=1, seq=4, drawing=seven(offset=40), pen_up=False)
    guess = await ada.expect("guess", seq=4)
    assert guess["kept"] is True and guess["held"] is False
    await check_written(4, 4)
    # A held drawing is written before the round ends for the player.
    await ada.send("draw", round=1, seq=6, drawing=seven(offset=60), pen_up=False)
    assert (await ada.expect("guess", seq=6))["held"] is True
    await ada.send("done", round=1)
    assert (await ada.expect("kept"))["seq"] == 6
    await ada.expect("round_end")
    [stored] = await stored_drawings(room_code=room.code)
    assert stored.strokes == seven(offset=60)
    await ada.close()


async def test_while_the_database_refuses_writes_guesses_come_at_once_held_and_kept_follows(
        active_model, game_clock, monkeypatch):
    """The database refuses the player's writes (locked, restarting) for six
    drawings a second apart, each due to be written: each guess still comes
    at once, as `held` (the first at its write's first refusal), also once
    another room's write lands (the process's outage over, this player's
    write still refused). Only the newest is held while a write waits: one
    write under way and one waiting, not one more a second. Once the
    database is back the writes land in order, `kept` follows, the last
    drawing is the round's, and the progress counts all six. Tried: the
    first guess waited for its write, and the player saw nothing until the
    database was back; and a write a second was queued, each drawing kept."""
    from django.db import OperationalError

    from digitsite.game import database, guesses

    room = await new_room(rounds=1, solo=True)
    ada = await join(room.code, "Ada")
    await ada.send("start")
    await ada.expect("round_start")
    real_record_guess, tried, back = guesses.record_guess, [], []

    def record_guess(*args, **kwargs):
        tried.append(kwargs["drawing"])
        if not back:
            raise OperationalError("database is locked")
        return real_record_guess(*args, **kwargs)

    monkeypatch.setattr(guesses, "record_guess", record_guess)
    for seq in range(1, 7):
        await ada.send("draw", round=1, seq=seq, drawing=seven(offset=10 * seq), pen_up=False)
        guess = await ada.expect("guess", seq=seq)
        assert (guess["held"], guess["kept"]) == (True, False), guess
        if seq == 2:
            database._refusals.succeeded()  # another room's write landed
        game_clock.advance(1.0)  # the next drawing's write is due
    assert tried and not any(m["type"] in ("kept", "error") for m in ada.seen)
    back.append(True)
    kept = await game_clock.run_timers(ada.expect("kept", seq=6), within=5)
    assert kept == {"type": "kept", "round": 1, "seq": 6}
    seqs = [m["seq"] for m in ada.seen if m["type"] == "kept"]
    assert seqs == sorted(seqs) and seqs[0] == 1 and len(seqs) <= 3, seqs
    written = {json.dumps(drawing, sort_keys=True) for drawing in tried}
    assert len(written) <= 3, [d["strokes"][0][0] for d in tried]
    progress = await round_progress(ada.you["id"], 1)
    assert progress.drawing == seven(offset=60)
    assert progress.guesses == 6
    await ada.close()


async def test_a_drawing_that_reaches_the_target_while_writes_are_refused_ends_the_round_later(
        active_model, game_clock, monkeypatch):
    """While the database refuses the player's writes (another room's write
    landing meanwhile), a drawing sent with the pen up at the target
    confidence is answered at once, `held` and not `reached` (its write waits
    behind the refused one), and a second one after it is held behind it.
    Once the database is back its write ends the player's round
    (`player_finished`, reached) and is the round's drawing; the second is
    not written over it. Tried: the reaching drawing's guess, and every
    guess after it, waited for the refused write."""
    from django.db import OperationalError

    from digitsite.game import database, guesses

    room = await new_room(rounds=1, target_confidence=0.0)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await ada.send("start")
    await ada.expect("round_start")
    real_record_guess, back = guesses.record_guess, []

    def record_guess(*args, **kwargs):
        if not back:
            raise OperationalError("database is locked")
        return real_record_guess(*args, **kwargs)

    monkeypatch.setattr(guesses, "record_guess", record_guess)
    await ada.send("draw", round=1, seq=1, drawing=one(), pen_up=False)
    guess = await ada.expect("guess", seq=1)
    assert (guess["held"], guess["kept"]) == (True, False)
    database._refusals.succeeded()  # another room's write landed
    for seq, offset in ((2, 0.0), (3, 20.0)):
        await ada.send("draw", round=1, seq=seq, drawing=seven(offset), pen_up=True)
        guess = await ada.expect("guess", seq=seq)
        assert (guess["held"], guess["kept"], guess["reached"]) == (True, False, False)
    back.append(True)
    finished = await game_clock.run_timers(
        bob.expect("player_finished", player=ada.you["id"]), within=5)
    assert finished["reason"] == "reached"
    await ada.expect("kept", seq=2)
    progress = await round_progress(ada.you["id"], 1)
    assert progress.drawing == seven(0.0) and progress.finished
    assert not any(m["type"] == "kept" and m["seq"] == 3 for m in ada.seen)
    await ada.close()
    await bob.close()


async def test_a_client_whose_round_end_broadcast_was_lost_is_caught_up(active_model,
                                                                          monkeypatch,
                                                                          game_clock):
    """The channel layer loses the broadcasts that end the game (channels_redis
    drops group messages past its capacity, and a process can die after acting
    and before broadcasting): the connection sees its view of the room fall
    behind the database and sends its client the results and the room itself."""
    from digitsite.game.consumers import GameConsumer

    lost = []
    broadcast = GameConsumer.broadcast

    async def lossy_broadcast(self, message):
        if message["type"] in ("round_end", "game_over") or message.get("state") == "finished":
            lost.append(message["type"])
            return
        await broadcast(self, message)

    monkeypatch.setattr(GameConsumer, "broadcast", lossy_broadcast)
    # No heartbeats in the window: each would move the clock on 10 s while
    # the catch-up's database work runs, and could take it past the window
    # before the catch-up's own waits were set. (A solo room: no other seat
    # to find stale.)
    monkeypatch.setattr(rules, "SEAT_HEARTBEAT_SECONDS", 3600.0)
    room = await new_room(rounds=1, solo=True)
    ada = await join(room.code, "Ada")
    await ada.send("start")
    start = await ada.expect("round_start")
    await ada.send("draw", round=1, seq=1, drawing=seven())
    guess = await ada.expect("guess")
    # The round ends by the timer; everything that says so is lost on the way.
    # The connection looks again a second after the deadline, waits
    # CATCH_UP_AFTER for a late broadcast, then catches its client up: about
    # 26 s in all. Those waits start when the database work before them is
    # done, so the window is wide; nothing here minds time passing.
    end = await game_clock.run_timers(ada.expect("round_end"), within=60)
    assert lost == ["round_end", "game_over", "room"]
    assert end["final"] and end["target"] == start["target"]
    [result] = end["results"]
    assert result["player"] == ada.you["id"] and result["reason"] == "time"
    assert result["drawing"] == seven() and result["digit"] == guess["digit"]
    over = await ada.expect("game_over")
    assert [row["player"] for row in over["leaderboard"]] == [ada.you["id"]]
    snapshot = next(m for m in ada.seen if m["type"] == "room" and m["state"] == "finished")
    assert snapshot["players"][0]["score"] == result["score"]
    # The client's view is current again: the host may start the next game.
    await ada.send("start")
    assert (await ada.expect("round_start"))["game"] != start["game"]
    await ada.close()


async def test_fast_drawings_are_coalesced_and_the_newest_counts(active_model):
    room = await new_room(rounds=1, solo=True)
    ada = await join(room.code, "Ada")
    await ada.send("start")
    await ada.expect("round_start")
    for seq in range(1, 9):
        await ada.send("draw", round=1, seq=seq, drawing=seven(offset=seq))
    seqs = []
    while not seqs or seqs[-1] != 8:
        seqs.append((await ada.expect("guess"))["seq"])
    assert len(seqs) < 8 and seqs == sorted(seqs)
    await ada.send("done", round=1)
    await ada.expect("round_end")
    [stored] = await stored_drawings(room_code=room.code)
    assert stored.strokes == seven(offset=8)
    await ada.close()


@sync_to_async
def logged_in_cookie(username):
    from django.contrib.auth.models import User
    from django.test import Client as HttpClient

    http = HttpClient()
    http.force_login(User.objects.create_user(username, password="not-used-here"))
    return f"sessionid={http.cookies['sessionid'].value}"


async def test_a_logged_in_player_keeps_the_account_name_and_seat(active_model):
    room = await new_room()
    cookie = await logged_in_cookie("grace")
    first = await join(room.code, "Someone else", cookie=cookie)
    assert first.you["name"] == "grace"
    await first.close()
    # A new tab without the token still finds the account's seat.
    again = await join(room.code, "", cookie=cookie)
    assert again.welcome["rejoined"] is True and again.you["id"] == first.you["id"]
    await again.close()


# -- hostile and broken clients ------------------------------------------------


async def test_cross_origin_connections_are_refused(active_model):
    room = await new_room()
    communicator = WebsocketCommunicator(
        application, f"/ws/v1/rooms/{room.code}/",
        headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect()
    assert connected is False
    await communicator.disconnect()


async def test_unknown_room_and_full_room_are_closed_with_codes(active_model):
    ghost = await connect("ZZZZZZ")
    await ghost.error("room_not_found")
    assert await ghost.closed() == protocol.CLOSE_NOT_FOUND
    await ghost.close()
    bad = await connect("not-a-code")
    await bad.error("room_not_found")
    await bad.close()

    room = await new_room(max_players=2)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    cy = await connect(room.code)
    await cy.send("join", protocol=1, name="Cy")
    await cy.error("room_full")
    assert await cy.closed() == protocol.CLOSE_ROOM_FULL
    for client in (ada, bob, cy):
        await client.close()


async def test_malformed_messages_get_clear_errors_and_the_socket_stays(active_model, game_clock):
    room = await new_room(rounds=1, solo=True)
    client = await connect(room.code)
    await client.send("start")
    await client.error("not_joined")
    await client.ws.send_to(text_data="{not json")
    await client.error("bad_json")
    await client.ws.send_to(text_data="[1, 2, 3]")
    await client.error("bad_json")
    await client.ws.send_to(text_data="[" * 20000 + "]" * 20000)
    await client.error("bad_json")
    await client.ws.send_to(bytes_data=b"\x00\x01")
    await client.error("bad_json")
    await client.send("teleport")
    assert "teleport" in (await client.error("unknown_type"))["message"]
    await client.send("join", protocol="1", name="Ada")
    assert "protocol" in (await client.error("bad_message"))["message"]
    await client.send("join", protocol=1, name="")
    await client.error("bad_name")
    await client.send("join", protocol=1, name="x" * 200)
    await client.error("bad_name")
    await client.send("join", protocol=1, name=["Ada"])
    await client.error("bad_message")
    await client.send("join", protocol=1, name="Ada", room="ABCDEF")
    await client.error("wrong_room")

    await client.send("join", protocol=1, name="Ada", room=room.code.lower())
    welcome = await client.expect("welcome")
    await client.send("join", protocol=1, name="Ada")
    await client.error("already_joined")
    await client.send("draw", round=1, drawing=seven())
    await client.error("not_playing")
    await client.send("start", rounds="five")
    await client.error("bad_message")
    await client.send("start", rounds=99)
    await client.error("bad_message")
    await client.send("start")
    await client.expect("round_start")
    await client.send("draw", round="1", drawing=seven())
    await client.error("bad_message")
    await client.send("draw", round=1, drawing=[[1, 2]])
    await client.error("bad_message")
    await client.send("draw", round=2, drawing=seven())
    await client.error("wrong_round")
    await client.send("draw", round=1, drawing={"width": 280, "height": 280, "strokes": []})
    await client.error("bad_drawing")
    await client.send("draw", round=1, drawing={"width": "wide", "height": 2, "strokes": [[]]})
    await client.error("bad_drawing")
    await client.send("draw", round=1, drawing={"width": 280, "height": 280,
                                                 "strokes": [[[1, True]]]})
    await client.error("bad_drawing")
    points = [[i % 280, (i * 7) % 280] for i in range(protocol.MAX_POINTS + 1)]
    await client.send("draw", round=1, drawing={"width": 280, "height": 280, "strokes": [points]})
    await client.error("too_many_points")
    # The corner-to-corner zigzag: valid JSON within the point limit, far too much ink.
    zigzag = [[0, 0] if i % 2 == 0 else [280, 280] for i in range(protocol.MAX_POINTS)]
    await client.send("draw", round=1, drawing={"width": 280, "height": 280, "strokes": [zigzag]})
    await client.error("too_much_ink")
    await client.send("opt_out", value="yes")
    await client.error("bad_message")
    await client.send("draw", round=1, seq="x", drawing=seven())
    await client.error("bad_message")
    # Still a working connection after all that. Over 30 messages so far: let
    # the rate limiter's bucket refill (20 a second) in virtual time first.
    game_clock.advance(2)
    await client.send("draw", round=1, seq=1, drawing=seven())
    assert (await client.expect("guess"))["seq"] == 1
    await client.send("done", round=1)
    await client.expect("round_end")
    # Drawing after the round ended.
    await client.send("draw", round=1, drawing=seven())
    await client.error("not_playing")
    await client.send("done", round=1)
    await client.error("not_playing")
    assert welcome["you"]["name"] == "Ada"
    await client.close()


async def test_unsupported_protocol_version_closes(active_model):
    room = await new_room()
    client = await connect(room.code)
    await client.send("join", protocol=4, name="Ada")
    await client.error("unsupported_protocol")
    assert await client.closed() == protocol.CLOSE_PROTOCOL
    await client.close()


async def test_oversized_message_closes_with_4009(active_model):
    """Hostile inputs: a 70 kB text frame, and a 70 kB binary one."""
    room = await new_room()
    # Two players: a seat whose socket closed is kept for the rejoin window,
    # and a second "Ada" would be refused as a look-alike of the first.
    for name, frame in (("Ada", {"text_data": json.dumps({"type": "ping", "pad": "x" * 70_000})}),
                        ("Bea", {"bytes_data": b"\x00" * 70_000})):
        client = await join(room.code, name)
        await client.ws.send_to(**frame)
        await client.error("too_large")
        assert await client.closed() == protocol.CLOSE_TOO_LARGE == 4009
        await client.close()


async def test_oversized_message_on_a_real_server_closes_with_4009_and_one_log_line(
        daphne_server):
    """Through Daphne, whose WebSocket library refuses close codes an application
    may not send (1009 among them: it then closes with 1011 and logs an ERROR
    traceback). Hostile input: a 70 kB text frame after join."""
    code = await asyncio.to_thread(daphne_server.create_room)
    logged_before = daphne_server.log_path.stat().st_size
    async with await daphne_server.game_client(code, "Ada") as ada:
        await ada.join(timeout=30)
        await ada.send_raw(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        assert await ada.closed(timeout=30) == 4009
    assert [m["code"] for m in ada.all_of("error")] == ["too_large"]

    def new_log():
        with open(daphne_server.log_path, "rb") as log:
            log.seek(logged_before)
            return log.read().decode(errors="replace")

    # The server logs its one line before it closes the socket, so it is there
    # once the client saw the close; give a slow disk a while all the same.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while "over the 65536-byte limit" not in new_log() and loop.time() < deadline:
        await asyncio.sleep(0.1)
    lines = [line for line in new_log().splitlines() if "over the 65536-byte limit" in line]
    assert len(lines) == 1 and "WARNING" in lines[0] and code in lines[0], new_log()
    assert "Traceback" not in new_log() and " ERROR " not in new_log(), new_log()


async def test_no_join_in_time_closes(active_model, game_clock):
    room = await new_room()
    asleep = game_clock.sleepers()
    client = await connect(room.code)
    # The join timer starts once the room is found, after the socket is
    # accepted: a slow lookup would start it after run_for moved the clock.
    await eventually(lambda: game_clock.sleepers() > asleep, "the join timer to start", WAIT)
    await game_clock.run_for(protocol.JOIN_TIMEOUT - 0.1)
    assert client.ws.output_queue.empty()  # nothing before the timeout
    await game_clock.run_timers(client.error("not_joined"), within=0.2)
    assert await client.closed() == protocol.CLOSE_JOIN_TIMEOUT
    await client.close()


async def test_flooding_is_rate_limited_then_cut_off_without_disturbing_others(active_model):
    """The clock stands still, so the bucket does not refill while the test
    sends: exactly the burst gets through, however fast the machine."""
    room = await new_room(rounds=1)
    ada = await join(room.code, "Ada")
    spammer = await join(room.code, "Spam")
    await ada.send("start")
    await ada.expect("round_start")
    # A burst over the bucket: some pings are dropped with one rate_limited error.
    for _ in range(protocol.RATE_BURST + 10):
        await spammer.send("ping")
    await spammer.error("rate_limited")
    pongs = sum(1 for m in spammer.seen if m["type"] == "pong")
    assert pongs == protocol.RATE_BURST - 1  # `join` took one
    # Ada plays normally meanwhile.
    await ada.send("draw", round=1, seq=1, drawing=seven())
    assert (await ada.expect("guess"))["seq"] == 1
    # Keeping on flooding gets the socket closed.
    for _ in range(protocol.FLOOD_DROPS + 20):
        await spammer.send("draw", round=1, drawing=seven())
    assert await spammer.closed(timeout=10) == protocol.CLOSE_FLOOD
    await spammer.close()
    await ada.send("draw", round=1, seq=2, drawing=one())
    assert (await ada.expect("guess"))["seq"] == 2
    await ada.close()


async def test_a_broadcast_is_encoded_once_for_the_whole_room(active_model, monkeypatch):
    """The sender encodes a room's broadcast once (consumers.broadcast) and
    every member sends that text: before, each of the room's sockets encoded
    it again, which with live canvases was a large share of a process's CPU."""
    room = await new_room()
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    lobby = await ada.expect("room")
    while len(lobby["players"]) < 2:
        lobby = await ada.expect("room")
    # Bob's join is over once his connection answers a later frame: after his
    # welcome it still reads whether it missed a change (session.py), and a
    # read that came after Cy's join would send Bob one more snapshot.
    await bob.send("ping")
    await bob.expect("pong")
    heard_before = sum(1 for m in ada.seen if m["type"] == "room")
    encoded = []
    real_encode = protocol.encode

    def counting_encode(message):
        encoded.append(message.get("type"))
        return real_encode(message)

    monkeypatch.setattr(protocol, "encode", counting_encode)
    cy = await join(room.code, "Cy")
    # Cy's own join snapshot came as its welcome's room: a connection passes
    # on only snapshots newer than its last (tests/test_room_snapshot_order.py).
    frames = {"Cy": real_encode({"type": "room", **cy.welcome["room"]})}
    for client in (ada, bob):
        snapshot = await client.expect("room")
        while len(snapshot["players"]) < 3:
            snapshot = await client.expect("room")
        frames[client.you["name"]] = real_encode(snapshot)
    rooms_heard = sum(1 for m in ada.seen if m["type"] == "room") - heard_before
    assert rooms_heard >= 1
    # One encoding per broadcast, not one per member (3 here).
    assert encoded.count("room") == rooms_heard
    # And every member got the same frame.
    assert len(set(frames.values())) == 1


async def test_frames_and_broadcasts_are_handled_without_a_thread_hop(active_model, hops):
    """Channels' own dispatch sends close_old_connections to the thread
    Django and Channels share before every frame and every broadcast a
    consumer hears; the
    game's consumer handles them on the event loop, and its database work
    (in database_sync_to_async, which closes old connections itself) still
    happens. Tried: a room of two through a round, with drawings and the
    broadcasts they cause."""
    room = await new_room(rounds=1)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await ada.send("start")
    await ada.expect("round_start")
    await bob.expect("round_start")
    for seq in range(1, 4):
        await ada.send("draw", round=1, seq=seq, drawing=seven(offset=seq))
        await ada.expect("guess", seq=seq)
    await ada.send("done", round=1)
    await bob.send("done", round=1)
    await ada.expect("round_end")
    await bob.expect("round_end")
    # (Channels' test communicator swaps close_old_connections for `no_op`.)
    assert not {"close_old_connections", "no_op"} & set(hops), hops
    # The database work itself still went to a thread.
    assert "finish_player" in hops and "join" in " ".join(hops), hops
    [stored] = await stored_drawings(room_code=room.code)
    assert stored.strokes == seven(offset=3)
    await ada.close()
    await bob.close()
