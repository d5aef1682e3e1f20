"""What one WebSocket connection can make the server hold, bounded below the application.

Two buffers of Daphne's grow without limit for a client that misbehaves:

- Inbound. Daphne hands every frame to the application through an asyncio
  queue with no bound (daphne/server.py, create_application) and reads the
  socket whatever the queue holds. The game's consumer handles one message
  at a time, so while it waits on one (a `join` waiting for a locked
  database, `done` waiting for a drawing's score) every frame behind it is
  kept: a client sending 64 KiB frames as fast as loopback carries them
  queued over 100 MB in a few seconds.
- Outbound. Twisted keeps what the server writes to a client that does not
  read in the connection's buffer, however much that is.

So the site's entry point (digitsite/serve.py) gives Daphne this WebSocket
protocol, which:

- stops reading a connection's socket while its frames waiting for the
  application add up to GAME_WS_INBOX_BYTES (each counted as its length plus
  FRAME_OVERHEAD_BYTES, so a flood of tiny frames counts too), and reads on
  once they are down to half. TCP's flow control then keeps the client's
  further frames in the client's own buffers: nothing is lost, the client's
  sends just wait. A connection reading more than one read's worth past the
  bound is not possible: Twisted reads at most 64 KiB at a time;
- closes a connection with 4012 when the server is about to write to it and
  more than GAME_WS_MAX_UNSENT_BYTES written earlier are still unsent: the
  client does not read. The message is dropped, and so is everything after
  it. The close frame itself waits behind the unsent bytes, so after
  autobahn's close handshake timeout (1 s) the connection is aborted and its
  buffer freed. The bound is checked before each write, not after it, so a
  single large message (a class's `round_end` to its teacher) to a client
  that reads does not trip it;
- sets the socket's kernel send buffer (SO_SNDBUF) to
  GAME_WS_SOCKET_BUFFER_BYTES, so the kernel's share of a client that does
  not read is bounded too: left to Linux, such a connection held 2.8 MB of
  the server's memory in the kernel on loopback before a write was refused.
  256 KiB still carries 2.5 MB/s to a client 100 ms away, ten times a class
  projector's needs. The receive buffer is left to the kernel: shrinking it
  on an open connection stalled loopback transfers (a window under one
  64 KiB segment waits for the zero-window probes), and a paused
  connection's window closes by itself.

What the channel layer holds for a connection (room broadcasts) is bounded by
the layer's capacity (CHANNEL_LAYER_CAPACITY); what the application keeps per
connection is bounded by the game: at most two drawings waiting to be scored
(the newest sent with the pen up and the newest of all) and one scored but
held for its write (digitsite/game/scoring.py), and the drawing protocol 2
builds, at most MAX_POINTS points and strokes (digitsite/game/drawing_deltas.py).
"""

import errno
import logging
import socket
from collections import deque

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

logger = logging.getLogger(__name__)

# What a queued frame costs beyond its payload: the message dict, the str
# object and the queue's slot, about 400 bytes measured with tracemalloc;
# rounded up so that 1 MiB holds about a thousand empty frames at most.
FRAME_OVERHEAD_BYTES = 1024
# How often a paused connection looks whether the application has caught up.
# Polled rather than signalled: the queue is Daphne's own, and a poll only
# runs while a connection is paused.
RESUME_POLL_SECONDS = 0.02


def _limits():
    from django.conf import settings

    return (settings.GAME_WS_INBOX_BYTES, settings.GAME_WS_MAX_UNSENT_BYTES,
            settings.GAME_WS_SOCKET_BUFFER_BYTES)


def unsent_bytes(transport):
    """Bytes written to a Twisted transport and not yet handed to the kernel.

    Twisted has no public measure of this; its FileDescriptor keeps the
    bytes in `dataBuffer` (from `offset` on) and `_tempDataBuffer`
    (`_tempDataLen` bytes). A TLS transport wraps the TCP one (`transport`),
    which holds the encrypted bytes, so the chain is followed down. A
    transport of another kind counts 0: the bound then does not apply.
    """
    total = 0
    for _ in range(3):
        if transport is None:
            break
        buffer = getattr(transport, "dataBuffer", None)
        if isinstance(buffer, bytes):
            total += (len(buffer) - getattr(transport, "offset", 0)
                      + getattr(transport, "_tempDataLen", 0))
        transport = getattr(transport, "transport", None)
    return total


def send_at_once(transport, data):
    """Hand `data` to the kernel now if the connection has nothing unsent;
    returns how many bytes went (the rest must go through transport.write).

    Twisted's write never sends at once: it queues the bytes, registers the
    socket for writing (an epoll_ctl), sends on the loop's next turn and
    unregisters it (another epoll_ctl), two system calls and a loop turn per
    message besides the send. asyncio's own transports try the send first
    and only wait for the socket when the kernel's buffer is full; this does
    the same for a plain TCP connection whose buffer is empty, so that the
    order of the bytes is kept. At 128 players Twisted's write path was 27%
    of the event loop's time in a profile, the send itself about half of it.
    Any error leaves the bytes to Twisted, whose next write finds it and
    closes the connection as it always did.
    """
    if (type(transport).__module__ != "twisted.internet.tcp" or getattr(transport, "TLS", True)
            or not transport.connected or transport.disconnecting
            or transport._writeDisconnected or getattr(transport, "_aborting", False)
            or unsent_bytes(transport)):
        return 0
    try:
        return transport.socket.send(data)
    except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR):
            logger.debug("a direct send failed; left to Twisted", exc_info=True)
        return 0


