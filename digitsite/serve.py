"""`python -m digitsite.serve [daphne's options] digitsite.asgi:application`:
Daphne, with request bodies bounded, slow clients cut off and what a
WebSocket connection may make the server hold bounded.

Daphne (through Twisted) reads a whole request body, into a temporary file
past 100 kB, before it calls the application, and Django then copies it into
a file of its own: a 400 MB body left about 800 MB of temporary files before
anything could answer 413. Daphne has no setting for a body limit, and its
--http-timeout counts only from when the body has arrived, so a client that
sends its headers and then nothing, or a byte a second, holds the connection
(and, for a body, a temporary file) for as long as it likes.

So this entry point gives Daphne a request class that, before any of that:

- answers 413 as soon as the headers announce a Content-Length over
  HTTP_MAX_BODY_BYTES, without reading the body, and closes the connection;
- counts the body's bytes as they arrive (chunked bodies announce no length)
  and answers 413 the moment they pass the limit;
- answers 408 and closes the connection when a request's headers and body
  have not all arrived HTTP_RECEIVE_TIMEOUT_SECONDS after its first line, and
  closes a connection idle that long between requests.

Everything else is Daphne's, options included. An upgrade to a WebSocket has
no body and is handed to Daphne's WebSocket protocol as before (its own
handshake, connect and ping timeouts apply; see docs/deployment.md), with
the bounds of digitsite/websocket_bounds.py: the frames waiting for the
application, the bytes waiting for a client that does not read, the
socket's kernel send buffer.
digitsite/body_limit.py checks the same limit again inside the application,
for servers started without this entry point.
"""

import io
import json
import logging

import daphne.server
from daphne.http_protocol import HTTPFactory, WebRequest

from digitsite.websocket_bounds import BoundedWebSocketFactory

logger = logging.getLogger(__name__)


def _limits():
    from django.conf import settings

    return settings.HTTP_MAX_BODY_BYTES, settings.HTTP_RECEIVE_TIMEOUT_SECONDS


class BoundedWebRequest(WebRequest):
    """Daphne's request, refusing oversized bodies and slow senders while they arrive."""

    def __init__(self, *args, **kwargs):
        # Made when the request line arrives: the deadline covers the headers too.
        self.max_body_bytes, receive_timeout = _limits()
        self.body_bytes = 0
        self.refused = False
        super().__init__(*args, **kwargs)
        from twisted.internet import reactor

        self.receive_deadline = reactor.callLater(receive_timeout, self._too_slow)

    def _cancel_deadline(self):
        if self.receive_deadline is not None and self.receive_deadline.active():
            self.receive_deadline.cancel()
        self.receive_deadline = None

    def _refuse(self, status, reason, message):
        """Answer on the raw connection and close it: the rest of the body is never read."""
        if self.refused:
            return
        self.refused = True
        self._cancel_deadline()
        body = json.dumps({"error": message}).encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        transport = self.channel.transport if self.channel is not None else None
        if transport is not None:
            transport.write(head + body)
            transport.loseConnection()
        logger.warning("refused a request from %s: %s", self.client_addr or "?", message)

    def _too_large(self):
        self._refuse(413, "Content Too Large",
                     f"the body is larger than {self.max_body_bytes} bytes")

    def _too_slow(self):
        self.receive_deadline = None
        self._refuse(408, "Request Timeout", "the request did not arrive in time")

    def gotLength(self, length):
        if length is not None and length > self.max_body_bytes:
            self.content = io.BytesIO()  # never written to; Twisted closes it at the end
            self._too_large()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self.refused:
            return
        self.body_bytes += len(data)
        if self.body_bytes > self.max_body_bytes:
            self._too_large()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        self._cancel_deadline()
        if self.refused:
            return  # answered already; the application never sees it
        super().requestReceived(command, path, version)

    def connectionLost(self, reason):
        self._cancel_deadline()
        super().connectionLost(reason)


class BoundedHTTPFactory(HTTPFactory):
    def __init__(self, server):
        super().__init__(server)
        # Idle keep-alive connections (no request under way) close after this.
        self.timeOut = _limits()[1]

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedWebRequest
        return protocol


def install():
    # Daphne's Server.run() builds `HTTPFactory(self)` and
    # `WebSocketFactory(self, ...)` by these module-level names and offers no
    # other way to choose the request class or the WebSocket protocol.
    daphne.server.HTTPFactory = BoundedHTTPFactory
    daphne.server.WebSocketFactory = BoundedWebSocketFactory


def main():
    from daphne.cli import CommandLineInterface

    install()
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
