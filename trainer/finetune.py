"""Train a new model version and activate it only when it is not worse.

`run_finetune` is what `python manage.py finetune` does, one named step
after another (`_run_locked` reads top to bottom):

1. take the lock in the model folder, so that two runs never overlap;
2. load MNIST train and test, the canvas-style evaluation set (MNIST test
   redrawn the way the site's canvas draws) and the approved player drawings,
   split by player into a training part (mixed into MNIST with a weight) and
   a fixed held-out part (trainer/drawings.py);
3. start from the active version's weights (or from scratch), train, and
   measure the new model and the active one on the same evaluation sets:
   MNIST test, canvas-style, held-out drawings;
4. write the weights atomically, register the version (parent: the version it
   started from), and make it active only if it is not worse than the active
   one on every evaluation set (MNIST test and canvas-style within a
   tolerance), unless told otherwise, and only if the version it was compared
   with is still the active one: an operator who activated or rolled back
   another version during training has the last word.

Beside this module: the options and their checks (trainer/finetune_options.py),
the data of step 2 (trainer/finetune_data.py), the activation rule
(trainer/activation.py), and what a run records and prints
(trainer/finetune_record.py). Nothing is written or registered until training
has finished, so Ctrl-C or a crash leaves the model folder and the active
version as they were.
"""

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recognizer import calibration, versions
from recognizer.checkpoints import save_checkpoint
from recognizer.network import build_model, count_parameters
from trainer import activation, confidence, finetune_record, head_only, snapshots, styles_set
from trainer.augment import AugmentConfig
from trainer.evaluation import evaluate
from trainer.finetune_data import load_data
from trainer.finetune_options import FinetuneError, FinetuneOptions, check_options
from trainer.training import TrainConfig, resolve_device, seed_everything, train

