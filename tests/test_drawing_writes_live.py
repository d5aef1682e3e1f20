"""The write policy against kill -9 on a real Daphne server: a server that dies
loses at most a drawing it answered `held`, never one it said was kept.

The server writes a player's drawings at most once a second
(digitsite/game/drawing_writes.py); here every second drawing is held for
good (GAME_DRAWING_WRITE_SECONDS is 10 minutes), so which drawing a kill
finds unwritten does not depend on the machine's speed.
"""

import asyncio

import pytest

from tests.live import LiveServer
from tests.test_scaleout import sketch

pytestmark = pytest.mark.slow

ENV = {"GAME_DRAWING_WRITE_SECONDS": "600"}
WAIT = 60


async def test_a_killed_server_loses_only_the_held_drawing(tmp_path):
    first = LiveServer(tmp_path, env=ENV)
    await asyncio.to_thread(first.start)
    await asyncio.to_thread(first.ensure_model)
    code = await asyncio.to_thread(first.create_room, "Ada", rounds=1, seconds=300,
                                   target_confidence=1.0)
    ada = await first.game_client(code, "Ada")
    try:
        await ada.join()
        await ada.start()
        await ada.expect("round_start", timeout=WAIT)
        await ada.draw(1, sketch(1), seq=1, pen_up=False)
        kept = await ada.expect("guess", lambda m: m["seq"] == 1, timeout=WAIT)
        assert kept["kept"] is True
        await ada.draw(1, sketch(2), seq=2, pen_up=False)
        held = await ada.expect("guess", lambda m: m["seq"] == 2, timeout=WAIT)
        assert held["kept"] is False and held["held"] is True
        first.process.kill()  # SIGKILL: the held drawing is never written
        await asyncio.to_thread(first.process.wait, WAIT)
        await ada.closed(timeout=WAIT)
    finally:
        await ada.close()
        first.stop()

    second = LiveServer(tmp_path, env=ENV, migrate=False)
    await asyncio.to_thread(second.start)
    back = await second.game_client(code, "Ada")
    try:
        welcome = await back.join(token=ada.you["token"])
        assert welcome["rejoined"] is True
        # The drawing the round has is the last one said kept.
        assert welcome["drawing"]["strokes"] == sketch(1)["strokes"]
        await back.done(1)
        end = await back.expect("round_end", timeout=WAIT)
        [result] = end["results"]
        assert result["drawing"]["strokes"] == sketch(1)["strokes"]
        assert result["digit"] == kept["digit"]
    finally:
        await back.close()
        second.stop()
