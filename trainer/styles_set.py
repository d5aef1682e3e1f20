"""The styles sets: MNIST digits traced, written in the styles of trainer.styles, redrawn.

Each digit is traced into strokes (trainer.canvas_eval.trace_strokes), written
in one style (trainer.styles), redrawn on a canvas the way a player draws
(redraw_on_canvas) and sent through recognizer.preprocessing.strokes_to_input,
the pipeline of the game and the API.

- The evaluation set (`build_styles_set` on MNIST *test*, seed 0) takes, for
  each style, `per_style` test digits of the style's digit (any digit for
  `slanted` and `turned`), chosen by a seeded shuffle: 300 per style, 3,300
  digits, measure each style to about +-1 point.
- Training digits (`--styles-train N`) are built the same way from MNIST
  *train* with another seed, so their random parameters (slash angles, flag
  lengths, templates' proportions) are other draws than the evaluation set's.

Sets are cached under settings.VAR_DIR like the canvas-style set, keyed by
seed, count, the code versions and the digits themselves.
"""

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognizer import preprocessing
from recognizer.atomic_files import atomic_writer
from trainer import canvas_eval, styles

logger = logging.getLogger(__name__)

# Bump when a change here or in trainer/styles.py alters the drawings.
STYLES_SET_VERSION = 1
DEFAULT_PER_STYLE = 300


@dataclass
class StylesSet:
    """inputs (N, 28, 28) float32 in [0, 1], labels (N,) int64, styles (N,) index into names."""

    inputs: np.ndarray
    labels: np.ndarray
    styles: np.ndarray
    names: tuple = styles.STYLE_NAMES

    def __len__(self):
        return len(self.labels)

    def of_style(self, name):
        """(inputs, labels) of one style."""
        mask = self.styles == self.names.index(name)
        return self.inputs[mask], self.labels[mask]


def styled_input(image28, style, seed, style_number, index):
    """One digit written in `style` and drawn on the canvas, as the network sees it."""
    rng = np.random.default_rng([seed, style_number, index])
    strokes = canvas_eval.trace_strokes(image28)
    if not strokes:
        # A very faint digit: trace whatever ink there is.
        strokes = canvas_eval.trace_strokes(image28, threshold=0.1)
    if not strokes:
        raise ValueError(f"digit {index} has no ink to trace")
    drawn, width, height = canvas_eval.redraw_on_canvas(
        styles.apply_style(style, strokes, rng), rng)
    return preprocessing.strokes_to_input(drawn, width, height)


def select(labels, per_style, seed, names=styles.STYLE_NAMES):
    """{style: indices of the digits it is drawn from}: a seeded shuffle of the style's digit."""
    labels = np.asarray(labels)
    chosen = {}
    for number, name in enumerate(names):
        digit = styles.STYLE_DIGITS[name]
        candidates = np.arange(len(labels)) if digit is None else np.nonzero(labels == digit)[0]
        rng = np.random.default_rng([seed, number, 0x5E1EC7])
        chosen[name] = rng.permutation(candidates)[:per_style]
    return chosen


def _cache_path(cache_dir, images, labels, seed, per_style):
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    digest.update(repr((preprocessing.PIPELINE_VERSION, preprocessing.PEN_WIDTH,
                        canvas_eval.CANVAS_EVAL_VERSION, styles.STYLE_NAMES)).encode())
    name = (f"styles-v{STYLES_SET_VERSION}-seed{seed}-{per_style}each-"
            f"{digest.hexdigest()[:16]}.npz")
    return Path(cache_dir) / name


def _load_cache(path):
    try:
        with np.load(path) as data:
            found = StylesSet(data["inputs"].astype(np.float32, copy=False),
                              data["labels"].astype(np.int64, copy=False),
                              data["styles"].astype(np.int64, copy=False))
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged cache is rebuilt, never trusted
        logger.warning("ignoring the unreadable styles set cache %s: %s", path, exc)
        return None
    count = len(found.labels)
    if found.inputs.shape != (count, 28, 28) or found.styles.shape != (count,):
        logger.warning("ignoring the styles set cache %s: wrong shape", path)
        return None
    return found


