"""The game's clock: the real one in production, a manual one in tests.

Every timer of the game (round and results deadlines, the join timeout,
seat heartbeats and expiries, the rate limiter) and every "now" the rooms
compare deadlines with read the clock through this module, so a test can
install a ManualClock and play a 20-second round in no time, and identically
on a fast machine and on a loaded one: virtual time moves only when the test
advances it.

    clock.now()          an aware datetime (what the database stores)
    clock.time()         seconds since the epoch, as time.time()
    clock.monotonic()    seconds for measuring intervals, as time.monotonic()
    await clock.sleep(s)

A process uses one clock for all its rooms; `install` swaps it (tests only).
"""

import asyncio
import heapq
import itertools
import threading
import time as real_time
from datetime import UTC, datetime

from django.utils import timezone


class RealClock:
    def now(self):
        return timezone.now()

    def time(self):
        return real_time.time()

    def monotonic(self):
        return real_time.monotonic()

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)


class ManualClock:
    """Virtual time that stands still until `advance` moves it.

    It starts at the real time of its creation, so rows the database stamps
    itself (a room's `created`) still look recent. `advance` wakes at once
    every sleeper due by the new time; it may be called from any thread, and
    from synchronous code. `run_timers` and `run_for` fire timers one at a
    time instead, for timers that set the next one (a round's end sets the
    results pause).
    """

    def __init__(self, start=None):
        self._epoch = real_time.time() if start is None else start
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self._sleepers = []  # heap of (wake_at, order, future)
        self._order = itertools.count()

    def time(self):
        return self._epoch + self._elapsed

    def monotonic(self):
        return self._elapsed

    def now(self):
        return datetime.fromtimestamp(self.time(), UTC)

    async def sleep(self, seconds):
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        await future

    def wakes(self):
        """The monotonic times of the sleeps waiting for time to move,
        earliest first (cancelled ones left out)."""
        with self._lock:
            return sorted(at for at, _, future in self._sleepers if not future.done())

    def sleepers(self):
        """How many sleeps are waiting for time to move (cancelled ones left out)."""
        return len(self.wakes())

    def next_wake(self):
        """The monotonic time of the earliest sleep waiting, or None."""
        wakes = self.wakes()
        return wakes[0] if wakes else None

    async def run_timers(self, awaitable, within):
        """Await `awaitable` while firing, one at a time and in order, the
        timers due in the next `within` seconds; time never moves past that.

        Time jumps to the earliest sleeper due, then gives what it woke 10 ms
        of real time before the next jump (what a timer does next may wait on
        a database thread, which the loop cannot see finish); a timer that
        sets a new one within the window gets it fired too. A timer set after
        such a wait counts from when it is set, so when other timers fired
        meanwhile it lands later than on a real clock: a window should leave
        room for that, or cover only timers set from deadlines (those are
        absolute). How long any of this takes in real time changes nothing
        the game sees; `awaitable` keeps its own real-time timeout.
        """
        limit = self._elapsed + within
        task = asyncio.ensure_future(awaitable)
        try:
            while not task.done():
                wake = self.next_wake()
                if wake is not None and wake <= limit:
                    self.advance(max(wake - self._elapsed, 0.0))
                await asyncio.wait({task}, timeout=0.01)
        finally:
            task.cancel()
        return task.result()

    async def run_for(self, seconds, settle=0.5):
        """Let `seconds` pass, firing the timers due meanwhile (as run_timers,
        for `settle` real seconds), and end exactly `seconds` later."""
        end = self._elapsed + seconds
        await self.run_timers(asyncio.sleep(settle), within=seconds)
        self.advance(max(end - self._elapsed, 0.0))

    def advance(self, seconds):
        """Move time on by `seconds` and wake every sleeper due by then."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        with self._lock:
            self._elapsed += seconds
            due = []
            while self._sleepers and self._sleepers[0][0] <= self._elapsed:
                due.append(heapq.heappop(self._sleepers)[2])
        for future in due:
            future.get_loop().call_soon_threadsafe(_wake, future)


def _wake(future):
    if not future.done():  # a cancelled sleep stays cancelled
        future.set_result(None)


_clock = RealClock()


def install(clock):
    """Make `clock` the game's clock; returns the one it replaces."""
    global _clock
    previous, _clock = _clock, clock
    return previous


def current():
    return _clock


def now():
    return _clock.now()


def time():
    return _clock.time()


def monotonic():
    return _clock.monotonic()


async def sleep(seconds):
    await _clock.sleep(seconds)
