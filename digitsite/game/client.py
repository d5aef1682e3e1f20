"""A client of the game's protocol (docs/protocol.md), for programs that play
the game against a server the way the page does.

The benchmarks (bench/bench_load.py, bench/bench_feedback_loop.py), the
simulated players (digitsite.game.simulation) and the tests that start a real
server all speak the protocol through `GameClient`; the site itself never
uses this module. `GameClient` runs over a real WebSocket with the
`websockets` package (requirements-dev.txt, imported only when a client
connects); `CommunicatorClient` is the same client over Channels'
WebsocketCommunicator, the ASGI application in-process, for tests.

Every message a client sends is built in one place, `message`; the methods
that send each kind of client message (`join`, `start`, `draw`, ...) only
name their fields. Waiting is one of three things: `receive` (the next
message not read yet), `expect` (the next one of a kind, passing over others)
and `closed` (the end of the connection); each has a timeout and names what
it waited for when it gives up.
"""

import asyncio
import concurrent.futures.thread
import contextlib
import json
import sys
import threading
import traceback
from urllib.parse import urlsplit

from digitsite.game import protocol

# The protocol version a client speaks, sent in `join`.
PROTOCOL = protocol.PROTOCOL_VERSION
# How long a client waits for a message unless told otherwise, in seconds.
WAIT = 30.0


class GameClosed(Exception):
    """The server closed the connection."""


class NoMessage(TimeoutError):
    """What a client waited for did not arrive in time."""


class Refused(Exception):
    """The server answered with an `error` message while another was awaited."""

    def __init__(self, text, message):
        super().__init__(text)
        self.message = message


def message(type_, **fields):
    """The message of `type_` with `fields`, as a client sends it: built and
    checked by the protocol's own declaration (digitsite/game/protocol.py)."""
    return protocol.client_message(type_, **fields)


def room_path(code):
    return f"/ws/v1/rooms/{code}/"


