"""Per-client limits on the recognition API: requests in flight and a request rate.

A client is its address (`client_address`, the one place that decides it).
Each may have RECOGNIZER_API_MAX_IN_FLIGHT requests being computed at once
and spend RECOGNIZER_API_RATE tokens a second on average, in bursts of up to
RECOGNIZER_API_BURST (a token bucket). A request costs one token plus one per
RECOGNIZER_API_BYTES_PER_TOKEN bytes of body past the first FREE_BODY_BYTES:
decoding and rendering grow with the body, so an ordinary drawing (a few
hundred points, under 10 kB, about 2 ms of CPU) costs 1 and the largest one
accepted (10,000 points, about 100 kB, tens of ms) costs 37, one every two
seconds at the default rate. Counting requests alone let a flood of the
largest drawings through at the full rate, and that raised another client's
p95 16-fold (bench/bench_abuse.py); one token per 10 kB, 7-fold. A request
over either limit is
answered 429 at once, with a Retry-After, before its body is decoded: a flood
costs the server the reading of each request, not its rendering nor a forward
pass, and cannot queue ahead of other clients' work.

Two in flight lets a client overlap one request's upload with another's
computation, which is all a single user (or a well-behaved script) needs;
the rate is twice what the game's live guesses ask of a player.
"""

import asyncio
import functools
import math
import threading
import time
from dataclasses import dataclass

from django.http import JsonResponse

from recognizer.json_endpoints import content_length
from recognizer.ratelimit import TokenBucket


def client_address(request):
    """The address the API's limits count against, of a Django request or an ASGI scope.

    The peer's address in the scope, which digitsite/proxies.py has already
    replaced with the X-Forwarded-For client for a request from one of
    TRUSTED_PROXIES (Daphne runs without --proxy-headers, which would believe
    the header from anyone). Nothing here reads forwarded headers, for
    either form: the ASGI guard below sees the scope before Django builds a
    request, after the proxy middleware.
    """
    if isinstance(request, dict):  # an ASGI scope: Django's REMOTE_ADDR comes from it
        peer = request.get("client")
        return (peer[0] if peer else None) or "unknown"
    return request.META.get("REMOTE_ADDR") or "unknown"


class LimitExceeded(Exception):
    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after  # whole seconds, as Retry-After wants


@dataclass
class _Client:
    bucket: TokenBucket
    in_flight: int = 0


