"""The model card: what "The model" page shows about the active version.

It reads what the trainer recorded with each version (ModelVersion.training
and .metrics) and adds what can only be known now: the architecture table of
the network in this code, and the accuracy on the player drawings approved
so far.
"""

import functools
import hashlib
import json
import math
from pathlib import Path

from recognizer.metrics_display import percent
from recognizer.models import ModelVersion
from recognizer.teaching import augmentation, charts

# torch and the network: imported where a model is used (recognizer/checkpoints.py).

EXPLANATIONS = {
    "input": "Your drawing, shrunk to 28x28 pixels.",
    "conv1": "32 small 3x3 filters slide over the image; each looks for a tiny pattern "
             "such as an edge.",
    "conv2": "32 filters that combine the first layer's patterns into bigger ones.",
    "pool1": "Keeps the strongest value in every 2x2 square: half the size, same patterns.",
    "conv3": "64 filters looking for parts of digits: curves, corners, line ends.",
    "conv4": "64 filters combining those parts.",
    "pool2": "Shrinks again, to 7x7: where roughly each part is.",
    "dense": "128 numbers that summarise the whole drawing.",
    "logits": "One score per digit; divided by the version's temperature T (under How "
              "sure it is, when measured), softmax turns them into probabilities.",
}


@functools.lru_cache(maxsize=1)
def architecture():
    """Rows for the architecture table and the total number of parameters.

    The same for every version (the code's network): built once per process.
    """
    from recognizer.network import build_model, count_parameters, describe_layers

    model = build_model()
    rows = []
    for name, kind, shape, params in describe_layers(model):
        rows.append({
            "name": name,
            "kind": kind,
            "shape": " x ".join(str(s) for s in shape),
            "values": _product(shape),
            "parameters": params,
            "explanation": EXPLANATIONS.get(name, ""),
        })
    return rows, count_parameters(model)


def _product(shape):
    result = 1
    for s in shape:
        result *= s
    return result


def _metric_set(metrics, name):
    value = metrics.get(name)
    return value if isinstance(value, dict) else {}


def evaluation_sets(metrics):
    """The named evaluation results in `metrics`, MNIST test first."""
    names = {
        "mnist_test": "MNIST test",
        "canvas": "MNIST test redrawn like the site's canvas",
        "styles": "MNIST test written in styles from around the world",
    }
    sets = []
    for key, label in names.items():
        result = _metric_set(metrics, key)
        if result.get("accuracy") is not None:
            sets.append({"key": key, "label": label, **result,
                         "accuracy_text": percent(result["accuracy"])})
    return sets


# Style names of trainer/styles.py as the model card shows them.
STYLE_LABELS = {
    "zero_slashed": "0 with a slash",
    "one_flag": "1 with a long flag",
    "one_serif": "1 with a base serif",
    "seven_bar": "7 with a crossbar",
    "four_open": "4 with an open top",
    "four_closed": "4 with a closed top",
    "nine_straight": "9 with a straight tail",
    "nine_curved": "9 with a curved tail",
    "two_loop": "2 with a loop",
    "slanted": "any digit slanted 20-30 degrees",
    "turned": "any digit turned 20-30 degrees",
}


def measured_like_test(curves):
    """Whether every epoch has the training loss measured the way the test loss is."""
    return bool(curves) and all(isinstance(e, dict) and e.get("train_eval_loss") is not None
                                for e in curves)


def gated_on_mnist_test(metrics):
    """Whether MNIST test decided this version's activation.

    `finetune` switches a version on only if it is not worse there than the
    version serving (trainer/activation.py) and records each comparison as
    "mnist_test: 99.67% vs 99.63% (not worse)". Once it has chosen a version,
    MNIST test is no longer digits nobody looked at: the card calls it the
    gate's test set.
    """
    activation = _metric_set(metrics, "activation")
    reasons = activation.get("reasons")
    if not isinstance(reasons, list):
        return False
    return any(isinstance(r, str) and r.startswith("mnist_test:") and "not measured" not in r
               for r in reasons)


def smoothing_floor(label_smoothing, classes=10):
    """The lowest training loss label smoothing allows: the entropy of the softened target.

    With smoothing e the right digit's target is 1 - e + e/10 and each other
    digit's e/10; even a network that gives exactly those probabilities scores
    that entropy, about 0.28 for e = 0.05, while plain cross-entropy on the
    test digits can go down towards 0.
    """
    if not isinstance(label_smoothing, (int, float)) or isinstance(label_smoothing, bool):
        return None
    if not 0 < label_smoothing < 1:
        return None
    other = label_smoothing / classes
    right = 1 - label_smoothing + other
    return -(right * math.log(right) + (classes - 1) * other * math.log(other))


