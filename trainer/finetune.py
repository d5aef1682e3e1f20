"""Train a new model version and activate it only when it is not worse.

`run_finetune` is what `python manage.py finetune` does:

1. take the lock in the model folder, so that two runs never overlap;
2. load MNIST train and test, the approved player drawings and the
   canvas-style evaluation set (MNIST test redrawn the way the site's canvas
   draws);
3. start from the active version's weights (or from scratch), train, and
   measure the new model and the active one on the same evaluation sets;
4. write the weights atomically, register the version (parent: the version it
   started from), and make it active only if it is at least as accurate as
   the active one on every evaluation set, unless told otherwise.

Nothing is written or registered until training has finished, so Ctrl-C or a
crash leaves the model folder and the active version as they were.
"""

import contextlib
import fcntl
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from recognizer import versions
from recognizer.checkpoints import save_checkpoint
from recognizer.network import ARCHITECTURE, build_model, count_parameters
from trainer import datasets
from trainer.augment import AugmentConfig
from trainer.evaluation import compare, evaluate
from trainer.training import TrainConfig, resolve_device, seed_everything, train

logger = logging.getLogger(__name__)

LOCK_NAME = ".finetune.lock"
MANIFEST_NAME = "manifest.json"
# A model that starts from trained weights needs a gentler peak rate than
# one that starts from random ones.
DEFAULT_LR_SCRATCH = 3e-3
DEFAULT_LR_FINETUNE = 5e-4
# One fixed canvas-style set, so that the accuracies of all versions compare.
CANVAS_SEED = 0


class FinetuneError(Exception):
    """A finetune run that cannot start or cannot finish; the message says why."""


class FinetuneBusy(FinetuneError):
    """Another finetune holds the lock on the model folder."""


@dataclass
class FinetuneOptions:
    epochs: int = 3
    batch_size: int = 128
    lr: float | None = None
    seed: int = 0
    data_dir: str | None = None
    device: str = "auto"
    limit: int | None = None
    dry_run: bool = False
    output: str | None = None
    from_scratch: bool = False
    force: bool = False
    activate: bool = True
    optimizer: str = "adamw"
    label_smoothing: float = 0.05
    weight_decay: float = 1e-4
    augment: bool = True
    threads: int | None = None
    verbosity: int = 1
    command_line: str = field(default_factory=lambda: shlex.join(sys.argv))


@dataclass
class FinetuneResult:
    version: object = None  # the new ModelVersion, None for a dry run
    activated: bool = False
    path: Path | None = None
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    reasons: list = field(default_factory=list)


@contextlib.contextmanager
def finetune_lock(model_dir):
    """Hold an exclusive lock on the model folder, or raise FinetuneBusy at once.

    flock locks die with their process, so a run that was killed never leaves
    a stale lock behind.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / LOCK_NAME
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise FinetuneBusy(
                f"another finetune is already running on {model_dir} ({holder}); "
                "wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {timezone.now():%Y-%m-%d %H:%M:%S}Z\n")
        handle.flush()
        yield path
    finally:
        handle.close()


def load_canvas_set(test_data, seed=0, limit=None):
    """MNIST test redrawn canvas-style, or (None, why not) if that is unavailable."""
    try:
        from trainer.canvas_eval import build_canvas_eval_set
    except ImportError as exc:
        return None, (
            "the canvas-style evaluation set is unavailable (trainer.canvas_eval cannot be "
            f"imported: {exc}); models are compared on MNIST test only"
        )
    images = test_data.images.numpy()
    labels = test_data.labels.numpy()
    inputs, canvas_labels = build_canvas_eval_set(images, labels, seed=seed, limit=limit)
    return datasets.DigitData.from_arrays(inputs, canvas_labels), None


def _evaluation_sets(test_data, canvas_data):
    sets = {"mnist_test": test_data}
    if canvas_data is not None:
        sets["canvas"] = canvas_data
    return sets


def _evaluate_all(model, sets, device):
    return {name: evaluate(model, data, device=device) for name, data in sets.items()}


def _summary(results):
    return {name: {"accuracy": r["accuracy"], "loss": r["loss"]} for name, r in results.items()}


def _unique_path(model_dir, stem):
    path = Path(model_dir) / f"{stem}.pt"
    counter = 2
    while path.exists():
        path = Path(model_dir) / f"{stem}-{counter}.pt"
        counter += 1
    return path


def _stored_path(path):
    """'builtin:<name>' for a file in the recognizer's weights folder."""
    try:
        Path(path).resolve().relative_to(versions.BUILTIN_DIR.resolve())
    except ValueError:
        return None
    return versions.BUILTIN_PREFIX + Path(path).name


