"""Training benchmark: seconds per 60,000-digit MNIST epoch, the trainer beside a reference path.

Machines differ 2-3x and the 2-core machine this runs on is shared (load
average 4-6 from other work, and it swings within a minute), so one path's
seconds mean little alone. Both paths run in one process and take turns:
each trains on the next `--chunk` MNIST train digits (default 640, 5 batches
of 128), then the other does, the first alternating, until `--digits`
(default 7,680) are done; then each measures 1,000 MNIST test digits in turn
the way an epoch ends, `--measured` digits in all (default 6,000). The
seconds are extrapolated to an epoch: 60,000 digits trained and 15,000
measured (the 5,000-digit training subset and the 10,000 test digits). The
report gives each path's medians over the turns, the ratio reference /
trainer of those medians and, for training, the median of the ratios of the
turns, each from two runs seconds apart.

- reference: the same loop on torch's defaults: NCHW tensors, new tensors
  filled with NaN by torch's deterministic mode, stroke thickness by
  max_pool2d, measuring with the eager network in NCHW under no_grad.
- trainer: `trainer.training.train_epoch` and `trainer.evaluation.predict_logits`
  as `manage.py finetune` runs them (channels-last, no NaN fill, batch norm
  folded for measuring: trainer/cpu_kernels.py, trainer/evaluation.py).

Both run the whole loop of an epoch: shuffled batches, augmentation, forward,
backward, AdamW under the one-cycle schedule, the running loss and accuracy.
The augmentation is also timed alone. Then a seed check: the trainer's
`train` run twice with one seed on 512 digits must give bit-identical
weights. Results go to bench/results/training.json.

    python bench/bench_training.py [--digits 7680] [--chunk 640] [--threads 1,0]
"""

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BASE_DIR, machine_summary, setup_django, write_results  # noqa: E402

EPOCH = 60_000
# Digits an epoch measures per 60,000 trained: the training subset and MNIST test.
MEASURED_PER_EPOCH = 15_000
# predict_logits' batch, and the digits each turn of measuring takes.
MEASURE_BATCH = 1000
PATHS = ("reference", "trainer")


def default_data_dir():
    return os.environ.get("MNIST_DATA_DIR") or str(BASE_DIR.parent / "shared" / "data" / "mnist")


@contextlib.contextmanager
def reference_kernels():
    """The reference path's settings: NaN fill of new tensors, max_pool2d strokes."""
    import torch
    from torch.nn import functional as F

    from trainer import augment

    fill = torch.utils.deterministic.fill_uninitialized_memory
    neighbourhood_max = augment.neighbourhood_max
    torch.utils.deterministic.fill_uninitialized_memory = True
    augment.neighbourhood_max = lambda images: F.max_pool2d(images, 3, stride=1, padding=1)
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = fill
        augment.neighbourhood_max = neighbourhood_max


def reference_measure(model, data):
    """The eager network in NCHW under no_grad, batches of 1,000."""
    import torch

    from trainer.datasets import batches

    model.eval()
    with torch.no_grad():
        for inputs, _ in batches(data, 1000, shuffle=False):
            model(inputs)
    model.train()


class TrainingPath:
    """One path's model, optimizer and generators, trained on in turns."""

    def __init__(self, name, config, total_steps):
        import torch

        from recognizer.network import build_model
        from trainer import cpu_kernels
        from trainer.training import Optimisation

        self.name = name
        self.config = config
        torch.manual_seed(config.seed)
        # As `train` does: the model in the path's layout before the optimizer is built.
        self.model = build_model().to(
            memory_format=cpu_kernels.memory_format(config.device, config.channels_last))
        self.optimisation = Optimisation.for_run(self.model, config, total_steps)
        self.generators = (torch.Generator().manual_seed(config.seed),
                           torch.Generator().manual_seed(config.seed + 1))

    def kernels(self):
        from trainer import cpu_kernels

        if self.name == "reference":
            return reference_kernels()
        return cpu_kernels.unfilled_memory()

    def train(self, data):
        """Seconds to train one pass over `data`, as an epoch does."""
        from trainer.progress import Progress
        from trainer.training import train_epoch

        with self.kernels():
            started = time.perf_counter()
            train_epoch(self.optimisation, data, self.config, self.generators,
                        Progress(len(data), self.name, enabled=False))
            return time.perf_counter() - started

    def measure(self, data):
        """Seconds to measure `data` as an epoch's end does."""
        from trainer.evaluation import predict_logits

        with self.kernels():
            started = time.perf_counter()
            if self.name == "reference":
                reference_measure(self.model, data)
            else:
                predict_logits(self.model, data)
            return time.perf_counter() - started