def set_send_buffer(transport, size):
    if size <= 0:
        return
    handle = transport.getHandle() if hasattr(transport, "getHandle") else None
    if not isinstance(handle, socket.socket):
        return  # TLS and other transports: the kernel's own sizes
    try:
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except OSError:
        logger.debug("could not set a WebSocket's send buffer", exc_info=True)


class BoundedWebSocketProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol with its inbound queue and outbound buffer bounded."""

    def connectionMade(self):
        super().connectionMade()
        self.inbox_limit, self.max_unsent, buffer_bytes = _limits()
        self.inbox_sizes = deque()  # the sizes of the frames queued, oldest first
        self.inbox_bytes = 0
        self.reading_paused = False
        self.paused_once = False
        self.not_reading = False
        set_send_buffer(self.transport, buffer_bytes)

    # -- inbound ---------------------------------------------------------------

    def _forget_taken_frames(self):
        """Drop the sizes of the frames the application has taken (FIFO)."""
        queue = getattr(self, "application_queue", None)
        if queue is None:
            return
        # The queue may also hold `websocket.connect`, ahead of every frame:
        # then none has been taken.
        taken = len(self.inbox_sizes) - queue.qsize()
        for _ in range(max(taken, 0)):
            self.inbox_bytes -= self.inbox_sizes.popleft()

    def onMessage(self, payload, isBinary):
        queued_before = self._queued()
        super().onMessage(payload, isBinary)
        if self._queued() == queued_before:
            return  # muted: not queued
        self._forget_taken_frames()
        size = len(payload) + FRAME_OVERHEAD_BYTES
        self.inbox_sizes.append(size)
        self.inbox_bytes += size
        if self.inbox_limit > 0 and self.inbox_bytes >= self.inbox_limit:
            self._pause_reading()

    def _queued(self):
        queue = getattr(self, "application_queue", None)
        return -1 if queue is None else queue.qsize()

    def _pause_reading(self):
        if self.reading_paused:
            return
        self.reading_paused = True
        if not self.paused_once:
            # Once per connection: a client that keeps the server busy pauses
            # it again and again.
            self.paused_once = True
            logger.info("WebSocket %s: %d bytes of frames wait for the application; "
                        "reading paused until it catches up", self._peer(), self.inbox_bytes)
        self.transport.pauseProducing()
        self._schedule_resume_check()

    def _schedule_resume_check(self):
        from twisted.internet import reactor

        reactor.callLater(RESUME_POLL_SECONDS, self._resume_if_caught_up)

    def _resume_if_caught_up(self):
        if not self.reading_paused or self.state == self.STATE_CLOSED:
            return
        self._forget_taken_frames()
        if self.inbox_bytes > self.inbox_limit // 2:
            self._schedule_resume_check()
            return
        self.reading_paused = False
        self.transport.resumeProducing()

    def serverClose(self, code=None):
        # Imported here: this module loads with Daphne, before Django is set up.
        from digitsite.game.protocol import CLOSE_FLOOD

        super().serverClose(code)
        if code == CLOSE_FLOOD:
            # A client cut off for sending too fast keeps sending: reading on
            # until the close handshake times out (1 s) read and dropped about
            # 30 MB a socket (bench/bench_abuse.py, frames faster than read).
            # Its close reply is not waited for: the handshake's timeout
            # ends the connection.
            self._forget_taken_frames()
            self.reading_paused = True
            self.transport.pauseProducing()

    # -- outbound --------------------------------------------------------------

    def serverSend(self, content, binary=False):
        if self.not_reading:
            return
        unsent = unsent_bytes(self.transport)
        if self.max_unsent > 0 and unsent > self.max_unsent:
            self._give_up_on_reader(unsent)
            return
        super().serverSend(content, binary)

    def sendData(self, data, sync=False, chopsize=None):
        # autobahn's frames, its handshake's reply and its close frames all
        # come here; those it queues itself (sync, chopped) keep their order
        # by going its way.
        if not (sync or chopsize or self.send_queue):
            sent = send_at_once(self.transport, data)
            if sent:
                self._count_sent(data[:sent])
                if sent == len(data):
                    return
                data = data[sent:]
        super().sendData(data, sync, chopsize)

    def _count_sent(self, data):
        """autobahn's own accounting of what sendData wrote."""
        if self.state == self.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        elif self.state in (self.STATE_CONNECTING, self.STATE_PROXY_CONNECTING):
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)
        if self.logOctets:
            self.logTxOctets(data, False)

    def _give_up_on_reader(self, unsent):
        # Imported here: this module loads with Daphne, before Django is set up.
        from digitsite.game.protocol import CLOSE_NOT_READING

        self.not_reading = True
        logger.warning("WebSocket %s: %d bytes written to it are still unsent (over %d): "
                       "the client does not read; closing with %d", self._peer(), unsent,
                       self.max_unsent, CLOSE_NOT_READING)
        # Queued behind the unsent bytes; autobahn aborts the connection when
        # the close handshake times out (closeHandshakeTimeout, 1 s).
        self.sendClose(code=CLOSE_NOT_READING,
                       reason=f"not reading: over {self.max_unsent} bytes unsent")

    def _peer(self):
        return ":".join(map(str, self.client_addr)) if self.client_addr else "?"


class BoundedWebSocketFactory(WebSocketFactory):
    protocol = BoundedWebSocketProtocol
