"""Training benchmark: how long one epoch over full MNIST train takes on this machine.

Runs the real training step (augmentation, forward, backward, AdamW) on
batches of MNIST train in a few measured chunks after a warm-up, and reports
the median samples per second and the seconds per 60,000-digit epoch it
implies, plus the augmentation alone and evaluation (forward only) for
comparison, with one torch thread and with torch's default (one per core):
on a small shared machine one thread is often the faster. The medians make
one chunk slowed by another process count less.
Results go to bench/results/training.json.

    python bench/bench_training.py [--chunks 5] [--batches 20] [--threads 1,0]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BASE_DIR, machine_summary, setup_django, write_results  # noqa: E402

EPOCH = 60_000


def default_data_dir():
    return os.environ.get("MNIST_DATA_DIR") or str(BASE_DIR.parent / "shared" / "data" / "mnist")


def measure(step, chunks, batches, batch_size):
    """Samples per second of each chunk of `batches` calls of `step`."""
    rates = []
    for _ in range(chunks):
        started = time.perf_counter()
        for _ in range(batches):
            step()
        rates.append(batches * batch_size / (time.perf_counter() - started))
    return rates


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20, help="batches per measured chunk")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", default="1,0",
                        help="comma-separated torch thread counts to measure; 0 = torch's "
                             "default (default: 1,0)")
    args = parser.parse_args()
    try:
        args.thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        parser.error("--threads takes whole numbers separated by commas")
    return args


def training_steps(data_dir, batch_size):
    """The steps measured, by name: a training step, the augmentation alone, evaluation."""
    import torch
    from torch import nn

    from recognizer.network import build_model
    from trainer import datasets
    from trainer.augment import AugmentConfig, augment_batch
    from trainer.training import TrainConfig, build_optimizer, seed_everything

    seed_everything(0)
    data = datasets.mnist_split("train", data_dir)
    model = build_model()
    config = TrainConfig(batch_size=batch_size)
    optimizer = build_optimizer(model, config)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    augment = AugmentConfig()
    generator = torch.Generator().manual_seed(0)
    stream = datasets.batches(data, batch_size, generator)

    def next_batch():
        nonlocal stream
        try:
            return next(stream)
        except StopIteration:
            stream = datasets.batches(data, batch_size, generator)
            return next(stream)

    def train_step():
        inputs, labels = next_batch()
        inputs = augment_batch(inputs, augment, generator)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()

    fixed_inputs, _ = next_batch()

    def augment_step():
        augment_batch(fixed_inputs, augment, generator)

    @torch.no_grad()
    def eval_step():
        model.eval()
        model(fixed_inputs)
        model.train()

    return {"train_step": train_step, "augment_only": augment_step, "eval_forward": eval_step}


def measure_steps(steps, args, default_threads):
    """Samples per second of each step at each thread count."""
    import torch

    results = {}
    for threads in args.thread_counts:
        threads = threads or default_threads
        torch.set_num_threads(threads)
        for name, step in steps.items():
            measure(step, 1, 3, args.batch_size)  # warm-up: allocator, kernels
            rates = measure(step, args.chunks, args.batches, args.batch_size)
            median = statistics.median(rates)
            results[f"{name}@{threads}"] = {
                "measure": name,
                "threads": threads,
                "samples_per_second_median": round(median, 1),
                "samples_per_second_chunks": [round(r, 1) for r in rates],
                "seconds_per_epoch": round(EPOCH / median, 1),
            }
    return results


def print_report(report, path):
    print(f"{'measure':<14}{'threads':>8}{'samples/s (median)':>20}{'s per 60k epoch':>18}")
    for values in report["results"].values():
        print(f"{values['measure']:<14}{values['threads']:>8}"
              f"{values['samples_per_second_median']:>20.0f}{values['seconds_per_epoch']:>18.1f}")
    print(f"load average before/after: {report['load_average_before'][0]} / "
          f"{report['load_average_after'][0]} on {os.cpu_count()} CPUs")
    print(f"written to {path.relative_to(BASE_DIR)}")


def main():
    args = parse_args()
    setup_django()
    import torch

    default_threads = torch.get_num_threads()
    steps = training_steps(args.data_dir, args.batch_size)
    load_before = os.getloadavg()
    results = measure_steps(steps, args, default_threads)
    report = {
        "benchmark": "training",
        "batch_size": args.batch_size,
        "chunks": args.chunks,
        "batches_per_chunk": args.batches,
        "epoch_samples": EPOCH,
        "results": results,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "machine": machine_summary(),
    }
    path = write_results("training", report)
    print_report(report, path)


if __name__ == "__main__":
    main()
