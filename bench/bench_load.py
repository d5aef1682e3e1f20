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
client's CPU time, where each server's last guesses of the window spent
their time by stage (/healthz's `guess_timing`: digitsite/game/guess_timing.py)
and the messages the players received, by type. Then the ratios two/one and batched/unbatched of
guesses per second. Everything is bounded in time; results go to
bench/results/load.json and the exit status is 1 when a mode has errors or
lost drawings.

The players are bench/load_players.py; this file starts the servers of each
mode and reports what they measured.

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
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    forward_yardstick,
    machine_summary,
    percentile,
    write_results,
)
from bench.load_players import (  # noqa: E402
    UPDATES_PER_SECOND,
    VARIANTS,
    Player,
    drive,
    progressive_drawings,
)

MODES = {
    "one": {"processes": 1, "services": False, "env": {}},
    "one-unbatched": {"processes": 1, "services": False, "env": {"RECOGNIZER_MAX_BATCH": "1"}},
    "two": {"processes": 2, "services": True, "env": {}},
    "one-services": {"processes": 1, "services": True, "env": {}},
}
DEFAULT_MODES = ("one", "one-unbatched", "one-services", "two")


# -- servers ------------------------------------------------------------------


def _stat_cpu_seconds(stat_text):
    """User + system CPU seconds from the text of a /proc .../stat file."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux), or None elsewhere."""
    try:
        return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return None


# What each server thread is, by the name it gives the OS
# (recognizer/thread_names.py); the main thread runs the event loop.
THREAD_ROLES = (("recognizer-inf", "inference"), ("game-db", "database"))
ROLES = ("event loop", "inference", "database", "other")


def thread_cpu_seconds(pid):
    """The CPU seconds so far of a process and of each of its threads (Linux):
    {"process": seconds (threads that ended included), "threads": {tid:
    (role, seconds)}}, or None where /proc cannot tell. A thread's role: "event
    loop" (the main thread), "inference", "database" or "other"."""
    try:
        process = _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        threads = {}
        for task in tasks:
            try:
                name = (task / "comm").read_text().strip()
                seconds = _stat_cpu_seconds((task / "stat").read_text())
            except OSError:  # the thread ended meanwhile
                continue
            role = "event loop" if task.name == str(pid) else next(
                (role for prefix, role in THREAD_ROLES if name.startswith(prefix)), "other")
            threads[task.name] = (role, seconds)
    except (OSError, ValueError, IndexError):
        return None
    return {"process": process, "threads": threads}


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


