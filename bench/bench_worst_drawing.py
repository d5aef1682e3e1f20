"""Worst-drawing benchmark: the CPU and memory one hostile drawing costs on every entry point.

Runs the catalogue of tests/worst_drawings.py (zigzags, spirals, dense
scribbles, taps, ink cut at the canvas edge, the most points allowed) through
what the server does with a drawing before the network sees it:

- api: POST /api/recognize as Django hands it to the view (a real request
  object): content type, JSON decoding, parse_drawing, strokes_to_input;
- game: a `draw` message as the consumer receives it (JSON text, at most
  64 KiB, so integer coordinates on a 4000-pixel canvas, where rounding adds
  no ink), decoded and passed to scoring._prepare;
- game, on the event loop: the same, for drawings of at most
  GAME_RENDER_ON_LOOP_POINTS points, which the game renders on its event
  loop rather than in a thread;
- teaching: POST /learn/api/stages: the body check and decoding, then
  strokes_to_stages.

For each: CPU time (time.process_time, median of repeats, one thread) and
peak extra memory (tracemalloc, which sees numpy's buffers) of the whole
path; of today's renderer alone (strokes_to_input on the parsed drawing,
the ink limit included) and of the previous renderer alone
(tests/reference_renderer.py, which had no ink limit); and the network's
forward pass at batch 1 measured in the same run as a yardstick. Results in
bench/results/worst_drawing.json.

    python bench/bench_worst_drawing.py [--repeats 15] [--old-repeats 3]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ensure_model, machine_summary, setup_django, write_results  # noqa: E402
from tests.worst_drawings import peak_bytes  # noqa: E402

# Above this many seconds a single run of the previous renderer is not repeated.
SLOW_OLD = 0.5
# The game's canvas side in this benchmark: integer coordinates lose no shape.
GAME_CANVAS = 4000


def cpu_ms(fn, repeats):
    durations = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        durations.append(time.process_time() - start)
        if durations[-1] > SLOW_OLD:
            break
    return statistics.median(durations) * 1000, len(durations)


def peak_mb(fn):
    return peak_bytes(fn) / 1e6


def outcome(fn):
    """('accepted', None) or ('refused', the error's class and message)."""
    try:
        fn()
    except Exception as exc:  # the paths raise PayloadError, DrawingError, GameError
        code = getattr(exc, "code", None)
        return "refused", f"{code or type(exc).__name__}: {exc}"
    return "accepted", None


def swallow(fn):
    def run():
        try:
            fn()
        except Exception:  # a refusal costs what it costs; that is what is measured
            pass

    return run


def integer_drawing(drawing):
    """The drawing with whole-pixel coordinates, as compact as a game message can be."""
    return {**drawing, "strokes": [[[round(v) for v in point] for point in stroke]
                                   for stroke in drawing["strokes"]]}


def forward_yardstick(model):
    """CPU milliseconds of the network's forward pass at batch 1."""
    import numpy as np
    import torch

    batch1 = torch.from_numpy(np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32))

    def forward():
        with torch.inference_mode():
            model(batch1)

    for _ in range(20):
        forward()
    forward_ms, _ = cpu_ms(forward, 200)
    return forward_ms


def entry_points(api_points):
    """(path name, its drawings, encode drawing -> text, text -> run) per path."""
    from django.test import RequestFactory

    from digitsite.game import protocol, scoring
    from recognizer import views
    from recognizer.preprocessing import strokes_to_stages
    from recognizer.teaching import views as teaching_views

    factory = RequestFactory()

    def api_path(body):
        def run():
            request = factory.post("/api/recognize", data=body, content_type="application/json")
            views._input_from_request(request)
        return run

    def game_path(text):
        def run():
            scoring._prepare(json.loads(text)["drawing"])
        return run

    def teaching_path(body):
        def run():
            request = factory.post("/learn/api/stages", data=body,
                                   content_type="application/json")
            drawing = teaching_views._parse_body(request)[0]
            strokes_to_stages(drawing.strokes, drawing.width, drawing.height)
        return run

    from django.conf import settings

    def game_text(drawing):
        return json.dumps({"type": "draw", "round": 1, "drawing": integer_drawing(drawing)},
                          separators=(",", ":"))

    from tests.worst_drawings import worst_drawings

    game = protocol.MAX_POINTS
    paths = [
        ("api", worst_drawings(api_points, 400), lambda d: json.dumps(d), api_path),
        ("game", worst_drawings(game, GAME_CANVAS), game_text, game_path),
    ]
    on_loop = settings.GAME_RENDER_ON_LOOP_POINTS
    if on_loop > 0:
        # The largest drawings the game renders on its event loop: what one
        # costs every other player there.
        paths.append(("game, on the event loop", on_loop_cases(on_loop), game_text, game_path))
    paths.append(("teaching", worst_drawings(api_points, 400), lambda d: json.dumps(d),
                  teaching_path))
    return paths


