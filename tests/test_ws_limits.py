"""One client cannot make a real Daphne server hold without bound, nor starve other players.

Each test plays one abuse against a server started through the site's entry
point (digitsite/serve.py) and checks what the server holds and that another
player, from another address, is still answered:

- frames sent as fast as the socket takes them while the server is busy with
  the client's `join` (the database is locked): the server stops reading,
  its memory stays flat, the client's frames wait in its own buffers, and
  once the server catches up the flood is cut off (4008);
- a client that never reads while the room's broadcasts keep coming: closed
  (4012 queued, then the connection dropped), its seat shown disconnected;
- more sockets from one address than allowed: the one past the bound is told
  `too_many_connections` and closed with 4029; a closed one frees its place;
- twenty sockets of one address sending the largest drawings back to back:
  another address's player still gets every guess.

Clients come from different loopback addresses (127.0.0.x), which the server
counts as different clients. The server's limits are lowered where the
defaults would make a test push megabytes (see SERVER_ENV).
"""

import asyncio
import contextlib
import json
import sqlite3

import pytest

from digitsite.game.client import GameClosed, NoMessage, Refused
from tests.live import LiveServer
from tests.raw_websocket import RawWebSocket
from tests.support import eventually
from tests.test_ws_limits_shared import joined
from tests.worst_drawings import worst_drawings

pytestmark = pytest.mark.slow

# Small bounds, so that a test reaches them with kilobytes: unsent bytes and
# the socket buffers (the kernel doubles the size asked for). The inbox keeps
# its default (1 MiB): the flood test shows it against 120 MB of frames.
PER_ADDRESS = 24
SERVER_ENV = {
    "GAME_WS_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
    "GAME_WS_MAX_UNSENT_BYTES": "16384",
    "GAME_WS_SOCKET_BUFFER_BYTES": "8192",
    "DATABASE_LOCK_TIMEOUT": "60",
    # An address's message bytes: 64 kB a second in bursts of 200 kB, so a
    # test passes them with a few megabytes whatever the machine's speed.
    "GAME_WS_BYTES_PER_SECOND_PER_ADDRESS": "64000",
    "GAME_WS_BYTES_BURST_PER_ADDRESS": "200000",
}
WAIT = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("wslimits"), env=SERVER_ENV)
    server.start().ensure_model()
    yield server
    server.stop()


def new_room(server, **settings):
    return server.create_room(**{"rounds": 1, "seconds": 300, "target_confidence": 1.0,
                                 **settings})


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def server_log(server):
    return server.log_path.read_text(errors="replace")


