"""Train a new model version and activate it only when it is not worse.

`run_finetune` is what `python manage.py finetune` does:

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
from django.db import DatabaseError, transaction
from django.utils import timezone

from recognizer import calibration, versions
from recognizer.checkpoints import save_checkpoint
from recognizer.network import ARCHITECTURE, build_model, count_parameters
from trainer import confidence, datasets, drawings, styles_set
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
# Canvas-style renderings of training digits (--canvas-train) use other draws.
CANVAS_TRAIN_SEED = 1
# Percentage points of MNIST test (and canvas-style) accuracy a new version may
# lose and still be activated: a version that learns players' drawings pays
# for it with a few MNIST digits, and a few digits in 10,000 are noise.
DEFAULT_TOLERANCE = 0.2
HELDOUT_SET = "heldout_drawings"
SET_TITLES = {"mnist_test": "MNIST test", "canvas": "canvas-style",
              HELDOUT_SET: "held-out drawings", "styles": "styles (all)"}


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
    canvas_train: int = 0
    styles_train: int = 0
    styles_per_style: int = styles_set.DEFAULT_PER_STYLE
    calibration_holdout: int = confidence.DEFAULT_HOLDOUT
    workers: int | None = None
    include_pending: bool = False
    holdout_fraction: float = drawings.DEFAULT_HOLDOUT_FRACTION
    drawings_weight: float = drawings.DEFAULT_WEIGHT
    tolerance: float = DEFAULT_TOLERANCE
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


def _evaluation_sets(test_data, canvas_data, heldout=None):
    sets = {"mnist_test": test_data}
    if canvas_data is not None:
        sets["canvas"] = canvas_data
    if heldout is not None and len(heldout):
        sets[HELDOUT_SET] = heldout
    return sets


def _evaluate_all(model, sets, device):
    return {name: evaluate(model, data, device=device) for name, data in sets.items()}


def _summary(results):
    return {name: {"accuracy": r["accuracy"], "loss": r["loss"]} for name, r in results.items()}


def before_after(new_results, baseline_results):
    """{set: {"before", "after", "change_points"}}: accuracies of the two models side by side."""
    table = {}
    for name, result in new_results.items():
        after = result["accuracy"]
        before = (baseline_results or {}).get(name, {}).get("accuracy")
        change = None if before is None or after is None else round((after - before) * 100, 4)
        table[name] = {"count": result["count"], "before": before, "after": after,
                       "change_points": change}
    return table


def _percent(value):
    return "-" if value is None else f"{value:.2%}"


def describe_before_after(table):
    """One printable line per evaluation set."""
    lines = []
    for name, row in table.items():
        line = (f"  {SET_TITLES.get(name, name)} ({row['count']}): {_percent(row['before'])} -> "
                f"{_percent(row['after'])}")
        if row["change_points"] is not None:
            line += f" ({row['change_points']:+.2f} points)"
        lines.append(line)
    return lines


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
    if options.canvas_train < 0:
        raise FinetuneError("--canvas-train must not be negative")
    if options.styles_train < 0:
        raise FinetuneError("--styles-train must not be negative")
    if not 0 <= options.styles_per_style <= 5000:
        raise FinetuneError("--styles-per-style must be between 0 and 5000")
    if not 0 <= options.calibration_holdout <= 20000:
        raise FinetuneError("--calibration-holdout must be between 0 and 20000")
    if options.workers is not None and options.workers < 1:
        raise FinetuneError("--workers must be at least 1")
    try:
        drawings.check_fraction(options.holdout_fraction)
    except ValueError as exc:
        raise FinetuneError("--holdout-fraction must be at least 0 and below 1") from exc
    try:
        drawings.check_weight(options.drawings_weight)
    except ValueError as exc:
        raise FinetuneError("--drawings-weight must be between 0 and 1000") from exc
    if not 0 <= options.tolerance <= 100:
        raise FinetuneError("--tolerance must be between 0 and 100 (percentage points)")
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


def activation_decision(wanted, reasons, compared_with, active_now):
    """Whether to activate the new version: (activate, reasons).

    `wanted` is the gate's verdict (or the options') with its `reasons`;
    `compared_with` is the name of the version active when the run started
    (the one it was measured against; None if none was), `active_now` the
    name of the one active at the end, read under the version-row lock. A run
    takes minutes to hours; if someone activated or rolled back another
    version meanwhile, activating now would silently undo that decision, and
    the comparison was made against a version that is no longer the one
    serving. --force does not override this: it overrules the gate, not an
    operator.
    """
    reasons = list(reasons)
    if not wanted:
        return False, reasons
    if compared_with != active_now:
        reasons.append(
            f"the active version changed during training (from {compared_with or 'none'} to "
            f"{active_now or 'none'}: activated or rolled back meanwhile); not activated, "
            f"run finetune again to compare with {active_now or 'no version'}"
        )
        return False, reasons
    return True, reasons


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
        collected = drawings.load_collected(
            include_pending=options.include_pending,
            holdout_fraction=options.holdout_fraction,
        )
    except DatabaseError as exc:
        raise FinetuneError(
            f"the database is not ready ({exc}); run `python manage.py migrate` first"
        ) from exc
    # The last --calibration-holdout MNIST train digits are never trained
    # on: the temperature is fitted on them (trainer/confidence.py).
    train_pool, calibration_digits = confidence.split_holdout(
        train_mnist, options.calibration_holdout)
    mnist_part = train_pool.head(options.limit)
    train_data, drawing_samples = drawings.mix(
        mnist_part, collected.train, options.drawings_weight, seed=options.seed)
    n_canvas_train = min(options.canvas_train, options.limit or options.canvas_train,
                         len(train_pool))
    if n_canvas_train:
        try:
            canvas_train = datasets.canvas_style(train_pool, n_canvas_train, CANVAS_TRAIN_SEED,
                                                 workers=options.workers)
        except ImportError as exc:
            raise FinetuneError(f"--canvas-train needs trainer.canvas_eval: {exc}") from exc
        train_data = datasets.concatenate(train_data, canvas_train)
    n_styles_train = 0
    if options.styles_train:
        styles_train = styles_set.training_digits(
            train_pool, min(options.styles_train, options.limit or options.styles_train),
            options.workers)
        n_styles_train = len(styles_train)
        train_data = datasets.concatenate(train_data, styles_train)
    canvas_data, canvas_note = load_canvas_set(test_data, seed=CANVAS_SEED, limit=options.limit)
    if canvas_note:
        log(canvas_note)
    styles_eval = None
    if options.styles_per_style:
        per_style = options.styles_per_style
        if options.limit:
            per_style = min(per_style, max(2, options.limit // len(styles_set.styles.STYLE_NAMES)))
        styles_eval = styles_set.evaluation_set(test_data, per_style, options.workers)
    calibration_data = None
    if calibration_digits is not None:
        calibration_data = confidence.calibration_set(
            calibration_digits, limit=options.limit, workers=options.workers)
    sets = _evaluation_sets(test_data, canvas_data, collected.heldout)
    data_counts = {
        "mnist_train": len(mnist_part),
        "canvas_train": n_canvas_train,
        "styles_train": n_styles_train,
        "calibration": len(calibration_data) if calibration_data is not None else 0,
        "calibration_holdout_mnist": options.calibration_holdout,
        # Collected drawings used for training (each counted once).
        "collected": len(collected.train),
        "collected_weight": options.drawings_weight,
        "collected_samples": drawing_samples,
        "heldout_drawings": len(collected.heldout),
        "players_train": len(collected.train_players),
        "players_heldout": len(collected.heldout_players),
        "drawing_statuses": list(collected.statuses),
        "holdout_fraction": collected.holdout_fraction,
        "train_total": len(train_data),
        "mnist_test": len(test_data),
        "canvas": len(canvas_data) if canvas_data is not None else 0,
        "styles": len(styles_eval) if styles_eval is not None else 0,
        "train_per_class": train_data.counts(),
    }
    n_collected = len(collected.train)

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
    log(f"  {len(mnist_part)} MNIST digits + {n_collected} drawings by "
        f"{len(collected.train_players)} players x weight {options.drawings_weight:g} "
        f"({drawing_samples} samples); held out for evaluation: {len(collected.heldout)} "
        f"drawings by {len(collected.heldout_players)} players "
        f"({' and '.join(collected.statuses)})")

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

    # -- calibration and evaluation --------------------------------------------
    temperature, calibration_fit = 1.0, None
    if calibration_data is not None:
        temperature, calibration_fit = confidence.fit(model, calibration_data)
    confidence_sets = {"canvas": canvas_data}
    if styles_eval is not None:
        confidence_sets["styles"] = styles_set.as_digit_data(styles_eval)
    confidence_sets = {k: v for k, v in confidence_sets.items() if v is not None}
    new_results = _evaluate_all(model, sets, "cpu")
    if styles_eval is not None:
        # Measured and shown, not part of the activation rule below.
        new_results["styles"] = styles_set.evaluate(model, styles_eval)
    new_confidence = confidence.reports(model, temperature, confidence_sets)
    baseline = None
    if active is not None:
        try:
            active_model, active_metadata = versions.load_version(active)
            baseline = {"version": active.version,
                        "results": _evaluate_all(active_model, sets, "cpu")}
            if styles_eval is not None:
                baseline["results"]["styles"] = styles_set.evaluate(active_model, styles_eval)
            baseline["confidence"] = confidence.reports(
                active_model, calibration.temperature_of(active_metadata), confidence_sets)
        except versions.CheckpointError as exc:
            log(f"The active version {active.version} cannot be loaded for comparison: {exc}")
    duration = round(time.perf_counter() - started, 1)

    metrics = {
        "accuracy": new_results["mnist_test"]["accuracy"],
        "canvas_accuracy": new_results["canvas"]["accuracy"] if "canvas" in new_results else None,
        "styles_accuracy": new_results["styles"]["accuracy"] if "styles" in new_results else None,
        **new_results,
        "curves": history,
    }
    if canvas_note:
        metrics["canvas_note"] = canvas_note
    if HELDOUT_SET in new_results:
        metrics["heldout_drawings_accuracy"] = new_results[HELDOUT_SET]["accuracy"]
    if baseline is not None:
        metrics["baseline"] = {"version": baseline["version"], **_summary(baseline["results"])}
    # Before = the active version (the starting point unless --from-scratch),
    # after = the new one, on the same sets.
    metrics["before_after"] = before_after(
        new_results, baseline["results"] if baseline is not None else None)
    metrics["before_after"].update(styles_set.before_after_rows(
        new_results.get("styles"), baseline["results"].get("styles") if baseline else None))
    metrics["calibration"] = {
        "temperature": temperature,
        "fit": calibration_fit,
        "after": new_confidence,
        "before": {"version": baseline["version"], **baseline["confidence"]}
        if baseline is not None else None,
    }
    training = {
        "command": options.command_line,
        "seed": options.seed,
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "lr": lr,
        "optimizer": options.optimizer,
        "weight_decay": options.weight_decay,
        "label_smoothing": options.label_smoothing,
        "temperature": temperature,
        "augment": config.augment.as_dict() if config.augment else None,
        "limit": options.limit,
        "include_pending": options.include_pending,
        "holdout_fraction": collected.holdout_fraction,
        "drawings_weight": options.drawings_weight,
        "tolerance_points": options.tolerance,
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
        # MNIST and the canvas-style set may lose a little (the tolerance);
        # the held-out drawings, what the run is for, may not.
        tolerances = {"mnist_test": options.tolerance, "canvas": options.tolerance}
        not_worse, reasons = compare(new_results, baseline["results"], list(sets), tolerances)
        activate = not_worse or options.force
        if options.force and not not_worse:
            reasons.append("--force: activated although worse")

    # -- writing ---------------------------------------------------------------
    stamp = f"{timezone.now():%Y%m%d-%H%M%S}"
    path = Path(options.output) if options.output else _unique_path(model_dir, f"digitcnn-{stamp}")
    # Through JSON, so that the metadata holds only the plain types a
    # weights_only load accepts (torch.__version__, for one, is a str subclass).
    sha = save_checkpoint(model, path, metadata={"training": json.loads(json.dumps(training)),
                                                 calibration.METADATA_KEY: temperature})
    version_name = f"{stamp}-{sha[:8]}"
    try:
        # Reading the active version, deciding and activating in one
        # transaction under the version-row lock: an activation in the admin
        # lands either before (and is seen here) or after (and wins).
        with transaction.atomic():
            active_now = versions.lock_versions()
            activate, reasons = activation_decision(
                activate, reasons, active.version if active is not None else None,
                active_now.version if active_now is not None else None,
            )
            metrics["activation"] = {"activated": activate, "reasons": reasons}
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
    log("Accuracy before -> after" + (f" ({baseline['version']} -> {row.version}):"
                                       if baseline is not None else ":"))
    for line in describe_before_after(metrics["before_after"]):
        log(line)
    log(f"Confidence (the game's 0.9; without -> with the temperature, fitted on "
        f"{calibration_fit['count'] if calibration_fit else 0} held-out training digits):")
    if baseline is not None:
        for line in confidence.describe(f"before ({baseline['version']})", baseline["confidence"]):
            log(line)
    for line in confidence.describe("after", new_confidence):
        log(line)
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
