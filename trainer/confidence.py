"""Fitting the temperature of a new version on digits it never trained on, and reporting it.

The calibration digits are the last `--calibration-holdout` MNIST train
digits (2,000 by default), kept out of the run's training data in every form
(scans, canvas-style and styles renderings), and redrawn the way the game
sees digits: canvas-style, and in the styles of trainer.styles. The
temperature that minimises their negative log-likelihood
(recognizer.calibration.fit_temperature) is stored with the version.
The canvas-style and styles evaluation sets (MNIST test) then show whether
the game's 0.9 is reached by the digits read right, and not by those read
wrong, before and after.
"""

import numpy as np

from recognizer import calibration
from recognizer.metrics_display import percent
from trainer import datasets, styles
from trainer.evaluation import predict_logits

DEFAULT_HOLDOUT = 2000
# Other draws than the canvas-style training digits (seed 1), the
# canvas-style set (0) and the styles sets (0 and 1).
CALIBRATION_CANVAS_SEED = 2
CALIBRATION_STYLES_SEED = 2


def split_holdout(train_mnist, holdout):
    """(training pool, calibration digits): the last `holdout` digits are kept apart."""
    if holdout <= 0:
        return train_mnist, None
    if holdout >= len(train_mnist):
        raise ValueError(
            f"the calibration hold-out ({holdout}) must be smaller than MNIST train "
            f"({len(train_mnist)})")
    cut = len(train_mnist) - holdout
    rest = datasets.DigitData(train_mnist.images[cut:], train_mnist.labels[cut:])
    return train_mnist.head(cut), rest


def calibration_set(holdout_digits, limit=None, workers=None):
    """The held-out digits redrawn canvas-style and in every style, as one DigitData."""
    from trainer.canvas_eval import build_canvas_eval_set
    from trainer.styles_set import build_styles_set

    digits = holdout_digits.head(limit)
    images, labels = digits.images.numpy(), digits.labels.numpy()
    canvas_inputs, canvas_labels = build_canvas_eval_set(
        images, labels, seed=CALIBRATION_CANVAS_SEED, workers=workers)
    per_style = max(1, len(digits) // len(styles.STYLE_NAMES))
    styled = build_styles_set(images, labels, per_style=per_style,
                              seed=CALIBRATION_STYLES_SEED, workers=workers)
    return datasets.DigitData.from_arrays(
        np.concatenate([canvas_inputs, styled.inputs]),
        np.concatenate([canvas_labels, styled.labels]))


def fit(model, data):
    """(temperature, report on the calibration digits before and after)."""
    logits = predict_logits(model, data).numpy()
    labels = data.labels.numpy()
    temperature = calibration.fit_temperature(logits, labels)
    return temperature, {
        "count": len(labels),
        "nll_before": calibration.nll(logits, labels, 1.0),
        "nll_after": calibration.nll(logits, labels, temperature),
    }


def reports(model, temperature, sets):
    """{set: confidence report with the version's temperature, and with none}."""
    table = {}
    for name, data in sets.items():
        logits = predict_logits(model, data).numpy()
        labels = data.labels.numpy()
        table[name] = {
            "uncalibrated": calibration.confidence_report(logits, labels, 1.0),
            "calibrated": calibration.confidence_report(logits, labels, temperature),
        }
    return table


def describe(title, table):
    """Printable lines: for each set, the game's 0.9 rates and the ECE without and with T."""
    lines = []
    for name, row in table.items():
        raw, cal = row["uncalibrated"], row["calibrated"]
        if not raw.get("count"):
            continue
        lines.append(
            f"  {title} {name}: read right and reaching 0.9 "
            f"{percent(raw['correct_reaching'], 1)} -> {percent(cal['correct_reaching'], 1)}, "
            f"read wrong and reaching 0.9 {percent(raw['wrong_reaching'], 1)} -> "
            f"{percent(cal['wrong_reaching'], 1)}, "
            f"ECE {raw['ece']:.4f} -> {cal['ece']:.4f} (T = {cal['temperature']:.3f})")
    return lines
