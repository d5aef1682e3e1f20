"""The WebSocket phases of bench/bench_abuse.py: one ordinary player's guesses
alone, beside a flood of the worst valid drawings, and beside a client that
sends frames faster than it reads.

A real Daphne server (digitsite.serve, SQLite, the shipped model or a seeded
untrained one of the same cost) with the game's default limits. The ordinary
player (127.0.0.2) is alone in a room and draws as the page does: the
drawing so far, a few points longer each time, every 100 ms once the
previous guess has arrived; each guess is timed from its `draw`. The abusive
clients run in a process of their own, so that their sending does not slow
the ordinary player's event loop (the server's two cores are shared anyway):

- flood: 20 sockets of one address (127.0.0.3) in three rooms, each sending
  the largest valid game drawings of tests/worst_drawings.py (up to 5,000
  points, under the ink limit, one 64 KiB message) as fast as answers come
  (or, as the page does, 5 s after one that got none);
- unread: sockets of another address (127.0.0.4), each joining a room of its
  own, starting its round and then sending those drawings as fast as the
  socket takes them without ever reading; when the server closes one (the
  message rate: 4008; unsent answers: 4012) or it stalls for 10 s, the
  next takes its place.

Reported: the ordinary player's guess p50/p95 per phase and the p95 ratio to
alone (target <= 2x), the flood's answered and refused drawings, the unread
sockets' frames and endings, and the server's RSS.
"""

import asyncio
import contextlib
import json
import multiprocessing
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BASE_DIR, percentile

ORDINARY_ADDRESS = "127.0.0.2"
FLOOD_ADDRESS = "127.0.0.3"
UNREAD_ADDRESS = "127.0.0.4"
DRAW_INTERVAL = 0.1  # the page sends the drawing so far every 100 ms
FLOOD_ROOMS = (8, 8, 4)  # 20 sockets; 8 players a room at most
UNREAD_STALL_SECONDS = 10.0
WAIT = 60.0
# As the page: a drawing unanswered this long no longer holds the next back
# (a message dropped over a limit is answered once a second at most).
ANSWER_TIMEOUT = 5.0


