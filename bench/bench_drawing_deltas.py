"""Checking a drawing sent as deltas: the whole drawing at every `draw`,
against only the points each `draw` adds, side by side in one process.

A drawing's life as the page sends it (bench/load_players.py's digits,
--draws updates, each adding what was drawn since the last) goes through
digitsite.game.drawing_deltas.RoundDrawing, as a connection's `draw`
messages do, and is checked for the scorer at every `draw`:

- whole: the base's checked form is never learned, so every `draw` is
  checked whole by parse_drawing, as every scored `draw` was before the
  checked form was kept;
- deltas: the first, whole drawing is checked by parse_drawing and learned
  (as the scorer does), then each `draw` converts only what it adds.

Both check that the drawing the scorer gets is the same. Timed in turns,
each first in every other turn: the median microseconds a `draw` over the
life of the drawing, with the forward pass at batch 1 as the yardstick.

    python bench/bench_drawing_deltas.py [--draws 30] [--turns 15] [--repeats 20]
"""

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    forward_yardstick,
    in_turns,
    setup_django,
    write_with_yardsticks,
)

# The load benchmark's digit, a long one, and the game's limit (MAX_POINTS).
POINT_COUNTS = (120, 1_000, 5_000)


def draws_of(points, draws):
    """The `draw` messages' fields (as protocol.read gives them) of one drawing's life."""
    from bench.load_players import added_since, progressive_drawings
    from digitsite.game import protocol

    steps = [drawing for drawing, _ in progressive_drawings(0, draws, points)]
    messages = [{"type": "draw", "round": 1, "seq": 1, "drawing": steps[0]}]
    for seq, (before, after) in enumerate(zip(steps, steps[1:], strict=False), start=2):
        extend, strokes = added_since(before, after)
        messages.append({"type": "draw", "round": 1, "seq": seq, "base": seq - 1,
                         "extend": extend, "strokes": strokes})
    return [protocol.read(protocol.decode(json.dumps(m))) for m in messages], steps[-1]


def one_life(fields_of_draws, learn):
    """Every `draw` of one drawing built and checked; the last checked drawing."""
    from digitsite.game.drawing_deltas import RoundDrawing
    from digitsite.game.protocol import MAX_POINTS
    from recognizer.payloads import parse_drawing

    built = RoundDrawing()
    checked = None
    for fields in fields_of_draws:
        raw = built.take(fields, "g", 1, incremental=True)
        checked = built.checked
        if checked is None:
            checked = parse_drawing(raw, max_points=MAX_POINTS)
            if learn:
                built.learn(raw, checked)
    return checked


def us_a_draw(fields_of_draws, learn, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        one_life(fields_of_draws, learn)
    return (time.perf_counter() - start) / repeats / len(fields_of_draws) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=30,
                        help="updates in a drawing's life (the page sends 10 a second)")
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output", default="drawing-deltas")
    args = parser.parse_args()
    setup_django(tempfile.mkdtemp(prefix="bench-var-"))
    from digitsite.game.protocol import MAX_POINTS
    from recognizer.payloads import parse_drawing

    gc.collect()
    gc.freeze()
    yardstick_before = forward_yardstick()
    rows = []
    for points in POINT_COUNTS:
        draws, last = draws_of(points, args.draws)
        expected = parse_drawing(last, max_points=MAX_POINTS)
        same = one_life(draws, learn=False) == expected == one_life(draws, learn=True)
        medians, runs = in_turns([("whole", False), ("deltas", True)], args.turns,
                                 lambda learn: us_a_draw(draws, learn, args.repeats))  # noqa: B023
        ratio = round(medians["whole"] / medians["deltas"], 2)
        rows.append({"points": sum(len(s) for s in expected.strokes), "draws": len(draws),
                     "same_drawing": same, "us_a_draw": medians, "whole_over_deltas": ratio,
                     "runs_us": runs})
        print(f"{rows[-1]['points']} points in {len(draws)} draws: whole {medians['whole']:.1f} "
              f"us a draw, deltas {medians['deltas']:.1f} us ({ratio}x); same drawing: {same}")
    write_with_yardsticks(args.output, {
        "benchmark": "drawing-deltas", "draws": args.draws, "turns": args.turns,
        "repeats": args.repeats, "drawings": rows}, yardstick_before)
    if not all(row["same_drawing"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
