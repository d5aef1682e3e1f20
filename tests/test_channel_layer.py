"""The embedded channel layer copies a broadcast once, not once per receiver
(digitsite/channel_layer.py), and keeps Channels' layer's promises otherwise."""

import asyncio
from copy import deepcopy
from unittest import mock

import pytest
from channels.exceptions import ChannelFull
from django.conf import settings

from digitsite import channel_layer
from digitsite.channel_layer import BroadcastOnceChannelLayer
from digitsite.game.room_view import RoomView


def run(coroutine):
    return asyncio.run(coroutine)


def live_drawing(points=150):
    return {"type": "game.event", "message": {
        "type": "live_drawing", "player": 3, "round": 2,
        "drawing": {"strokes": [[[float(i), float(i), float(i * 10)] for i in range(points)]]}}}


async def members(layer, count, group="room.ABCD"):
    channels = [await layer.new_channel() for _ in range(count)]
    for name in channels:
        await layer.group_add(group, name)
    return channels


def test_the_site_runs_it_without_redis():
    if getattr(settings, "REDIS_URL", None):
        pytest.skip("REDIS_URL is set: the site runs the Redis layer")
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == (
        "digitsite.channel_layer.BroadcastOnceChannelLayer")


def test_a_broadcast_is_copied_once_and_every_member_receives_it():
    async def scenario():
        layer = BroadcastOnceChannelLayer()
        channels = await members(layer, 8)
        sent = live_drawing()
        with mock.patch.object(channel_layer, "copy_message",
                               wraps=channel_layer.copy_message) as copied:
            await layer.group_send("room.ABCD", sent)
        # Channels' own layer copies it once per member: 8 here.
        assert copied.call_count == 1
        received = [await layer.receive(name) for name in channels]
        assert all(message == sent for message in received)
        # One copy shared by the members, not the sender's dict: the sender
        # changing its message afterwards changes nothing that was sent.
        assert all(message is received[0] for message in received)
        assert received[0] is not sent
        sent["message"]["drawing"]["strokes"].clear()
        assert len(received[0]["message"]["drawing"]["strokes"]) == 1
    run(scenario())


def test_a_full_member_misses_the_broadcast_and_the_others_get_it():
    async def scenario():
        layer = BroadcastOnceChannelLayer(capacity=1)
        full, other = await members(layer, 2)
        await layer.send(full, {"type": "game.event", "message": {"type": "first"}})
        await layer.group_send("room.ABCD", live_drawing())
        assert (await layer.receive(full))["message"]["type"] == "first"
        assert (await layer.receive(other))["message"]["type"] == "live_drawing"
        with pytest.raises(ChannelFull):
            await layer.send(other, {"type": "x"})
            await layer.send(other, {"type": "x"})
    run(scenario())


def test_a_message_to_one_channel_is_still_copied():
    async def scenario():
        layer = BroadcastOnceChannelLayer()
        [name] = await members(layer, 1)
        sent = {"type": "game.kicked", "extra": [1, 2]}
        await layer.send(name, sent)
        sent["extra"].append(3)
        assert (await layer.receive(name))["extra"] == [1, 2]
    run(scenario())


def test_the_room_view_keeps_copies_of_what_it_stores():
    """The members share one message: what a receiver keeps of a broadcast
    must not change the message the others read."""
    snapshot = {"type": "room", "code": "ABCD", "state": "playing", "game": 1, "round": 1,
                "revision": 1, "target": 4, "ends_at": 10_000, "settings": {"rounds": 5},
                "players": [{"id": 1, "finished": False}, {"id": 2, "finished": False}]}
    shared = deepcopy(snapshot)
    first, second = RoomView(), RoomView()
    first.hear(shared, 1)
    second.hear(shared, 2)
    first.hear({"type": "round_end", "round": 1, "final": False, "next_round_at": 12_000}, 1)
    first.hear({"type": "round_start", "game": 1, "round": 2, "target": 7,
                "ends_at": 30_000}, 1)
    assert shared == snapshot
    assert second.room["round"] == 1 and first.room["round"] == 2


class ManualClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_expired_messages_are_swept_at_most_once_a_second():
    """Channels' layer walked every channel and membership on every receive
    and broadcast; this one sweeps once per SWEEP_SECONDS of its clock, and
    a message past its expiry is still dropped, and its channel taken out of
    its groups, by the first sweep after it."""
    async def scenario():
        clock = ManualClock()
        # expiry -1: every message is expired the moment it is queued.
        layer = BroadcastOnceChannelLayer(expiry=-1, monotonic=clock)
        stale, other = await members(layer, 2)
        sweeps = mock.patch.object(channel_layer.InMemoryChannelLayer, "_clean_expired",
                                   autospec=True,
                                   side_effect=channel_layer.InMemoryChannelLayer._clean_expired)
        with sweeps as swept:
            await layer.group_send("room.ABCD", live_drawing(3))  # sweeps (t=0), then queues
            assert swept.call_count == 1
            clock.now = 0.99
            await layer.group_send("room.ABCD", live_drawing(3))
            assert swept.call_count == 1  # within the second: no sweep
            # The expired messages are still queued: nothing swept them yet.
            assert layer.channels[stale].qsize() == 2
            assert set(layer.groups["room.ABCD"]) == {stale, other}
            clock.now = 1.0
            await layer.group_send("room.ABCD", live_drawing(3))
            assert swept.call_count == 2
        # That sweep dropped the expired messages and took both channels out
        # of the group (Channels' rule: a channel whose message expired is
        # gone), before the broadcast, which then reached nobody.
        assert stale not in layer.channels and other not in layer.channels
        assert layer.groups.get("room.ABCD", {}) == {}
    run(scenario())


def test_a_receive_never_hands_out_an_expired_message_between_sweeps():
    async def scenario():
        layer = BroadcastOnceChannelLayer(monotonic=ManualClock())
        name, other = await members(layer, 2)
        await layer.group_send("room.ABCD", live_drawing(3))  # the clock's one sweep
        layer.expiry = -1
        await layer.group_send("room.ABCD", {"type": "game.event", "message": {"type": "old"}})
        layer.expiry = 60
        await layer.send(name, {"type": "game.event", "message": {"type": "new"}})
        assert (await layer.receive(name))["message"]["type"] == "live_drawing"
        # The next one expired before it was received: dropped, and the
        # channel leaves its groups, as a sweep would have done.
        assert (await layer.receive(name))["message"]["type"] == "new"
        assert name not in layer.groups["room.ABCD"] and other in layer.groups["room.ABCD"]
    run(scenario())


def test_the_sweep_still_ends_memberships_past_the_group_expiry():
    async def scenario():
        clock = ManualClock()
        layer = BroadcastOnceChannelLayer(group_expiry=1, monotonic=clock)
        [name] = await members(layer, 1)
        await layer.group_send("room.ABCD", live_drawing(3))  # the sweep at t=0
        layer.groups["room.ABCD"][name] -= 10  # joined 10 s ago by the wall clock
        clock.now = 0.5
        await layer.group_send("room.ABCD", live_drawing(3))
        assert name in layer.groups["room.ABCD"]  # no sweep within the second
        clock.now = 1.0
        await layer.group_send("room.ABCD", live_drawing(3))
        assert name not in layer.groups["room.ABCD"]
    run(scenario())


def test_a_broadcast_pickle_cannot_copy_is_deep_copied():
    """The copy is a pickle round trip (5x faster than deepcopy for a live
    drawing); anything pickle refuses still gets deepcopy's copy."""
    async def scenario():
        layer = BroadcastOnceChannelLayer()
        [name] = await members(layer, 1)
        plain = live_drawing(3)
        odd = {"type": "game.event", "callback": lambda: None, "points": [[1, 2]]}
        with mock.patch.object(channel_layer, "deepcopy", wraps=deepcopy) as deep:
            await layer.group_send("room.ABCD", plain)
            assert deep.call_count == 0
            await layer.group_send("room.ABCD", odd)
            assert deep.call_count == 1
        first, second = await layer.receive(name), await layer.receive(name)
        assert first == plain and first is not plain
        assert first["message"]["drawing"] is not plain["message"]["drawing"]
        assert second["points"] == [[1, 2]] and second["points"] is not odd["points"]
        assert second["callback"] is odd["callback"]
    run(scenario())