def create_rooms(server, count, **settings):
    """`count` rooms in the server's database, in one Python start; their codes."""
    script = (
        "import django, sys; django.setup()\n"
        "from digitsite.game.rooms import create_room\n"
        f"print(' '.join(create_room('Bench', **{settings!r}).code for _ in range({count})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, env=server.env,
                          check=True, timeout=300, capture_output=True, text=True)
    return done.stdout.split()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssWatch:
    """The server's RSS, sampled every 0.2 s while a phase runs."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._task = None

    async def _watch(self):
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(0.2)

    def __enter__(self):
        self._task = asyncio.ensure_future(self._watch())
        return self

    def __exit__(self, *exc_info):
        self._task.cancel()


def page_drawing(step):
    """The drawing so far `step` sends into a seven (three points more each
    time), started over after 90 points as a player clearing the pad would."""
    points = 3 + 3 * (step % 30)
    path = []
    for i in range(points):
        t = i / 89
        if t < 0.4:  # the top bar
            x, y = 60 + 350 * t, 60 + 10 * t
        else:  # the stem
            x, y = 200 - 150 * (t - 0.4), 64 + 350 * (t - 0.4)
        path.append([round(x, 1), round(y, 1), i * 16])
    return {"width": 280, "height": 280, "strokes": [path]}


async def ordinary_player(server, code, seconds):
    """Guess latencies (s) of a player drawing as the page does, and its errors."""
    from digitsite.game.client import Refused

    player = await server.game_client(code, "Ordinary", local_addr=(ORDINARY_ADDRESS, 0))
    latencies, errors = [], []
    try:
        await player.join()
        await player.start()
        start = await player.expect("round_start", timeout=WAIT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        seq = 0
        while loop.time() < deadline:
            seq += 1
            sent = loop.time()
            await player.draw(start["round"], page_drawing(seq), seq=seq, pen_up=False)
            try:
                await player.expect("guess", lambda m, seq=seq: m.get("seq") == seq,
                                    timeout=WAIT)
                latencies.append(loop.time() - sent)
            except Refused as exc:
                errors.append(exc.message.get("code"))
            await asyncio.sleep(max(0.0, sent + DRAW_INTERVAL - loop.time()))
    finally:
        await player.close()
    return latencies, errors


def latency_summary(latencies, errors, seconds):
    return {
        "guesses": len(latencies),
        "errors": errors,
        "guesses_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
    }


# -- the abusive clients, in a process of their own --------------------------------------


def largest_game_drawings():
    """The catalogue's valid drawings with whole-pixel points (as the page sends
    them) that fit in one game message (64 KiB), as JSON text."""
    from tests.worst_drawings import worst_drawings

    drawings = []
    for case in worst_drawings(5000):
        drawing = dict(case.drawing, strokes=[[[round(x), round(y)] for x, y, *_ in stroke]
                                              for stroke in case.drawing["strokes"]])
        text = json.dumps(drawing, separators=(",", ":"))
        if not case.refused and len(text) < 60_000:
            drawings.append(text)
    return drawings


async def _flood_socket(client, round_, drawings, stop, counts):
    from digitsite.game.client import GameClosed, NoMessage, Refused

    seq = 0
    while not stop.is_set():
        seq += 1
        counts["sent"] += 1
        try:
            await client.draw_serialised(round_, seq, drawings[seq % len(drawings)])
            await client.expect("guess", lambda m, seq=seq: m.get("seq") == seq,
                                timeout=ANSWER_TIMEOUT)
            counts["answered"] += 1
        except Refused as exc:
            code = exc.message.get("code") or "error"
            counts["refused"][code] = counts["refused"].get(code, 0) + 1
        except NoMessage:
            counts["unanswered"] += 1  # dropped without a word: the next one goes
        except (GameClosed, ConnectionError):
            counts["closed"] += 1
            return


async def _flood(ws_url, origin, codes, ready, stop, results):
    from digitsite.game.client import GameClient

    drawings = largest_game_drawings()
    counts = {"sent": 0, "answered": 0, "refused": {}, "unanswered": 0, "closed": 0}
    sockets = []
    for code, size in zip(codes, FLOOD_ROOMS, strict=True):
        room = [await GameClient.open(ws_url, code, name=f"F{len(sockets) + i}", origin=origin,
                                      local_addr=(FLOOD_ADDRESS, 0), max_size=2**22)
                for i in range(size)]
        for client in room:
            await client.join()
        await room[0].start()
        for client in room:
            start = await client.expect("round_start", timeout=WAIT)
            sockets.append((client, start["round"]))
    ready.set()
    stopping = asyncio.Event()
    floods = [asyncio.ensure_future(_flood_socket(client, round_, drawings, stopping, counts))
              for client, round_ in sockets]
    while not stop.is_set():
        await asyncio.sleep(0.1)
    stopping.set()
    await asyncio.wait(floods, timeout=WAIT)
    counts["drawing_bytes_max"] = max(len(d) for d in drawings)
    for client, _ in sockets:
        await client.close()
    results.put(counts)


async def _unread_socket(port, code, frames, stop, counts):
    """One socket that joins, starts its round and sends frames without reading."""
    from tests.raw_websocket import RawWebSocket

    sock = await RawWebSocket.open(port, f"/ws/v1/rooms/{code}/",
                                   origin=f"http://127.0.0.1:{port}",
                                   local_address=UNREAD_ADDRESS, receive_buffer=4096)
    counts["sockets"] += 1
    try:
        await sock.send_json({"type": "join", "protocol": 1, "name": "Unread"})
        await sock.send_json({"type": "start"})
        index = 0
        while not stop.is_set():
            index += 1
            try:
                await asyncio.wait_for(sock.send_text(frames[index % len(frames)]),
                                       UNREAD_STALL_SECONDS)
            except TimeoutError:
                counts["given_up_stalled"] += 1
                return
            except ConnectionError:
                counts["closed_by_server"] += 1
                return
            counts["frames"] += 1
            counts["bytes"] += len(frames[index % len(frames)])
    finally:
        sock.abort()


async def _unread(port, codes, ready, stop, results):
    drawings = largest_game_drawings()
    frames = [f'{{"type":"draw","round":1,"seq":{seq},"drawing":{drawing},"pen_up":true}}'
              for seq, drawing in enumerate(drawings, start=1)]
    counts = {"sockets": 0, "frames": 0, "bytes": 0, "closed_by_server": 0,
              "given_up_stalled": 0}
    stopping = asyncio.Event()
    ready.set()

    async def watch_stop():
        while not stop.is_set():
            await asyncio.sleep(0.1)
        stopping.set()

    watcher = asyncio.ensure_future(watch_stop())
    # Two at a time, each replaced when it ends; a room each (reused in turn).
    rooms = iter(codes * 100)

    async def lane():
        while not stopping.is_set():
            with contextlib.suppress(ConnectionError, OSError):
                await _unread_socket(port, next(rooms), frames, stopping, counts)

    await asyncio.gather(lane(), lane())
    await watcher
    results.put(counts)


def _abuser(kind, args, ready, stop, results):
    sys.path.insert(0, str(BASE_DIR))
    if kind == "flood":
        asyncio.run(_flood(*args, ready, stop, results))
    else:
        asyncio.run(_unread(*args, ready, stop, results))


@contextlib.contextmanager
def abusive_process(kind, *args):
    """The abusive client `kind` running in a child process until the block ends;
    yields a dict filled with its counts afterwards."""
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=_abuser, args=(kind, args, ready, stop, results))
    process.start()
    counts = {}
    try:
        if not ready.wait(timeout=120):
            raise RuntimeError(f"the {kind} client did not get ready")
        yield counts
    finally:
        stop.set()
        try:
            counts.update(results.get(timeout=120))
        except queue.Empty:
            counts["error"] = "no counts came back"
        process.join(timeout=30)
        if process.is_alive():
            process.kill()


# -- the phases ---------------------------------------------------------------------------


async def _phases(server, seconds):
    pid = server.process.pid
    room = {"rounds": 1, "seconds": 3 * seconds + 120, "target_confidence": 1.0}
    ordinary_rooms = create_rooms(server, 3, **room)
    flood_rooms = create_rooms(server, len(FLOOD_ROOMS), max_players=8, **room)
    unread_rooms = create_rooms(server, 6, **room)
    # Warm up: the model loaded and frozen, the allocator grown for ordinary work.
    await ordinary_player(server, create_rooms(server, 1, **room)[0], 3)
    baseline = rss_bytes(pid)
    results = {}

    with RssWatch(pid) as watch:
        results["alone"] = latency_summary(*await ordinary_player(server, ordinary_rooms[0],
                                                                   seconds), seconds)
    results["alone"]["server_rss_peak_mb"] = round(watch.peak / 2**20, 1)

    with abusive_process("flood", server.ws_url, server.url, flood_rooms) as counts:
        await asyncio.sleep(1.0)  # the flood at its steady state
        with RssWatch(pid) as watch:
            flooded = await ordinary_player(server, ordinary_rooms[1], seconds)
    results["flooded"] = latency_summary(*flooded, seconds)
    results["flooded"]["server_rss_peak_mb"] = round(watch.peak / 2**20, 1)
    results["flood"] = counts

    with abusive_process("unread", server.port, unread_rooms) as counts:
        await asyncio.sleep(1.0)
        with RssWatch(pid) as watch:
            unread = await ordinary_player(server, ordinary_rooms[2], seconds)
    results["unread_frames"] = latency_summary(*unread, seconds)
    results["unread_frames"]["server_rss_peak_mb"] = round(watch.peak / 2**20, 1)
    results["unread"] = counts

    alone_p95 = results["alone"]["p95_ms"]
    for phase in ("flooded", "unread_frames"):
        p95 = results[phase]["p95_ms"]
        results[phase]["p95_ratio_to_alone"] = round(p95 / alone_p95, 2) if (
            p95 and alone_p95) else None
    results["server_rss_mb"] = {
        "after_warm_up": round(baseline / 2**20, 1),
        "peak": round(max(results[p]["server_rss_peak_mb"]
                          for p in ("alone", "flooded", "unread_frames")), 1),
        "end": round(rss_bytes(pid) / 2**20, 1),
    }
    results["server_rss_mb"]["growth_peak_over_warm_up"] = round(
        results["server_rss_mb"]["peak"] - results["server_rss_mb"]["after_warm_up"], 1)
    return results


def run_websocket_phases(seconds, env=None):
    """The three phases on a server of their own; `env`: settings for it."""
    from tests.live import LiveServer

    server = LiveServer(Path(tempfile.mkdtemp(prefix="bench-abuse-ws-")), env=env)
    server.start().ensure_model()
    started = time.monotonic()
    try:
        results = asyncio.run(_phases(server, seconds))
    finally:
        server.stop()
    results.update({
        "seconds_per_phase": seconds,
        "draw_interval_ms": DRAW_INTERVAL * 1000,
        "flood_sockets": sum(FLOOD_ROOMS),
        "wall_seconds": round(time.monotonic() - started, 1),
    })
    return results
