"""Per-client limits on the recognition API: requests in flight and a request rate.

A client is its address (`client_address`, the one place that decides it).
Each may have RECOGNIZER_API_MAX_IN_FLIGHT requests being computed at once
and start RECOGNIZER_API_RATE a second on average, in bursts of up to
RECOGNIZER_API_BURST (a token bucket). A request over either limit is
answered 429 at once, with a Retry-After, before its body is decoded: a flood
costs the server the reading of each request, not its rendering nor a forward
pass, and cannot queue ahead of other clients' work.

Two in flight lets a client overlap one request's upload with another's
computation, which is all a single user (or a well-behaved script) needs;
the rate is ten times what a person drawing digits produces.
"""

import math
import threading
import time
from dataclasses import dataclass


def client_address(request):
    """The address the API's limits count against.

    The peer's address as the server saw it. Behind a reverse proxy every
    request shares the proxy's address; trusting a forwarded header is a
    deployment decision, made here and only here.
    """
    return request.META.get("REMOTE_ADDR") or "unknown"


class LimitExceeded(Exception):
    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after  # whole seconds, as Retry-After wants


@dataclass
class _Client:
    tokens: float
    updated: float
    in_flight: int = 0


class ClientLimits:
    """Concurrency and rate limits per client key. Thread-safe; clock injectable."""

    def __init__(self, max_in_flight, rate, burst, clock=time.monotonic):
        if max_in_flight < 1 or rate <= 0 or burst < 1:
            raise ValueError("limits need max_in_flight >= 1, rate > 0 and burst >= 1")
        self.max_in_flight = max_in_flight
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._clients = {}
        self._lock = threading.Lock()
        self._prune_at = 1024

    def acquire(self, key):
        """Count a request from `key` as started, or raise LimitExceeded."""
        with self._lock:
            now = self.clock()
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = _Client(float(self.burst), now)
                if len(self._clients) >= self._prune_at:
                    self._prune(now)
            client.tokens = min(self.burst, client.tokens + (now - client.updated) * self.rate)
            client.updated = now
            if client.in_flight >= self.max_in_flight:
                raise LimitExceeded(
                    f"too many requests at once from your address: at most "
                    f"{self.max_in_flight} at a time; wait for an answer before sending more",
                    retry_after=1,
                )
            if client.tokens < 1:
                wait = (1 - client.tokens) / self.rate
                raise LimitExceeded(
                    f"too many requests from your address: at most {self.rate:g} a second "
                    f"(bursts of {self.burst}); retry in {wait:.1f} s",
                    retry_after=max(1, math.ceil(wait)),
                )
            client.tokens -= 1
            client.in_flight += 1

    def release(self, key):
        with self._lock:
            client = self._clients.get(key)
            if client is not None and client.in_flight > 0:
                client.in_flight -= 1

    def in_flight(self, key):
        with self._lock:
            client = self._clients.get(key)
            return client.in_flight if client else 0

    def __len__(self):
        return len(self._clients)

    def _prune(self, now):
        """Forget clients that would start afresh anyway: idle, bucket full again.

        Run when the table doubles, so its size stays within twice the number
        of clients active in the last burst / rate seconds (amortised O(1)).
        """
        full_after = self.burst / self.rate
        self._clients = {
            key: client for key, client in self._clients.items()
            if client.in_flight or now - client.updated < full_after
        }
        self._prune_at = max(1024, 2 * len(self._clients))


_limits = None
_limits_lock = threading.Lock()


def api_limits():
    """The process-wide limits of /api/recognize (from the settings, on first use)."""
    global _limits
    if _limits is None:
        from django.conf import settings

        with _limits_lock:
            if _limits is None:
                _limits = ClientLimits(
                    settings.RECOGNIZER_API_MAX_IN_FLIGHT,
                    settings.RECOGNIZER_API_RATE,
                    settings.RECOGNIZER_API_BURST,
                )
    return _limits