def on_loop_cases(budget):
    """The catalogue's shapes as the game's event loop may get them
    (GAME_RENDER_ON_LOOP_POINTS): each at the most points that keep it within
    `budget` points and strokes, then padded with empty strokes up to it."""
    from dataclasses import replace

    from digitsite.game.drawing_deltas import points_and_strokes
    from tests.worst_drawings import worst_drawings

    cases = []
    fitting = [worst_drawings(points, GAME_CANVAS) for points in (budget - 1, budget // 2)]
    for shapes in zip(*fitting, strict=True):
        case = next((c for c in shapes if points_and_strokes(c.drawing) <= budget), None)
        if case is None:
            continue
        padding = budget - points_and_strokes(case.drawing)
        drawing = dict(case.drawing, strokes=case.drawing["strokes"] + [[]] * padding)
        cases.append(replace(case, name=f"{case.name}, {padding} empty strokes more",
                             drawing=drawing))
    return cases


def renders(drawing):
    """Today's and the previous renderer alone, on what parse_drawing returns."""
    from recognizer.payloads import parse_drawing
    from recognizer.preprocessing import strokes_to_input
    from tests.reference_renderer import reference_input

    parsed = parse_drawing(drawing, max_points=10**9)
    return (lambda: strokes_to_input(parsed.strokes, parsed.width, parsed.height),
            lambda: reference_input(parsed.strokes, parsed.width, parsed.height))


def render_costs(drawing, args):
    """CPU and peak memory of today's renderer and of the previous one on `drawing`."""
    new_render, old_render = renders(drawing)
    new_cpu, _ = cpu_ms(swallow(new_render), args.repeats)
    old_cpu, old_repeats = cpu_ms(old_render, args.old_repeats)
    return {
        "render_cpu_ms": round(new_cpu, 3),
        "render_peak_mb": round(peak_mb(swallow(new_render)), 3),
        "old_render_cpu_ms": round(old_cpu, 3),
        "old_render_repeats": old_repeats,
        "old_render_peak_mb": round(peak_mb(old_render), 3),
    }


def path_cost(path_name, case, text, run, args):
    """The outcome, CPU and peak memory of one drawing on one entry point: (row, CPU ms)."""
    from digitsite.game import protocol

    status, error = outcome(run)
    if path_name.startswith("game") and len(text.encode()) > protocol.MAX_MESSAGE_BYTES:
        # The consumer closes the socket (4009) before decoding such a
        # message; what the drawing would cost past that is still measured.
        status = "refused"
        error = f"message over {protocol.MAX_MESSAGE_BYTES} bytes (closed with 4009)"
    cpu, repeats = cpu_ms(swallow(run), args.repeats)
    return {
        "path": path_name,
        "drawing": case.name,
        "bytes": len(text.encode()),
        "expected": "refused" if case.refused else "accepted",
        "outcome": status,
        "error": error,
        "cpu_ms": round(cpu, 3),
        "repeats": repeats,
        "peak_mb": round(peak_mb(swallow(run)), 3),
    }, cpu


def print_row(row, cpu):
    print(f"{row['path']:8s} {row['drawing']:62s} {row['outcome']:8s} {cpu:6.2f} ms "
          f"{row['peak_mb']:5.2f} MB | render {row['render_cpu_ms']:6.2f} ms "
          f"{row['render_peak_mb']:5.2f} MB | old render "
          f"{row['old_render_cpu_ms']:8.2f} ms {row['old_render_peak_mb']:7.2f} MB",
          flush=True)


def measure_all(args, api_points, forward_ms):
    """Every catalogue drawing through every entry point: a row each."""
    results = []
    old_cache = {}
    for path_name, cases, encode, make in entry_points(api_points):
        for case in cases:
            text = encode(case.drawing)
            row, cpu = path_cost(path_name, case, text, make(text), args)
            key = (case.name, case.drawing.get("width"), len(case.drawing["strokes"]))
            if key not in old_cache:
                old_cache[key] = render_costs(case.drawing, args)
            row.update(old_cache[key])
            row["cpu_per_forward_pass"] = round(cpu / forward_ms, 2)
            results.append(row)
            print_row(row, cpu)
    return results


def summarise(results, forward_ms):
    accepted = [r for r in results if r["outcome"] == "accepted"]
    return {
        "forward_pass_batch1_cpu_ms": round(forward_ms, 3),
        "worst_cpu_ms": max(r["cpu_ms"] for r in results),
        "worst_accepted_cpu_ms": max(r["cpu_ms"] for r in accepted),
        "worst_on_event_loop_cpu_ms": max((r["cpu_ms"] for r in results
                                           if r["path"] == "game, on the event loop"),
                                          default=None),
        "worst_peak_mb": max(r["peak_mb"] for r in results),
        "worst_render_cpu_ms": max(r["render_cpu_ms"] for r in results),
        "worst_render_peak_mb": max(r["render_peak_mb"] for r in results),
        "worst_old_render_cpu_ms": max(r["old_render_cpu_ms"] for r in results),
        "worst_old_render_peak_mb": max(r["old_render_peak_mb"] for r in results),
        "unexpected_outcomes": [f"{r['path']}: {r['drawing']}" for r in results
                                if r["outcome"] != r["expected"]],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--old-repeats", type=int, default=3)
    args = parser.parse_args()

    setup_django()
    import torch
    from django.conf import settings

    from digitsite.game import protocol
    from recognizer.versions import load_version

    torch.set_num_threads(1)
    version, origin = ensure_model()
    model, _ = load_version(version)
    model.eval()
    forward_ms = forward_yardstick(model)
    api_points = settings.RECOGNIZER_MAX_POINTS

    results = measure_all(args, api_points, forward_ms)
    summary = summarise(results, forward_ms)
    print(json.dumps(summary, indent=2))
    path = write_results("worst_drawing", {
        "benchmark": "worst_drawing",
        "model": {"version": version.version, "origin": origin},
        "settings": {"repeats": args.repeats, "old_repeats": args.old_repeats,
                     "api_max_points": api_points, "game_max_points": protocol.MAX_POINTS},
        "machine": machine_summary(),
        "summary": summary,
        "results": results,
    })
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
