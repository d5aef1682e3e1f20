"""Rounds nobody is left to close: every server process closes them.

A round is closed by the timers of the connections in its room. When the
server holding them is killed (or stopped) mid-round, the next process to
run closes the round once its deadline has passed, and the drawings in it
are stored with their labels, with no player coming back. A graceful stop
(SIGTERM) stores the drawings of its players itself.
"""

import asyncio
import contextlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tests.live import LiveServer
from tests.test_scaleout import Player, sketch, wait_until

DRAWING = {"width": 100.0, "height": 100.0, "strokes": [[[10.0, 10.0, 0.0], [90.0, 90.0, 5.0]]]}


def _playing_room_with_a_drawing():
    from digitsite.game import guesses, rooms, rounds, seats
    from digitsite.game.models import Room
    from recognizer.inference import Prediction

    room = rooms.create_room("Ada", rounds=2, seconds=60, target_confidence=1.0)
    ada = seats.join(room.code, name="Ada", channel_name="channel-Ada").seat
    rounds.start_game(room.code, ada.player_id)
    room = Room.objects.get(pk=room.pk)
    accepted, _ = guesses.record_guess(
        room.code, ada.player_id, room.game_id, 1, drawing=DRAWING, input_bytes=bytes(784),
        prediction=Prediction(3, [0.1] * 10, "v"), target=room.target)
    assert accepted
    return room, ada


def _move_deadline(room, seconds_ago):
    from digitsite.game import clock
    from digitsite.game.models import Room

    Room.objects.filter(pk=room.pk).update(ends_at=clock.now() - timedelta(seconds=seconds_ago))


@pytest.mark.django_db(transaction=True)
def test_an_overdue_round_is_closed_once_and_its_drawing_stored_with_its_label():
    from digitsite.game import rounds, upkeep
    from digitsite.game.models import Room
    from recognizer.models import Drawing

    room, ada = _playing_room_with_a_drawing()
    assert upkeep.close_overdue_rounds() == []  # its deadline is a minute away

    # Just past its close: left to the room's own connections for a few seconds more.
    _move_deadline(room, rules_grace() + upkeep.SWEEP_MARGIN_SECONDS / 2)
    assert upkeep.close_overdue_rounds() == []
    assert Room.objects.get(pk=room.pk).state == Room.State.PLAYING

    _move_deadline(room, rules_grace() + upkeep.SWEEP_MARGIN_SECONDS + 1)
    ((code, messages),) = upkeep.close_overdue_rounds()
    assert code == room.code
    assert [m["type"] for m in messages] == ["round_end", "room"]
    (result,) = messages[0]["results"]
    assert result["player"] == ada.player_id and result["reason"] == "time"
    assert Room.objects.get(pk=room.pk).state == Room.State.RESULTS
    stored = Drawing.objects.get(game_id=room.game_id, round_number=1, player_id=ada.player_id)
    assert stored.strokes == DRAWING and stored.label == room.target
    # A second sweep, here or in another process, finds nothing left to do.
    assert upkeep.close_overdue_rounds() == []
    assert rounds.end_round(room.code, room.game_id, 1) == []


@pytest.mark.django_db(transaction=True)
async def test_the_sweep_repeats_on_the_game_clock(manual_clock):
    """The sweep's interval is game time: with a manual clock the next sweep
    comes when the clock moves past the interval (here an hour, which the real
    clock would never reach in this test), and closes the round whose
    deadline that move put behind it."""
    from asgiref.sync import sync_to_async

    from digitsite.game import upkeep
    from digitsite.game.models import Room

    room, _ = await sync_to_async(_playing_room_with_a_drawing)()
    task = asyncio.ensure_future(upkeep.sweep_forever(3600))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        # The first sweep (nothing due yet) is done once it sleeps on the clock.
        while manual_clock.sleepers() == 0:
            assert not task.done(), task
            assert loop.time() < deadline, "the sweep never waited on the game clock"
            await asyncio.sleep(0.05)
        state = await sync_to_async(lambda: Room.objects.get(pk=room.pk).state)()
        assert state == Room.State.PLAYING

        manual_clock.advance(3600)
        # The second sweep is done once it sleeps on the clock again (advance
        # took the first sleep off at once): the room is read once, after it.
        while manual_clock.sleepers() == 0:
            assert not task.done(), task
            assert loop.time() < deadline, "the second sweep never waited on the game clock"
            await asyncio.sleep(0.05)
        state = await sync_to_async(lambda: Room.objects.get(pk=room.pk).state)()
        assert state == Room.State.RESULTS, "the second sweep did not close the round"
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=30)


