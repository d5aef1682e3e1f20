"""recognizer/fair_gate.py: a few holders at once, the waiting ones round robin by client.

Plain asyncio: each holder waits on an event the test sets, so the order in
which holders get in depends on the gate, never on how fast the machine is.
"""

import asyncio

import pytest

from recognizer.fair_gate import FairGate


class Holders:
    """Tasks that each take a turn and hold it until the test lets them go."""

    def __init__(self, gate):
        self.gate = gate
        self.order = []  # labels, in the order they got in
        self.release = {}
        self.tasks = {}

    def start(self, label, client):
        self.release[label] = asyncio.Event()

        async def hold():
            async with self.gate.turn(client):
                self.order.append(label)
                await self.release[label].wait()

        self.tasks[label] = asyncio.ensure_future(hold())

    async def settle(self):
        for _ in range(5):
            await asyncio.sleep(0)

    async def finish(self, label):
        self.release[label].set()
        await self.tasks[label]
        await self.settle()


async def test_no_more_than_the_limit_hold_at_once():
    gate = FairGate(2)
    holders = Holders(gate)
    for n in range(5):
        holders.start(f"a{n}", "a")
    await holders.settle()
    assert holders.order == ["a0", "a1"] and gate.holders == 2 and len(gate) == 3
    await holders.finish("a0")
    assert holders.order == ["a0", "a1", "a2"] and gate.holders == 2
    for label in ("a1", "a2", "a3", "a4"):
        await holders.finish(label)
    assert holders.order == ["a0", "a1", "a2", "a3", "a4"]
    assert gate.holders == 0 and len(gate) == 0


async def test_a_flooding_client_delays_another_by_one_turn_not_by_its_queue():
    """Twenty drawings of one address waiting, then one of another: the other's
    goes in as soon as one place frees, ahead of the nineteen still waiting."""
    gate = FairGate(1)
    holders = Holders(gate)
    for n in range(20):
        holders.start(f"flood{n}", "10.0.0.9")
    await holders.settle()
    holders.start("player", "10.0.0.2")
    await holders.settle()
    assert holders.order == ["flood0"]
    await holders.finish("flood0")
    assert holders.order == ["flood0", "flood1"]  # in line before the player came
    await holders.finish("flood1")
    assert holders.order[-1] == "player"
    await holders.finish("player")
    for n in range(2, 20):
        await holders.finish(f"flood{n}")
    assert gate.holders == 0


async def test_a_waiter_that_gives_up_leaves_its_lane_and_takes_no_turn():
    gate = FairGate(1)
    holders = Holders(gate)
    holders.start("first", "a")
    holders.start("gone", "b")
    holders.start("next", "c")
    await holders.settle()
    holders.tasks["gone"].cancel()  # its socket closed while it waited
    await holders.settle()
    assert len(gate) == 1
    await holders.finish("first")
    assert holders.order == ["first", "next"]
    with pytest.raises(asyncio.CancelledError):
        await holders.tasks["gone"]
    await holders.finish("next")
    assert gate.holders == 0 and len(gate) == 0


async def test_a_waiter_let_in_then_cancelled_passes_its_turn_on():
    gate = FairGate(1)
    holders = Holders(gate)
    first = gate.turn("a")
    await first.__aenter__()
    holders.start("unlucky", "b")
    holders.start("third", "c")
    await holders.settle()
    # Leaving lets "unlucky" in; it is cancelled before it could run.
    await first.__aexit__(None, None, None)
    holders.tasks["unlucky"].cancel()
    await holders.settle()
    assert holders.order == ["third"] and gate.holders == 1
    await holders.finish("third")
    assert gate.holders == 0 and len(gate) == 0


async def test_a_holder_that_fails_gives_its_place_back():
    gate = FairGate(1)
    with pytest.raises(RuntimeError):
        async with gate.turn("a"):
            raise RuntimeError("rendering failed")
    assert gate.holders == 0
    async with gate.turn("b"):
        assert gate.holders == 1


async def test_no_limit_lets_everyone_in():
    gate = FairGate(0)
    holders = Holders(gate)
    for n in range(10):
        holders.start(n, "a")
    await holders.settle()
    assert holders.order == list(range(10))
    for n in range(10):
        await holders.finish(n)


async def test_busy_while_a_place_is_held_or_anyone_waits():
    gate = FairGate(1)
    holders = Holders(gate)
    assert not gate.busy
    holders.start("a0", "a")
    holders.start("b0", "b")
    await holders.settle()
    assert gate.busy and gate.holders == 1 and len(gate) == 1
    await holders.finish("a0")
    assert gate.busy and holders.order == ["a0", "b0"] and len(gate) == 0
    await holders.finish("b0")
    assert not gate.busy

    unlimited = FairGate(0)  # no limit: nothing is counted, so never busy
    async with unlimited.turn("a"):
        assert not unlimited.busy
