"""Oversized bodies and slow clients against a real server (python -m digitsite.serve).

Hostile clients: a Content-Length of 400 MB (the audit's body), a chunked body
that never ends, a client that sends half its headers and stalls, and one
that trickles a header byte every half second (which resets an idle timer
for ever). The server answers 413 without waiting for the body and cuts the
slow ones off at HTTP_RECEIVE_TIMEOUT_SECONDS.
"""

import json
import select
import socket
import time

import pytest
from channels.testing import ApplicationCommunicator

from digitsite.asgi import application
from tests.live import LiveServer

RECEIVE_TIMEOUT = 2
# Generous: the server is told 2 s; a loaded machine may be slow to act on it.
CUT_OFF_BOUND = 45
LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("limits"),
                      env={"HTTP_RECEIVE_TIMEOUT_SECONDS": str(RECEIVE_TIMEOUT)})
    live.start()
    yield live
    live.stop()


def connect(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def read_all(sock, bound=30):
    """Everything until the server closes the connection (or `bound` seconds pass)."""
    sock.settimeout(bound)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return data
        if not chunk:
            return data
        data += chunk


def status_and_body(response):
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_an_oversized_content_length_is_refused_before_the_body(server):
    with connect(server) as sock:
        sock.sendall(b"POST /api/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 400000000\r\n\r\n")
        # Not one byte of the body is sent: the answer must not wait for it.
        status, body = status_and_body(read_all(sock))
    assert status == 413
    assert f"larger than {LIMIT} bytes" in json.loads(body)["error"]


def test_a_chunked_body_is_cut_when_it_passes_the_limit(server):
    chunk = b"x" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    with connect(server) as sock:
        sock.sendall(b"POST /api/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        # Keep sending (never the last chunk) until the server answers; 64 MiB
        # is 32 times the limit, far more than socket buffers can hide.
        while sent < 64 * 1024 * 1024:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(frame)
        response = read_all(sock)
    assert response, f"no answer after {sent} bytes"
    status, body = status_and_body(response)
    assert status == 413, response[:200]
    assert sent < 64 * 1024 * 1024


def wait_closed(sock, keep_sending=None):
    """Seconds until the server closes the connection; fails past CUT_OFF_BOUND."""
    start = time.monotonic()
    sock.setblocking(False)
    while time.monotonic() - start < CUT_OFF_BOUND:
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                return time.monotonic() - start
            if not data:
                return time.monotonic() - start
            continue  # the 408 answer; the close follows
        if keep_sending is not None:
            try:
                keep_sending()
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start
    raise AssertionError(f"still connected after {CUT_OFF_BOUND} s")


def test_a_client_that_stalls_in_its_headers_is_disconnected(server):
    with connect(server) as sock:
        sock.sendall(b"POST /api/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        wait_closed(sock)


def test_a_client_trickling_its_headers_is_disconnected(server):
    with connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        wait_closed(sock, keep_sending=lambda: sock.send(b"a"))


def test_a_body_that_stalls_is_disconnected(server):
    with connect(server) as sock:
        sock.sendall(b"POST /api/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"wid")
        wait_closed(sock)


def test_ordinary_requests_and_keep_alive_still_work(server):
    from tests.support import SEVEN

    body = json.dumps(SEVEN).encode()
    request = (b"POST /api/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    with connect(server) as sock:
        for _ in range(2):  # two requests on one connection
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            header_text, _, rest = head.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in header_text.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(rest) < length:
                rest += sock.recv(65536)
            assert "probabilities" in json.loads(rest)


# -- the same rule inside the application, for servers without digitsite.serve --------


async def asgi_post(headers, chunks):
    communicator = ApplicationCommunicator(application, {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/recognize", "raw_path": b"/api/recognize",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000), "headers": [(b"host", b"localhost"), *headers],
    })
    for index, chunk in enumerate(chunks):
        await communicator.send_input({"type": "http.request", "body": chunk,
                                       "more_body": index < len(chunks) - 1})
    start = await communicator.receive_output(10)
    body = await communicator.receive_output(10)
    return start["status"], json.loads(body["body"])


async def test_the_application_refuses_an_oversized_content_length_unread():
    status, body = await asgi_post([(b"content-length", b"400000000")], [])
    assert status == 413 and "larger than" in body["error"]


async def test_the_application_refuses_a_body_growing_past_the_limit():
    status, body = await asgi_post([], [b"x" * 1024 * 1024] * 3)
    assert status == 413 and "larger than" in body["error"]
