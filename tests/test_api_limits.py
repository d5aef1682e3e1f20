"""Per-client limits of POST /api/recognize, and work for a client that went away.

Driven through the real ASGI application (Django's handler, which cancels a
view when the client disconnects), with the inference worker held busy so
that requests are observably waiting. Hostile inputs: a third concurrent
request from one address; a burst past the rate; a client that disconnects
while its drawing waits for the network; ten thousand one-off addresses.
"""

import asyncio
import json

import pytest
from django.core.asgi import get_asgi_application

from recognizer import clients, inference
from recognizer.clients import ClientLimits, LimitExceeded
from tests.support import SEVEN, eventually

URL = "/api/recognize"
BODY = json.dumps(SEVEN).encode()


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def service(monkeypatch):
    # reload_seconds=0: the worker takes the service's lock at every batch,
    # so a test holding it holds the worker and requests stay queued.
    fresh = inference.InferenceService(reload_seconds=0)
    monkeypatch.setattr(inference, "_service", fresh)
    return fresh


@pytest.fixture
def limits(monkeypatch, settings):
    monkeypatch.setattr(clients, "_limits", None)
    settings.RECOGNIZER_API_MAX_IN_FLIGHT = 2
    settings.RECOGNIZER_API_RATE = 1000.0
    settings.RECOGNIZER_API_BURST = 1000
    return clients.api_limits()


class AsgiRequest:
    """One POST driven by hand through an ASGI app: the client can hang up."""

    def __init__(self, app, address, body=BODY):
        self.inbox = asyncio.Queue()
        self.messages = []
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": URL, "raw_path": URL.encode(),
            "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
            "client": (address, 40000), "server": ("127.0.0.1", 80),
        }
        self.inbox.put_nowait({"type": "http.request", "body": body, "more_body": False})
        self.task = asyncio.create_task(app(scope, self.inbox.get, self._send))

    async def _send(self, message):
        self.messages.append(message)

    def hang_up(self):
        self.inbox.put_nowait({"type": "http.disconnect"})

    async def response(self):
        await asyncio.wait_for(self.task, 60)
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.messages
                        if m["type"] == "http.response.body")
        headers = {name.lower(): value for name, value in start["headers"]}
        return start["status"], headers, json.loads(body)


@pytest.mark.django_db(transaction=True)
async def test_a_third_concurrent_request_from_one_address_gets_a_429(
    active_model, service, limits
):
    app = get_asgi_application()
    warm = AsgiRequest(app, "10.0.0.1")
    assert (await warm.response())[0] == 200
    with service._lock:
        held = [AsgiRequest(app, "10.0.0.1") for _ in range(2)]
        await eventually(lambda: limits.in_flight("10.0.0.1") == 2, "two requests in flight")
        refused = AsgiRequest(app, "10.0.0.1")
        status, headers, body = await refused.response()
        assert status == 429
        assert headers[b"retry-after"] == b"1"
        assert "at most 2 at a time" in body["error"]
        # Another address is not affected by the first one's limit.
        other = AsgiRequest(app, "10.0.0.2")
        await eventually(lambda: limits.in_flight("10.0.0.2") == 1, "the other client's request")
    for request in [*held, other]:
        status, _, body = await request.response()
        assert status == 200 and len(body["probabilities"]) == 10
    assert limits.in_flight("10.0.0.1") == 0


@pytest.mark.django_db(transaction=True)
async def test_a_request_whose_client_hung_up_is_not_computed(active_model, service, limits,
                                                              monkeypatch):
    app = get_asgi_application()
    warm = AsgiRequest(app, "10.0.0.3")
    assert (await warm.response())[0] == 200
    served = service.requests_served
    # The futures of the requests queued from here on. A request counts as
    # in flight from the view's start, before it is rendered and queued: only
    # its future tells that the worker has taken it.
    queued = []
    queue_request = service._queue_request

    def recording_queue_request(request):
        queued.append(queue_request(request))
        return queued[-1]

    monkeypatch.setattr(service, "_queue_request", recording_queue_request)
    with service._lock:
        blocker = AsgiRequest(app, "10.0.0.4")
        # Queued and no longer waiting: the worker took it, and waits for the lock.
        await eventually(lambda: len(queued) == 1 and service.waiting == 0,
                         "the worker to hold a request")
        gone = AsgiRequest(app, "10.0.0.3")
        await eventually(lambda: len(queued) == 2 and service.waiting == 1,
                         "the drawing to wait for the network")
        gone.hang_up()
        await eventually(lambda: service.waiting == 0, "the abandoned drawing to leave the queue")
        assert queued[1].cancelled() and service.requests_dropped == 1
        assert service.requests_served == served
        await asyncio.wait_for(gone.task, 30)
        # Its slot is free again at once.
        assert limits.in_flight("10.0.0.3") == 0
    assert (await blocker.response())[0] == 200
    # Only the blocker went through the network after the warm-up.
    assert service.requests_served == served + 1
    assert not any(m["type"] == "http.response.start" for m in gone.messages)