@contextlib.contextmanager
def write_lock(server):
    """Hold the write lock of the server's SQLite database, as another writer would."""
    connection = sqlite3.connect(server.workdir / "db.sqlite3", timeout=120,
                                 isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def raw_client(server, code, local_address, **options):
    return await RawWebSocket.open(server.port, f"/ws/v1/rooms/{code}/", origin=server.url,
                                   local_address=local_address, **options)


async def a_player_is_answered(server, local_address, drawings=3):
    """A player from `local_address` in a room of their own gets a guess for each drawing."""
    code = new_room(server)
    player = await server.game_client(code, "Other", local_addr=(local_address, 0))
    try:
        await player.join()
        await player.start()
        start = await player.expect("round_start", timeout=WAIT)
        for seq in range(1, drawings + 1):
            await player.draw(start["round"], seven(seq), seq=seq)
            guess = await player.expect("guess", lambda m, seq=seq: m["seq"] == seq,
                                        timeout=WAIT)
            assert guess["kept"] or guess["held"]  # written now, or within a second
    finally:
        await player.close()


def seven(offset=0):
    return {"width": 280, "height": 280,
            "strokes": [[[60 + offset, 50, 0], [200 + offset, 50, 120],
                         [110 + offset, 240, 400]]]}


async def test_frames_sent_while_the_server_is_busy_wait_in_the_client_not_the_server(server):
    """2,000 frames of 60 KB (120 MB) sent without reading while the server
    waits for the database on the client's `join`."""
    code = new_room(server)
    flooder = await raw_client(server, code, "127.0.0.11")
    frame = json.dumps({"type": "ping", "pad": "x" * 60_000})
    before = rss_bytes(server.process.pid)
    peak = before
    with write_lock(server):
        await flooder.send_json({"type": "join", "protocol": 1, "name": "Flood"})
        sender = asyncio.ensure_future(_send_frames(flooder, frame, 2000))
        # Until the sender stops getting frames out: the server stopped
        # reading (or, without the bound, until all 2,000 are sent).
        stalled_polls, last = 0, -1
        while not sender.done() and stalled_polls < 40:
            await asyncio.sleep(0.1)
            peak = max(peak, rss_bytes(server.process.pid))
            stalled_polls = stalled_polls + 1 if flooder.frames_sent == last else 0
            last = flooder.frames_sent
        sent_while_busy = flooder.frames_sent
        # What the sender got out sits in the kernel's buffers and the
        # server's inbox (1 MiB), not in the server's heap: without the bound
        # all 2,000 frames went out and the server grew by 114 MiB.
        assert peak - before < 30 * 1024 * 1024, (
            f"the server grew by {(peak - before) / 2**20:.0f} MiB while "
            f"{sent_while_busy} frames were sent")
        assert not sender.done(), "every frame went out while the server was busy"
        assert sent_while_busy < 2000
        assert "reading paused until it catches up" in server_log(server)
    # The join goes through; then the frames are read on, each one over the
    # message rate dropped, and the flood is cut off.
    assert await asyncio.wait_for(flooder.close_code(), WAIT) == 4008
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await sender
    flooder.abort()
    await a_player_is_answered(server, "127.0.0.12")


async def test_a_client_cut_off_for_flooding_is_not_read_on(server):
    """Cut off with 4008, a client that keeps sending gets nothing more read:
    before, the server read on until the close handshake timed out (1 s),
    about 30 MB a socket, each frame handed to the application and dropped."""
    import socket

    code = new_room(server)
    flooder = await raw_client(server, code, "127.0.0.15")
    # A small send buffer: what the client gets out is what the server reads.
    flooder.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                       16384)
    await flooder.send_json({"type": "join", "protocol": 1, "name": "Flood"})
    frame = json.dumps({"type": "ping", "pad": "x" * 60_000})
    sender = asyncio.ensure_future(_send_frames(flooder, frame, 100_000))
    try:
        assert await asyncio.wait_for(flooder.close_code(), WAIT) == 4008
        at_close = flooder.frames_sent
        # Until the sender stops getting frames out (or the connection ends).
        stalled_polls, last = 0, -1
        while not sender.done() and stalled_polls < 20:
            await asyncio.sleep(0.1)
            stalled_polls = stalled_polls + 1 if flooder.frames_sent == last else 0
            last = flooder.frames_sent
        # The kernel's buffers (the client's 32 KiB, the server's receive
        # buffer) take a few frames more: 10 here, where reading on until the
        # handshake's timeout took 27 (SERVER_ENV's small buffers).
        assert flooder.frames_sent - at_close < 40, flooder.frames_sent - at_close
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        flooder.abort()
    await a_player_is_answered(server, "127.0.0.16", drawings=1)


def test_the_server_stops_reading_a_client_it_cuts_off_for_flooding():
    from collections import deque
    from unittest import mock

    from digitsite.websocket_bounds import BoundedWebSocketProtocol

    for code, paused in ((4008, True), (1000, False), (4029, False)):
        protocol = BoundedWebSocketProtocol()
        protocol.transport = mock.Mock()
        protocol.inbox_sizes, protocol.inbox_bytes = deque(), 0
        protocol.reading_paused = False
        protocol.sendClose = mock.Mock()
        protocol.serverClose(code)
        protocol.sendClose.assert_called_once_with(code=code)
        assert protocol.transport.pauseProducing.called is paused, code
        assert protocol.reading_paused is paused, code


async def _send_frames(client, frame, count):
    for _ in range(count):
        await client.send_text(frame)


