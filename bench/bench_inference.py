"""Inference benchmark: strokes to probabilities in-process, and the bare forward pass.

Reports medians side by side from one run:
- end to end (validate JSON drawing, preprocess strokes, batched service) for one
  request at a time and for many concurrent ones, with batching (up to 64) and
  without (RECOGNIZER_MAX_BATCH=1), and their throughput ratio;
- the network's forward pass alone at batch 1 and batch 64, eager and in the
  frozen, batch-norm-folded form the service runs;
so the ratio of end-to-end time to model time is visible.

    python bench/bench_inference.py [--repeats 200] [--concurrency 64]
"""

import argparse
import asyncio
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ensure_model,
    machine_summary,
    median_ms,
    setup_django,
    timed,
    write_results,
)


def sample_drawing(index):
    """A plausible drawing: a few hundred points along a loop and a tail, like a 9."""
    points = []
    for step in range(180):
        angle = 2 * math.pi * step / 180
        points.append([200 + 60 * math.cos(angle + index), 150 + 60 * math.sin(angle), step * 8])
    tail = [[260, 150 + k * 3, 1500 + k * 8] for k in range(80)]
    return {"width": 400, "height": 400, "strokes": [points, tail]}


def end_to_end_of(service):
    """Strokes to probabilities for one request, as the API does it, on `service`."""
    from recognizer.payloads import parse_drawing
    from recognizer.preprocessing import strokes_to_input

    def end_to_end(payload):
        drawing = parse_drawing(payload)
        return service.predict(strokes_to_input(drawing.strokes, drawing.width, drawing.height))

    return end_to_end


async def concurrent_round(service, payloads, clients):
    """`clients` requests at once: (wall seconds, each one's latency)."""
    from recognizer.payloads import parse_drawing
    from recognizer.preprocessing import strokes_to_input

    async def one(payload):
        start = time.perf_counter()
        drawing = parse_drawing(payload)
        image = await asyncio.to_thread(
            strokes_to_input, drawing.strokes, drawing.width, drawing.height
        )
        await service.apredict(image)
        return time.perf_counter() - start

    start = time.perf_counter()
    latencies = await asyncio.gather(
        *(one(payloads[i % 16]) for i in range(clients))
    )
    return time.perf_counter() - start, latencies


def concurrent(service, payloads, clients, rounds):
    """Median latency, throughput and mean batch size of `rounds` concurrent rounds."""
    walls, latencies = [], []
    asyncio.run(concurrent_round(service, payloads, clients))  # warm up
    batches_before, served_before = service.batches_run, service.requests_served
    for _ in range(rounds):
        wall, lat = asyncio.run(concurrent_round(service, payloads, clients))
        walls.append(wall)
        latencies.extend(lat)
    mean_batch = (service.requests_served - served_before) / max(
        1, service.batches_run - batches_before
    )
    return {
        "clients": clients,
        "median_latency_ms": statistics.median(latencies) * 1000,
        "throughput_per_s": clients / statistics.median(walls),
        "mean_batch_size": mean_batch,
    }


