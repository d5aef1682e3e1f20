"""The training loop, readable top to bottom.

One call to `train` runs `epochs` passes over the data: each batch is
augmented, pushed through the network, and the optimizer (AdamW or SGD with
Nesterov momentum) steps under a one-cycle learning-rate schedule. After each
epoch the model is measured on a held-out set, which gives the loss and
accuracy curves stored with every model version.

`train` takes any data with a length, `labels` and `inputs(index)` (and
`subset(index)` for the training subset it measures): trainer/datasets.py's
DigitData of images, or trainer/head_only.py's features for a run that
trains only the dense layers on a frozen convolution trunk. `on_step` sees
every step (its number and loss) and may stop the run by raising.
`snapshots` (trainer/snapshots.py) is told the start, every step and every
epoch's end, and keeps the network as it was at some of them.

Runs are repeatable: `seed_everything` seeds torch, numpy and Python and asks
torch for deterministic kernels, and the shuffling and augmentation draw from
their own generator seeded from the same number.

On the CPU the network trains in the channels-last layout and without the
deterministic mode's NaN fill of new tensors (trainer/cpu_kernels.py): 1.3
times the digits a second of NCHW with the fill on the 2-core machine when
it is quiet, up to twice when other work loads it; the same weights for the
same seed, options and thread count.
"""

import random
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from trainer import cpu_kernels
from trainer.augment import AugmentConfig, augment_batch
from trainer.datasets import batches
from trainer.evaluation import evaluate
from trainer.progress import Progress


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3  # the peak of the one-cycle schedule
    optimizer: str = "adamw"  # or "sgd"
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    label_smoothing: float = 0.05
    seed: int = 0
    device: str = "cpu"
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    # Stop after this many batches in total (a dry run uses 1).
    max_steps: int | None = None
    # Training digits measured after each epoch like the test set (see
    # fixed_subset); 0 measures none.
    train_eval_samples: int = 5000
    # Channels-last tensors (trainer/cpu_kernels.py); None: on the CPU only.
    channels_last: bool | None = None
    # AdamW's fused kernel: one pass over each parameter per step instead of
    # a dozen. A head-only step on one CPU thread spent 2.8 ms in AdamW's
    # default (foreach) update and 1.0 ms in the fused one, of about 5 ms in
    # all; the weights differ in the last bits, so finetune keeps the default
    # its records were made with.
    fused_optimizer: bool = False

    def as_dict(self):
        values = asdict(self)
        values["augment"] = self.augment.as_dict() if self.augment else None
        return values


def seed_everything(seed, device="cpu"):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # On the CPU every kernel this network uses has a deterministic version;
    # on CUDA a few do not, and warning beats refusing to train.
    torch.use_deterministic_algorithms(True, warn_only=str(device).startswith("cuda"))
    if str(device).startswith("cuda"):
        torch.backends.cudnn.benchmark = False


def resolve_device(name="auto"):
    """'auto' -> cuda when available, else cpu; a named device must exist."""
    name = (name or "auto").lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}: use auto, cpu or cuda")
    return name


# torch.optim imports torch._dynamo, and with it torch._inductor, when the
# first optimizer of the process is made. Those packages import each other:
# two threads importing them at once can meet halfway, and one of them gets
# "cannot import name 'IndentedBuffer' from partially initialized module
# 'torch._inductor.utils'": a teach worker warming up beside a training in
# another thread can meet it, and six threads importing torch._dynamo and
# torch._inductor.utils at once met it in every try. The project's threads
# import them one at a time, here.
_OPTIMIZER_IMPORTS = threading.Lock()


def import_optimizer_machinery():
    """Import what making the first optimizer imports, one thread at a time."""
    with _OPTIMIZER_IMPORTS:
        import torch._dynamo  # noqa: F401


def build_optimizer(model, config):
    import_optimizer_machinery()
    # Norm weights and biases are not decayed: shrinking them only hurts.
    decay, no_decay = [], []
    for parameter in model.parameters():
        (decay if parameter.ndim > 1 else no_decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "adamw":
        if config.fused_optimizer:
            return torch.optim.AdamW(groups, lr=config.lr, fused=True)
        return torch.optim.AdamW(groups, lr=config.lr)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: use adamw or sgd")


def one_cycle(optimizer, max_lr, total_steps, warmup=0.25):
    """Warm up over `warmup` of the steps, then anneal; a constant rate for tiny runs.

    OneCycleLR needs at least one step in each of its two phases.
    """
    if total_steps < 3:
        for group in optimizer.param_groups:
            group["lr"] = max_lr
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=total_steps,
        pct_start=max(warmup, 2 / total_steps),
    )


def fixed_subset(data, count):
    """`count` samples spread evenly over `data` (all of them if it has fewer).

    Evenly spaced rather than the first ones, so that every part of the
    training data (MNIST, drawings, canvas-style and styles digits, which are
    concatenated in that order) is in it.
    """
    if count <= 0 or not len(data):
        return None
    if count >= len(data):
        return data
    index = torch.linspace(0, len(data) - 1, count).round().long()
    return data.subset(index)


@dataclass
class Optimisation:
    """The model, its loss and optimizer, stepping under the one-cycle schedule."""

    model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    total_steps: int
    steps: int = 0

    @classmethod
    def for_run(cls, model, config, total_steps):
        optimizer = build_optimizer(model, config)
        return cls(model, nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
                   optimizer, one_cycle(optimizer, config.lr, total_steps), total_steps)

    def step(self, inputs, labels):
        """One optimizer step on a batch; returns (loss, logits)."""
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(inputs)
        loss = self.criterion(logits, labels)
        loss.backward()
        self.optimizer.step()
        if self.steps < self.total_steps - 1:
            self.scheduler.step()
        self.steps += 1
        return loss, logits

    def reached(self, max_steps):
        return max_steps is not None and self.steps >= max_steps