async def host_and_raw_player(server, code, host_address, raw_address, raw_name):
    """The room's host (a protocol client) and a raw player who joined and
    was announced to the host; the raw socket's receive buffer is small."""
    host = await server.game_client(code, "Ada", local_addr=(host_address, 0))
    raw = await raw_client(server, code, raw_address, receive_buffer=4096)
    await host.join()
    await raw.send_json({"type": "join", "protocol": 1, "name": raw_name})
    await host.expect("room", lambda m: len(m["players"]) == 2, timeout=WAIT)
    return host, raw


async def test_a_client_that_does_not_read_is_disconnected(server):
    """A client that never reads, in a room whose host keeps changing what
    everyone is shown (each opt-out toggle is a `room` snapshot to both)."""
    code = new_room(server)
    host, slow = await host_and_raw_player(server, code, "127.0.0.21", "127.0.0.22", "Slow")
    try:
        closing = "the client does not read; closing with 4012"
        # About 1 KB a snapshot: the bounds (16 KiB unsent, 16 KiB of kernel
        # buffer, the client's 8 KiB) are passed within about 50 toggles.
        for toggle in range(600):
            if closing in server_log(server):
                break
            await host.opt_out(toggle % 2 == 0)
            await asyncio.sleep(0.06)  # within the message rate (20 a second)
            assert host.is_open
        else:
            raise AssertionError("600 snapshots sent to a client that does not read, "
                                 "and it was not closed")
        # Its seat is let go as for any closed connection.
        await host.expect("room", lambda m: any(
            p["name"] == "Slow" and not p["connected"] for p in m["players"]), timeout=WAIT)
        # Reading now, it finds what fitted in the buffers, then the end.
        assert await asyncio.wait_for(slow.close_code(), WAIT) in (4012, None)
    finally:
        slow.abort()
        await host.close()
    await a_player_is_answered(server, "127.0.0.23")


async def test_a_client_that_reads_late_gets_every_message_whole_and_in_order(server):
    """The server hands a message to the kernel at once when nothing is
    waiting before it, and leaves it to Twisted otherwise
    (digitsite.websocket_bounds.send_at_once). A client that stops reading
    while about 32 KB of snapshots come, more than the kernel's buffers
    hold between them (16 KiB on the server's side, the client's 4 KiB
    doubled) and less than the unsent bound (16 KiB), then reads: every
    snapshot arrives whole, in the order of the room's revisions, the last
    one the host saw last."""
    code = new_room(server)
    log_before = len(server_log(server))
    host, late = await host_and_raw_player(server, code, "127.0.0.24", "127.0.0.25", "Late")
    try:
        for toggle in range(32):
            await host.opt_out(toggle % 2 == 0)
            await asyncio.sleep(0.06)  # within the message rate (20 a second)
        for _ in range(32):  # each toggle's snapshot, to the host as to everyone
            last = await host.expect("room", timeout=WAIT)
        revisions = []
        while not revisions or revisions[-1] < last["revision"]:
            kind, text = await asyncio.wait_for(late.receive(), WAIT)
            assert kind == "text", (kind, text)
            message = json.loads(text)
            if message["type"] == "room":
                revisions.append(message["revision"])
        assert revisions == sorted(set(revisions)), revisions
        assert len(revisions) >= 32
        assert "closing with 4012" not in server_log(server)[log_before:]
    finally:
        late.abort()
        await host.close()


async def test_sockets_past_the_bound_per_address_are_closed_with_4029(server):
    code = new_room(server, max_players=8)
    address = ("127.0.0.31", 0)
    held = [await server.game_client(code, f"P{i}", local_addr=address)
            for i in range(PER_ADDRESS)]
    try:
        extra = await server.game_client(code, "Extra", local_addr=address)
        error = await extra.expect("error", timeout=WAIT)
        assert error["code"] == "too_many_connections"
        assert f"at most {PER_ADDRESS}" in error["message"]
        assert await extra.closed(timeout=WAIT) == 4029
        # Another address is not affected.
        await a_player_is_answered(server, "127.0.0.32", drawings=1)
        # A closed socket frees its place: once the server has handled the
        # close, which the client's close does not wait for.
        await held.pop().close()
        again = await eventually(lambda: joined(server, code, "Again", address[0]),
                                 "the closed socket's place to be free", WAIT)
        # The place was the closed socket's, not one a held socket's join
        # timeout (30 s, unjoined) gave back.
        assert all(client.is_open for client in held), "a held socket was closed meanwhile"
        held.append(again)
        assert again.you["name"] == "Again"
    finally:
        for client in held:
            await client.close()