def run_finetune(options, log=print):
    """Run one finetune; return a FinetuneResult. Raises FinetuneError."""
    if options.epochs < 1:
        raise FinetuneError("--epochs must be at least 1")
    if options.batch_size < 1:
        raise FinetuneError("--batch-size must be at least 1")
    if options.limit is not None and options.limit < 1:
        raise FinetuneError("--limit must be at least 1")
    if options.lr is not None and not options.lr > 0:
        raise FinetuneError("--lr must be positive")
    if options.threads is not None and options.threads < 1:
        raise FinetuneError("--threads must be at least 1")
    try:
        device = resolve_device(options.device)
    except ValueError as exc:
        raise FinetuneError(str(exc)) from exc
    if options.threads:
        # On a busy machine one thread per process beats two threads that keep
        # waiting for each other.
        torch.set_num_threads(options.threads)

    model_dir = Path(settings.RECOGNIZER_MODEL_DIR)
    lock = contextlib.nullcontext() if options.dry_run else finetune_lock(model_dir)
    with lock:
        return _run_locked(options, device, model_dir, log)


def _run_locked(options, device, model_dir, log):
    from trainer.mnist import MnistError

    started = time.perf_counter()
    seed_everything(options.seed, device)

    # -- data ------------------------------------------------------------
    try:
        train_mnist = datasets.mnist_split("train", options.data_dir, download=True)
        test_data = datasets.mnist_split("test", options.data_dir, limit=options.limit)
    except MnistError as exc:
        raise FinetuneError(str(exc)) from exc
    try:
        collected = datasets.collected_drawings()
    except DatabaseError as exc:
        raise FinetuneError(
            f"the database is not ready ({exc}); run `python manage.py migrate` first"
        ) from exc
    train_data = datasets.concatenate(collected, train_mnist).head(options.limit)
    n_collected = min(len(collected), len(train_data))
    canvas_data, canvas_note = load_canvas_set(test_data, seed=CANVAS_SEED, limit=options.limit)
    if canvas_note:
        log(canvas_note)
    sets = _evaluation_sets(test_data, canvas_data)
    data_counts = {
        "mnist_train": len(train_data) - n_collected,
        "collected": n_collected,
        "train_total": len(train_data),
        "mnist_test": len(test_data),
        "canvas": len(canvas_data) if canvas_data is not None else 0,
        "train_per_class": train_data.counts(),
    }

    # -- the starting point ------------------------------------------------
    active = versions.active_version()
    parent = None
    if options.from_scratch:
        model = build_model()
    else:
        if active is None:
            raise FinetuneError(
                "no model version is active to start from; run with --from-scratch "
                "(or run `migrate`, which registers the shipped model)"
            )
        try:
            model, _ = versions.load_version(active)
        except versions.CheckpointError as exc:
            raise FinetuneError(
                f"the active version {active.version} cannot be loaded: {exc}"
            ) from exc
        parent = active
    lr = options.lr or (DEFAULT_LR_SCRATCH if options.from_scratch else DEFAULT_LR_FINETUNE)
    config = TrainConfig(
        epochs=options.epochs, batch_size=options.batch_size, lr=lr,
        optimizer=options.optimizer, weight_decay=options.weight_decay,
        label_smoothing=options.label_smoothing, seed=options.seed, device=device,
        augment=AugmentConfig() if options.augment else None,
        max_steps=1 if options.dry_run else None,
    )
    start_name = "scratch" if parent is None else parent.version
    log(f"Training on {len(train_data)} samples ({n_collected} collected drawings) from "
        f"{start_name} for {options.epochs} epochs on {device} "
        f"(batch {options.batch_size}, lr {lr:g}, seed {options.seed}, "
        f"{count_parameters(model):,} parameters)")

    # -- training ------------------------------------------------------------
    history = train(
        model, train_data, config,
        eval_data=None if options.dry_run else test_data, verbosity=options.verbosity,
    )
    if options.dry_run:
        log(f"Dry run: one batch trained (loss {history[0]['train_loss']:.4f}); "
            f"evaluation sets: {', '.join(f'{k} ({len(v)})' for k, v in sets.items())}; "
            "nothing written")
        return FinetuneResult(training={"data": data_counts, "device": device})
    model.to("cpu")

    # -- evaluation ----------------------------------------------------------
    new_results = _evaluate_all(model, sets, "cpu")
    baseline = None
    if active is not None:
        try:
            active_model, _ = versions.load_version(active)
            baseline = {"version": active.version,
                        "results": _evaluate_all(active_model, sets, "cpu")}
        except versions.CheckpointError as exc:
            log(f"The active version {active.version} cannot be loaded for comparison: {exc}")
    duration = round(time.perf_counter() - started, 1)

    metrics = {
        "accuracy": new_results["mnist_test"]["accuracy"],
        "canvas_accuracy": new_results["canvas"]["accuracy"] if "canvas" in new_results else None,
        **new_results,
        "curves": history,
    }
    if canvas_note:
        metrics["canvas_note"] = canvas_note
    if baseline is not None:
        metrics["baseline"] = {"version": baseline["version"], **_summary(baseline["results"])}
    training = {
        "command": options.command_line,
        "seed": options.seed,
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "lr": lr,
        "optimizer": options.optimizer,
        "weight_decay": options.weight_decay,
        "label_smoothing": options.label_smoothing,
        "augment": config.augment.as_dict() if config.augment else None,
        "limit": options.limit,
        "data": data_counts,
        "device": device,
        "threads": torch.get_num_threads(),
        "from": start_name,
        "duration_seconds": duration,
        "torch": str(torch.__version__),
        "architecture": ARCHITECTURE,
    }

    # -- the decision ----------------------------------------------------------
    if not options.activate:
        activate, reasons = False, ["--no-activate: left inactive"]
    elif baseline is None:
        activate, reasons = True, ["no usable active version to compare with"]
    else:
        not_worse, reasons = compare(new_results, baseline["results"], list(sets))
        activate = not_worse or options.force
        if options.force and not not_worse:
            reasons.append("--force: activated although worse")
    metrics["activation"] = {"activated": activate, "reasons": reasons}

    # -- writing ---------------------------------------------------------------
    stamp = f"{timezone.now():%Y%m%d-%H%M%S}"
    path = Path(options.output) if options.output else _unique_path(model_dir, f"digitcnn-{stamp}")
    # Through JSON, so that the metadata holds only the plain types a
    # weights_only load accepts (torch.__version__, for one, is a str subclass).
    sha = save_checkpoint(model, path, metadata={"training": json.loads(json.dumps(training))})
    version_name = f"{stamp}-{sha[:8]}"
    try:
        row = versions.register_version(
            path, parent=parent, training=training, metrics=metrics, activate=activate,
            version=version_name,
        )
        builtin = _stored_path(path)
        if builtin:
            type(row).objects.filter(pk=row.pk).update(path=builtin)
            row.path = builtin
        if options.output:
            write_manifest(path, row, training, metrics)
    except BaseException:
        # A file without a version row would be an orphan nobody serves.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    log(f"Saved {path} as version {row.version}: MNIST test {metrics['accuracy']:.4%}"
        + (f", canvas {metrics['canvas_accuracy']:.4%}" if metrics["canvas_accuracy"] is not None
           else "")
        + f" ({duration:.0f}s)")
    for reason in reasons:
        log(f"  {reason}")
    log(f"Version {row.version} is {'now active' if activate else 'not activated'}.")
    return FinetuneResult(row, activate, path, metrics, training, reasons)


def write_manifest(path, row, training, metrics):
    """Describe the model file at `path` in a manifest.json beside it."""
    path = Path(path)
    manifest = {
        "file": path.name,
        "sha256": row.sha256,
        "size_bytes": row.size_bytes,
        "version": row.version,
        "architecture": ARCHITECTURE,
        "created": f"{timezone.now():%Y-%m-%dT%H:%M:%SZ}",
        "command": training["command"],
        "seed": training["seed"],
        "epochs": training["epochs"],
        "data": training["data"],
        "duration_seconds": training["duration_seconds"],
        "torch": training["torch"],
        "training": training,
        "metrics": metrics,
    }
    target = path.parent / MANIFEST_NAME
    tmp = target.with_name(f".{MANIFEST_NAME}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, target)
    return target