def mode_env(name, mode, args, workdir):
    """The settings every server process of the mode runs with."""
    return {
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


def start_servers(stack, name, mode, env, args, workdir):
    """The mode's servers, started (stopped when `stack` closes), and what the
    setup made: {"model", "origin", "rooms"}."""
    from tests.live import LiveServer
    from tests.services import claimed_redis_database, fresh_postgres_database

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
    return servers, info


BALANCING = {
    "player": "player i connects to process i mod N (round robin, no proxy)",
    "room": "room r's players all connect to process r mod N (as a proxy hashing the "
            "WebSocket's path, which holds the room's code)",
}


def make_players(info, servers, args):
    """Player i in room i mod rooms, drawing variant i mod 16, on server i mod
    servers (`--balancing player`) or on the room's server (`room`)."""
    clock = {"start": 0.0, "stop_at": float("inf"), "stop": asyncio.Event(),
             "closing": False, "think": args.think_seconds, "rng": random.Random(1),
             "protocol": args.protocol}
    steps = int(args.draw_seconds * UPDATES_PER_SECOND)
    variants = [progressive_drawings(v, steps, args.points) for v in range(VARIANTS)]
    return [
        Player(i, info["rooms"][i % args.rooms],
               servers[(i % args.rooms if args.balancing == "room" else i) % len(servers)],
               variants[i % VARIANTS], clock)
        for i in range(args.players)
    ]


def play(players, servers, args):
    """Let the players play, bounded in time: the wall seconds, the CPU seconds of
    the servers and of this client, and the ports of servers that died."""
    clock = players[0].clock

    async def bounded():
        clock["stop"] = asyncio.Event()  # bound to this run's loop
        return await asyncio.wait_for(
            drive(players, args.seconds, args.finish_timeout),
            args.seconds + args.finish_timeout + 120)

    # The CPU of the timed window alone, by thread, beside that of the whole
    # run (the joins before the window and the rounds ending after it too).
    window = {}

    def threads_now():
        # None for a server /proc cannot tell about (never an error in the
        # players' loop): the window's figures are then reported as None.
        return [thread_cpu_seconds(s.process.pid) for s in servers]

    # The stages are read over HTTP, which a loaded server answers slowly:
    # in a thread, not on the players' event loop.
    stages = [None] * len(servers)

    def read_stages():
        for index, server in enumerate(servers):
            stages[index] = guess_stages(server.url)

    reader = threading.Thread(target=read_stages)

    def window_ends():
        window.setdefault("after", threads_now())
        if reader.ident is None:  # once
            reader.start()

    clock["window_starts"] = lambda: window.setdefault("before", threads_now())
    clock["window_ends"] = window_ends
    cpu_before = [cpu_seconds(s.process.pid) for s in servers]
    client_before = time.process_time()
    wall = asyncio.run(bounded())
    if reader.ident is not None:
        reader.join()  # each read is bounded (guess_stages)
    client_cpu = time.process_time() - client_before
    cpu_after = [cpu_seconds(s.process.pid) for s in servers]
    cpu = None
    if None not in cpu_before + cpu_after:
        cpu = round(sum(after - before for before, after in zip(cpu_before, cpu_after,
                                                                 strict=True)), 2)
    return {"wall": wall, "server_cpu": cpu, "client_cpu": client_cpu,
            "window_cpu": window_cpu_by_role(window.get("before"), window.get("after")),
            "stages": list(stages) if reader.ident is not None else None,
            "crashed": [s.port for s in servers if s.process.poll() is not None]}


def guess_stages(url):
    """Where the server's last live guesses spent their time, stage by stage
    (digitsite.game.guess_timing, in /healthz's details for a request from
    this machine), or None when it cannot be read."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=30) as response:
            return json.load(response).get("guess_timing")
    except urllib.error.HTTPError as exc:  # 503: a failing check still has the figures
        return json.load(exc).get("guess_timing")
    except (OSError, ValueError):
        return None


def window_cpu_by_role(before, after):
    """{role: CPU seconds in the window, summed over the servers}, or None.

    Thread by thread: a thread started in the window counts from zero. What
    the process spent beyond its named threads' share (threads that ended in
    the window, threads nobody named) is "other", so the roles add up to the
    processes' CPU.
    """
    if not before or not after or None in before + after:
        return None
    roles = dict.fromkeys(ROLES, 0.0)
    for b, a in zip(before, after, strict=True):
        named = 0.0
        for tid, (role, seconds) in a["threads"].items():
            spent = seconds - b["threads"].get(tid, (role, 0.0))[1]
            if role != "other":
                roles[role] += spent
                named += spent
        roles["other"] += max(a["process"] - b["process"] - named, 0.0)
    return {role: round(seconds, 2) for role, seconds in roles.items()}


def run_mode(name, args, workdir):
    mode = MODES[name]
    env = mode_env(name, mode, args, workdir)
    with contextlib.ExitStack() as stack:
        servers, info = start_servers(stack, name, mode, env, args, workdir)
        players = make_players(info, servers, args)
        measured = play(players, servers, args)
        stored = settled_stored(servers[0].env["DATABASE_URL"], info["rooms"])
    return mode_result(mode, info, args, players, stored, measured)


def guess_summary(players, args):
    """Drawings sent, guesses in the window and their latency."""
    latencies = [s * 1000 for p in players for s in p.latencies]
    guesses = sum(p.guesses_in_window for p in players)
    drawing = sum(p.drawing_seconds for p in players)
    return {
        "draws_sent": sum(p.draws_sent for p in players),
        "guesses_in_window": guesses,
        "live_guesses_per_second": round(guesses / args.seconds, 1),
        # What one player feels: guesses per second while its pen is down
        # (the page asks for at most 10).
        "guesses_per_drawing_second": round(guesses / drawing, 2) if drawing else None,
        "guess_latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies), 1) if latencies else None,
        },
    }


def storage_summary(players, stored):
    """The drawings stored against those the players were told were kept."""
    submitted = {(p.id, game, rnd): drawing for p in players
                 for (game, rnd), drawing in p.last_scored.items()}
    mismatched = sum(1 for key, drawing in submitted.items()
                     if key in stored and stored[key]["strokes"] != drawing["strokes"])
    return {
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
    }


def window_cpu_summary(by_role, guesses):
    """The servers' CPU in the timed window, where the guesses are counted:
    per guess, in all and by thread. The whole run's figure also holds the
    players' joins before the window and the rounds ending after it."""
    if by_role is None or not guesses:
        return {"server_cpu_ms_per_guess_in_window": None}
    return {
        "server_cpu_seconds_in_window": round(sum(by_role.values()), 2),
        "server_cpu_ms_per_guess_in_window": round(sum(by_role.values()) * 1000 / guesses, 2),
        "server_cpu_ms_per_guess_by_thread": {
            role: round(seconds * 1000 / guesses, 2) for role, seconds in by_role.items()},
    }