__all__ = ["FinetuneBusy", "FinetuneError", "FinetuneOptions", "FinetuneResult", "LOCK_NAME",
           "finetune_lock", "run_finetune"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".finetune.lock"
# A model that starts from trained weights needs a gentler peak rate than
# one that starts from random ones.
DEFAULT_LR_SCRATCH = 3e-3
DEFAULT_LR_FINETUNE = 5e-4


class FinetuneBusy(FinetuneError):
    """Another finetune holds the lock on the model folder."""


@dataclass
class FinetuneResult:
    version: object = None  # the new ModelVersion, None for a dry run
    activated: bool = False
    path: Path | None = None
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    reasons: list = field(default_factory=list)


@dataclass
class Measurements:
    """The new version measured, and the active one beside it."""

    results: dict  # {set name: metrics} of the new version
    confidence: dict  # its confidence reports, at its temperature
    temperature: float = 1.0
    calibration_fit: dict | None = None
    # {"version", "results", "confidence"} of the active version; None if
    # there was none or it could not be loaded.
    baseline: dict | None = None


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


# -- the run ---------------------------------------------------------------------


def run_finetune(options, log=print):
    """Run one finetune; return a FinetuneResult. Raises FinetuneError."""
    check_options(options)
    device = _prepare_device(options)
    model_dir = Path(settings.RECOGNIZER_MODEL_DIR)
    lock = contextlib.nullcontext() if options.dry_run else finetune_lock(model_dir)
    with lock:
        return _run_locked(options, device, model_dir, log)


def _run_locked(options, device, model_dir, log):
    """The run itself, step by step, with the lock held."""
    started = time.perf_counter()
    seed_everything(options.seed, device)
    data = load_data(options, log)

    active = versions.active_version()
    model, parent = starting_model(options, active)
    config = train_config(options, device)
    start_name = "scratch" if parent is None else parent.version
    _log_plan(log, options, data, model, config, start_name)

    history = train_model(model, data, config, options,
                          snapshot_writer(options, config, data, start_name))
    if options.dry_run:
        log(f"Dry run: one batch trained (loss {history[0]['train_loss']:.4f}); "
            f"evaluation sets: {', '.join(f'{k} ({len(v)})' for k, v in data.sets.items())}; "
            "nothing written")
        return FinetuneResult(training={"data": data.counts, "device": device})
    model.to("cpu")

    measured = measure(model, active, data, log)
    duration = round(time.perf_counter() - started, 1)
    metrics = finetune_record.version_metrics(measured, history, data.canvas_note)
    training = finetune_record.training_record(
        options, config, data, start_name, measured.temperature, duration)
    wanted, reasons = activation.gate(
        measured.results, measured.baseline["results"] if measured.baseline else None,
        data.sets, activate=options.activate, force=options.force, tolerance=options.tolerance,
    )

    path, version_name = _write_weights(model, options, model_dir, training)
    row, activate, reasons = register(path, version_name, options, parent, active, training,
                                      metrics, wanted, reasons)
    for line in finetune_record.outcome_lines(path, row, metrics, measured, duration,
                                              activate, reasons):
        log(line)
    return FinetuneResult(row, activate, path, metrics, training, reasons)


def _prepare_device(options):
    try:
        device = resolve_device(options.device)
    except ValueError as exc:
        raise FinetuneError(str(exc)) from exc
    if options.threads:
        # On a busy machine one thread per process beats two threads that keep
        # waiting for each other.
        torch.set_num_threads(options.threads)
    return device


# -- the starting point and training -------------------------------------------------


def starting_model(options, active):
    """(model, parent): random weights with --from-scratch, else the active version's."""
    if options.from_scratch:
        return build_model(), None
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
    return model, active


def train_config(options, device):
    lr = options.lr or (DEFAULT_LR_SCRATCH if options.from_scratch else DEFAULT_LR_FINETUNE)
    return TrainConfig(
        epochs=options.epochs, batch_size=options.batch_size, lr=lr,
        optimizer=options.optimizer, weight_decay=options.weight_decay,
        label_smoothing=options.label_smoothing, seed=options.seed, device=device,
        augment=AugmentConfig() if options.augment else None,
        max_steps=1 if options.dry_run else None,
        channels_last=None if options.channels_last else False,
    )


def snapshot_writer(options, config, data, start_name):
    """A SnapshotWriter into --snapshots DIR (None without it, or on a dry run)."""
    if not options.snapshots or options.dry_run:
        return None
    return snapshots.SnapshotWriter(
        options.snapshots, data.test.head(snapshots.QUICK_TEST_DIGITS),
        record={"command": options.command_line, "seed": options.seed,
                "epochs": options.epochs, "batch_size": options.batch_size, "lr": config.lr,
                "optimizer": options.optimizer, "label_smoothing": options.label_smoothing,
                "augment": config.augment.as_dict() if config.augment else None,
                "from": start_name, "device": config.device,
                "threads": torch.get_num_threads(), "torch": str(torch.__version__),
                "data": data.counts})


def train_model(model, data, config, options, writer=None):
    """Train `model` in place on the run's data; the per-epoch history.

    With --head-only, only the dense layers learn, on features of the frozen
    convolutions computed batch by batch (trainer/head_only.py), through the
    same loop.
    """
    eval_data = None if options.dry_run else data.test
    if not options.head_only:
        return train(model, data.train, config, eval_data=eval_data,
                     verbosity=options.verbosity, snapshots=writer)
    trunk = head_only.frozen_trunk(model)
    return head_only.train_head(
        model, head_only.TrunkFeatures(trunk, data.train, config.augment, seed=config.seed + 1),
        config, eval_data=None if eval_data is None else head_only.TrunkFeatures(trunk, eval_data),
        verbosity=options.verbosity)


def _log_plan(log, options, data, model, config, start_name):
    collected = data.collected
    n_collected = len(collected.train)
    what = ", the dense layers only (convolutions frozen)" if options.head_only else ""
    log(f"Training on {len(data.train)} samples ({n_collected} collected drawings) from "
        f"{start_name} for {options.epochs} epochs on {config.device} "
        f"(batch {options.batch_size}, lr {config.lr:g}, seed {options.seed}, "
        f"{count_parameters(model):,} parameters){what}")
    log(f"  {data.counts['mnist_train']} MNIST digits + {n_collected} drawings by "
        f"{len(collected.train_players)} players x weight {options.drawings_weight:g} "
        f"({data.counts['collected_samples']} samples); held out for evaluation: "
        f"{len(collected.heldout)} drawings by {len(collected.heldout_players)} players "
        f"({' and '.join(collected.statuses)})")


# -- calibration and evaluation --------------------------------------------------------


def measure(model, active, data, log):
    """Fit the new model's temperature; measure it, and the active version beside it."""
    temperature, calibration_fit = 1.0, None
    if data.calibration is not None:
        temperature, calibration_fit = confidence.fit(model, data.calibration)
    confidence_sets = {"canvas": data.canvas}
    if data.styles is not None:
        confidence_sets["styles"] = styles_set.as_digit_data(data.styles)
    confidence_sets = {k: v for k, v in confidence_sets.items() if v is not None}
    results = _evaluate_all(model, data.sets, "cpu")
    if data.styles is not None:
        # Measured and shown, not part of the activation rule below.
        results["styles"] = styles_set.evaluate(model, data.styles)
    return Measurements(
        results=results,
        confidence=confidence.reports(model, temperature, confidence_sets),
        temperature=temperature,
        calibration_fit=calibration_fit,
        baseline=_measure_active(active, data, confidence_sets, log),
    )


def _measure_active(active, data, confidence_sets, log):
    if active is None:
        return None
    try:
        active_model, active_metadata = versions.load_version(active)
    except versions.CheckpointError as exc:
        log(f"The active version {active.version} cannot be loaded for comparison: {exc}")
        return None
    baseline = {"version": active.version,
                "results": _evaluate_all(active_model, data.sets, "cpu")}
    if data.styles is not None:
        baseline["results"]["styles"] = styles_set.evaluate(active_model, data.styles)
    baseline["confidence"] = confidence.reports(
        active_model, calibration.temperature_of(active_metadata), confidence_sets)
    return baseline


def _evaluate_all(model, sets, device):
    return {name: evaluate(model, data, device=device) for name, data in sets.items()}


# -- writing and registering ---------------------------------------------------------


def _write_weights(model, options, model_dir, training):
    """Write the checkpoint (atomically); return (its path, the version's name)."""
    stamp = f"{timezone.now():%Y%m%d-%H%M%S}"
    path = Path(options.output) if options.output else _unique_path(model_dir, f"digitcnn-{stamp}")
    # Through JSON, so that the metadata holds only the plain types a
    # weights_only load accepts (torch.__version__, for one, is a str subclass).
    sha = save_checkpoint(model, path, metadata={"training": json.loads(json.dumps(training)),
                                                 calibration.METADATA_KEY: training["temperature"]})
    return path, f"{stamp}-{sha[:8]}"


def register(path, version_name, options, parent, active, training, metrics, wanted, reasons):
    """Register the weights at `path` as a version; activate it if the rule says so.

    Returns (row, activated, reasons). On any failure the file is removed.
    """
    try:
        # Reading the active version, deciding and activating in one
        # transaction under the version-row lock: an activation in the admin
        # lands either before (and is seen here) or after (and wins).
        with transaction.atomic():
            active_now = versions.lock_versions()
            activate, reasons = activation.activation_decision(
                wanted, reasons, active.version if active is not None else None,
                active_now.version if active_now is not None else None,
            )
            metrics["activation"] = {"activated": activate, "reasons": reasons}
            row = versions.register_version(
                path, parent=parent, training=training, metrics=metrics, activate=activate,
                version=version_name,
            )
            _store_builtin_path(row, path)
        if options.output:
            finetune_record.write_manifest(path, row, training, metrics)
    except BaseException:
        # A file without a version row would be an orphan nobody serves.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return row, activate, reasons


def _unique_path(model_dir, stem):
    path = Path(model_dir) / f"{stem}.pt"
    counter = 2
    while path.exists():
        path = Path(model_dir) / f"{stem}-{counter}.pt"
        counter += 1
    return path


def _store_builtin_path(row, path):
    """Record a file in the recognizer's weights folder as 'builtin:<name>'."""
    try:
        Path(path).resolve().relative_to(versions.BUILTIN_DIR.resolve())
    except ValueError:
        return
    builtin = versions.BUILTIN_PREFIX + Path(path).name
    type(row).objects.filter(pk=row.pk).update(path=builtin)
    row.path = builtin