def batched_and_unbatched(service, unbatched, payloads, args):
    """The best of two concurrent runs with batching and of two without."""
    rounds = max(5, args.repeats // args.concurrency)
    # Alternated, so that a neighbour's load on the machine hits both alike.
    batched_runs, unbatched_runs = [], []
    for _ in range(2):
        batched_runs.append(concurrent(service, payloads, args.concurrency, rounds))
        unbatched_runs.append(concurrent(unbatched, payloads, args.concurrency, rounds))
    return (max(batched_runs, key=lambda r: r["throughput_per_s"]),
            max(unbatched_runs, key=lambda r: r["throughput_per_s"]))


def forward_passes(model, repeats):
    """{"eager"|"frozen": (batch-1 durations, batch-64 durations)}, one thread."""
    import torch

    from recognizer.frozen import freeze

    torch.set_num_threads(1)  # as the service's worker runs
    frozen_model = freeze(model)
    batch1 = torch.rand(1, 1, 28, 28)
    batch64 = torch.rand(64, 1, 28, 28)
    forwards = {}
    with torch.inference_mode():
        for name, network in (("eager", model), ("frozen", frozen_model)):
            for _ in range(10):
                network(batch1)
                network(batch64)
            forwards[name] = (
                timed(lambda network=network: network(batch1), repeats),
                timed(lambda network=network: network(batch64), max(20, repeats // 4)),
            )
    return forwards


def summarise(version, origin, single, preprocess, forwards, batched, unbatched):
    forward1, forward64 = forwards["frozen"]
    results = {
        "model": {"version": version.version, "origin": origin},
        "machine": machine_summary(),
        "end_to_end_single_ms": median_ms(single),
        "preprocess_only_ms": median_ms(preprocess),
        "forward_batch1_ms": median_ms(forward1),
        "forward_batch64_ms": median_ms(forward64),
        "forward_batch64_per_item_ms": median_ms(forward64) / 64,
        "eager_forward_batch1_ms": median_ms(forwards["eager"][0]),
        "eager_forward_batch64_per_item_ms": median_ms(forwards["eager"][1]) / 64,
        "concurrent": batched,
        "concurrent_unbatched": unbatched,
        "batched_to_unbatched_throughput": (
            batched["throughput_per_s"] / unbatched["throughput_per_s"]
        ),
    }
    results["ratio_end_to_end_to_forward_batch1"] = (
        results["end_to_end_single_ms"] / results["forward_batch1_ms"]
    )
    return results


def print_table(results, clients):
    concurrent, single_file = results["concurrent"], results["concurrent_unbatched"]
    print(f"{'measure':44s} {'median':>10s}")
    rows = [
        ("strokes -> probabilities, one at a time", results["end_to_end_single_ms"], "ms"),
        ("  of which preprocessing", results["preprocess_only_ms"], "ms"),
        ("forward pass, batch 1, eager", results["eager_forward_batch1_ms"], "ms"),
        ("forward pass, batch 1, frozen", results["forward_batch1_ms"], "ms"),
        ("forward pass, batch 64, per drawing, eager",
         results["eager_forward_batch64_per_item_ms"], "ms"),
        ("forward pass, batch 64, per drawing, frozen",
         results["forward_batch64_per_item_ms"], "ms"),
        (f"{clients} concurrent, batched: latency", concurrent["median_latency_ms"], "ms"),
        (f"{clients} concurrent, batched: throughput",
         concurrent["throughput_per_s"], "/s"),
        ("  mean batch size", concurrent["mean_batch_size"], ""),
        (f"{clients} concurrent, unbatched: latency",
         single_file["median_latency_ms"], "ms"),
        (f"{clients} concurrent, unbatched: throughput",
         single_file["throughput_per_s"], "/s"),
        ("batched / unbatched throughput", results["batched_to_unbatched_throughput"], "x"),
        ("end-to-end / forward(batch 1)", results["ratio_end_to_end_to_forward_batch1"], "x"),
    ]
    for name, value, unit in rows:
        print(f"{name:44s} {value:10.3f} {unit}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    setup_django()
    import torch

    from recognizer.inference import InferenceService
    from recognizer.preprocessing import strokes_to_input
    from recognizer.versions import load_version

    version, origin = ensure_model()
    model, _ = load_version(version)
    service = InferenceService(reload_seconds=3600)
    unbatched = InferenceService(reload_seconds=3600, max_batch=1)

    end_to_end = end_to_end_of(service)
    payloads = [sample_drawing(i) for i in range(16)]
    for payload in payloads:  # warm up: model load, allocator, thread pools
        end_to_end(payload)

    counter = iter(range(10**9))
    single = timed(lambda: end_to_end(payloads[next(counter) % 16]), args.repeats)
    preprocess = timed(
        lambda: strokes_to_input(payloads[0]["strokes"], 400, 400), args.repeats
    )
    batched_result, unbatched_result = batched_and_unbatched(service, unbatched, payloads, args)
    forwards = forward_passes(model, args.repeats)

    results = summarise(version, origin, single, preprocess, forwards,
                        batched_result, unbatched_result)
    path = write_results("inference", results)
    print(f"model: {version.version} ({origin}); torch threads {torch.get_num_threads()}")
    print_table(results, args.concurrency)
    print(f"written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