async def test_a_flood_of_the_largest_drawings_leaves_another_player_answered(server):
    """Twenty sockets of one address, in three rooms, each sending the
    catalogue's largest valid drawings, the next as soon as one is answered."""
    drawings = largest_game_drawings()
    assert len(drawings) >= 5
    address = ("127.0.0.41", 0)
    flooders = []
    stop = asyncio.Event()
    try:
        for room_size in (8, 8, 4):
            code = new_room(server, max_players=8)
            room = [await server.game_client(code, f"F{len(flooders) + i}", local_addr=address)
                    for i in range(room_size)]
            for client in room:
                await client.join()
            await room[0].start()
            for client in room:
                start = await client.expect("round_start", timeout=WAIT)
            flooders += [(client, start["round"]) for client in room]
        assert len(flooders) == 20
        floods = [asyncio.ensure_future(_flood(client, round_, drawings, stop))
                  for client, round_ in flooders]
        await eventually(lambda: sum(f.done() for f in floods) == 0
                         and all(client.all_of("guess") or client.all_of("error")
                                 for client, _ in flooders),
                         "every flooding socket answered once")
        await a_player_is_answered(server, "127.0.0.42", drawings=5)
        stop.set()
        await asyncio.gather(*floods)
    finally:
        stop.set()
        for client, _ in flooders:
            await client.close()


async def test_an_address_past_its_bytes_a_second_has_its_messages_dropped(server):
    """Two sockets of one address, each within the message rate (30 at once),
    sending 60 kB messages: 3.6 MB, where the address may send 200 kB at
    once and 64 kB a second. The messages past that are dropped before they
    are decoded, the client is told, and another address is not affected."""
    code = new_room(server)
    address = ("127.0.0.51", 0)
    senders = [await server.game_client(code, f"Big{i}", local_addr=address)
               for i in range(2)]
    try:
        for client in senders:
            await client.join()
        ping = json.dumps({"type": "ping", "pad": "x" * 60_000})
        for _ in range(30):
            for client in senders:
                await client.send_raw(ping)
        # Each sender is told (once a second at most) when its messages go.
        for client in senders:
            told = await client.expect("error", lambda m: "too many bytes" in m["message"],
                                       timeout=WAIT)
            assert told["code"] == "rate_limited" and "at most 64 kB a second" in (
                told["message"])
        await a_player_is_answered(server, "127.0.0.52", drawings=2)
    finally:
        for client in senders:
            await client.close()


def largest_game_drawings():
    """The catalogue's valid drawings with whole-pixel points (as the page
    sends them), those that fit in one message (64 KiB)."""
    drawings = []
    for case in worst_drawings(5000):
        drawing = dict(case.drawing, strokes=[[[round(x), round(y)] for x, y, *_ in stroke]
                                              for stroke in case.drawing["strokes"]])
        if not case.refused and len(json.dumps(drawing)) < 60_000:
            drawings.append(drawing)
    return drawings


async def _flood(client, round_, drawings, stop):
    seq = 0
    while not stop.is_set():
        seq += 1
        await client.draw(round_, drawings[seq % len(drawings)], seq=seq)
        try:
            await client.expect("guess", lambda m, seq=seq: m["seq"] == seq, timeout=5)
        except Refused:
            pass  # a drawing refused (its ink, the address's bytes) is answered too
        except NoMessage:
            pass  # dropped over the address's bytes a second, told once a second
        except GameClosed:
            return