def training_mix(data):
    """The share of each kind of digit in the training data: [(label, count, share)]."""
    kinds = [("MNIST digits as scanned", data.get("mnist_train")),
             ("the same digits redrawn like the site's canvas", data.get("canvas_train")),
             ("digits written in other styles", data.get("styles_train")),
             ("players' drawings", data.get("collected"))]
    kinds = [(label, int(n)) for label, n in kinds
             if isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0]
    total = sum(n for _, n in kinds)
    return [(label, n, n / total) for label, n in kinds] if total else []


def training_digits(data):
    """The training data's parts for the card's "Training digits" line: [(count, words)].

    From the version's record (training["data"]): MNIST as scanned, the
    canvas-style copies (--canvas-train), the styles (--styles-train) and the
    players' drawings, which the line always names, even when there were none.
    """
    def count(key):
        value = data.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return int(value) if ok else None

    parts = [(count("mnist_train"), "from MNIST, as scanned"),
             (count("canvas_train"), "MNIST digits redrawn like the site's canvas"),
             (count("styles_train"), "written in handwriting styles from around the world")]
    parts = [(n, words) for n, words in parts if n]
    if count("mnist_train") is None:
        return []
    return [*parts, (count("collected") or 0, "drawn by players")]


def curves_charts(curves, test_name="test"):
    if not isinstance(curves, list) or not curves:
        return {}

    def series(key):
        return [(entry.get("epoch", i + 1), entry.get(key)) for i, entry in enumerate(curves)
                if isinstance(entry, dict)]

    # The running loss while training (augmented digits, dropout, label
    # smoothing) sits well above the test loss for reasons that are not
    # overfitting; a version that measured a fixed set of training digits like
    # the test set shows those numbers instead.
    train = "train_eval_" if measured_like_test(curves) else "train_"
    return {
        "loss": charts.line_chart(
            [("training", series(train + "loss")), (test_name, series("eval_loss"))],
            "Loss per epoch (lower is better)", "epoch", "loss",
        ),
        "accuracy": charts.line_chart(
            [("training", series(train + "accuracy")), (test_name, series("eval_accuracy"))],
            "Accuracy per epoch", "epoch", "accuracy", percent=True,
        ),
    }


def curves_gap(curves, training):
    """The numbers that explain where the training line sits against the test line.

    {"last": the last epoch's training and test loss as shown, "floor": the
    smoothed loss's floor (only when the running, smoothed loss is shown),
    "mix": the training data's kinds (only when the comparable loss is shown:
    it is measured on a fixed subset spread over all of them)}.
    """
    entries = [e for e in curves if isinstance(e, dict)] if isinstance(curves, list) else []
    if not entries:
        return None
    comparable = measured_like_test(entries)
    last = entries[-1]
    train = last.get("train_eval_loss" if comparable else "train_loss")
    data = training.get("data") if isinstance(training.get("data"), dict) else {}
    return {
        "comparable": comparable,
        "train_loss": train,
        "test_loss": last.get("eval_loss"),
        "floor": None if comparable else smoothing_floor(training.get("label_smoothing")),
        "label_smoothing": training.get("label_smoothing"),
        "right_target_text": percent(1 - training["label_smoothing"] * 0.9, 1)
        if smoothing_floor(training.get("label_smoothing")) else "",
        "mix": [{"label": label, "count": n, "share_text": percent(share, 0)}
                for label, n, share in training_mix(data)] if comparable else [],
    }


def styles_rows(metrics):
    """One row per handwriting style: its label, digits and accuracy."""
    per_style = _metric_set(metrics, "styles").get("per_style")
    if not isinstance(per_style, dict):
        return []
    return [{"key": key, "label": STYLE_LABELS.get(key, key), "count": row.get("count"),
             "accuracy_text": percent(row.get("accuracy"), 1)}
            for key, row in per_style.items() if isinstance(row, dict)]


def confidence_summary(metrics):
    """The calibration of the version on canvas-style digits, for the card."""
    calibration = _metric_set(metrics, "calibration")
    canvas = (calibration.get("after") or {}).get("canvas") or {}
    calibrated = canvas.get("calibrated") or {}
    if calibrated.get("correct_reaching") is None:
        return None
    return {
        "temperature": calibration.get("temperature"),
        "correct_reaching_text": percent(calibrated.get("correct_reaching"), 1),
        "wrong_reaching_text": percent(calibrated.get("wrong_reaching"), 1),
        "ece": calibrated.get("ece"),
    }


