"""The queue of requests waiting for the inference worker: one lane per client.

The worker takes a batch round robin across the lanes, so a client with a
thousand requests waiting delays another client's one by at most one batch,
not by a thousand requests; a request whose caller gave up leaves its lane at
once. A request is anything with a `client` attribute (None: the shared lane).
"""

import threading
import time
from collections import OrderedDict, deque


class FairQueue:
    """Requests waiting for the worker: one FIFO lane per client, taken round robin.

    Thread-safe. `discard` removes a request in O(1) (a cancelled one).
    Requests without a client share one lane, which is plain FIFO.
    """

    def __init__(self):
        self._lanes = OrderedDict()  # client -> deque of requests, oldest first
        self._size = 0
        self._ready = threading.Condition(threading.Lock())

    def __len__(self):
        return self._size

    def put(self, request):
        with self._ready:
            self._lanes.setdefault(request.client, deque()).append(request)
            self._size += 1
            self._ready.notify()

    def discard(self, request):
        """Remove `request` if it is still waiting; True if it was."""
        with self._ready:
            lane = self._lanes.get(request.client)
            if lane is None:
                return False
            try:
                lane.remove(request)
            except ValueError:
                return False
            # A deque's remove is linear in its lane, which per-client limits
            # keep short (2 for an API client); other lanes are not scanned.
            self._size -= 1
            if not lane:
                del self._lanes[request.client]
            return True

    def take(self, limit, wait=0.0):
        """Block until a request waits; return up to `limit`, one client at a time.

        After the first request, wait up to `wait` seconds for more while the
        batch is not full.
        """
        with self._ready:
            while not self._size:
                self._ready.wait()
            deadline = time.monotonic() + wait
            batch = []
            while True:
                self._take_round_robin(batch, limit)
                remaining = deadline - time.monotonic()
                if len(batch) >= limit or remaining <= 0:
                    return batch
                self._ready.wait(remaining)

    def _take_round_robin(self, batch, limit):
        while self._size and len(batch) < limit:
            client, lane = next(iter(self._lanes.items()))
            batch.append(lane.popleft())
            self._size -= 1
            if lane:
                self._lanes.move_to_end(client)
            else:
                del self._lanes[client]
