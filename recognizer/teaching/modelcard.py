"""The model card: what "The model" page shows about the active version.

It reads what the trainer recorded with each version (ModelVersion.training
and .metrics) and adds what can only be known now: the architecture table of
the network in this code, and the accuracy on the player drawings approved
so far.
"""

import functools

from recognizer.models import ModelVersion
from recognizer.network import build_model, count_parameters, describe_layers
from recognizer.teaching import charts

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
    "logits": "One score per digit; softmax turns them into probabilities.",
}


def percent(value, digits=2):
    """0.98765 -> "98.77%"; "–" when unknown."""
    if value is None:
        return "–"
    return f"{value * 100:.{digits}f}%"


@functools.lru_cache(maxsize=1)
def architecture():
    """Rows for the architecture table and the total number of parameters.

    The same for every version (the code's network): built once per process.
    """
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
    }
    sets = []
    for key, label in names.items():
        result = _metric_set(metrics, key)
        if result.get("accuracy") is not None:
            sets.append({"key": key, "label": label, **result,
                         "accuracy_text": percent(result["accuracy"])})
    return sets


def curves_charts(curves):
    if not isinstance(curves, list) or not curves:
        return {}

    def series(key):
        return [(entry.get("epoch", i + 1), entry.get(key)) for i, entry in enumerate(curves)
                if isinstance(entry, dict)]

    return {
        "loss": charts.line_chart(
            [("training", series("train_loss")), ("test", series("eval_loss"))],
            "Loss per epoch (lower is better)", "epoch", "loss",
        ),
        "accuracy": charts.line_chart(
            [("training", series("train_accuracy")), ("test", series("eval_accuracy"))],
            "Accuracy per epoch", "epoch", "accuracy", percent=True,
        ),
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
    return {
        "version": version,
        "layers": layers,
        "total_parameters": total,
        "training": training,
        "data_counts": data,
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
        "curves": curves_charts(metrics.get("curves")),
        "history": history,
        "history_svg": history_chart(history),
    }
