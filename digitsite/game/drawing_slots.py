"""Drawings of one client address being rendered and recognised at once.

Each connection scores one drawing at a time (digitsite/game/scoring.py),
but a client may open many connections: twenty sockets each sending a
worst-case drawing kept twenty renderings (tens of ms of CPU each) in the
thread pool ahead of every other player's drawing. An address may have
GAME_DRAWINGS_IN_FLIGHT_PER_ADDRESS drawings in the work at once; its other
connections' drawings wait for a slot here, where waiting costs nothing and
a connection that closes leaves at once. Four keeps two cores busy for a
class behind one address (a drawing is mostly CPU) while a flood holds at
most four of the pool's threads.
"""

import asyncio
import contextlib
import weakref
from dataclasses import dataclass

from django.conf import settings


@dataclass
class _Address:
    slots: asyncio.Semaphore
    users: int = 0  # connections holding or waiting for a slot


class DrawingSlots:
    """A semaphore per address, made on first use and forgotten when unused."""

    def __init__(self):
        self._addresses = {}

    def __len__(self):
        return len(self._addresses)

    @contextlib.asynccontextmanager
    async def held(self, address):
        limit = settings.GAME_DRAWINGS_IN_FLIGHT_PER_ADDRESS
        if limit <= 0 or address is None:
            yield
            return
        entry = self._addresses.get(address)
        if entry is None:
            entry = self._addresses[address] = _Address(asyncio.Semaphore(limit))
        entry.users += 1
        try:
            async with entry.slots:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._addresses[address]


# The process's slots (one event loop per process).
drawing_slots = DrawingSlots()


# The process's rendering turns (GAME_DRAWINGS_RENDERED_AT_ONCE), one gate per
# event loop (a test's loops come and go; a server has one).
_render_gates = weakref.WeakKeyDictionary()


def _render_gate():
    from recognizer.fair_gate import FairGate

    loop = asyncio.get_running_loop()
    gate = _render_gates.get(loop)
    if gate is None:
        gate = _render_gates[loop] = FairGate(settings.GAME_DRAWINGS_RENDERED_AT_ONCE)
    return gate


def render_turn(address):
    """A turn to render a drawing of `address`: `async with render_turn(address):`."""
    return _render_gate().turn(address)


def rendering_in_threads():
    """Whether drawings are being rendered in threads now, or wait their turn
    to be (never, when GAME_DRAWINGS_RENDERED_AT_ONCE sets no limit)."""
    return _render_gate().busy