def test_the_rate_limit_refuses_a_burst_and_says_when_to_retry():
    clock = FakeClock()
    limits = ClientLimits(max_in_flight=2, rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        limits.acquire("a")
        limits.release("a")
    with pytest.raises(LimitExceeded, match=r"at most 2 a second \(bursts of 3;") as refused:
        limits.acquire("a")
    assert refused.value.retry_after == 1
    limits.acquire("b")  # another client has its own bucket
    limits.release("b")
    clock.now += 0.5  # one token back at 2 a second
    limits.acquire("a")
    limits.release("a")
    with pytest.raises(LimitExceeded):
        limits.acquire("a")


def test_the_concurrency_limit_counts_requests_in_flight():
    limits = ClientLimits(max_in_flight=2, rate=100.0, burst=100, clock=FakeClock())
    limits.acquire("a")
    limits.acquire("a")
    with pytest.raises(LimitExceeded, match="at most 2 at a time") as refused:
        limits.acquire("a")
    assert refused.value.retry_after == 1
    limits.release("a")
    limits.acquire("a")
    assert limits.in_flight("a") == 2


def test_ten_thousand_one_off_addresses_do_not_grow_the_table_without_bound():
    clock = FakeClock()
    limits = ClientLimits(max_in_flight=2, rate=10.0, burst=20, clock=clock)
    for index in range(10_000):
        limits.acquire(f"addr-{index}")
        limits.release(f"addr-{index}")
        clock.now += 0.01  # 100 new addresses a second; a bucket refills in 2 s
    # Only clients seen in the last 2 s (200) can differ from a fresh start.
    assert len(limits) <= 2 * 1024
    limits.acquire("busy")
    clock.now += 3600
    for index in range(2048):
        limits.acquire(f"late-{index}")
        limits.release(f"late-{index}")
    assert limits.in_flight("busy") == 1  # a client in flight is never forgotten


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_guard_refuses_before_reading_the_body(active_model, service, limits,
                                                               settings):
    """A client flooding past its limit gets the 429 before its body is read at all."""
    from digitsite.asgi import application

    settings.RECOGNIZER_API_REFUSAL_DELAY = 0  # the delay is a rate knob, not tested by time
    assert (await AsgiRequest(application, "10.0.0.5").response())[0] == 200
    with service._lock:
        held = [AsgiRequest(application, "10.0.0.5") for _ in range(2)]
        await eventually(lambda: limits.in_flight("10.0.0.5") == 2, "two requests in flight")
        flood = AsgiRequest(application, "10.0.0.5")
        status, headers, body = await flood.response()
        assert status == 429 and headers[b"retry-after"] == b"1"
        assert "at most 2 at a time" in body["error"]
        # Its body is still where the server left it: nobody read it.
        assert flood.inbox.qsize() == 1
    for request in held:
        assert (await request.response())[0] == 200


def test_a_large_body_costs_several_requests(settings):
    """Two 100 kB drawings in a row exhaust a burst that forty small ones fit in."""
    settings.RECOGNIZER_API_BYTES_PER_TOKEN = 2_500
    assert clients.request_cost(9_700) == 1
    assert clients.request_cost(100_000) == 37
    limits = ClientLimits(max_in_flight=5, rate=20.0, burst=40, clock=FakeClock())
    limits.acquire("a", clients.request_cost(100_000))
    with pytest.raises(LimitExceeded, match="retry in 1.7 s") as refused:
        limits.acquire("a", clients.request_cost(100_000))
    assert refused.value.retry_after == 2
    for _ in range(9):
        limits.acquire("b", 1)
        limits.release("b")
    assert limits.refusal("b", 1) is None
