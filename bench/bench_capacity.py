"""Capacity: the most players one machine serves live, per server setup.

"Live" means what a player feels while drawing: the guess of each drawing
sent comes back within 150 ms at the 95th percentile, and a player whose pen
is down gets at least 5 guesses a second (the page asks for at most 10). The
run also requires 0 errors and every drawing a player was told was kept
stored. For each mode of bench/bench_load.py (by default `one`, the embedded
setup, and `two`, two processes on PostgreSQL + Redis) the players grow
through --players (8 to a room, as a class fills rooms) until a step fails;
the largest step that passed is the capacity. Each step is a fresh
bench_load run of --seconds, so steps do not share warm caches or queues.

The forward pass at batch 1 is measured in the same run as a yardstick:
machines differ 2-3x in speed, and so does one machine under other work.

    python bench/bench_capacity.py
    python bench/bench_capacity.py --modes one --players 10,20,40 --seconds 15
"""

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_load  # noqa: E402
from bench.common import forward_yardstick, machine_summary, write_results  # noqa: E402

P95_LIMIT_MS = 150.0
MIN_GUESSES_PER_DRAWING_SECOND = 5.0
ROOM_SIZE = 8


def passes(result):
    """Whether one step served every player live, and why not."""
    reasons = []
    p95 = result["guess_latency_ms"]["p95"]
    rate = result["guesses_per_drawing_second"] or 0.0
    if p95 > P95_LIMIT_MS:
        reasons.append(f"p95 {p95} ms > {P95_LIMIT_MS:g} ms")
    if rate < MIN_GUESSES_PER_DRAWING_SECOND:
        reasons.append(f"{rate} guesses a drawing second < {MIN_GUESSES_PER_DRAWING_SECOND:g}")
    if result["errors"]:
        reasons.append(f"{result['errors']} errors")
    if not result["stored_equals_submitted"]:
        reasons.append("stored != submitted")
    return not reasons, reasons


def load_args(players, seconds, extra):
    """bench_load's own options for one step, checked by its own parser."""
    rooms = math.ceil(players / ROOM_SIZE)
    args = bench_load.build_parser().parse_args(
        ["--players", str(players), "--rooms", str(rooms), "--seconds", str(seconds), *extra])
    args.room_size = math.ceil(args.players / args.rooms)
    return args


def sweep(mode, steps, seconds, extra, workdir):
    """Run the steps in order until one fails; return every step's summary."""
    from tests.services import ServiceUnavailable

    results = []
    for players in steps:
        print(f"mode {mode}: {players} players for {seconds:g} s ...", flush=True)
        try:
            result = bench_load.run_mode(mode, load_args(players, seconds, extra), workdir)
        except ServiceUnavailable as exc:
            return [{"skipped": str(exc)}]
        ok, reasons = passes(result)
        summary = {
            "players": players,
            "passed": ok,
            "why_not": reasons,
            "p50_ms": result["guess_latency_ms"]["p50"],
            "p95_ms": result["guess_latency_ms"]["p95"],
            "guesses_per_drawing_second": result["guesses_per_drawing_second"],
            "live_guesses_per_second": result["live_guesses_per_second"],
            "server_cpu_ms_per_guess": result["server_cpu_ms_per_guess"],
            "server_cpu_ms_per_guess_in_window": result["server_cpu_ms_per_guess_in_window"],
            "server_cpu_ms_per_guess_by_thread": result.get("server_cpu_ms_per_guess_by_thread"),
            "errors": result["errors"],
            "error_examples": result["error_examples"],
            "server_guess_stages": result.get("server_guess_stages"),
            "drawings_submitted": result["drawings_submitted"],
            "drawings_stored": result["drawings_stored"],
            "load_average_1min": result["load_average_1min"],
            # The simulated players share the machine: what they used of it.
            "client_cpu_seconds": result["client_cpu_seconds"],
        }
        print(json.dumps(summary), flush=True)
        results.append(summary)
        if not ok:
            break
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="one,two")
    parser.add_argument("--players", default="16,32,48,64,96,128,160,200",
                        help="comma separated steps, ascending")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--output", default="capacity")
    args, extra = parser.parse_known_args()
    steps = sorted(int(n) for n in args.players.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="bench-capacity-"))

    results = {"benchmark": "capacity", "p95_limit_ms": P95_LIMIT_MS,
               "min_guesses_per_drawing_second": MIN_GUESSES_PER_DRAWING_SECOND,
               "room_size": ROOM_SIZE, "seconds_per_step": args.seconds,
               "forward_batch1_ms_before": forward_yardstick(), "modes": {}}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        runs = sweep(mode, steps, args.seconds, extra, workdir)
        served = [r["players"] for r in runs if r.get("passed")]
        results["modes"][mode] = {"steps": runs, "capacity": max(served) if served else 0}
    results["forward_batch1_ms_after"] = forward_yardstick()
    results["machine"] = machine_summary()
    path = write_results(args.output, results)
    print(json.dumps({m: r["capacity"] for m, r in results["modes"].items()}))
    print(f"results written to {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
