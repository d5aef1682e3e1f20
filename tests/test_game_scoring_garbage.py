"""A refused drawing leaves no reference cycle behind (digitsite/game/scoring.py).

The error raised while scoring a drawing held the frame that awaited the
rendering thread in its traceback, and that frame held the error: a cycle,
freed only by a full garbage collection, that kept the drawing's lists (5,000
for the largest valid drawing). Under a flood of such drawings the server
ran full collections of 25-58 ms in bursts, with the interpreter held, and
every other player waited. Here the collector is switched off while a
drawing is refused: whatever is freed must be freed by reference counting.

Also: the server collects its youngest objects every 10,000 allocations, not
every 700 (digitsite/heap.py).
"""

import gc
import os
import subprocess
import sys
import weakref

import pytest

from digitsite.game.rules import GameError
from digitsite.game.scoring import _in_thread_to_the_end
from tests.support import eventually
from tests.test_game_consumers import connect, game_clock, new_room  # noqa: F401


class Drawing(list):
    """A list that a weak reference can watch."""


@pytest.fixture
def collector_off():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def refuse(drawing):
    try:
        raise ValueError("far too much ink")
    except ValueError as exc:
        raise GameError("too_much_ink", str(exc)) from exc


async def test_a_drawing_refused_in_the_rendering_thread_is_freed_at_once(collector_off):
    drawing = Drawing([[x, x] for x in range(5000)])
    watched = weakref.ref(drawing)
    try:
        await _in_thread_to_the_end(refuse, drawing)
    except GameError as exc:
        assert exc.code == "too_much_ink"
    else:
        pytest.fail("the drawing was not refused")
    del drawing
    # The futures' callbacks, which still hold the error, run; and the pool's
    # worker drops its work item (which holds the drawing) just after it set
    # the result, which can be after this coroutine resumes. With the
    # collector off, a reference cycle would hold the drawing for good.
    await eventually(lambda: watched() is None,
                     "a reference cycle still holds the refused drawing", timeout=5)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("game_clock")
async def test_a_socket_sending_refused_drawings_leaves_no_cyclic_garbage(active_model,
                                                                          collector_off):
    """Through a real consumer: three drawings of 5,000 points far over the ink
    limit, each refused with too_much_ink, and then a full collection (saving
    what it finds) finds none of their lists."""
    room = await new_room(rounds=1, solo=True)
    client = await connect(room.code)
    await client.send("join", protocol=1, name="Ada")
    await client.expect("welcome")
    await client.send("start")
    await client.expect("round_start")
    zigzag = [[0, 0] if i % 2 == 0 else [280, 280] for i in range(5000)]
    for _ in range(3):
        await client.send("draw", round=1, drawing={"width": 280, "height": 280,
                                                    "strokes": [zigzag]})
        await client.error("too_much_ink")
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    lists = sum(1 for thing in gc.garbage if type(thing) is list)
    gc.set_debug(0)
    gc.garbage.clear()
    await client.close()
    # A refused drawing's lists in a cycle would be 5,000 a drawing.
    assert lists < 500, f"{lists} lists were left in reference cycles"


def test_a_server_process_collects_young_objects_every_10000_allocations():
    script = ("import gc, django; django.setup(); import digitsite.asgi; "
              "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="digitsite.settings")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == ["10000", "True"]
    env["GC_YOUNG_THRESHOLD"] = "0"  # Python's own default
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == ["700", "True"]