def version_history(limit=20):
    rows = []
    for version in ModelVersion.objects.select_related("parent")[:limit]:
        metrics = version.metrics or {}
        training = version.training or {}
        rows.append({
            "version": version.version,
            "created": version.created,
            "is_active": version.is_active,
            "parent": version.parent.version if version.parent else "",
            "accuracy": metrics.get("accuracy"),
            "accuracy_text": percent(metrics.get("accuracy")),
            "canvas_accuracy": metrics.get("canvas_accuracy"),
            "canvas_accuracy_text": percent(metrics.get("canvas_accuracy")),
            "epochs": training.get("epochs"),
            "from": training.get("from"),
            "notes": version.notes,
        })
    return rows


def history_chart(history):
    points = [(i + 1, row["accuracy"]) for i, row in enumerate(reversed(history))
              if row["accuracy"] is not None]
    if len(points) < 2:
        return ""
    return charts.line_chart([("MNIST test", points)], "Accuracy of each version, oldest first",
                             "version", "accuracy", percent=True)


# The code that draws the card: its template and the modules that make its
# tables and charts. A cached card is the product of that code too, and the
# cache (Redis, in a deployment) outlives a process: after an upgrade, or
# during a rolling one, a card drawn by other code must not be served.
CARD_CODE = (
    Path(__file__).resolve().parents[2] / "templates" / "teaching" / "_model_card.html",
    Path(__file__),
    Path(charts.__file__),
    Path(augmentation.__file__),
)


@functools.lru_cache(maxsize=1)
def card_code_digest():
    digest = hashlib.blake2b(digest_size=8)
    for path in CARD_CODE:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def card_key(version, stamp, history):
    """The cache key of the model card: it changes with anything the card shows.

    The version's record (its metrics, training, notes and parent), the state
    of the approved drawings (gallery.approved_stamp), the version history and
    the code that draws the card. About 0.3 ms to compute: far less than the
    11 ms the card takes to draw.
    """
    state = None if version is None else [
        version.pk, version.version, version.sha256, version.size_bytes, version.notes,
        version.parent_id, version.metrics, version.training, str(version.created)]
    text = json.dumps([state, stamp, history], sort_keys=True, default=str)
    return (f"model-card:{card_code_digest()}:"
            + hashlib.blake2b(text.encode(), digest_size=16).hexdigest())


def model_card(version, collected=None, collected_error="", history=None):
    """Everything the model page shows about `version` (a ModelVersion).

    `collected` is gallery.accuracy_on's result for the approved drawings,
    measured by the caller (it needs the database and the model: the view
    does each in its own thread).
    """
    metrics = version.metrics or {}
    training = version.training or {}
    layers, total = architecture()
    mnist = _metric_set(metrics, "mnist_test")
    confusion = mnist.get("confusion_matrix")
    per_class = mnist.get("per_class_accuracy")
    history = version_history() if history is None else history
    data = training.get("data") if isinstance(training.get("data"), dict) else {}
    if collected is not None:
        collected = {**collected, "accuracy_text": percent(collected["accuracy"], 1)}
    accuracy = metrics.get("accuracy", mnist.get("accuracy"))
    gated = gated_on_mnist_test(metrics)
    return {
        "version": version,
        "layers": layers,
        "total_parameters": total,
        "training": training,
        "data_counts": data,
        "training_digits": training_digits(data),
        "train_per_class": data.get("train_per_class"),
        "metrics": metrics,
        "accuracy": accuracy,
        "accuracy_text": percent(accuracy),
        "evaluation_sets": evaluation_sets(metrics),
        "collected": collected,
        "collected_error": collected_error,
        "confusion_svg": charts.confusion_matrix(confusion) if confusion else "",
        "per_class_svg": charts.bar_chart(per_class, "Accuracy on MNIST test for each digit")
        if per_class else "",
        "collected_per_class_svg": charts.bar_chart(
            collected["per_class"], "Accuracy on approved player drawings for each digit")
        if collected else "",
        "gated": gated,
        "curves": curves_charts(metrics.get("curves"),
                                "the gate's test set" if gated else "test"),
        "curves_measured_like_test": measured_like_test(metrics.get("curves")),
        "curves_gap": curves_gap(metrics.get("curves"), training),
        "styles": styles_rows(metrics),
        "confidence": confidence_summary(metrics),
        "history": history,
        "history_svg": history_chart(history),
    }