def train(model, train_data, config, eval_data=None, verbosity=1, progress_stream=None,
          on_step=None, snapshots=None):
    """Train `model` in place; return the per-epoch history (a list of dicts).

    Each history entry has the epoch's mean training loss and accuracy, its
    duration and throughput, the learning rate at its end and, when
    `eval_data` is given, the loss and accuracy on it.

    `train_loss` is the running mean while training: augmented digits,
    dropout on, label smoothing in the loss, weights changing as it goes.
    It cannot be compared with the test loss, so `train_eval_loss` and
    `train_eval_accuracy` measure a fixed subset of the training digits the
    way the test set is measured (eval mode, no augmentation, plain cross
    entropy) at the end of each epoch.
    """
    model.to(config.device)
    layout = cpu_kernels.memory_format(config.device, config.channels_last)
    with cpu_kernels.model_layout(model, layout), cpu_kernels.unfilled_memory():
        try:
            history = _train_epochs(model, train_data, config, eval_data, verbosity,
                                    progress_stream, on_step, snapshots)
        finally:
            model.eval()
    return history


def total_steps(samples, config):
    """The optimizer steps of a run: every epoch's batches, or max_steps if fewer.

    The schedule spans exactly these, so a run cut short by max_steps (a
    head-only run of a few hundred steps) still anneals to its end.
    """
    steps_per_epoch = max(1, -(-samples // config.batch_size))
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    return max(1, total)


def _train_epochs(model, train_data, config, eval_data, verbosity, progress_stream, on_step,
                  snapshots=None):
    """`train`'s epochs, with the model already on its device and in its layout."""
    generator = torch.Generator().manual_seed(config.seed)
    augment_generator = torch.Generator(device=config.device).manual_seed(config.seed + 1)
    optimisation = Optimisation.for_run(model, config, total_steps(len(train_data), config))
    quiet = verbosity < 1
    train_subset = fixed_subset(train_data, config.train_eval_samples)
    history = []
    if snapshots is not None:
        snapshots.at_start(model)
    for epoch in range(1, config.epochs + 1):
        model.train()
        started = time.perf_counter()
        progress = Progress(len(train_data), f"epoch {epoch}/{config.epochs}",
                            stream=progress_stream, enabled=not quiet, leave=verbosity >= 2)
        loss_sum, correct, seen = train_epoch(optimisation, train_data, config,
                                              (generator, augment_generator), progress,
                                              _step_hook(on_step, snapshots, model, epoch))
        progress.close()
        seconds = time.perf_counter() - started
        entry = {
            "epoch": epoch,
            "train_loss": round(loss_sum / max(seen, 1), 6),
            "train_accuracy": round(correct / max(seen, 1), 6),
            "lr": optimisation.optimizer.param_groups[0]["lr"],
            "seconds": round(seconds, 2),
            "samples_per_second": round(seen / seconds, 1) if seconds > 0 else None,
        }
        entry.update(_measure_epoch(model, config, train_subset, eval_data))
        history.append(entry)
        if snapshots is not None:
            snapshots.after_epoch(model, optimisation.steps, epoch, entry)
        if not quiet:
            tqdm.write(_epoch_line(entry, config, seconds))
        if optimisation.reached(config.max_steps):
            break
    return history


def _step_hook(on_step, snapshots, model, epoch):
    """What is told after each step of `epoch`: `on_step`, then the snapshots."""
    if snapshots is None:
        return on_step

    def after_step(step, loss):
        if on_step is not None:
            on_step(step, loss)
        snapshots.after_step(model, step, epoch, loss)
    return after_step


def train_epoch(optimisation, data, config, generators, progress, on_step=None):
    """One pass over `data` (shuffled and augmented by `generators`).

    Returns (summed loss, correct answers, samples seen); stops early once
    config.max_steps steps are done in all.
    """
    device = config.device
    layout = cpu_kernels.memory_format(device, config.channels_last)
    generator, augment_generator = generators
    loss_sum, correct, seen = 0.0, 0, 0
    for inputs, labels in batches(data, config.batch_size, generator):
        inputs = augment_batch(inputs.to(device), config.augment, augment_generator)
        inputs = cpu_kernels.as_layout(inputs, layout)
        labels = labels.to(device)
        loss, logits = optimisation.step(inputs, labels)

        batch = len(labels)
        loss_value = loss.item()
        loss_sum += loss_value * batch
        correct += int((logits.argmax(dim=1) == labels).sum())
        seen += batch
        progress.update(batch, loss=loss_sum / seen)
        if on_step is not None:
            on_step(optimisation.steps, loss_value)
        if optimisation.reached(config.max_steps):
            break
    return loss_sum, correct, seen


def _measure_epoch(model, config, train_subset, eval_data):
    """The fixed training subset and the held-out set, measured like a test set."""
    measured = {}
    if train_subset is not None and config.max_steps is None:
        result = evaluate(model, train_subset, device=config.device)
        measured["train_eval_loss"] = result["loss"]
        measured["train_eval_accuracy"] = result["accuracy"]
    if eval_data is not None and len(eval_data):
        result = evaluate(model, eval_data, device=config.device)
        measured["eval_loss"] = result["loss"]
        measured["eval_accuracy"] = result["accuracy"]
    return measured


def _epoch_line(entry, config, seconds):
    line = (f"epoch {entry['epoch']}/{config.epochs}: loss {entry['train_loss']:.4f}, "
            f"train accuracy {entry['train_accuracy']:.4%}, {seconds:.0f}s, "
            f"{entry['samples_per_second']:.0f} samples/s")
    if "eval_accuracy" in entry:
        line += f", test accuracy {entry['eval_accuracy']:.4%}"
    return line
