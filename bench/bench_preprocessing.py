"""Preprocessing benchmark: strokes to the 28x28 input, this code's against
another revision's, side by side in one process.

The other revision's recognizer/preprocessing.py is read from git (`--before`,
default HEAD) and loaded as a module of its own beside today's; both use
today's compiled pen loop (recognizer/pen_kernel.py), so the comparison is of
everything around it. Drawings: the load benchmark's players' digits
(bench/load_players.py) at several point counts, each checked to give the
same input to the bit in both. The two are timed in turns, each first in
every other turn: the median microseconds a drawing over --turns turns of
--repeats drawings, with the forward pass at batch 1 as the yardstick.

    python bench/bench_preprocessing.py [--before REV] [--turns 10] [--repeats 300]
"""

import argparse
import gc
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BASE_DIR,
    forward_yardstick,
    in_turns,
    setup_django,
    write_with_yardsticks,
)

POINT_COUNTS = (30, 120, 260)


def module_at(revision):
    """recognizer/preprocessing.py as it was at `revision`, loaded as a module."""
    source = subprocess.run(["git", "show", f"{revision}:recognizer/preprocessing.py"],
                            cwd=BASE_DIR, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-preprocessing-")) / "preprocessing_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("preprocessing_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def us_a_drawing(module, drawing, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        module.strokes_to_input(drawing.strokes, drawing.width, drawing.height)
    return (time.perf_counter() - start) / repeats * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD", help="the revision to compare with")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--output", default="preprocessing")
    args = parser.parse_args()
    setup_django(tempfile.mkdtemp(prefix="bench-var-"))
    import numpy as np

    from bench.load_players import progressive_drawings
    from recognizer import preprocessing
    from recognizer.payloads import parse_drawing

    before = module_at(args.before)
    # As a server does after start-up (digitsite.heap): collections then walk
    # only what the timed loops make.
    gc.collect()
    gc.freeze()
    yardstick_before = forward_yardstick()
    rows = []
    for points in POINT_COUNTS:
        raw, _ = progressive_drawings(0, 1, points)[-1]
        drawing = parse_drawing(raw, max_points=10_000)
        same = np.array_equal(
            before.strokes_to_input(drawing.strokes, drawing.width, drawing.height),
            preprocessing.strokes_to_input(drawing.strokes, drawing.width, drawing.height))
        medians, runs = in_turns([("before", before), ("now", preprocessing)], args.turns,
                                 lambda module: us_a_drawing(module, drawing, args.repeats))  # noqa: B023
        ratio = round(medians["before"] / medians["now"], 2)
        rows.append({"points": sum(len(s) for s in drawing.strokes), "same_input": same,
                     "us_a_drawing": medians, "before_over_now": ratio, "runs_us": runs})
        print(f"{rows[-1]['points']} points: before {medians['before']:.0f} us, now "
              f"{medians['now']:.0f} us ({ratio}x); same input: {same}")
    write_with_yardsticks(args.output, {
        "benchmark": "preprocessing", "before": args.before, "turns": args.turns,
        "repeats": args.repeats, "drawings": rows}, yardstick_before)
    if not all(row["same_input"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