def build_styles_set(images, labels, per_style=DEFAULT_PER_STYLE, seed=0, cache_dir=None,
                     use_cache=True, workers=None):
    """A StylesSet of `per_style` digits for every style, drawn from `images`.

    `images`: (N, 28, 28) uint8 (255 = ink) or floats in [0, 1]; `labels`:
    (N,). A style whose digit is rarer than `per_style` in `images` gets all
    of them. The same images and seed always give the same set; it is cached
    in `cache_dir` (default VAR_DIR/cache) unless `use_cache` is false.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if per_style < 0:
        raise ValueError("per_style must not be negative")
    path = None
    if use_cache:
        path = _cache_path(cache_dir or canvas_eval.default_cache_dir(), images, labels,
                           seed, per_style)
        cached = _load_cache(path)
        if cached is not None:
            return cached
    started = time.monotonic()
    chosen = select(labels, per_style, seed)
    items, set_labels, set_styles = [], [], []
    for number, name in enumerate(styles.STYLE_NAMES):
        for index in chosen[name]:
            items.append((images[index], name, seed, number, int(index)))
            set_labels.append(labels[index])
            set_styles.append(number)
    if items:
        from trainer.parallel import map_stacked

        inputs = map_stacked(styled_input, items, workers).astype(np.float32, copy=False)
    else:
        inputs = np.empty((0, 28, 28), dtype=np.float32)
    result = StylesSet(inputs, np.array(set_labels, dtype=np.int64),
                       np.array(set_styles, dtype=np.int64))
    logger.info("built the styles set: %d digits in %.1f s", len(result),
                time.monotonic() - started)
    if path is not None:
        with atomic_writer(path) as handle:
            np.savez_compressed(handle, inputs=result.inputs, labels=result.labels,
                                styles=result.styles)
    return result


def per_style_metrics(logits, styles_set):
    """{style: count, accuracy, read_as (ten counts: what the style's digits were read as)}.

    `logits`: (N, 10) for the set's digits in order. `read_as` is the
    confusion row of a one-digit style (for `slanted` and `turned`, all
    digits together).
    """
    logits = np.asarray(logits)
    predictions = logits.argmax(axis=1)
    table = {}
    for number, name in enumerate(styles_set.names):
        mask = styles_set.styles == number
        count = int(mask.sum())
        if not count:
            continue
        correct = predictions[mask] == styles_set.labels[mask]
        table[name] = {
            "count": count,
            "accuracy": round(float(correct.mean()), 6),
            "read_as": np.bincount(predictions[mask], minlength=10).tolist(),
        }
    return table


# -- what finetune uses ----------------------------------------------------------

# The evaluation set's draws (from MNIST test) and the training digits' (from
# MNIST train) differ.
EVAL_SEED = 0
TRAIN_SEED = 1


def evaluation_set(test_data, per_style=DEFAULT_PER_STYLE, workers=None):
    """The styles evaluation set from MNIST test (a trainer.datasets.DigitData), as a StylesSet."""
    return build_styles_set(test_data.images.numpy(), test_data.labels.numpy(),
                            per_style=per_style, seed=EVAL_SEED, workers=workers)


def training_digits(train_pool, count, workers=None):
    """About `count` MNIST train digits written in the styles, the same number per style."""
    from trainer import datasets

    per_style = -(-count // len(styles.STYLE_NAMES)) if count > 0 else 0
    built = build_styles_set(train_pool.images.numpy(), train_pool.labels.numpy(),
                             per_style=per_style, seed=TRAIN_SEED, workers=workers)
    return datasets.DigitData.from_arrays(built.inputs, built.labels)


def as_digit_data(styles_set):
    from trainer import datasets

    return datasets.DigitData.from_arrays(styles_set.inputs, styles_set.labels)


def evaluate(model, styles_set):
    """The usual metrics on the whole set, with `per_style` beside them."""
    from trainer.evaluation import metrics_from_logits, predict_logits

    data = as_digit_data(styles_set)
    logits = predict_logits(model, data)
    result = metrics_from_logits(logits, data.labels)
    result["per_style"] = per_style_metrics(logits.numpy(), styles_set)
    return result


def before_after_rows(after, before):
    """Rows `styles/<style>` for finetune's before/after table."""
    rows = {}
    before_styles = (before or {}).get("per_style", {})
    for name, row in (after or {}).get("per_style", {}).items():
        old = before_styles.get(name, {}).get("accuracy")
        new = row["accuracy"]
        rows[f"styles/{name}"] = {
            "count": row["count"], "before": old, "after": new,
            "change_points": None if old is None else round((new - old) * 100, 4),
        }
    return rows
