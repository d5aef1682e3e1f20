"""Live drawings leave a process in batches per room (digitsite/game/live_batches.py).

Tried, against a recording channel layer on a real event loop: drawings of
several players falling due together, a player's newer drawing replacing a
waiting one, a drawing that falls due within the window after a send, a
layer that fails, rooms kept apart, and many rooms that went quiet.
"""

import asyncio

from digitsite.game import live_batches, protocol

WAIT = 30  # real seconds; only a broken batcher takes this long


class RecordingLayer:
    def __init__(self, fail=False):
        self.sent = []  # (loop time, group, message)
        self.fail = fail
        self.arrived = asyncio.Event()

    async def group_send(self, group, message):
        self.sent.append((asyncio.get_running_loop().time(), group, message))
        self.arrived.set()
        if self.fail:
            raise ConnectionError("the layer is down")

    async def wait_for(self, count):
        async def enough():
            while len(self.sent) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), WAIT)


def live(player, round_number=1, x=0):
    return protocol.message(
        "live_drawing", round=round_number, player=player,
        drawing={"width": 100, "height": 100, "strokes": [[[x, 0], [x, 50]]]},
        digit=1, probability=0.9, target_probability=0.1, reached=False)


def add(layer, group, message):
    live_batches.add(layer, group, message, protocol.encode(message))


async def test_drawings_falling_due_together_go_as_one_message():
    layer = RecordingLayer()
    for player in ("a", "b", "c"):
        add(layer, "game.room.AAAA", live(player))
    await layer.wait_for(1)
    await asyncio.sleep(0)
    [(_, group, message)] = layer.sent
    assert group == "game.room.AAAA" and message["type"] == "game.live"
    headers = [header for header, _ in message["items"]]
    assert [h["player"] for h in headers] == ["a", "b", "c"]
    # Each item is the frame the client gets, encoded once, and a header
    # without the drawing (what the receivers read).
    for header, text in message["items"]:
        assert text == protocol.encode(live(header["player"]))
        assert header == {"type": "live_drawing", "player": header["player"], "round": 1}


async def test_a_newer_drawing_replaces_the_waiting_one_and_waits_for_the_window():
    layer = RecordingLayer()
    add(layer, "game.room.BBBB", live("a", x=1))
    await layer.wait_for(1)
    first_at = layer.sent[0][0]
    # Both fall due within the window after that send: only the newer goes,
    # once the window is over.
    add(layer, "game.room.BBBB", live("a", x=2))
    add(layer, "game.room.BBBB", live("a", x=3))
    assert live_batches.waiting("game.room.BBBB") == 1
    await layer.wait_for(2)
    at, _, message = layer.sent[1]
    assert at >= first_at + live_batches.BATCH_SECONDS
    [(header, text)] = message["items"]
    assert text == protocol.encode(live("a", x=3))
    assert live_batches.waiting("game.room.BBBB") == 0


async def test_rooms_are_batched_apart():
    layer = RecordingLayer()
    add(layer, "game.room.CCCC", live("a"))
    add(layer, "game.room.DDDD", live("b"))
    await layer.wait_for(2)
    groups = sorted(group for _, group, _ in layer.sent)
    assert groups == ["game.room.CCCC", "game.room.DDDD"]


async def test_a_failing_layer_loses_those_drawings_and_not_the_next(caplog):
    layer = RecordingLayer(fail=True)
    add(layer, "game.room.EEEE", live("a"))
    await layer.wait_for(1)
    layer.fail = False
    add(layer, "game.room.EEEE", live("a", x=5))
    await layer.wait_for(2)
    assert layer.sent[1][2]["items"][0][1] == protocol.encode(live("a", x=5))
    assert "1 live drawings were lost" in caplog.text


async def test_rooms_gone_quiet_are_forgotten_past_a_bound(monkeypatch):
    monkeypatch.setattr(live_batches, "SWEEP_AT", 8)
    layer = RecordingLayer()
    for index in range(40):
        add(layer, f"game.room.Q{index:03d}", live("a"))
        await layer.wait_for(index + 1)
    rooms = live_batches._batches[asyncio.get_running_loop()]
    # Once every window is over, the next new room sweeps the idle ones out.
    await asyncio.sleep(live_batches.BATCH_SECONDS)
    add(layer, "game.room.NEW0", live("b"))
    assert list(rooms) == ["game.room.NEW0"]
    await layer.wait_for(41)


async def test_a_full_room_drawing_at_once_costs_one_delivery_a_window():
    """Eight players whose drawings all fall due twice: two messages, not 16."""
    players = 8
    layer = RecordingLayer()
    for round_trip in range(2):
        for player in range(players):
            add(layer, "game.room.FFFF", live(f"p{player}", x=round_trip))
        await layer.wait_for(round_trip + 1)
    assert [len(message["items"]) for _, _, message in layer.sent] == [players, players]