def mode_result(mode, info, args, players, stored, measured):
    guesses = sum(p.guesses_in_window for p in players)
    errors = [e for p in players for e in p.errors] + [f"server on port {port} died"
                                                        for port in measured["crashed"]]
    cpu = measured["server_cpu"]
    return {
        "processes": mode["processes"],
        "database": "postgresql" if mode["services"] else "sqlite",
        "channel_layer": "redis" if mode["services"] else "in-memory",
        "max_batch": int(mode["env"].get("RECOGNIZER_MAX_BATCH", 0)) or "default",
        "model": info["model"],
        "model_origin": info["origin"],
        "timed_seconds": args.seconds,
        "wall_seconds": round(measured["wall"], 1),
        **guess_summary(players, args),
        "rounds_ended": sum(p.rounds_ended for p in players if p.host),
        # What the server sent the players over the whole run, by type: the
        # guesses against the room's other messages.
        "messages_received_by_type": dict(sum((p.received for p in players),
                                              collections.Counter()).most_common()),
        "errors": len(errors),
        "error_examples": errors[:10],
        "late_refusals": sum(p.late_refusals for p in players),
        "late_guesses": sum(p.late_guesses for p in players),
        **storage_summary(players, stored),
        "server_cpu_seconds": cpu,
        "server_cpu_ms_per_guess": round(cpu * 1000 / guesses, 2) if cpu and guesses else None,
        **window_cpu_summary(measured["window_cpu"], guesses),
        # Per server: the stages of its last guesses of the window (up to
        # 2,048 of them: digitsite.game.guess_timing.WINDOW).
        "server_guess_stages": measured["stages"],
        "client_cpu_seconds": round(measured["client_cpu"], 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def ratio(numerator, denominator):
    return round(numerator / denominator, 3) if numerator and denominator else None


def build_parser():
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
    parser.add_argument("--protocol", type=int, choices=(1, 2, 3), default=3,
                        help="3 (the page's): drawings go as the points added and "
                             "the others' live drawings come together; 2: the same, "
                             "live drawings one by one; 1: drawings go whole")
    parser.add_argument("--finish-timeout", type=float, default=60.0,
                        help="bound on letting the rounds in hand end after the window")
    parser.add_argument("--conn-max-age", type=int, default=60,
                        help="DATABASE_CONN_MAX_AGE of each server process")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="RECOGNIZER_TORCH_THREADS of each server process")
    parser.add_argument("--balancing", choices=sorted(BALANCING), default="player",
                        help="which process a player connects to with several: "
                             + "; ".join(f"{k}: {v}" for k, v in BALANCING.items()))
    parser.add_argument("--output", default="load",
                        help="results file name under bench/results (without .json)")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL")
                        or "postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL")
                        or "redis://127.0.0.1:6379")
    return parser


