"""Class join benchmark: a whole class joins its room at the same moment.

A teacher says "join now" and 30-40 phones join within a second. Each join is
announced to the room by the connection that made it, so the room's `room`
snapshots reach the screens in any order; a screen whose last snapshot is an
older one misses the students who joined after it, until the next change.

Each trial makes a class on fresh Daphne servers' database; its teacher
joins first (the projector), then every student connects (each from a
loopback address of its own, as phones are) and all the joins are sent at
once. Then it reads what every screen shows: the players of the last `room`
snapshot it received (the welcome's included), which is what the game page
and the projector show. It reports how long the joins took (first message
sent to each welcome), how long until every screen showed everyone, and how
many screens still did not after --settle seconds.

With --play the class then plays one round: the teacher starts it, every
student sends one finished drawing and, once its guess is in, `done`, all
at the same moment. Reported: from the start to the last student's
`round_start`, from the first `done` to the last screen's `round_end`, and
the drawings stored against the students who drew (must be equal).

    python bench/bench_class_join.py [--students 30] [--trials 10] [--processes 1] [--play]
                                     [--one-address]

`--one-address` connects every student from the same loopback address, as a
school behind one NAT: the per-address bounds (sockets, message bytes a
second and at once, drawings in the work) then all apply to the class. A
message they drop is an `error` in the run, which stops it with that error.

`--processes 2` runs two Daphne processes on a fresh PostgreSQL database and a
Redis database ($BENCH_POSTGRES_URL / $BENCH_REDIS_URL, as bench_load.py),
student i connecting to process i mod 2. Results go to
bench/results/<--output>.json. The script reads the protocol only through
digitsite.game.client, so it runs against older code too (from a worktree).
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    client_address,
    forward_yardstick,
    machine_summary,
    percentile,
    write_results,
)


def shown(client):
    """The player ids of the last room snapshot `client` received."""
    for message in reversed(client.messages):
        if message["type"] == "room":
            return {p["id"] for p in message["players"]}
        if message["type"] == "welcome":
            return {p["id"] for p in message["room"]["players"]}
    return set()


STORED = """
import sys
from recognizer.models import Drawing
sys.stdout.write(str(Drawing.objects.filter(room_code={code!r}).count()))
"""


async def play_round(servers, code, teacher, students):
    """One round: the teacher starts it; every student draws and says done at once."""
    from bench.load_players import CANVAS, digit_strokes

    started = time.perf_counter()
    await teacher.start(rounds=1)
    starts = await asyncio.gather(*(s.expect("round_start", timeout=120) for s in students))
    all_started = time.perf_counter() - started
    round_number = starts[0]["round"]

    async def draw_and_finish(index, student):
        drawing = {"width": CANVAS, "height": CANVAS, "strokes": digit_strokes(index, 60)}
        await student.draw(round_number, drawing, seq=1)
        await student.expect("guess", timeout=120)
        await student.done(round_number)

    done_at = time.perf_counter()
    await asyncio.gather(*(draw_and_finish(i, s) for i, s in enumerate(students)))
    await asyncio.gather(*(c.expect("round_end", timeout=120) for c in [teacher, *students]))
    ended_after = time.perf_counter() - done_at
    stored = int(await asyncio.to_thread(servers[0].run_script, STORED.format(code=code)))
    return {"all_started_after_s": round(all_started, 3),
            "round_end_on_every_screen_after_s": round(ended_after, 3),
            "drawings_stored": stored, "students_drew": len(students)}


async def one_trial(servers, students, settle, play, one_address=False):
    from digitsite.game.client import GameClient

    # A target never reached: every student's round ends with its `done`.
    code = await asyncio.to_thread(servers[0].create_room, "Teacher", classroom=True,
                                   seconds=120.0, target_confidence=1.0)
    teacher = await GameClient.open(servers[0].ws_url, code, name="Teacher",
                                    origin=servers[0].url, open_timeout=60)
    await teacher.join(timeout=120)
    clients = [GameClient(f"Student {n + 1}") for n in range(students)]
    await asyncio.gather(*(
        client.connect(servers[n % len(servers)].ws_url, code, open_timeout=60,
                       origin=servers[n % len(servers)].url,
                       local_addr=client_address(0 if one_address else n))
        for n, client in enumerate(clients)))
    joined = {}

    async def join(client):
        sent = time.perf_counter()
        await client.join(timeout=120)
        joined[client.name] = time.perf_counter() - sent

    try:
        start = time.perf_counter()
        await asyncio.gather(*(join(client) for client in clients))
        everyone = {client.you["id"] for client in [teacher, *clients]}
        agreed_after = None
        deadline = time.perf_counter() + settle
        while time.perf_counter() < deadline:
            if all(shown(client) == everyone for client in [teacher, *clients]):
                agreed_after = time.perf_counter() - start
                break
            await asyncio.sleep(0.02)
        behind = [client for client in [teacher, *clients] if shown(client) != everyone]
        trial = {
            "join_seconds": sorted(joined.values()),
            "all_screens_agree_after_s": agreed_after,
            "screens_behind_at_end": len(behind),
            "missing_on_those": sorted({len(everyone - shown(c)) for c in behind}),
        }
        if play:
            trial["round"] = await play_round(servers, code, teacher, clients)
        return trial
    finally:
        await asyncio.gather(*(client.close() for client in [teacher, *clients]))


def start_servers(stack, processes, workdir, args):
    from tests.live import LiveServer

    env = {"LOG_LEVEL": "WARNING"}
    if processes > 1:
        from tests.services import claimed_redis_database, fresh_postgres_database

        env["DATABASE_URL"] = stack.enter_context(fresh_postgres_database(
            args.postgres_url, prefix="digitsite_bench"))
        env["REDIS_URL"] = stack.enter_context(claimed_redis_database(args.redis_url))
        env["DATABASE_CONN_MAX_AGE"] = "60"
    servers = [LiveServer(workdir / f"process-{i}", env=env, migrate=(i == 0))
               for i in range(processes)]
    stack.callback(lambda: [server.stop() for server in servers])
    for server in servers:
        server.start()
    return servers


async def run(args):
    trials = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="class-join-")))
        servers = start_servers(stack, args.processes, workdir, args)
        for index in range(args.trials):
            trial = await one_trial(servers, args.students, args.settle, args.play,
                                    args.one_address)
            trials.append(trial)
            print(f"trial {index + 1}: joins p50 {statistics.median(trial['join_seconds']):.3f} s, "
                  f"agreed after {trial['all_screens_agree_after_s']}, "
                  f"{trial['screens_behind_at_end']} screens behind", flush=True)
    joins = [s for trial in trials for s in trial["join_seconds"]]
    agreed = [t["all_screens_agree_after_s"] for t in trials
              if t["all_screens_agree_after_s"] is not None]
    played = [t["round"] for t in trials if "round" in t]
    if played:
        rounds_summary = {
            "all_started_after_ms_median": round(statistics.median(
                r["all_started_after_s"] for r in played) * 1000, 1),
            "round_end_on_every_screen_after_ms_median": round(statistics.median(
                r["round_end_on_every_screen_after_s"] for r in played) * 1000, 1),
            "drawings_stored": sum(r["drawings_stored"] for r in played),
            "students_drew": sum(r["students_drew"] for r in played),
        }
    return {
        "trials_with_screens_behind": sum(1 for t in trials if t["screens_behind_at_end"]),
        "screens_behind_in_all": sum(t["screens_behind_at_end"] for t in trials),
        "join_ms": {"p50": round(statistics.median(joins) * 1000, 1),
                    "p95": round(percentile(joins, 95) * 1000, 1),
                    "max": round(max(joins) * 1000, 1)},
        "all_screens_agree_after_ms_median": (round(statistics.median(agreed) * 1000, 1)
                                              if agreed else None),
        **({"rounds": rounds_summary} if played else {}),
        "trials": trials,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds after the last welcome to wait for every screen to agree")
    parser.add_argument("--play", action="store_true",
                        help="then play one round: everyone draws and says done at once")
    parser.add_argument("--one-address", action="store_true",
                        help="every student from one address (a school behind NAT)")
    parser.add_argument("--output", default="class-join")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL")
                        or "postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL")
                        or "redis://127.0.0.1:6379")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    yardstick = forward_yardstick()
    results = asyncio.run(run(args))
    summary = {
        "benchmark": "class_join",
        "students": args.students,
        "trial_count": args.trials,
        "processes": args.processes,
        "settle_seconds": args.settle,
        "play": args.play,
        "one_address": args.one_address,
        "forward_pass_batch1_ms": round(yardstick, 3),
        **results,
        "machine": machine_summary(),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "trials"}, indent=2))
    print(f"results written to {write_results(args.output, summary)}")


if __name__ == "__main__":
    main()
