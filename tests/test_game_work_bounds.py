"""What one client may make a game server process do: sockets counted per
address and per browser session, drawings in the work per address, and no
work for a socket that closed.

The same bounds against a real Daphne server, with the abuse tried for
real: tests/test_ws_limits.py.
"""

import asyncio
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from digitsite.game import scoring
from digitsite.game.connection_limits import ConnectionCounts
from digitsite.game.drawing_deltas import RoundDrawing
from digitsite.game.drawing_slots import DrawingSlots, drawing_slots, render_turn
from digitsite.game.guess_timing import Stopwatch
from digitsite.game.models import RoundProgress
from digitsite.game.scoring import Waiting
from recognizer import inference
from recognizer.inference import InferenceService
from tests.support import eventually
from tests.test_game_consumers import join, new_room, seven


def test_sockets_are_counted_per_address_and_per_session(settings):
    settings.GAME_WS_CONNECTIONS_PER_ADDRESS = 3
    settings.GAME_WS_CONNECTIONS_PER_SESSION = 2
    counts = ConnectionCounts()
    assert counts.admit("10.0.0.1", "browser-a") is None
    assert counts.admit("10.0.0.1", "browser-a") is None
    # A third tab of the same browser: the session's bound.
    refusal = counts.admit("10.0.0.1", "browser-a")
    assert refusal is not None and "this browser: at most 2" in refusal
    # Another browser behind the same address takes the address's last place.
    assert counts.admit("10.0.0.1", "browser-b") is None
    refusal = counts.admit("10.0.0.1", None)
    assert refusal is not None and "your address: at most 3" in refusal
    # A refused socket counted nothing; a closed one frees its places.
    assert counts.by_address["10.0.0.1"] == 3 and counts.by_session["browser-a"] == 2
    counts.release("10.0.0.1", "browser-a")
    assert counts.admit("10.0.0.1", "browser-a") is None
    assert counts.admit("10.0.0.2", None) is None  # another address is not affected
    for _ in range(3):
        counts.release("10.0.0.1", "browser-a")
    counts.release("10.0.0.1", "browser-b")
    counts.release("10.0.0.2", None)
    assert not counts.by_address and not counts.by_session  # nothing left behind


def test_zero_turns_the_socket_bounds_off(settings):
    settings.GAME_WS_CONNECTIONS_PER_ADDRESS = 0
    settings.GAME_WS_CONNECTIONS_PER_SESSION = 0
    counts = ConnectionCounts()
    assert all(counts.admit("10.0.0.1", "browser") is None for _ in range(1000))


async def test_an_address_has_a_few_drawings_in_the_work_and_a_closed_wait_leaves(settings):
    settings.GAME_DRAWINGS_IN_FLIGHT_PER_ADDRESS = 2
    slots = DrawingSlots()
    inside = {"now": 0, "most": 0}
    release = asyncio.Event()

    async def score(address):
        async with slots.held(address):
            inside["now"] += 1
            inside["most"] = max(inside["most"], inside["now"])
            await release.wait()
            inside["now"] -= 1

    flood = [asyncio.ensure_future(score("10.0.0.1")) for _ in range(6)]
    other = asyncio.ensure_future(score("10.0.0.2"))
    for _ in range(20):
        await asyncio.sleep(0)
    # Two of the flood's six and the other address's one are in the work.
    assert inside["now"] == 3
    # A connection that closes while waiting leaves the line at once.
    flood[5].cancel()
    await asyncio.gather(flood[5], return_exceptions=True)
    release.set()
    await asyncio.gather(*flood[:5], other)
    assert inside["most"] == 3 and inside["now"] == 0
    assert len(slots) == 0  # nothing kept for addresses without drawings


@sync_to_async
def kept_drawing(player_id):
    return RoundProgress.objects.get(seat__player_id=player_id).drawing


