"""A small bounded cache of computations, shared by concurrent askers.

The attention maps cost about 200 forward passes; the model page's accuracy
on every approved drawing costs seconds with 20,000 of them. Both depend
only on their input and the model version, and a class of 30 tends to ask
for the same things at once (the same example digit, the same model page).
`Memo.get` starts a computation once per key: askers arriving while it runs
wait for that same result instead of starting their own, later askers get it
at once, and the least recently used results are dropped beyond `size`.
A computation that fails is forgotten, so the next asker tries again.

Results are concurrent.futures.Future objects, which any thread or event loop
can wait for (asyncio.wrap_future); computations run in the Memo's own
bounded pool, so a burst of distinct inputs queues instead of starting 30
PyTorch computations that share two cores.
"""

import threading
from collections import OrderedDict

from recognizer.thread_names import thread_pool

# Distinct computations one lesson's cache lets wait (and run) at once: a
# class of 30, each page with one request at a time, fits twice over; past
# it a request is answered 503 with Retry-After and the page asks again.
WAITING_COMPUTATIONS = 64


class MemoBusy(Exception):
    """More computations wait than the Memo takes: ask again in `retry_after` s."""

    def __init__(self, retry_after):
        super().__init__(f"the server is busy; try again in {retry_after} s")
        self.retry_after = retry_after


class Memo:
    def __init__(self, size, workers=1, name="memo", max_waiting=None, initializer=None):
        """`initializer` runs once in each worker thread (a thread's own torch settings)."""
        self.size = size
        # Computations submitted and not finished. A client that asks and
        # leaves frees its request's limits at once, but its computation
        # stays queued (shielded, since others may want it): without a bound
        # a stream of distinct inputs, each abandoned, would queue work
        # without end and make every learner wait behind it.
        self.max_waiting = max_waiting
        self._unfinished = 0
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        self._pool = thread_pool(workers, name, initializer=initializer)
        self.hits = 0
        self.misses = 0

    def get(self, key, compute):
        """A Future of compute()'s result for `key`, computed at most once while kept.
        Raises MemoBusy when a new computation would pass `max_waiting`."""
        with self._lock:
            future = self._entries.get(key)
            if future is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return future
            if self.max_waiting is not None and self._unfinished >= self.max_waiting:
                raise MemoBusy(retry_after=1)
            self.misses += 1
            self._unfinished += 1
            future = self._pool.submit(compute)
            self._entries[key] = future
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        future.add_done_callback(self._finished)
        future.add_done_callback(lambda done: self._forget_failure(key, done))
        return future

    def _finished(self, _future):
        with self._lock:
            self._unfinished -= 1

    def _forget_failure(self, key, future):
        if future.cancelled() or future.exception() is not None:
            self.forget(key, future)

    def forget(self, key, future):
        """Drop `key`'s result if it is still `future`, so the next asker computes afresh."""
        with self._lock:
            if self._entries.get(key) is future:
                del self._entries[key]

    def clear(self):
        """Forget every result and start counting hits and misses afresh."""
        with self._lock:
            self._entries.clear()
            self.hits = 0
            self.misses = 0

    def __len__(self):
        return len(self._entries)