def page_origin(ws_url):
    """The origin of the server's own pages: the only one its WebSocket accepts
    (digitsite.origins), scheme, host and port included."""
    parts = urlsplit(ws_url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


class ProtocolClient:
    """The protocol as a client speaks it; a subclass carries the frames
    (`send_raw`, `receive`, `close`)."""

    def __init__(self, name=None):
        self.name = name
        self.messages = []  # every message received on the current connection
        self.you = None  # `you` of the last welcome
        self.close_code = None  # the server's close code, once it closed

    def __repr__(self):
        return f"<{type(self).__name__} {self.name or ''}>"

    # -- the transport ---------------------------------------------------------

    async def send_raw(self, text):
        """Send one text frame as it is (tests of malformed messages use it)."""
        raise NotImplementedError

    async def receive(self, timeout=WAIT):
        """The next message not read yet; GameClosed or NoMessage if none comes."""
        raise NotImplementedError

    async def close(self):
        raise NotImplementedError

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    # -- sending ---------------------------------------------------------------

    async def send(self, type_, **fields):
        await self.send_raw(json.dumps(message(type_, **fields)))

    async def join(self, name=None, *, token=None, wait=True, timeout=WAIT, protocol=PROTOCOL,
                   **fields):
        """Take a seat (`token`: reclaim the seat of an earlier welcome;
        `protocol`: the version to speak, the newest by default). With
        `wait`, return the welcome and keep its `you`; Refused if an error
        comes instead."""
        if token:
            fields["token"] = token
        name = name or self.name
        if name is not None:
            fields = {"name": name, **fields}
        await self.send("join", protocol=protocol, **fields)
        if not wait:
            return None
        welcome = await self.expect("welcome", timeout=timeout)
        self.you = welcome["you"]
        return welcome

    async def start(self, rounds=None):
        await self.send("start", **({} if rounds is None else {"rounds": rounds}))

    async def settings(self, **fields):
        await self.send("settings", **fields)

    async def kick(self, player):
        await self.send("kick", player=player)

    async def draw(self, round_, drawing, seq=None, *, pen_up=True):
        """Send the whole drawing so far; its `guess` echoes `seq`. A program
        sends finished drawings, so the pen is up unless `pen_up` says not
        (None leaves the field out, as pages older than it do)."""
        await self.send("draw", round=round_, **({} if seq is None else {"seq": seq}),
                        drawing=drawing, pen_up=pen_up)

    async def done(self, round_):
        await self.send("done", round=round_)

    async def opt_out(self, value):
        await self.send("opt_out", value=value)

    async def leave(self):
        await self.send("leave")

    async def ping(self):
        await self.send("ping")

    # -- waiting ---------------------------------------------------------------

    async def expect(self, type_, where=None, timeout=WAIT):
        """The next message of `type_` that `where` (if given) accepts; the
        messages before it are read too. An `error` among them raises Refused,
        unless errors are what is expected."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        passed = []
        while True:
            try:
                received = await self.receive(max(deadline - loop.time(), 0.0))
            except TimeoutError as exc:
                raise NoMessage(f"{self.name or 'client'}: no {type_} within {timeout} s "
                                f"(since then: {passed})") from exc
            except GameClosed as exc:
                raise GameClosed(f"{self.name or 'client'}: {exc} while waiting for {type_} "
                                 f"(since then: {passed})") from exc
            if received["type"] == type_ and (where is None or where(received)):
                return received
            if received["type"] == "error" and type_ != "error":
                raise Refused(f"{self.name or 'client'} got an error while waiting for "
                              f"{type_}: {received}", received)
            passed.append(received["type"])

    def all_of(self, type_):
        """Every message of `type_` received on this connection."""
        return [m for m in self.messages if m["type"] == type_]


class GameClient(ProtocolClient):
    """The protocol over a real WebSocket (`websockets`).

    From the moment it connects the client reads in the background, so the
    socket answers the server's pings however long a program leaves it:
    every message is kept in `messages`, or handed to the function given to
    `listen` instead.
    """

    def __init__(self, name=None):
        super().__init__(name)
        self.ws = None
        self.cursor = 0  # messages before it have been read
        self.closed_by = None  # the ConnectionClosed that ended the reading
        self._arrived = asyncio.Event()
        self._reader = None
        self._handler = None

    @classmethod
    async def open(cls, ws_url, code, *, name=None, **options):
        """A client connected to room `code` of the server at `ws_url`."""
        return await cls(name).connect(ws_url, code, **options)

    async def connect(self, ws_url, code, *, origin=None, **options):
        """Open a socket to room `code`, starting over if one was open before.

        `origin`: the server's own pages by default. `options` go to
        websockets' `connect` (open_timeout, max_size, compression, ...); no
        proxy is used.
        """
        from websockets.asyncio.client import connect

        ws = await connect(ws_url + room_path(code), origin=origin or page_origin(ws_url),
                           proxy=None, **options)
        self.ws = ws
        self.messages, self.cursor = [], 0
        self.close_code = self.closed_by = None
        self._handler = None
        self._reader = asyncio.ensure_future(self._read(ws))
        return self

    async def _read(self, ws):
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                received = json.loads(await ws.recv())
                if ws is not self.ws:  # a connection given up for a newer one
                    return
                if self._handler is None:
                    self.messages.append(received)
                else:
                    self._handler(received)
                self._arrived.set()
        except ConnectionClosed as exc:
            if ws is self.ws:
                self.closed_by = exc
                self.close_code = exc.rcvd.code if exc.rcvd else None
        finally:
            self._arrived.set()

    def listen(self, handler):
        """Hand every message not read yet, and each one after, to
        `handler(message)` as it arrives, keeping none."""
        unread, self.messages, self.cursor = self.messages[self.cursor:], [], 0
        self._handler = handler
        for received in unread:
            handler(received)

    @property
    def is_open(self):
        return self._reader is not None and not self._reader.done()

    @property
    def dropped(self):
        """The error, when the connection ended otherwise than with a normal close."""
        from websockets.exceptions import ConnectionClosedError

        return self.closed_by if isinstance(self.closed_by, ConnectionClosedError) else None

    async def send_raw(self, text):
        await self.ws.send(text)

    async def draw_serialised(self, round_, seq, drawing_json):
        """`draw` with the drawing already JSON text (a benchmark serialises
        each drawing once, so that the client is not what it measures)."""
        await self.send_raw(f'{{"type":"draw","round":{round_},"seq":{seq},'
                            f'"drawing":{drawing_json},"pen_up":true}}')

    async def receive(self, timeout=WAIT):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.cursor >= len(self.messages):
            if not self.is_open:
                raise GameClosed(f"closed with {self.close_code}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NoMessage(f"{self.name or 'client'}: no message within {timeout} s")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass
        self.cursor += 1
        return self.messages[self.cursor - 1]

    async def closed(self, timeout=WAIT):
        """Wait until the server closes the connection (None: however long);
        its close code."""
        done, _ = await asyncio.wait({self._reader}, timeout=timeout)
        if not done:
            raise NoMessage(f"{self.name or 'client'}: the connection stayed open "
                            f"for {timeout} s")
        self._reader.result()  # what broke the reading, if anything did
        return self.close_code

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=5)


def await_chain(task):
    """Where a task waits: "function (file:line)" for each coroutine on its
    chain of awaits, outermost first."""
    where, awaited = [], task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break  # a future: what it stands for is the last coroutine's line
        where.append(f"{frame.f_code.co_name} ({_short(frame.f_code.co_filename)}:"
                     f"{frame.f_lineno})")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return where


def busy_threads(prefix, depth=6):
    """Each thread whose name starts with `prefix` and that is running a job,
    by its innermost `depth` frames: "thread: function (file:line) < caller ..."."""
    frames = sys._current_frames()
    busy = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident)
        if not thread.name.startswith(prefix) or frame is None:
            continue
        if frame.f_code.co_name == "_worker" and frame.f_code.co_filename == POOL_WORKER_FILE:
            continue  # waiting for its next job (a blocked job's frames are its own)
        # `depth` frames only, without reading source files: the thread runs on.
        stack = traceback.StackSummary.extract(traceback.walk_stack(frame), limit=depth,
                                               lookup_lines=False)
        busy.append(f"{thread.name}: " + " < ".join(
            f"{entry.name} ({_short(entry.filename)}:{entry.lineno})" for entry in stack))
    return busy


# Where a pool's idle thread waits for its next job: in `_worker`, on a queue
# of C code that has no frame of its own.
POOL_WORKER_FILE = concurrent.futures.thread.__file__


def _short(path):
    return "/".join(path.split("/")[-2:])


class CommunicatorClient(ProtocolClient):
    """The protocol over Channels' WebsocketCommunicator (the ASGI application
    in-process, for tests); it reads only when asked."""

    def __init__(self, communicator, name=None):
        super().__init__(name)
        self.communicator = communicator
        # Where the application waited when a receive timed out, and the jobs
        # of the process's game database pool (any connection's) then.
        self.waited_in = self.busy_db_threads = None

    async def send_raw(self, text):
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout=WAIT):
        output = await self._receive_output(timeout)
        if output["type"] == "websocket.close":
            self.close_code = output.get("code")
            raise GameClosed(f"closed with {self.close_code}")
        received = json.loads(output["text"])
        self.messages.append(received)
        return received

    async def _receive_output(self, timeout):
        """asgiref's receive_output, which on a timeout cancels the
        application, but with where the application was waiting recorded
        first (`waited_in`, `busy_db_threads`): after the cancel, nothing
        tells whether it was idle or stuck in a handler, and on what."""
        communicator = self.communicator
        application = communicator.future
        if application.done():
            application.result()  # its error, if it ended with one
        get = asyncio.ensure_future(communicator.output_queue.get())
        try:
            await asyncio.wait({get, application}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if get.done():
                return get.result()  # a message, even one that came with the end
        finally:
            if not get.done():
                # Not left to take a later message, on a timeout or when this
                # receive is cancelled (a message already put stays queued).
                get.cancel()
        if application.done():
            if not communicator.output_queue.empty():
                return communicator.output_queue.get_nowait()  # sent as it ended
            application.result()  # its error, if it ended with one
            raise GameClosed("the application returned without closing the connection")
        # Imported here: the client also runs where Django does not (bench/).
        from digitsite.game.database import POOL_NAME

        self.waited_in = await_chain(application)
        self.busy_db_threads = busy_threads(POOL_NAME)
        application.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await application
        raise TimeoutError("no message" if timeout is None else f"no message within {timeout:g} s")

    async def close(self):
        # asgiref's own attribute (asgiref is pinned, requirements.txt): its
        # public `future` starts the application when it has not started.
        if self.communicator._future is None:
            return  # never connected: reading `future` would start the application
        future = self.communicator.future
        if future.done():
            # The application ended already (it closed the socket, or a
            # receive timed out and asgiref cancelled it): nothing to close,
            # and its error, if any, was the receive's to tell.
            if not future.cancelled():
                future.exception()
            return
        await self.communicator.disconnect()
