"""Load benchmark: many simulated players against one server process and against two.

Every mode starts fresh Daphne processes on loopback, creates the rooms and
lets the players play the game the way the page does for a fixed time: each
player draws its digit progressively for --draw-seconds, the pen adding to it
10 times a second; like the page, a player sends the whole drawing so far at
most 10 times a second and only when its previous drawing has its guess (or
waited 5 s), then waits briefly for the finished drawing's guess and says
`done`; when a game is over its host starts the next one. Modes (all under
the same load):

    one            1 process, SQLite and the in-memory layer (the embedded setup)
    one-unbatched  the same with RECOGNIZER_MAX_BATCH=1: no batched inference
    two            2 processes on one fresh PostgreSQL database and one Redis
                   database; player i connects to process i mod 2 (a round
                   robin of client connections, no proxy), so every room has
                   players on both
    one-services   1 process on PostgreSQL and Redis: separates the effect of
                   the second process from the backends'

For each mode: live guesses per second (guesses received during the timed
window), guess latency p50/p95/p99 (a `draw` sent to its `guess`), errors
(error messages, failed or dropped connections, dead servers: must be 0;
`draw`/`done` refused because they reached the server after the round
closed are counted apart as late refusals, as the page ignores them), and drawings
stored against drawings submitted (every player and round that got a guess
saying its drawing was kept must have exactly one stored drawing, and nothing
else is stored: must be equal; how many stored drawings are not the last one
the player was told was kept is reported too), plus the servers' and the
client's CPU time. Then the ratios two/one and batched/unbatched of
guesses per second. Everything is bounded in time; results go to
bench/results/load.json and the exit status is 1 when a mode has errors or
lost drawings.

PostgreSQL and Redis come from $BENCH_POSTGRES_URL / $BENCH_REDIS_URL
(default: 127.0.0.1, as for the tests); a fresh database and an unused Redis
database number are used and removed afterwards.

    python bench/bench_load.py                     # 200 players, 25 rooms, 60 s per mode
    python bench/bench_load.py --players 16 --rooms 4 --seconds 10
"""

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine_summary, percentile, write_results  # noqa: E402

MODES = {
    "one": {"processes": 1, "services": False, "env": {}},
    "one-unbatched": {"processes": 1, "services": False, "env": {"RECOGNIZER_MAX_BATCH": "1"}},
    "two": {"processes": 2, "services": True, "env": {}},
    "one-services": {"processes": 1, "services": True, "env": {}},
}
DEFAULT_MODES = ("one", "one-unbatched", "one-services", "two")
UPDATES_PER_SECOND = 10
# As the page: a drawing unanswered this long no longer holds the next one back.
ANSWER_TIMEOUT = 5.0
# How long a player waits for the guess of the finished drawing before `done`.
DONE_WAIT = 2.0
# What a server answers to a `draw` or `done` that arrives after the round
# closed: the page expects these now and then and ignores them, so they are
# counted apart from errors.
LATE_CODES = ("not_playing", "wrong_round", "already_finished")
CANVAS = 280.0
VARIANTS = 16


# -- what the players draw --------------------------------------------------


def digit_strokes(variant, points):
    """A digit-like drawing (a loop and a tail) of `points` points with times."""
    rng = random.Random(variant)
    cx, cy = rng.uniform(110, 170), rng.uniform(80, 120)
    radius = rng.uniform(35, 55)
    loop_points = points * 2 // 3
    loop = []
    for k in range(loop_points):
        angle = 2 * math.pi * k / loop_points + variant
        loop.append([round(cx + radius * math.cos(angle), 1),
                     round(cy + radius * math.sin(angle), 1), float(k * 25)])
    tail = []
    x0 = cx + radius * rng.uniform(0.6, 1.0)
    for k in range(points - loop_points):
        tail.append([round(x0 - k * 0.8, 1), round(cy + k * 4.0, 1),
                     float((loop_points + k) * 25)])
    return [loop, tail]