def parts(data, size):
    """`data` cut into consecutive parts of `size` digits (a shorter rest dropped)."""
    from trainer.datasets import DigitData

    return [DigitData(data.images[start:start + size], data.labels[start:start + size])
            for start in range(0, len(data) - size + 1, size)]


def in_turns(paths, pieces, work):
    """{path: [seconds per piece]}: each piece done by both paths, the first alternating."""
    seconds = {name: [] for name in PATHS}
    for turn, piece in enumerate(pieces):
        for name in (PATHS if turn % 2 == 0 else PATHS[::-1]):
            seconds[name].append(work(paths[name], piece))
    return seconds


def compare_paths(train_data, measure_data, threads, chunk, batch_size):
    """Both paths in turns of `chunk` digits; seconds per 60,000-digit epoch and ratios."""
    import torch

    from trainer.training import TrainConfig

    torch.set_num_threads(threads)
    train_parts = parts(train_data, chunk)
    measure_parts = parts(measure_data, MEASURE_BATCH)
    warmup = train_data.head(2 * batch_size)
    steps = len(train_parts) * -(-chunk // batch_size) + 2
    paths = {
        name: TrainingPath(name, TrainConfig(batch_size=batch_size, seed=0,
                                             channels_last=name == "trainer"), steps)
        for name in PATHS
    }
    for path in paths.values():  # oneDNN primitives, the allocator
        path.train(warmup)
        path.measure(measure_parts[0])
    trained = in_turns(paths, train_parts, TrainingPath.train)
    measured = in_turns(paths, measure_parts, TrainingPath.measure)
    return summarise(trained, measured, threads, chunk)


def summarise(trained, measured, threads, chunk):
    """Medians per path, extrapolated to an epoch, and the reference / trainer ratios."""
    train_scale = EPOCH / chunk
    measure_scale = MEASURED_PER_EPOCH / MEASURE_BATCH
    rows = {}
    for name in PATHS:
        train = [round(s * train_scale, 1) for s in trained[name]]
        measure = [round(s * measure_scale, 1) for s in measured[name]]
        rows[name] = {
            "path": name, "threads": threads,
            "train_seconds_per_epoch": train,
            "measure_seconds_per_epoch": measure,
            "train_median": statistics.median(train),
            "measure_median": statistics.median(measure),
            "epoch_median": round(statistics.median(train) + statistics.median(measure), 1),
            "digits_per_second_median": round(EPOCH / statistics.median(train), 1),
        }
    pairs = {
        kind: [round(r / t, 2) for r, t in zip(seconds["reference"], seconds["trainer"],
                                                strict=True)]
        for kind, seconds in (("train", trained), ("measure", measured))
    }
    reference, trainer = rows["reference"], rows["trainer"]
    ratios = {
        "epoch": round(reference["epoch_median"] / trainer["epoch_median"], 2),
        "train": round(reference["train_median"] / trainer["train_median"], 2),
        "measure": round(reference["measure_median"] / trainer["measure_median"], 2),
        "train_median_of_pairs": round(statistics.median(pairs["train"]), 2),
        "train_pairs": pairs["train"],
        "measure_pairs": pairs["measure"],
    }
    return {"threads": threads, "paths": rows, "ratio_reference_over_trainer": ratios}


def augment_alone(images, batches):
    """Milliseconds per batch of the augmentation alone, reference then trainer (medians)."""
    import torch

    from trainer.augment import AugmentConfig, augment_batch

    generator = torch.Generator().manual_seed(0)
    config = AugmentConfig()
    result = {}
    for name in PATHS:
        context = reference_kernels() if name == "reference" else contextlib.nullcontext()
        with context:
            durations = []
            for _ in range(batches):
                started = time.perf_counter()
                augment_batch(images, config, generator)
                durations.append(time.perf_counter() - started)
        result[name] = round(statistics.median(durations) * 1000, 2)
    return result


def seed_check(data):
    """The trainer's `train` twice with seed 0 on 512 digits: are the weights identical?"""
    import torch

    from recognizer.network import build_model
    from trainer.training import TrainConfig, seed_everything, train

    weights = []
    for _ in range(2):
        seed_everything(0)
        model = build_model()
        train(model, data.head(512), TrainConfig(epochs=1, seed=0, train_eval_samples=0),
              verbosity=0)
        weights.append(model.state_dict())
    first, second = weights
    return all(torch.equal(first[key], second[key]) for key in first)


def print_report(report):
    print(f"Seconds per {EPOCH:,}-digit MNIST epoch, extrapolated from {report['digits']:,} "
          f"digits trained in turns of {report['chunk']} and {report['measured_digits']:,} "
          f"measured in turns of {MEASURE_BATCH:,} ({MEASURED_PER_EPOCH:,} per epoch), both "
          "paths taking turns in this one process; medians over the turns:")
    print(f"{'threads':>7}  {'path':<10}{'training':>10}{'measuring':>11}{'epoch':>8}"
          f"{'digits/s':>10}")
    for comparison in report["comparisons"]:
        for row in comparison["paths"].values():
            print(f"{row['threads']:>7}  {row['path']:<10}{row['train_median']:>10.1f}"
                  f"{row['measure_median']:>11.1f}{row['epoch_median']:>8.1f}"
                  f"{row['digits_per_second_median']:>10.0f}")
        ratio = comparison["ratio_reference_over_trainer"]
        print(f"{'':>7}  reference / trainer: epoch {ratio['epoch']}x, training {ratio['train']}x "
              f"(median of the turns' ratios {ratio['train_median_of_pairs']}x, range "
              f"{min(ratio['train_pairs'])}-{max(ratio['train_pairs'])}), measuring "
              f"{ratio['measure']}x")
    augment = report["augment_ms_per_batch"]
    print(f"augmentation alone, one batch of {report['batch_size']}: reference "
          f"{augment['reference']} ms, trainer {augment['trainer']} ms (one thread)")
    print("same seed, same weights (the trainer's train, twice on 512 digits): "
          f"{'yes' if report['same_seed_same_weights'] else 'NO'}")
    print(f"load average before/after: {report['load_average_before'][0]} / "
          f"{report['load_average_after'][0]} on {os.cpu_count()} CPUs")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--digits", type=int, default=7680,
                        help="MNIST train digits each path trains on, per thread count")
    parser.add_argument("--chunk", type=int, default=640,
                        help="digits per turn: each path trains on them, then the other")
    parser.add_argument("--measured", type=int, default=6000,
                        help="MNIST test digits each path measures, in turns of 1,000")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", default="1,0",
                        help="comma-separated torch thread counts to measure; 0 = torch's "
                             "default, one per core (default: 1,0)")
    args = parser.parse_args()
    try:
        thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        parser.error("--threads takes whole numbers separated by commas")

    setup_django()
    import torch

    from trainer import datasets
    from trainer.training import seed_everything

    default_threads = torch.get_num_threads()
    seed_everything(0)
    train_data = datasets.mnist_split("train", args.data_dir, limit=args.digits)
    measure_data = datasets.mnist_split("test", args.data_dir,
                                        limit=max(args.measured, MEASURE_BATCH))
    if len(train_data) < args.chunk:
        parser.error("--digits must be at least --chunk")

    load_before = os.getloadavg()
    comparisons = [compare_paths(train_data, measure_data, threads or default_threads,
                                 args.chunk, args.batch_size)
                   for threads in thread_counts]
    torch.set_num_threads(1)
    report = {
        "benchmark": "training",
        "batch_size": args.batch_size,
        "digits": len(train_data),
        "chunk": args.chunk,
        "measured_digits": len(measure_data),
        "epoch_digits": EPOCH,
        "comparisons": comparisons,
        "augment_ms_per_batch": augment_alone(train_data.inputs(torch.arange(args.batch_size)),
                                              50),
        "same_seed_same_weights": seed_check(train_data),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "machine": machine_summary(),
    }
    path = write_results("training", report)
    print_report(report)
    print(f"written to {path.relative_to(BASE_DIR)}")


if __name__ == "__main__":
    main()
