"""Where a command's CPU goes, by kind of process: the test suite's, by default.

Runs the command (by default `make test`, what .ci/run runs) and reads every
process's CPU time (user + system, /proc/PID/stat) once a second until it
ends; the CPU each process used while the command ran is added to its kind:
the test processes, Chromium, Playwright's driver, the Daphne servers, the
management commands by name, other Python scripts, pip (a first run's
set-up), and the rest of the
machine (processes older than the command: only what they used since it
began counts). The suite's time is CPU-bound on 2 cores, so this says what
shortening it would take. A process that ends between two readings loses
its last second at most.

    python3 bench/bench_suite_cpu.py [--output NAME] [-- command ...]

(any Python 3: it needs only the standard library, so it can time a fresh
clone's `bash .ci/run`, set-up included).
"""

import argparse
import collections
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_results  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def kind_of(pid, before):
    """The kind of process `pid` is (None: it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    command = raw.replace(b"\0", b" ").decode(errors="replace")
    if pid in before:
        return "the rest of the machine"
    if "pip" in command:
        return "pip (the set-up)"
    if "chrom" in command:
        return "Chromium"
    if "playwright" in command:
        return "Playwright's driver"
    if "digitsite.serve" in command:
        return "Daphne servers"
    if "manage.py" in command:
        words = command.split("manage.py", 1)[1].split()
        return f"manage.py {words[0] if words else ''}".strip()
    if "exec(eval(sys.stdin" in command or "pytest" in command:
        return "the test processes"
    if "python" in command:
        return "other Python scripts"
    return "other processes"


def cpu_seconds(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="suite-cpu")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("command", nargs="*", default=["make", "test"])
    args = parser.parse_args()

    own = os.getpid()
    before = set(pids())
    seen = {}  # pid -> [CPU seconds counted so far, kind]
    for pid in before:
        used = cpu_seconds(pid)
        if used is not None:
            seen[pid] = [used, "the rest of the machine"]
    totals = collections.Counter()
    started = time.monotonic()
    process = subprocess.Popen(args.command)
    while True:
        for pid in pids():
            if pid == own:
                continue
            used = cpu_seconds(pid)
            if used is None:
                continue
            if pid not in seen:
                kind = kind_of(pid, before)
                if kind is None:
                    continue
                seen[pid] = [0.0, kind]
            counted, kind = seen[pid]
            if used > counted:
                totals[kind] += used - counted
                seen[pid][0] = used
        if process.poll() is not None:
            break
        time.sleep(args.interval)
    wall = time.monotonic() - started
    ours = sum(seconds for kind, seconds in totals.items()
               if kind != "the rest of the machine")
    results = {
        "command": args.command,
        "exit_status": process.returncode,
        "wall_seconds": round(wall, 1),
        "cpu_count": os.cpu_count(),
        "cpu_seconds_of_its_processes": round(ours, 1),
        "cores_busy_with_it": round(ours / wall, 2),
        "cpu_seconds_by_kind": {kind: round(seconds, 1)
                                for kind, seconds in totals.most_common()},
    }
    path = write_results(args.output, results)
    for kind, seconds in totals.most_common():
        print(f"{seconds:8.1f} s  {kind}")
    print(f"{ours:.0f} CPU seconds in {wall:.0f} s ({ours / wall:.2f} cores); {path}")
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