@pytest.mark.django_db(transaction=True)
async def test_a_drawing_of_a_closed_socket_is_dropped_not_computed(active_model, manual_clock,
                                                                     monkeypatch):
    """The player draws, then closes the tab while the drawing waits for the
    recognizer: it leaves the inference queue, and the round keeps the
    drawing answered before."""
    # reload_seconds=0: the worker takes the service's lock at every batch,
    # so holding the lock holds the worker (as in tests/test_inference.py).
    service = InferenceService(reload_seconds=0)
    monkeypatch.setattr(inference, "get_service", lambda: service)
    room = await new_room(rounds=1, solo=True)
    ada = await join(room.code, "Ada")
    await ada.send("start")
    await ada.expect("round_start")
    await ada.send("draw", round=1, seq=1, drawing=seven(), pen_up=False)
    assert (await ada.expect("guess"))["seq"] == 1
    served = service.requests_served
    with service._lock:
        busy = service.submit(np.zeros((28, 28), dtype=np.float32))
        await eventually(lambda: service.waiting == 0, "the worker to take a request")
        await ada.send("draw", round=1, seq=2, drawing=seven(40), pen_up=False)
        await eventually(lambda: service.waiting == 1, "the drawing to wait for the recognizer")
        await ada.close()
        await eventually(lambda: service.waiting == 0, "the closed socket's drawing to leave")
        assert service.requests_dropped == 1
    await asyncio.wrap_future(busy)
    assert service.requests_served == served + 1  # the blocking request alone
    assert await kept_drawing(ada.you["id"]) == seven()


async def test_a_cancelled_rendering_keeps_its_slot_until_its_thread_returns(settings,
                                                                             monkeypatch):
    """A thread cannot be stopped: a socket closed mid-rendering keeps its
    address's slot until the rendering's thread is done, so "open, send the
    worst drawing, close" in a loop holds at most the slots' threads."""
    settings.GAME_DRAWINGS_IN_FLIGHT_PER_ADDRESS = 1
    settings.GAME_RENDER_ON_LOOP_POINTS = 0  # every drawing in a thread
    started, finish = threading.Event(), threading.Event()

    def slow_prepare(raw, checked=None):
        started.set()
        assert finish.wait(30), "the test never let the rendering end"
        return raw, None

    monkeypatch.setattr(scoring, "_prepare", slow_prepare)
    address = "10.0.0.9"
    session = SimpleNamespace(view=SimpleNamespace(finished=False), round_drawing=RoundDrawing(),
                              transport=SimpleNamespace(client_address=address))
    scorer = scoring.DrawingScorer(session)
    computing = asyncio.ensure_future(
        scorer._compute(Waiting({"strokes": []}, watch=Stopwatch())))
    await eventually(started.is_set, "the rendering to start")
    computing.cancel()
    entered = asyncio.Event()

    async def next_drawing():
        async with drawing_slots.held(address):
            entered.set()

    other = asyncio.ensure_future(next_drawing())
    try:
        for _ in range(50):
            await asyncio.sleep(0)
        # The thread still renders: the cancelled drawing has not left, and
        # the address's next drawing still waits for the one slot.
        assert not computing.done() and not entered.is_set()
    finally:
        finish.set()
    with pytest.raises(asyncio.CancelledError):
        await computing
    await asyncio.wait_for(other, 30)
    assert entered.is_set() and len(drawing_slots) == 0


