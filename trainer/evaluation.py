"""Measuring a model: accuracy, per-class accuracy, confusion matrix, loss.

The metrics come back as plain JSON-able dicts, ready for ModelVersion.metrics
and the manifest of the shipped model.

On the CPU the digits go through a copy of the network with each batch norm
folded into its convolution (recognizer/frozen.py, as the site serves it) in
the channels-last layout (trainer/cpu_kernels.py): 1,660 digits a second
against 760 for the eager NCHW network, one thread of the 2-core machine,
batches of 1,000 (larger ones were no faster). The 15,000 digits an epoch of
training measures took 8.6 s instead of 16.2 s on one thread of that machine
(bench/bench_training.py, quiet). The logits differ from the eager network's
by rounding: for both shipped models, on MNIST test and 20,000 MNIST train
digits, by at most 2.4e-6, with the same predictions, accuracies and losses
(to the 6 decimals kept).
"""

import torch
from torch.nn import functional as F

from recognizer import frozen
from recognizer.metrics_display import percent
from trainer import cpu_kernels
from trainer.datasets import batches


def predict_logits(model, data, batch_size=1000, device="cpu"):
    was_training = model.training
    model.eval()
    network = measuring_form(model, device)
    layout = cpu_kernels.memory_format(device)
    chunks = []
    with torch.inference_mode(), cpu_kernels.unfilled_memory():
        for inputs, _ in batches(data, batch_size, shuffle=False):
            inputs = cpu_kernels.as_layout(inputs.to(device), layout)
            chunks.append(network(inputs).float().cpu())
    model.train(was_training)
    if not chunks:
        return torch.zeros((0, 10))
    return torch.cat(chunks)


def measuring_form(model, device):
    """What measures `model` (in eval mode): on the CPU, a copy with its batch norms folded.

    Only networks with the digit network's conv blocks fold; on CUDA, and for
    any other network, the model itself.
    """
    if str(device) != "cpu" or not _has_conv_blocks(model):
        return model
    with torch.no_grad():
        return frozen.fold_batch_norm(model)


def _has_conv_blocks(model):
    """Whether `model` has the (convolution, batch norm, ReLU) blocks that fold."""
    for name in frozen.CONV_BLOCKS:
        block = getattr(model, name, None)
        if not isinstance(block, torch.nn.Sequential) or len(block) < 2:
            return False
        if not isinstance(block[1], torch.nn.BatchNorm2d):
            return False
    return True


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
