"""Measuring a model: accuracy, per-class accuracy, confusion matrix, loss.

The metrics come back as plain JSON-able dicts, ready for ModelVersion.metrics
and the manifest of the shipped model.
"""

import torch
from torch.nn import functional as F

from recognizer.metrics_display import percent
from trainer.datasets import batches


@torch.no_grad()
def predict_logits(model, data, batch_size=1000, device="cpu"):
    was_training = model.training
    model.eval()
    chunks = []
    for inputs, _ in batches(data, batch_size, shuffle=False):
        chunks.append(model(inputs.to(device)).float().cpu())
    model.train(was_training)
    if not chunks:
        return torch.zeros((0, 10))
    return torch.cat(chunks)


def metrics_from_logits(logits, labels):
    labels = labels.cpu()
    count = len(labels)
    if count == 0:
        return {"count": 0, "accuracy": None, "loss": None,
                "per_class_accuracy": [None] * 10, "confusion_matrix": [[0] * 10] * 10}
    predictions = logits.argmax(dim=1)
    # Rows: true digit, columns: predicted digit.
    confusion = torch.bincount(labels * 10 + predictions, minlength=100).view(10, 10)
    per_class_total = confusion.sum(dim=1)
    per_class = [
        round(float(confusion[d, d]) / float(per_class_total[d]), 6) if per_class_total[d] else None
        for d in range(10)
    ]
    return {
        "count": count,
        "accuracy": round(float((predictions == labels).float().mean()), 6),
        "loss": round(float(F.cross_entropy(logits, labels)), 6),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def evaluate(model, data, batch_size=1000, device="cpu"):
    """Metrics of `model` on `data` (a DigitData)."""
    return metrics_from_logits(predict_logits(model, data, batch_size, device), data.labels)


def compare(candidate, baseline, set_names, tolerances=None):
    """Whether `candidate` is at least as accurate as `baseline` on every named set.

    Both are {set name: metrics}. `tolerances` maps a set name to the
    percentage points of accuracy the candidate may lose there and still
    count as not worse (none elsewhere). Returns (not_worse, reasons) where
    reasons lists, for each set, the two accuracies and the verdict.
    """
    tolerances = tolerances or {}
    not_worse = True
    reasons = []
    for name in set_names:
        new = candidate.get(name, {}).get("accuracy")
        old = baseline.get(name, {}).get("accuracy")
        if new is None or old is None:
            reasons.append(f"{name}: not measured on both models")
            continue
        points = float(tolerances.get(name, 0.0))
        # Accuracies are stored rounded to 6 decimals: a tolerance of exactly
        # the difference must not fail on the last bit.
        if new >= old:
            verdict = "(not worse)"
        elif new >= old - points / 100 - 1e-9:
            verdict = f"(within the {points:g}-point tolerance)"
        else:
            verdict = "(worse)"
        not_worse = not_worse and verdict != "(worse)"
        reasons.append(f"{name}: {percent(new, 4)} vs {percent(old, 4)} {verdict}")
    return not_worse, reasons