class ClientLimits:
    """Concurrency and rate limits per client key (a token bucket each,
    recognizer/ratelimit.py). Thread-safe; clock injectable."""

    def __init__(self, max_in_flight, rate, burst, clock=time.monotonic, who="your address"):
        if max_in_flight < 1 or rate <= 0 or burst < 1:
            raise ValueError("limits need max_in_flight >= 1, rate > 0 and burst >= 1")
        self.who = who  # whom a refusal names: "your address", "this browser"
        self.max_in_flight = max_in_flight
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._clients = {}
        self._lock = threading.Lock()
        self._prune_at = 1024

    def acquire(self, key, cost=1):
        """Count a request from `key` costing `cost` tokens as started, or raise LimitExceeded."""
        with self._lock:
            now = self.clock()
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = _Client(
                    TokenBucket(self.rate, self.burst, clock=self.clock, now=now))
                if len(self._clients) >= self._prune_at:
                    self._prune(now)
            tokens = client.bucket.refill(now)
            cost = min(cost, self.burst)  # what a full bucket cannot pay, it pays whole
            refusal = self._refusal(client.in_flight, tokens, cost)
            if refusal is not None:
                raise refusal
            client.bucket.take(cost, now)
            client.in_flight += 1

    def refusal(self, key, cost=1):
        """The LimitExceeded `acquire(key, cost)` would raise now, or None; changes nothing."""
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                return None
            return self._refusal(client.in_flight, client.bucket.level(),
                                 min(cost, self.burst))

    def _refusal(self, in_flight, tokens, cost):
        if in_flight >= self.max_in_flight:
            return LimitExceeded(
                f"too many requests at once from {self.who}: at most "
                f"{self.max_in_flight} at a time; wait for an answer before sending more",
                retry_after=1,
            )
        if tokens < cost:
            wait = (cost - tokens) / self.rate
            return LimitExceeded(
                f"too many requests from {self.who}: at most {self.rate:g} a second "
                f"(bursts of {self.burst}; a large body counts as several); "
                f"retry in {wait:.1f} s",
                retry_after=max(1, math.ceil(wait)),
            )
        return None

    def refund(self, key, cost=1):
        """Undo `acquire(key, cost)` of a request that another limit then refused."""
        with self._lock:
            client = self._clients.get(key)
            if client is not None and client.in_flight > 0:
                client.in_flight -= 1
                client.bucket.tokens = min(client.bucket.capacity,
                                           client.bucket.tokens + min(cost, self.burst))

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
        self._clients = {
            key: client for key, client in self._clients.items()
            if client.in_flight or not client.bucket.refilled_whole_by(now)
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


# What an ordinary drawing's JSON weighs at most (260 points with times: 9.7 kB).
FREE_BODY_BYTES = 10_000


def request_cost(body_bytes):
    """The tokens a request with a body of `body_bytes` bytes costs."""
    from django.conf import settings

    return 1 + max(0, body_bytes - FREE_BODY_BYTES) // settings.RECOGNIZER_API_BYTES_PER_TOKEN


class ApiLimitsGuard:
    """ASGI middleware: a request the API's limits would refuse gets its 429 here.

    Before Django reads the body and builds a request, and after
    RECOGNIZER_API_REFUSAL_DELAY seconds (1): a client that ignores
    Retry-After and resends at once gets one answer a second per connection
    instead of hundreds. Measured with 16 abusive connections: answering
    every 429 from the view (after Django read the 100 kB body) let 160
    refusals a second through and raised another client's p95 8-fold;
    answering them here at once, 350 a second and 18-fold (the flood's own
    sending competes for the same cores); delayed, see the README. The view
    still takes the slot itself (`acquire`), so this is only an earlier
    answer of the same decision; anything else passes through untouched.
    """

    def __init__(self, app, path="/api/recognize"):
        self.app = app
        self.path = path

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.path:
            length = 0
            for name, value in scope.get("headers", ()):
                if name == b"content-length" and value.isdigit():
                    length = int(value)
            refusal = api_limits().refusal(client_address(scope), request_cost(length))
            if refusal is not None:
                from django.conf import settings

                await asyncio.sleep(min(settings.RECOGNIZER_API_REFUSAL_DELAY,
                                        refusal.retry_after))
                return await _send_429(send, str(refusal), refusal.retry_after)
        return await self.app(scope, receive, send)


async def _send_429(send, message, retry_after):
    import json

    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", b"application/json"), (b"retry-after", str(retry_after).encode()),
        (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": body})


# -- the teaching endpoints: per browser session, under a ceiling per address ------


class SessionLimits:
    """Per-client limits where a client is a browser session, with a ceiling per address.

    A whole school reaches the site from one address (NAT), so the teaching
    endpoints (/learn/api/*, the teach page's predict and job requests) count
    each browser session as the recognition API counts an address: a class
    of 30 on one address gets 30 allowances. A session is only a cookie,
    which a client can drop or invent at will, so each address also has a
    ceiling (`per_address`) that sessions cannot get past together. A
    request without a session cookie counts as the address's one session
    without a cookie. Thread-safe (each ClientLimits is).
    """

    def __init__(self, per_session, per_address):
        self.per_session = per_session
        self.per_address = per_address

    @staticmethod
    def keys(request):
        """(session key, address) a Django request counts against.

        The session key is the cookie's value, not checked against the
        session store (no query per request): an invented key only moves
        requests between session allowances inside the address's ceiling.
        """
        address = client_address(request)
        session_key = request.session.session_key if hasattr(request, "session") else None
        return (f"session:{session_key}" if session_key else f"no-session:{address}"), address

    def acquire(self, keys, cost=1):
        """Count a request from `keys` (see keys()) as started, or raise LimitExceeded."""
        session, address = keys
        self.per_address.acquire(address, cost)
        try:
            self.per_session.acquire(session, cost)
        except LimitExceeded:
            self.per_address.refund(address, cost)
            raise

    def release(self, keys):
        session, address = keys
        self.per_session.release(session)
        self.per_address.release(address)


_teaching_limits = None


def teaching_limits():
    """The process-wide SessionLimits of the teaching endpoints (from the settings)."""
    global _teaching_limits
    if _teaching_limits is None:
        from django.conf import settings

        with _limits_lock:
            if _teaching_limits is None:
                _teaching_limits = SessionLimits(
                    ClientLimits(settings.TEACHING_API_SESSION_MAX_IN_FLIGHT,
                                 settings.TEACHING_API_SESSION_RATE,
                                 settings.TEACHING_API_SESSION_BURST, who="this browser"),
                    ClientLimits(settings.TEACHING_API_ADDRESS_MAX_IN_FLIGHT,
                                 settings.TEACHING_API_ADDRESS_RATE,
                                 settings.TEACHING_API_ADDRESS_BURST,
                                 who="your address (shared by every browser behind it)"),
                )
    return _teaching_limits


def limited(view):
    """Wrap an async teaching view in teaching_limits(): a 429 with Retry-After
    before the body is decoded, the slot freed when the view ends or is cancelled."""
    from django.conf import settings

    @functools.wraps(view)
    async def wrapped(request, *args, **kwargs):
        limits = teaching_limits()
        keys = SessionLimits.keys(request)
        # The declared length, or for a chunked upload the body Django has read.
        size = content_length(request) or len(request.body)
        if size > settings.RECOGNIZER_MAX_BODY_BYTES:
            # Refused here, before anything is decoded, for every view this
            # wraps (not all of them check the size themselves).
            return JsonResponse(
                {"error": f"the body is larger than {settings.RECOGNIZER_MAX_BODY_BYTES} bytes"},
                status=413)
        try:
            limits.acquire(keys, request_cost(size))
        except LimitExceeded as exc:
            response = JsonResponse({"error": str(exc), "retry_after": exc.retry_after},
                                    status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        try:
            return await view(request, *args, **kwargs)
        finally:
            limits.release(keys)

    return wrapped