@pytest.mark.django_db(transaction=True)
async def test_a_server_speaking_lifespan_sweeps_from_start_up_until_shutdown():
    """Servers with the ASGI lifespan protocol (uvicorn, hypercorn) start the
    sweep at start-up, before any request, and stop it at shutdown."""
    from asgiref.sync import sync_to_async
    from channels.testing import ApplicationCommunicator

    from digitsite.asgi import application
    from digitsite.game import upkeep
    from digitsite.game.models import Room

    room, _ = await sync_to_async(_playing_room_with_a_drawing)()
    await sync_to_async(_move_deadline)(room, 600)
    server = ApplicationCommunicator(application, {"type": "lifespan"})
    await server.send_input({"type": "lifespan.startup"})
    assert (await server.receive_output(30))["type"] == "lifespan.startup.complete"
    try:
        sweeping = upkeep.upkeep.task
        assert sweeping is not None and not sweeping.done()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while (await sync_to_async(Room.objects.get)(pk=room.pk)).state == Room.State.PLAYING:
            assert loop.time() < deadline, "the start-up sweep did not close the round"
            await asyncio.sleep(0.05)
    finally:
        await server.send_input({"type": "lifespan.shutdown"})
        assert (await server.receive_output(30))["type"] == "lifespan.shutdown.complete"
    await asyncio.wait({sweeping}, timeout=10)
    assert sweeping.cancelled() and upkeep.upkeep.task is None


def rules_grace():
    from digitsite.game import rules

    return rules.ROUND_GRACE_SECONDS


# -- real server processes --------------------------------------------------


def _query(path, sql, params=()):
    with contextlib.closing(sqlite3.connect(path, timeout=60)) as connection:
        with connection:
            return connection.execute(sql, params).fetchall()


def _new_room(server):
    result = server.manage("shell", "-c", (
        "from digitsite.game.rooms import create_room\n"
        "print(create_room('Ada', rounds=2, seconds=300, results_seconds=1.0,"
        " target_confidence=1.0).code)"))
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
async def test_a_round_open_when_its_server_stopped_is_closed_without_any_player(tmp_path, stop):
    """Hostile stops: kill -9 (nothing runs on the way out) and SIGTERM (Daphne's
    normal stop). The only player never comes back."""
    database = tmp_path / "db.sqlite3"
    first = LiveServer(tmp_path)
    await asyncio.to_thread(first.start)
    ada = Player("Ada")
    try:
        code = await asyncio.to_thread(_new_room, first)
        await ada.join_room(first, code)
        await ada.start()
        start = await ada.expect("round_start")
        guess = await ada.draw_and_guess(1, sketch(5), seq=1, game=start["game"])
        assert guess["kept"] is True  # so it is in the database

        if stop == "SIGKILL":
            first.process.kill()
        else:
            first.process.terminate()
        await asyncio.to_thread(first.process.wait, 60)
    finally:
        await ada.close()
        first.stop()

    def stored():
        return _query(database, "SELECT label, strokes, status FROM recognizer_drawing "
                                "WHERE game_id = ? AND round_number = 1", (start["game"],))

    def room_state():
        return _query(database, "SELECT state FROM game_room WHERE code = ?", (code,))[0][0]

    if stop == "SIGTERM":
        # The graceful stop finished Ada's round as if her socket had closed:
        # her drawing is stored, and the round, with nobody else drawing, ended.
        assert len(stored()) == 1, first.log()
        assert room_state() == "results"
    else:
        assert stored() == [] and room_state() == "playing"
        # Time passes while no server runs: the round's deadline is long gone.
        past = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S.%f")
        _query(database, "UPDATE game_room SET ends_at = ? WHERE code = ?", (past, code))

    second = LiveServer(tmp_path, migrate=False)
    await asyncio.to_thread(second.start)
    try:
        await asyncio.to_thread(wait_until, lambda: room_state() != "playing", 60,
                                "the round closed by the new server")
        ((label, strokes, status),) = stored()
        assert label == start["target"]
        assert json.loads(strokes)["strokes"] == sketch(5)["strokes"]
        assert status == "pending"
        if stop == "SIGKILL":
            assert "closed round 1, left open past its deadline" in second.log()
    finally:
        second.stop()