def progressive_drawings(variant, steps, points):
    """The drawing as the page sends it after each of `steps` updates: growing."""
    full = digit_strokes(variant, points)
    total = sum(len(s) for s in full)
    drawings = []
    for step in range(1, steps + 1):
        keep = max(2, total * step // steps)
        strokes = []
        for stroke in full:
            if keep <= 0:
                break
            strokes.append(stroke[:keep])
            keep -= len(stroke)
        drawing = {"width": CANVAS, "height": CANVAS, "strokes": strokes}
        # Serialised once: the client must not be the bottleneck it measures.
        drawings.append((drawing, json.dumps(drawing, separators=(",", ":"))))
    return drawings


# -- one simulated player ---------------------------------------------------


class Player:
    def __init__(self, index, room, server, drawings, clock):
        self.index = index
        self.room = room
        self.server = server
        self.drawings = drawings  # [(drawing, json text)] per update step
        self.clock = clock  # shared: start/stop times and the stop event
        self.client = None
        self.id = None
        self.host = False
        self.sent = {}  # seq -> (send time, step)
        self.latencies = []  # seconds, for draws sent in the timed window
        self.guesses_in_window = 0
        self.draws_sent = 0
        self.last_scored = {}  # (game, round) -> the drawing of the last kept guess
        self.errors = []
        self.late_refusals = 0
        self.late_guesses = 0
        self.ended = set()  # (game, round) whose round_end arrived
        self.rounds_ended = 0
        self.games_started = 0
        self.games_over = set()
        self.game = None
        self.round = None
        self.drawing_task = None
        self.round_settled = asyncio.Event()  # no drawing of ours awaits storage
        self.round_settled.set()
        self.seq = 0
        self.recent = collections.deque(maxlen=8)  # for reports of a stuck round
        # What the page keeps to have one drawing at a time waiting for its guess.
        self.round_number = None
        self.latest = None  # step of the newest drawing on the pad
        self.unsent = False
        self.awaiting = None  # seq of the drawing waiting for its guess
        self.awaiting_since = 0.0
        self.last_send = -math.inf
        self.send_timer = None

    async def connect(self):
        self.client = await self.server.game_client(
            self.room, f"player {self.index}", compression=None, open_timeout=60,
            max_size=2**22,
        )
        welcome = await self.client.join(timeout=60)
        self.id = welcome["you"]["id"]
        self.host = welcome["you"]["host"]

    async def play(self):
        """Read messages until the socket closes; react like the page does."""
        try:
            self.client.listen(self.on_message)
            await self.client.closed(timeout=None)
            if self.client.dropped and not self.clock["closing"]:
                self.errors.append(f"connection dropped: {self.client.dropped}")
        finally:
            if self.drawing_task is not None:
                self.drawing_task.cancel()

    def on_message(self, message):
        kind = message["type"]
        now = time.perf_counter()
        self.recent.append((round(now - self.clock["start"], 2), kind, message.get("round"),
                            message.get("code") or message.get("reason")))
        if kind == "guess":
            self.on_guess(message, now)
        elif kind == "round_start":
            self.game, self.round = message["game"], message["round"]
            if self.drawing_task is not None:
                self.drawing_task.cancel()
            if not self.clock["stop"].is_set():
                self.round_settled.clear()
                self.drawing_task = asyncio.ensure_future(self.draw(message["round"]))
        elif kind == "player_finished" and message["player"] == self.id:
            self.round_settled.set()
        elif kind == "round_end":
            self.ended.add((message["game"], message["round"]))
            self.rounds_ended += 1
            if self.drawing_task is not None:
                self.drawing_task.cancel()
            self.round_settled.set()
        elif kind == "game_over":
            # A connection that missed a broadcast is caught up with the same
            # messages again: one start per game.
            if (self.host and not self.clock["stop"].is_set()
                    and message["game"] not in self.games_over):
                self.games_over.add(message["game"])
                asyncio.ensure_future(self.start_game(delay=0.5))
        elif kind == "error":
            if message.get("for") == "draw":
                self.answered(None)
            if message["code"] in LATE_CODES and message.get("for") in ("draw", "done"):
                self.late_refusals += 1
            else:
                self.errors.append(f"{message['code']}: {message['message']}")

    def on_guess(self, message, now):
        sent = self.sent.pop(message["seq"], None)
        if sent is None:
            return
        sent_at, step = sent
        if self.clock["start"] <= sent_at <= self.clock["stop_at"]:
            self.latencies.append(now - sent_at)
        if now <= self.clock["stop_at"]:
            self.guesses_in_window += 1
        if message["kept"]:
            self.last_scored[(self.game, message["round"])] = self.drawings[step][0]
        else:
            # Written after the player's round closed: not part of it.
            self.late_guesses += 1
        self.answered(message["seq"])

    async def start_game(self, delay=0.0):
        await asyncio.sleep(delay)
        if self.clock["stop"].is_set():
            return
        self.games_started += 1
        await self.client.start()

    async def draw(self, round_number):
        self.round_number = round_number
        self.awaiting = None
        self.unsent = False
        try:
            # A person looks at the target before drawing.
            await asyncio.sleep(self.clock["rng"].uniform(0.5, 1.5) * self.clock["think"])
            for step in range(len(self.drawings)):
                if self.clock["stop"].is_set():
                    break
                self.latest = step
                self.unsent = True
                self.want_send()
                await asyncio.sleep(1 / UPDATES_PER_SECOND)
            if self.latest is None:
                self.round_settled.set()
                return
            # The player watches the finished drawing's guess come back, then
            # clicks done; the page sends the drawing at once if it is still held.
            waited = time.perf_counter() + DONE_WAIT
            while (self.unsent or self.awaiting is not None) and time.perf_counter() < waited:
                await asyncio.sleep(0.02)
            if self.unsent:
                await self.send_draw()
            await self.client.done(round_number)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.clock["closing"]:
                self.errors.append(f"send failed: {exc!r}")
            self.round_settled.set()
        finally:
            if self.round_number == round_number:  # not yet the next round's
                self.round_number = None
                self.latest = None
                if self.send_timer is not None:
                    self.send_timer.cancel()
                    self.send_timer = None

    def want_send(self):
        """The pad changed or a guess came back: send the newest drawing if the
        page would (10 a second at most, one waiting for its guess at most)."""
        now = time.perf_counter()
        if (not self.unsent or self.round_number is None or self.send_timer is not None
                or (self.awaiting is not None and now - self.awaiting_since < ANSWER_TIMEOUT)):
            return
        wait = self.last_send + 1 / UPDATES_PER_SECOND - now
        if wait > 0:
            self.send_timer = asyncio.get_running_loop().call_later(wait, self.send_later)
        else:
            self.send_later()

    def send_later(self):
        self.send_timer = None
        if self.unsent and self.round_number is not None:
            asyncio.ensure_future(self.send_draw())

    async def send_draw(self):
        self.seq += 1
        step = self.latest
        self.sent[self.seq] = (time.perf_counter(), step)
        self.unsent = False
        self.awaiting = self.seq
        self.awaiting_since = self.last_send = time.perf_counter()
        self.draws_sent += 1
        try:
            await self.client.draw_serialised(self.round_number, self.seq,
                                              self.drawings[step][1])
        except Exception as exc:
            if not self.clock["closing"]:
                self.errors.append(f"send failed: {exc!r}")

    def answered(self, seq):
        if self.awaiting is None or (seq is not None and seq < self.awaiting):
            return
        self.awaiting = None
        self.want_send()

    async def finish(self, timeout):
        """After the timed window: let the round in hand be stored, then leave."""
        try:
            await asyncio.wait_for(self.round_settled.wait(), timeout)
            # A guess may still be on its way (kept after the round ended).
            waited = time.perf_counter() + 10
            while self.awaiting is not None and time.perf_counter() < waited:
                await asyncio.sleep(0.05)
        except TimeoutError:
            self.errors.append(f"the round in hand did not end in time (room {self.room}; "
                               f"last messages: {list(self.recent)})")
        self.clock["closing"] = True
        await self.client.close()


async def drive(players, seconds, finish_timeout):
    clock = players[0].clock
    # Connect in small waves: a burst of 200 handshakes at once would only
    # measure the listen backlog.
    gate = asyncio.Semaphore(16)

    async def connect(player):
        async with gate:
            await player.connect()

    await asyncio.gather(*(connect(p) for p in players))
    readers = [asyncio.ensure_future(p.play()) for p in players]
    clock["start"] = time.perf_counter()
    clock["stop_at"] = clock["start"] + seconds
    for player in players:
        if player.host:
            await player.start_game()
    await asyncio.sleep(seconds)
    clock["stop"].set()
    await asyncio.gather(*(p.finish(finish_timeout) for p in players))
    await asyncio.wait(readers, timeout=10)
    return time.perf_counter() - clock["start"]


# -- servers ------------------------------------------------------------------


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SETUP_CODE = """
import json
from django.conf import settings
from digitsite.game.rooms import create_room
from recognizer.versions import active_version
from tests.support import register_random_model
version = active_version()
origin = "active (shipped or trained)"
if version is None:
    version = register_random_model(settings.RECOGNIZER_MODEL_DIR, seed=0)
    origin = "untrained (no shipped model)"
codes = [create_room(f"load {{i}}", rounds={rounds}, seconds={seconds},
                     results_seconds={results_seconds},
                     target_confidence=1.0, max_players={room_size}).code
         for i in range({rooms})]
print(json.dumps({{"model": version.version, "origin": origin, "rooms": codes}}))
"""


def settled_stored(database_url, codes, quiet=3.0, limit=60.0):
    """The stored drawings once writes still queued in the servers have landed:
    an overloaded server writes the last drawings of a round seconds late."""
    deadline = time.monotonic() + limit
    stored = fetch_stored(database_url, codes)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = fetch_stored(database_url, codes)
        if len(again) == len(stored):
            return again
        stored = again
    return stored


def fetch_stored(database_url, codes):
    """(player, game, round) -> strokes of the drawings stored for these rooms."""
    query = ("SELECT player_id, game_id, round_number, strokes FROM recognizer_drawing "
             "WHERE room_code IN ({})")
    if database_url.startswith("sqlite:///"):
        connection = sqlite3.connect(database_url[len("sqlite:///"):])
        try:
            rows = connection.execute(query.format(",".join("?" * len(codes))), codes).fetchall()
        finally:
            connection.close()
        return {(p, g, r): json.loads(s) for p, g, r, s in rows}
    import psycopg

    conninfo = database_url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(conninfo) as connection:
        rows = connection.execute(query.format(",".join(["%s"] * len(codes))), codes).fetchall()
    return {(p, g, r): s for p, g, r, s in rows}


def run_mode(name, args, workdir):
    from tests.live import LiveServer
    from tests.services import claimed_redis_database, fresh_postgres_database

    mode = MODES[name]
    env = {
        "LOG_LEVEL": "WARNING",
        "RECOGNIZER_TORCH_THREADS": str(args.torch_threads),
        # Persistent connections, as docs/deployment.md recommends: without them
        # every database call of the game opens a new PostgreSQL connection.
        "DATABASE_CONN_MAX_AGE": str(args.conn_max_age),
        # All processes of a site share the model folder and the key.
        "RECOGNIZER_MODEL_DIR": str(workdir / name / "models"),
        "SECRET_KEY": secrets.token_urlsafe(50),
        **mode["env"],
    }
    with contextlib.ExitStack() as stack:
        if mode["services"]:
            env["DATABASE_URL"] = stack.enter_context(fresh_postgres_database(
                args.postgres_url, prefix="digitsite_bench"))
            env["REDIS_URL"] = stack.enter_context(claimed_redis_database(args.redis_url))
        servers = []
        for index in range(mode["processes"]):
            # Several processes share PostgreSQL (a services mode); a single one
            # has SQLite in its own folder.
            servers.append(LiveServer(workdir / name / f"process-{index}", env=env,
                                      migrate=(index == 0)))
        stack.callback(lambda: [s.stop() for s in servers])
        servers[0].start()
        setup = servers[0].manage("shell", "-c", SETUP_CODE.format(
            rounds=args.rounds, seconds=args.round_seconds, results_seconds=args.results_seconds,
            room_size=args.room_size,
            rooms=args.rooms))
        info = json.loads(setup.stdout.strip().splitlines()[-1])
        for server in servers[1:]:
            server.start()

        clock = {"start": 0.0, "stop_at": float("inf"), "stop": asyncio.Event(),
                 "closing": False, "think": args.think_seconds, "rng": random.Random(1)}
        steps = int(args.draw_seconds * UPDATES_PER_SECOND)
        variants = [progressive_drawings(v, steps, args.points) for v in range(VARIANTS)]
        players = [
            Player(i, info["rooms"][i % args.rooms], servers[i % len(servers)],
                   variants[i % VARIANTS], clock)
            for i in range(args.players)
        ]

        async def bounded():
            clock["stop"] = asyncio.Event()  # bound to this run's loop
            return await asyncio.wait_for(
                drive(players, args.seconds, args.finish_timeout),
                args.seconds + args.finish_timeout + 120)

        cpu_before = [cpu_seconds(s.process.pid) for s in servers]
        client_before = time.process_time()
        wall = asyncio.run(bounded())
        client_cpu = time.process_time() - client_before
        cpu_after = [cpu_seconds(s.process.pid) for s in servers]
        crashed = [s.port for s in servers if s.process.poll() is not None]
        stored = settled_stored(servers[0].env["DATABASE_URL"], info["rooms"])

    latencies = [s * 1000 for p in players for s in p.latencies]
    guesses = sum(p.guesses_in_window for p in players)
    submitted = {(p.id, game, rnd): drawing for p in players
                 for (game, rnd), drawing in p.last_scored.items()}
    mismatched = sum(1 for key, drawing in submitted.items()
                     if key in stored and stored[key]["strokes"] != drawing["strokes"])
    errors = [e for p in players for e in p.errors] + [f"server on port {port} died"
                                                        for port in crashed]
    cpu = None
    if None not in cpu_before + cpu_after:
        cpu = round(sum(after - before for before, after in zip(cpu_before, cpu_after,
                                                                 strict=True)), 2)
    result = {
        "processes": mode["processes"],
        "database": "postgresql" if mode["services"] else "sqlite",
        "channel_layer": "redis" if mode["services"] else "in-memory",
        "max_batch": int(mode["env"].get("RECOGNIZER_MAX_BATCH", 0)) or "default",
        "model": info["model"],
        "model_origin": info["origin"],
        "timed_seconds": args.seconds,
        "wall_seconds": round(wall, 1),
        "draws_sent": sum(p.draws_sent for p in players),
        "guesses_in_window": guesses,
        "live_guesses_per_second": round(guesses / args.seconds, 1),
        "guess_latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies), 1) if latencies else None,
        },
        "rounds_ended": sum(p.rounds_ended for p in players if p.host),
        "errors": len(errors),
        "error_examples": errors[:10],
        "late_refusals": sum(p.late_refusals for p in players),
        "late_guesses": sum(p.late_guesses for p in players),
        "drawings_submitted": len(submitted),
        "drawings_stored": len(stored),
        "stored_not_submitted": len(set(stored) - set(submitted)),
        "submitted_not_stored": len(set(submitted) - set(stored)),
        # Equal sets: every player and round that got a guess has exactly one
        # stored drawing, and nothing else is stored.
        "stored_equals_submitted": set(stored) == set(submitted),
        # Stricter: the stored drawing is the last one the player saw scored
        # before the round ended (an overloaded server may write an earlier one).
        "stored_not_last_scored": mismatched,
        "server_cpu_seconds": cpu,
        "server_cpu_ms_per_guess": round(cpu * 1000 / guesses, 2) if cpu and guesses else None,
        "client_cpu_seconds": round(client_cpu, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    return result


def ratio(numerator, denominator):
    return round(numerator / denominator, 3) if numerator and denominator else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=60.0, help="timed window per mode")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES),
                        help=f"comma separated, from {', '.join(MODES)}")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per game")
    parser.add_argument("--round-seconds", type=float, default=10.0)
    parser.add_argument("--results-seconds", type=float, default=2.0,
                        help="pause between rounds")
    parser.add_argument("--think-seconds", type=float, default=1.0,
                        help="mean pause before a player starts drawing")
    parser.add_argument("--draw-seconds", type=float, default=3.0,
                        help="how long each player draws before saying done")
    parser.add_argument("--points", type=int, default=120, help="points in a finished drawing")
    parser.add_argument("--finish-timeout", type=float, default=60.0,
                        help="bound on letting the rounds in hand end after the window")
    parser.add_argument("--conn-max-age", type=int, default=60,
                        help="DATABASE_CONN_MAX_AGE of each server process")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="RECOGNIZER_TORCH_THREADS of each server process")
    parser.add_argument("--output", default="load",
                        help="results file name under bench/results (without .json)")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL")
                        or "postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL")
                        or "redis://127.0.0.1:6379")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    if args.players < 1 or args.rooms < 1 or args.rooms > args.players:
        parser.error("need at least one player per room")
    args.room_size = math.ceil(args.players / args.rooms)
    if args.room_size > 8:
        parser.error(f"{args.room_size} players per room: a room holds at most 8")
    if not 0 < args.draw_seconds < args.round_seconds:
        parser.error("--draw-seconds must be shorter than --round-seconds")

    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    results = {
        "benchmark": "load",
        "players": args.players,
        "rooms": args.rooms,
        "seconds": args.seconds,
        "rounds_per_game": args.rounds,
        "round_seconds": args.round_seconds,
        "results_seconds": args.results_seconds,
        "think_seconds": args.think_seconds,
        "draw_seconds": args.draw_seconds,
        "updates_per_second": UPDATES_PER_SECOND,
        "points_per_drawing": args.points,
        "server_torch_threads": args.torch_threads,
        "database_conn_max_age": args.conn_max_age,
        "client": "one asyncio process (websockets, no compression), on the same machine",
        "balancing": "player i connects to process i mod N (round robin, no proxy)",
        "modes": {},
    }
    from tests.services import ServiceUnavailable

    for name in modes:
        print(f"mode {name}: {args.players} players in {args.rooms} rooms for "
              f"{args.seconds:g} s ...", flush=True)
        try:
            results["modes"][name] = run_mode(name, args, workdir)
        except ServiceUnavailable as exc:
            results["modes"][name] = {"skipped": str(exc)}
        print(json.dumps(results["modes"][name], indent=2), flush=True)

    def throughput(name):
        return results["modes"].get(name, {}).get("live_guesses_per_second")

    def cpu_per_guess(name):
        return results["modes"].get(name, {}).get("server_cpu_ms_per_guess")

    results["ratios"] = {
        "two_vs_one_throughput": ratio(throughput("two"), throughput("one")),
        "two_vs_one_on_services_throughput": ratio(throughput("two"),
                                                   throughput("one-services")),
        "batched_vs_unbatched_throughput": ratio(throughput("one"),
                                                 throughput("one-unbatched")),
        # Server CPU per guess, unbatched over batched: unlike throughput, it
        # hardly depends on what else the machine is running at the time.
        "unbatched_vs_batched_cpu_per_guess": ratio(cpu_per_guess("one-unbatched"),
                                                    cpu_per_guess("one")),
        "two_vs_one_cpu_per_guess": ratio(cpu_per_guess("two"), cpu_per_guess("one")),
    }
    results["machine"] = machine_summary()
    path = write_results(args.output, results)
    print(json.dumps(results["ratios"], indent=2))
    print(f"results written to {path.relative_to(Path(__file__).resolve().parent.parent)}")
    ran = [m for m in results["modes"].values() if "skipped" not in m]
    ok = bool(ran) and all(m["errors"] == 0 and m["stored_equals_submitted"] for m in ran)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
