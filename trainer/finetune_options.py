"""The options of a finetune run, their checks, and the error a run raises.

FinetuneOptions mirrors `python manage.py finetune`'s flags (see
trainer/management/commands/finetune.py for what each one means);
`check_options` refuses a value out of range with the flag's name, before
anything is loaded.
"""

import shlex
import sys
from dataclasses import dataclass, field

from trainer import confidence, drawings, styles_set
from trainer.activation import DEFAULT_TOLERANCE


class FinetuneError(Exception):
    """A finetune run that cannot start or cannot finish; the message says why."""


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
    # False: NCHW tensors on the CPU too (--nchw; trainer/cpu_kernels.py).
    channels_last: bool = True
    # Train only the dense layers on the frozen convolutions (trainer/head_only.py).
    head_only: bool = False
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
    # A folder for snapshots of the network while it learns (trainer/snapshots.py).
    snapshots: str | None = None
    command_line: str = field(default_factory=lambda: shlex.join(sys.argv))


def check_options(options):
    """Raise FinetuneError naming the first option that is out of range."""
    _check_training_options(options)
    _check_extra_data_options(options)
    _check_drawings_options(options)


def _check_training_options(options):
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
    if options.snapshots and options.head_only:
        raise FinetuneError("--snapshots keeps the whole network as it learns: it cannot be "
                            "combined with --head-only")
    if options.head_only and options.from_scratch:
        raise FinetuneError("--head-only keeps the active version's convolutions: it cannot "
                            "start --from-scratch")


def _check_extra_data_options(options):
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


def _check_drawings_options(options):
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
