"""At most a few holders at once, the others waiting in one lane per client.

The asyncio counterpart of fair_queue.py, for work that runs in a thread
(rendering a drawing): the holders are limited, and when one leaves, the
next holder is taken round robin across the clients waiting, so a client
with many drawings waiting delays another client's one by at most one
drawing per holder, not by all of them. A waiter whose caller gives up
(a closed socket) leaves its lane at once; one that was let in and then
cancelled gives its place to the next.
"""

import asyncio
import contextlib
from collections import OrderedDict, deque


class FairGate:
    """`limit` holders at once (0 or less: no limit); waiters in lanes by client.

    For one event loop (a process's). Clients are any hashable values (None is
    one client like the others).
    """

    def __init__(self, limit):
        self.limit = limit
        self.holders = 0
        self._lanes = OrderedDict()  # client -> deque of futures, oldest first

    def __len__(self):
        """How many wait."""
        return sum(len(lane) for lane in self._lanes.values())

    @property
    def busy(self):
        """Whether any place is held or anyone waits (always False without a limit)."""
        return self.holders > 0 or bool(self._lanes)

    @contextlib.asynccontextmanager
    async def turn(self, client):
        """Hold one of the places while the block runs, after waiting for one."""
        if self.limit <= 0:
            yield
            return
        if self.holders < self.limit and not self._lanes:
            self.holders += 1
        else:
            await self._wait(client)
        try:
            yield
        finally:
            self._leave()

    async def _wait(self, client):
        waiter = asyncio.get_running_loop().create_future()
        self._lanes.setdefault(client, deque()).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._leave()  # let in, then cancelled before it could hold
            else:
                self._discard(client, waiter)
            raise

    def _discard(self, client, waiter):
        lane = self._lanes.get(client)
        if lane is None:
            return
        with contextlib.suppress(ValueError):
            lane.remove(waiter)
        if not lane:
            del self._lanes[client]

    def _leave(self):
        self.holders -= 1
        while self._lanes and self.holders < self.limit:
            client, lane = next(iter(self._lanes.items()))
            waiter = lane.popleft()
            if lane:
                self._lanes.move_to_end(client)
            else:
                del self._lanes[client]
            if not waiter.done():
                self.holders += 1
                waiter.set_result(None)
