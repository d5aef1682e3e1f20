"""What a management command costs to start: this checkout against another
revision, in turns.

Every `manage.py` command (an operator's `migrate`, `shell`, `check`; the
suite starts dozens) pays for what `django.setup()` and the command import
before doing anything. The other revision is exported with `git archive`
into a scratch folder and run with this checkout's interpreter. Each turn
runs each command once on each side, alternating which side goes first, on
one scratch SQLite database per side (migrated before the turns), and a bare
`python -c "import torch"` as the yardstick. CPU is the child's user +
system time (resource.RUSAGE_CHILDREN), wall the elapsed time.

    python bench/bench_django_start.py --before REV [--turns 7] [--output NAME]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BASE_DIR, revision, snapshot, write_results  # noqa: E402

COMMANDS = {
    "shell": ["shell", "-c", "pass"],
    "migrate": ["migrate", "--noinput", "-v", "0"],
    "check": ["check"],
}


def child_seconds(arguments, **options):
    """(wall, CPU) seconds of the child process `arguments` runs to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(arguments, check=True, capture_output=True, timeout=300, **options)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(tree, args, var_dir):
    # The embedded defaults: SQLite in var_dir, the in-memory channel layer.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DIGITSITE_VAR_DIR"] = str(var_dir)
    return child_seconds([sys.executable, "manage.py", *args], cwd=tree, env=env)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the revision to compare with")
    parser.add_argument("--turns", type=int, default=7)
    parser.add_argument("--output", default="django-start")
    args = parser.parse_args()

    load_start = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="bench-django-start-"))
    try:
        sides = {"before": snapshot(args.before, scratch / "before"), "now": BASE_DIR}
        var_dirs = {side: scratch / f"var-{side}" for side in sides}
        for side, tree in sides.items():
            run(tree, COMMANDS["migrate"], var_dirs[side])  # the database, and warm caches
        samples = {side: {name: {"wall": [], "cpu": []} for name in COMMANDS} for side in sides}
        yardstick = {"wall": [], "cpu": []}
        for turn in range(args.turns):
            # The yardstick, from the same run: a bare interpreter importing torch.
            wall, cpu = child_seconds([sys.executable, "-c", "import torch"])
            yardstick["wall"].append(wall)
            yardstick["cpu"].append(cpu)
            order = list(sides) if turn % 2 == 0 else list(reversed(sides))
            for name, command in COMMANDS.items():
                for side in order:
                    wall, cpu = run(sides[side], command, var_dirs[side])
                    samples[side][name]["wall"].append(wall)
                    samples[side][name]["cpu"].append(cpu)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    medians = {side: {name: {kind: statistics.median(values) for kind, values in kinds.items()}
                      for name, kinds in by_command.items()}
               for side, by_command in samples.items()}
    report = {
        "benchmark": "django_start",
        "before": revision(sides["before"], args.before),
        "now": revision(BASE_DIR, "HEAD"),  # the working tree: any changes are said
        "yardstick_import_torch_seconds": {kind: statistics.median(values)
                                           for kind, values in yardstick.items()},
        "load_average_start": load_start,
        "turns": args.turns,
        "medians_seconds": medians,
        "now_over_before_cpu": {name: medians["now"][name]["cpu"] / medians["before"][name]["cpu"]
                                for name in COMMANDS},
        "samples_seconds": samples,
        "load_average_end": os.getloadavg(),
    }
    torch_wall, torch_cpu = (report["yardstick_import_torch_seconds"][k] for k in ("wall", "cpu"))
    print(f"yardstick: `python -c 'import torch'` {torch_wall:.2f} s wall, {torch_cpu:.2f} s CPU")
    for name in COMMANDS:
        b, n = medians["before"][name], medians["now"][name]
        print(f"{name:8} before {b['wall']:.2f} s wall, {b['cpu']:.2f} s CPU;"
              f" now {n['wall']:.2f} s wall, {n['cpu']:.2f} s CPU"
              f" ({n['cpu'] / b['cpu']:.2f}x CPU)")
    path = write_results(args.output, report)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
