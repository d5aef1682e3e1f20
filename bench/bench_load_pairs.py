"""The load benchmark run side by side on two versions of the code.

A change to the game's server is judged by bench/bench_load.py run on the
code before it and on the code after it, in turns (before, after, after,
before, before, after, ...: each side goes first as often), so that both see
the same machine: on a shared machine one run
against another differs by 20-30%, more than many changes. Each run is a
whole bench_load run of one mode (a fresh server, the same players); the
report is the median of each figure per side and the ratios of the medians,
with the forward pass at batch 1 measured before the first pair and after
the last as the yardstick, and how many runs of each side served every
player live by bench/bench_capacity.py's rule (run at one player count, a
side by side check of a capacity).

The code before is `git archive REV`, unpacked in a temporary folder and run
with this interpreter (the same packages); the code after is this checkout,
or with --after another revision unpacked the same way (the checkout may
then change while the benchmark runs).

    python bench/bench_load_pairs.py --before HEAD~1
    python bench/bench_load_pairs.py --before 0cd3aeb --pairs 4 --output load-pairs \\
        -- --players 32 --rooms 4 --seconds 20 --modes one
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_capacity import passes  # noqa: E402
from bench.common import (  # noqa: E402
    BASE_DIR,
    forward_yardstick,
    machine_summary,
    revision,
    snapshot,
    write_results,
)

FIGURES = ("live_guesses_per_second", "p50_ms", "p95_ms", "guesses_per_drawing_second",
           "server_cpu_ms_per_guess", "server_cpu_ms_per_guess_in_window")


def one_run(code, load_args, output):
    """One bench_load run of the code in `code`; its single mode's figures."""
    done = subprocess.run(
        [sys.executable, "bench/bench_load.py", *load_args, "--output", str(output)],
        cwd=code, capture_output=True, text=True, timeout=1800)
    if not output.with_suffix(".json").exists():
        raise RuntimeError(f"bench_load in {code} wrote no results:\n{done.stdout[-3000:]}"
                           f"\n{done.stderr[-3000:]}")
    results = json.loads(output.with_suffix(".json").read_text())
    [(mode, figures)] = results["modes"].items()
    if "skipped" in figures:
        raise RuntimeError(f"bench_load skipped mode {mode}: {figures['skipped']}")
    latency = figures["guess_latency_ms"]
    served_live, why_not = passes(figures)
    return {"mode": mode, "served_live": served_live, "why_not": why_not,
            "live_guesses_per_second": figures["live_guesses_per_second"],
            "p50_ms": latency["p50"], "p95_ms": latency["p95"],
            "guesses_per_drawing_second": figures["guesses_per_drawing_second"],
            "server_cpu_ms_per_guess": figures["server_cpu_ms_per_guess"],
            # Measured by bench_load since the servers name their threads
            # (recognizer/thread_names.py): None from the code before that.
            "server_cpu_ms_per_guess_in_window":
                figures.get("server_cpu_ms_per_guess_in_window"),
            "server_cpu_ms_per_guess_by_thread": figures.get("server_cpu_ms_per_guess_by_thread"),
            "errors": figures["errors"],
            "stored_equals_submitted": figures["stored_equals_submitted"]}


def medians(runs):
    """The median of each figure the runs have (None where none has it), and
    how many runs each median is of."""
    summary, counted = {}, {}
    for name in FIGURES:
        values = [run[name] for run in runs if run.get(name) is not None]
        summary[name] = round(statistics.median(values), 2) if values else None
        counted[name] = len(values)
    summary["runs_counted"] = counted
    # By bench/bench_capacity.py's rule: p95 at most 150 ms, at least 5
    # guesses a drawing second, no errors, every kept drawing stored.
    summary["runs_served_live"] = sum(1 for run in runs if run["served_live"])
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the git revision of the code before")
    parser.add_argument("--after", default=None,
                        help="the git revision of the code after (default: this checkout)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--output", default="load-pairs")
    parser.add_argument("load_args", nargs="*",
                        help="bench_load's options, after --; one mode "
                             "(default: --players 32 --rooms 4 --seconds 20 --modes one)")
    args = parser.parse_args()
    load_args = args.load_args or ["--players", "32", "--rooms", "4", "--seconds", "20"]
    # One mode a run: bench_load's default is all four.
    if "--modes" not in load_args:
        load_args = [*load_args, "--modes", "one"]
    elif "," in load_args[load_args.index("--modes") + 1]:
        parser.error("give bench_load one mode (--modes one, two, ...)")
    work = Path(tempfile.mkdtemp(prefix="bench-pairs-"))
    try:
        codes = {"before": snapshot(args.before, work / "before-code"),
                 "after": BASE_DIR if args.after is None
                 else snapshot(args.after, work / "after-code")}
        results = {"benchmark": "load side by side",
                   "before": revision(codes["before"], args.before),
                   "after": revision(codes["after"], args.after or "HEAD"),
                   "load_args": load_args, "pairs": args.pairs,
                   "forward_batch1_ms_first": forward_yardstick(), "runs": []}
        for pair in range(args.pairs):
            order = ("before", "after") if pair % 2 == 0 else ("after", "before")
            for side in order:
                run = one_run(codes[side], load_args, work / f"{side}-{pair}")
                run.update(pair=pair, code=side)
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
                # Kept as it goes: a later run that fails loses nothing measured.
                write_results(args.output, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["forward_batch1_ms_last"] = forward_yardstick()
    summary = {side: medians([r for r in results["runs"] if r["code"] == side])
               for side in codes}
    summary["after_over_before"] = {
        name: round(summary["after"][name] / summary["before"][name], 3)
        for name in FIGURES if summary["before"][name] and summary["after"][name]}
    results["medians"] = summary
    results["all_runs_clean"] = all(r["errors"] == 0 and r["stored_equals_submitted"]
                                    for r in results["runs"])
    results["machine"] = machine_summary()
    path = write_results(args.output, results)
    print(json.dumps(summary, indent=2))
    print(f"results written to {path}")
    return 0 if results["all_runs_clean"] else 1


if __name__ == "__main__":
    sys.exit(main())