def parse_args():
    """The options, checked; args.modes becomes a list and args.room_size is set."""
    parser = build_parser()
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    if args.players < 1 or args.rooms < 1 or args.rooms > args.players:
        parser.error("need at least one player per room")
    args.room_size = math.ceil(args.players / args.rooms)
    if args.room_size > 8:
        parser.error(f"{args.room_size} players per room: a room holds at most 8")
    if not 0 < args.draw_seconds < args.round_seconds:
        parser.error("--draw-seconds must be shorter than --round-seconds")
    return args


def run_settings(args):
    return {
        "benchmark": "load",
        "players": args.players,
        "rooms": args.rooms,
        "seconds": args.seconds,
        "rounds_per_game": args.rounds,
        "round_seconds": args.round_seconds,
        "results_seconds": args.results_seconds,
        "think_seconds": args.think_seconds,
        "protocol": args.protocol,
        "draw_seconds": args.draw_seconds,
        "updates_per_second": UPDATES_PER_SECOND,
        "points_per_drawing": args.points,
        "server_torch_threads": args.torch_threads,
        "database_conn_max_age": args.conn_max_age,
        "client": "one asyncio process (websockets, no compression), on the same machine",
        # Server settings given in this benchmark's environment (the servers inherit it).
        "server_settings_from_environment": {
            name: value for name, value in sorted(os.environ.items())
            if name.startswith(("RECOGNIZER_", "GAME_", "DATABASE_CONN"))},
        "balancing": BALANCING[args.balancing],
        "modes": {},
    }


def ratios(modes):
    """Throughput and server CPU per guess of the modes against each other."""

    def of(name, key):
        return modes.get(name, {}).get(key)

    throughput, cpu = "live_guesses_per_second", "server_cpu_ms_per_guess"
    return {
        "two_vs_one_throughput": ratio(of("two", throughput), of("one", throughput)),
        "two_vs_one_on_services_throughput": ratio(of("two", throughput),
                                                   of("one-services", throughput)),
        "batched_vs_unbatched_throughput": ratio(of("one", throughput),
                                                 of("one-unbatched", throughput)),
        # Server CPU per guess, unbatched over batched: unlike throughput, it
        # hardly depends on what else the machine is running at the time.
        "unbatched_vs_batched_cpu_per_guess": ratio(of("one-unbatched", cpu), of("one", cpu)),
        "two_vs_one_cpu_per_guess": ratio(of("two", cpu), of("one", cpu)),
    }


def main():
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    results = run_settings(args)
    from tests.services import ServiceUnavailable

    # The yardstick, before the first mode and after the last (README: machines
    # differ 2-3x; every figure is read against this run's forward pass).
    results["forward_batch1_ms_first"] = forward_yardstick()

    for name in args.modes:
        print(f"mode {name}: {args.players} players in {args.rooms} rooms for "
              f"{args.seconds:g} s ...", flush=True)
        try:
            results["modes"][name] = run_mode(name, args, workdir)
        except ServiceUnavailable as exc:
            results["modes"][name] = {"skipped": str(exc)}
        print(json.dumps(results["modes"][name], indent=2), flush=True)

    results["forward_batch1_ms_last"] = forward_yardstick()
    results["ratios"] = ratios(results["modes"])
    results["machine"] = machine_summary()
    path = write_results(args.output, results)
    print(json.dumps(results["ratios"], indent=2))
    print(f"results written to {path}")
    ran = [m for m in results["modes"].values() if "skipped" not in m]
    ok = bool(ran) and all(m["errors"] == 0 and m["stored_equals_submitted"] for m in ran)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