@pytest.mark.django_db(transaction=True)
async def test_small_drawings_render_on_the_event_loop_and_larger_ones_in_a_thread(
        active_model, settings, monkeypatch):
    """A drawing of at most GAME_RENDER_ON_LOOP_POINTS points, each stroke
    counting as one more, is rendered on the event loop (a thread would hold
    the interpreter all the same); one point or one empty stroke more goes
    to a thread, in its turn, and so does a small one while others are
    rendered in threads. Both give the input the renderer gives, and the
    guess the network gives for it."""
    from recognizer.preprocessing import strokes_to_input

    settings.GAME_RENDER_ON_LOOP_POINTS = 400
    settings.GAME_DRAWINGS_RENDERED_AT_ONCE = 2
    rendered_in = []
    prepare = scoring._prepare

    def recorded(raw, checked=None):
        rendered_in.append(threading.current_thread())
        return prepare(raw, checked)

    monkeypatch.setattr(scoring, "_prepare", recorded)
    session = SimpleNamespace(view=SimpleNamespace(finished=False), round_drawing=RoundDrawing(),
                              feed=SimpleNamespace(classroom=False),
                              transport=SimpleNamespace(client_address="10.0.0.7"))
    scorer = scoring.DrawingScorer(session)

    def line(points):
        return {"width": 280, "height": 280, "strokes": [
            [[40 + 200 * i / points, 60 + 150 * i / points, 5 * i] for i in range(points)]]}

    # Each stroke counts as a point more: an empty one costs a loop step.
    padded = dict(seven(), strokes=seven()["strokes"] + [[]] * (400 - 4))
    one_more = dict(padded, strokes=padded["strokes"] + [[]])
    for drawing in (seven(), line(399), padded, line(400), one_more):
        _, image, prediction = await scorer._compute(Waiting(drawing, watch=Stopwatch()))
        expected = strokes_to_input(drawing["strokes"], drawing["width"], drawing["height"])
        assert np.array_equal(image, expected)
        assert 0 <= prediction.digit <= 9
    loop_thread = threading.current_thread()
    assert rendered_in[:3] == [loop_thread] * 3
    assert all(thread is not loop_thread for thread in rendered_in[3:])

    # While another drawing is rendered in a thread, a small one takes its
    # turn and a thread too.
    async with render_turn("10.0.0.8"):
        await scorer._compute(Waiting(seven(), watch=Stopwatch()))
    assert rendered_in[-1] is not loop_thread
    await scorer._compute(Waiting(seven(), watch=Stopwatch()))
    assert rendered_in[-1] is loop_thread

    settings.GAME_RENDER_ON_LOOP_POINTS = 0  # off: every drawing in a thread
    await scorer._compute(Waiting(seven(), watch=Stopwatch()))
    assert rendered_in[-1] is not loop_thread


def test_an_address_has_so_many_message_bytes_a_second(settings):
    from digitsite.game.message_rate import AddressBytes

    settings.GAME_WS_BYTES_PER_SECOND_PER_ADDRESS = 1000
    settings.GAME_WS_BYTES_BURST_PER_ADDRESS = 3000
    now = [100.0]
    budget = AddressBytes(lambda: now[0])
    assert [budget.allowed("10.0.0.1", 1000) for _ in range(4)] == [True, True, True, False]
    assert budget.allowed("10.0.0.2", 3000)  # another address has its own
    now[0] += 0.5
    assert budget.allowed("10.0.0.1", 500) and not budget.allowed("10.0.0.1", 1)
    settings.GAME_WS_BYTES_PER_SECOND_PER_ADDRESS = 0  # off
    assert all(budget.allowed("10.0.0.1", 60_000) for _ in range(100))


def test_the_burst_takes_a_class_rejoining_at_once_but_not_a_flood():
    """The bytes budget of an address (the default settings), sized by what
    arrives at once.

    A class of 40 behind one school address whose network came back: every
    page rejoins and sends its whole drawing in the same moment (260 points
    at full precision, 9.8 kB, twice what the page's rounded points take:
    390 kB in all).
    All of it must pass. A client with 20 sockets that held its largest
    drawings (about 48 kB each) until its budget refilled must not get them
    all decoded and rendered at once: with a budget of 1 MB all 20 arrived
    together every 5 s, and another player's p95 rose 1.4-5.5x
    (bench/bench_abuse.py --ws-bursts, README)."""
    import json

    from django.conf import settings

    from bench.abuse_websocket import largest_game_drawings
    from bench.bench_inference import sample_drawing
    from digitsite.game.message_rate import AddressBytes

    def frame(drawing_json):
        return len(f'{{"type":"draw","round":1,"seq":1,"pen_up":true,"drawing":{drawing_json}}}')

    budget = AddressBytes(lambda: 100.0)  # a clock that stands still: one moment
    pages = [frame(json.dumps(sample_drawing(i))) for i in range(40)]
    assert all(budget.allowed("10.0.0.1", size) for size in pages), (
        f"a class rejoining sends {sum(pages):,} bytes at once; the burst is "
        f"{settings.GAME_WS_BYTES_BURST_PER_ADDRESS:,}")
    largest = [text for text in largest_game_drawings() if len(text) > 30_000]
    flood = [frame(largest[i % len(largest)]) for i in range(20)]
    taken = sum(budget.allowed("10.0.0.2", size) for size in flood)
    assert 1 <= taken <= 12, taken
