"""What a finetune run trains on and measures with.

MNIST train (less the calibration digits) mixed with the collected drawings
of the players on the training side, and optionally canvas-style and styles
renderings of MNIST train digits; MNIST test, its canvas-style redrawing, the
held-out players' drawings and the styles set to measure on; the digits the
temperature is fitted on. `load_data` builds them in that order and counts
them for the version's training record.
"""

from dataclasses import dataclass, field

from django.db import DatabaseError

from recognizer.mnist_files import MnistError
from trainer import confidence, datasets, drawings, styles_set
from trainer.finetune_options import FinetuneError
from trainer.finetune_record import HELDOUT_SET

# One fixed canvas-style set, so that the accuracies of all versions compare.
CANVAS_SEED = 0
# Canvas-style renderings of training digits (--canvas-train) use other draws.
CANVAS_TRAIN_SEED = 1


@dataclass
class RunData:
    """What a run trains on and measures with."""

    test: datasets.DigitData  # MNIST test
    train: datasets.DigitData  # everything trained on, mixed
    collected: drawings.CollectedDrawings
    sets: dict  # the evaluation sets the activation rule compares on
    canvas: datasets.DigitData | None = None
    canvas_note: str | None = None  # why there is no canvas-style set
    styles: object = None  # the styles evaluation set (styles_set), if any
    calibration: datasets.DigitData | None = None
    counts: dict = field(default_factory=dict)  # recorded as training["data"]


def load_data(options, log):
    """Everything the run trains on and measures with, as a RunData."""
    train_mnist, test = _load_mnist(options)
    collected = _load_collected(options)
    # The last --calibration-holdout MNIST train digits are never trained
    # on: the temperature is fitted on them (trainer/confidence.py).
    train_pool, calibration_digits = confidence.split_holdout(
        train_mnist, options.calibration_holdout)
    mnist_part = train_pool.head(options.limit)
    train_data, drawing_samples = drawings.mix(
        mnist_part, collected.train, options.drawings_weight, seed=options.seed)
    n_canvas_train, canvas_train = _canvas_training_digits(options, train_pool)
    n_styles_train, styles_train = _styles_training_digits(options, train_pool)
    train_data = datasets.concatenate(train_data, canvas_train, styles_train)

    canvas, canvas_note = load_canvas_set(test, seed=CANVAS_SEED, limit=options.limit)
    if canvas_note:
        log(canvas_note)
    styles = _styles_evaluation_set(options, test)
    calibration_data = None
    if calibration_digits is not None:
        calibration_data = confidence.calibration_set(
            calibration_digits, limit=options.limit, workers=options.workers)
    data = RunData(test=test, train=train_data, collected=collected,
                   sets=_evaluation_sets(test, canvas, collected.heldout),
                   canvas=canvas, canvas_note=canvas_note, styles=styles,
                   calibration=calibration_data)
    data.counts = _data_counts(options, data, len(mnist_part), drawing_samples,
                               n_canvas_train, n_styles_train)
    return data


def _load_mnist(options):
    try:
        train_mnist = datasets.mnist_split("train", options.data_dir, download=True)
        test = datasets.mnist_split("test", options.data_dir, limit=options.limit)
    except MnistError as exc:
        raise FinetuneError(str(exc)) from exc
    return train_mnist, test


def _load_collected(options):
    try:
        return drawings.load_collected(
            include_pending=options.include_pending,
            holdout_fraction=options.holdout_fraction,
        )
    except DatabaseError as exc:
        raise FinetuneError(
            f"the database is not ready ({exc}); run `python manage.py migrate` first"
        ) from exc


def _canvas_training_digits(options, train_pool):
    """(how many, the digits or None): --canvas-train's canvas-style renderings."""
    count = min(options.canvas_train, options.limit or options.canvas_train, len(train_pool))
    if not count:
        return 0, None
    try:
        return count, datasets.canvas_style(train_pool, count, CANVAS_TRAIN_SEED,
                                            workers=options.workers)
    except ImportError as exc:
        raise FinetuneError(f"--canvas-train needs trainer.canvas_eval: {exc}") from exc


def _styles_training_digits(options, train_pool):
    """(how many, the digits or None): --styles-train's digits written in the styles."""
    if not options.styles_train:
        return 0, None
    digits = styles_set.training_digits(
        train_pool, min(options.styles_train, options.limit or options.styles_train),
        options.workers)
    return len(digits), digits


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


def _styles_evaluation_set(options, test):
    if not options.styles_per_style:
        return None
    per_style = options.styles_per_style
    if options.limit:
        per_style = min(per_style, max(2, options.limit // len(styles_set.styles.STYLE_NAMES)))
    return styles_set.evaluation_set(test, per_style, options.workers)


def _evaluation_sets(test_data, canvas_data, heldout=None):
    sets = {"mnist_test": test_data}
    if canvas_data is not None:
        sets["canvas"] = canvas_data
    if heldout is not None and len(heldout):
        sets[HELDOUT_SET] = heldout
    return sets


def _data_counts(options, data, n_mnist, drawing_samples, n_canvas_train, n_styles_train):
    collected = data.collected
    return {
        "mnist_train": n_mnist,
        "canvas_train": n_canvas_train,
        "styles_train": n_styles_train,
        "calibration": len(data.calibration) if data.calibration is not None else 0,
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
        "train_total": len(data.train),
        "mnist_test": len(data.test),
        "canvas": len(data.canvas) if data.canvas is not None else 0,
        "styles": len(data.styles) if data.styles is not None else 0,
        "train_per_class": data.train.counts(),
    }
