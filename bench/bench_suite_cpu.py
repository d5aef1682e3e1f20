"""Where a command's CPU goes, by kind of process: the test suite's, by default.

Runs the command (by default `make test`, what .ci/run runs) and reads the
CPU time (user + system, /proc/PID/stat) of it and every process it starts,
however deep, once a second until it ends, adding each one's to its kind:
the test processes, Chromium, Playwright's driver, the Daphne servers, the
management commands by name, pip (a first run's set-up), other Python
scripts and other programs. A process whose parent ends before it stays
counted: this one adopts such processes (PR_SET_CHILD_SUBREAPER). Other
programs on the machine are left out. The suite's time is CPU-bound on 2
cores, so this says what shortening it would take. A process that ends
between two readings loses its last second at most.

    python3 bench/bench_suite_cpu.py [--output NAME] [-- command ...]

(any Python 3: it needs only the standard library, so it can time a fresh
clone's `bash .ci/run`, set-up included).
"""

import argparse
import collections
import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_results  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36


def kind_of(arguments, name=""):
    """The kind of process that `arguments` (its command line, a list) starts;
    `name`, its process name, tells apart what the tests' zygote forks."""
    program = Path(arguments[0]).name if arguments else ""
    # tests/server_zygote.py names its children; they keep its command line.
    if name == "test-server":
        return "Daphne servers"
    if name == "test-scripts":
        return "other Python scripts"
    joined = " ".join(arguments)
    if "chrom" in program:
        return "Chromium"
    if "playwright" in joined and "driver" in joined:
        return "Playwright's driver"
    # pip runs as its own program, or as a script (python .venv/bin/pip ...).
    if (any(Path(word).name.startswith("pip") for word in arguments[:2])
            or arguments[1:3] == ["-m", "pip"]):
        return "pip (the set-up)"
    # The zygote itself: the imports every server would make.
    if "-m" in arguments and ("digitsite.serve" in arguments or "tests.server_zygote" in arguments):
        return "Daphne servers"
    if any(Path(word).name == "manage.py" for word in arguments):
        index = next(i for i, word in enumerate(arguments) if Path(word).name == "manage.py")
        return f"manage.py {arguments[index + 1] if index + 1 < len(arguments) else ''}".strip()
    if "exec(eval(sys.stdin" in joined or "pytest" in joined:
        return "the test processes"
    if program.startswith("python"):
        return "other Python scripts"
    return "other programs"


def read_process(pid):
    """(parent id, start time, CPU seconds, command line, name) of `pid`; None if it is gone."""
    try:
        head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = tail.split()
    arguments = [word.decode(errors="replace") for word in raw.split(b"\0") if word]
    return (int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / TICKS,
            arguments, head.split("(", 1)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="suite-cpu")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("command", nargs="*", default=["make", "test"])
    args = parser.parse_args()

    # Processes whose parent ends (a daemonised server, a browser's helpers)
    # become this process's, so they stay in the tree that is counted.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    own = os.getpid()
    started = time.monotonic()
    process = subprocess.Popen(args.command)
    ours = {process.pid}  # the command and its descendants, as seen so far
    seen = {}  # (pid, start time) -> [CPU seconds counted so far, kind]
    totals = collections.Counter()
    started_by_kind = collections.Counter()  # processes seen, by kind
    while True:
        processes = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and (found := read_process(int(name))) is not None:
                processes[int(name)] = found
        # Descendants: a process whose parent is the command's, or this one's.
        grew = True
        while grew:
            grew = False
            for pid, (parent, *_) in processes.items():
                if pid not in ours and pid != own and (parent in ours or parent == own):
                    ours.add(pid)
                    grew = True
        for pid in list(ours):
            if pid not in processes:
                ours.discard(pid)  # gone (a later process may reuse its id)
                continue
            _, start, used, arguments, name = processes[pid]
            entry = seen.get((pid, start))
            if entry is None:
                entry = seen[(pid, start)] = [0.0, kind_of(arguments, name)]
                started_by_kind[entry[1]] += 1
            if used > entry[0]:
                totals[entry[1]] += used - entry[0]
                entry[0] = used
        if process.poll() is not None:
            break
        time.sleep(args.interval)
    wall = time.monotonic() - started
    cpu = sum(totals.values())
    results = {
        "command": args.command,
        "exit_status": process.returncode,
        "wall_seconds": round(wall, 1),
        "cpu_count": os.cpu_count(),
        "cpu_seconds": round(cpu, 1),
        "cores_busy": round(cpu / wall, 2),
        "cpu_seconds_by_kind": {kind: round(seconds, 1)
                                for kind, seconds in totals.most_common()},
        "processes_by_kind": dict(started_by_kind.most_common()),
    }
    path = write_results(args.output, results)
    for kind, seconds in totals.most_common():
        print(f"{seconds:8.1f} s  {kind} ({started_by_kind[kind]} processes)")
    print(f"{cpu:.0f} CPU seconds in {wall:.0f} s ({cpu / wall:.2f} cores); {path}")
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
