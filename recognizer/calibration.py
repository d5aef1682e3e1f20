"""Probabilities the game can trust: temperature scaling, fitted and applied.

The network is trained with label smoothing, which makes its target for the
right digit 0.955 rather than 1: a clear digit's probability sits just above
the game's 0.9, and a slightly unusual one falls below it. Dividing the
logits by one number T (Guo et al., "On Calibration of Modern Neural
Networks", 2017) fixes the scale without changing any answer: T < 1 makes the
probabilities sharper, T > 1 softer, the order of the digits stays. T is
fitted after training by minimising the negative log-likelihood on digits the
run did not train on, stored in the checkpoint's metadata (`temperature`),
and applied by `probabilities`, the one function that turns logits into the
probabilities the game, the API and the teaching pages show.
"""

import math

import numpy as np
import torch

METADATA_KEY = "temperature"
# A temperature outside this range means a broken fit or a broken file: a
# well-trained network needs something between about 0.3 and 3.
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
# The game's default target confidence, for the reports.
GAME_THRESHOLD = 0.9
ECE_BINS = 15


def check_temperature(value):
    """`value` as a float if it is a usable temperature; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"the temperature must be a number, not {value!r}")
    value = float(value)
    if not (math.isfinite(value) and MIN_TEMPERATURE <= value <= MAX_TEMPERATURE):
        raise ValueError(
            f"the temperature {value!r} is outside {MIN_TEMPERATURE}..{MAX_TEMPERATURE}")
    return value


def temperature_of(metadata):
    """The temperature stored in a checkpoint's metadata; 1 (none) when absent.

    Raises ValueError for a value that is there but unusable.
    """
    if not isinstance(metadata, dict) or metadata.get(METADATA_KEY) is None:
        return 1.0
    return check_temperature(metadata[METADATA_KEY])


def probabilities(logits, temperature=1.0):
    """softmax(logits / temperature) in float64, as a tensor of the logits' shape."""
    logits = torch.as_tensor(logits)
    return torch.softmax(logits.double() / float(temperature), dim=-1)


def _log_softmax(logits, beta):
    scaled = logits * beta
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    return scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))


def nll(logits, labels, temperature=1.0):
    """Mean negative log-likelihood of the labels under softmax(logits / temperature)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return None
    log_p = _log_softmax(logits, 1.0 / temperature)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels):
    """The temperature that minimises the NLL of `labels`; 1.0 when there is nothing to fit.

    The NLL is convex in 1/T, so a golden-section search over
    log(1/T) in [log 1/20, log 1/0.05] finds the minimum to 1e-6.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(f"logits {logits.shape} do not match labels {labels.shape}")
    if not len(labels):
        return 1.0
    rows = np.arange(len(labels))

    def loss(log_beta):
        return -_log_softmax(logits, math.exp(log_beta))[rows, labels].mean()

    low, high = math.log(1 / MAX_TEMPERATURE), math.log(1 / MIN_TEMPERATURE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    while high - low > 1e-6:
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    return check_temperature(round(1.0 / math.exp((low + high) / 2), 6))


def expected_calibration_error(top_probability, correct, bins=ECE_BINS):
    """Gap between confidence and accuracy, averaged over equal-width confidence bins."""
    top_probability = np.asarray(top_probability, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if not len(correct):
        return None
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(top_probability, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(top_probability[mask].mean() - correct[mask].mean())
    return float(error)


def confidence_report(logits, labels, temperature=1.0, threshold=GAME_THRESHOLD):
    """How usable the probabilities are for the game, on digits with known labels.

    `correct_reaching`: the share of correctly read digits whose probability
    for their digit reaches `threshold` (what a player who drew well needs);
    `wrong_reaching`: the share of misread digits whose (wrong) top
    probability reaches it (confidently wrong); `ece`, `nll`, and the median
    probability of correctly read digits.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return {"count": 0, "temperature": temperature}
    probs = probabilities(torch.from_numpy(logits), temperature).numpy()
    predictions = probs.argmax(axis=1)
    top = probs.max(axis=1)
    correct = predictions == labels
    own = probs[np.arange(len(labels)), labels]

    def share(values):
        return round(float(values.mean()), 6) if len(values) else None

    return {
        "count": int(len(labels)),
        "temperature": temperature,
        "threshold": threshold,
        "correct": int(correct.sum()),
        "correct_reaching": share(own[correct] >= threshold),
        "wrong_reaching": share(top[~correct] >= threshold),
        "median_correct_probability": (round(float(np.median(own[correct])), 6)
                                       if correct.any() else None),
        "ece": round(expected_calibration_error(top, correct), 6),
        "nll": round(nll(logits, labels, temperature), 6),
    }
