"""What a finetune run records and prints about the version it made.

The metrics (ModelVersion.metrics: every evaluation set, the curves, the
active version's numbers beside the new one's, the calibration), the
training record (ModelVersion.training and the checkpoint's metadata: the
command, the options, the data counts), the manifest written beside an
--output file, and the lines the run prints at the end.
"""

import json
import os
from pathlib import Path

import torch
from django.utils import timezone

from recognizer.metrics_display import percent
from recognizer.network import ARCHITECTURE
from trainer import confidence, cpu_kernels, styles_set

MANIFEST_NAME = "manifest.json"
HELDOUT_SET = "heldout_drawings"
SET_TITLES = {"mnist_test": "MNIST test", "canvas": "canvas-style",
              HELDOUT_SET: "held-out drawings", "styles": "styles (all)"}


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


def describe_before_after(table):
    """One printable line per evaluation set."""
    lines = []
    for name, row in table.items():
        line = (f"  {SET_TITLES.get(name, name)} ({row['count']}): {percent(row['before'])} -> "
                f"{percent(row['after'])}")
        if row["change_points"] is not None:
            line += f" ({row['change_points']:+.2f} points)"
        lines.append(line)
    return lines


def version_metrics(measured, history, canvas_note=None):
    """ModelVersion.metrics of the new version, from the run's Measurements."""
    results, baseline = measured.results, measured.baseline
    metrics = {
        "accuracy": results["mnist_test"]["accuracy"],
        "canvas_accuracy": results["canvas"]["accuracy"] if "canvas" in results else None,
        "styles_accuracy": results["styles"]["accuracy"] if "styles" in results else None,
        **results,
        "curves": history,
    }
    if canvas_note:
        metrics["canvas_note"] = canvas_note
    if HELDOUT_SET in results:
        metrics["heldout_drawings_accuracy"] = results[HELDOUT_SET]["accuracy"]
    if baseline is not None:
        metrics["baseline"] = {"version": baseline["version"], **_summary(baseline["results"])}
    # Before = the active version (the starting point unless --from-scratch),
    # after = the new one, on the same sets.
    metrics["before_after"] = before_after(
        results, baseline["results"] if baseline is not None else None)
    metrics["before_after"].update(styles_set.before_after_rows(
        results.get("styles"), baseline["results"].get("styles") if baseline else None))
    metrics["calibration"] = {
        "temperature": measured.temperature,
        "fit": measured.calibration_fit,
        "after": measured.confidence,
        "before": {"version": baseline["version"], **baseline["confidence"]}
        if baseline is not None else None,
    }
    return metrics


def training_record(options, config, data, start_name, temperature, duration):
    """ModelVersion.training: how the version was made, enough to make it again."""
    return {
        "command": options.command_line,
        "seed": options.seed,
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "lr": config.lr,
        "optimizer": options.optimizer,
        "weight_decay": options.weight_decay,
        "label_smoothing": options.label_smoothing,
        "temperature": temperature,
        "augment": config.augment.as_dict() if config.augment else None,
        "limit": options.limit,
        "include_pending": options.include_pending,
        "holdout_fraction": data.collected.holdout_fraction,
        "drawings_weight": options.drawings_weight,
        "tolerance_points": options.tolerance,
        "data": data.counts,
        "device": config.device,
        "threads": torch.get_num_threads(),
        # The layout decides the weights' last bits as the thread count does.
        "memory_format": cpu_kernels.layout_name(
            cpu_kernels.memory_format(config.device, config.channels_last)),
        "from": start_name,
        # Only the dense layers trained, on the convolutions of `from`.
        "head_only": options.head_only,
        "duration_seconds": duration,
        "torch": str(torch.__version__),
        "architecture": ARCHITECTURE,
    }


def outcome_lines(path, row, metrics, measured, duration, activate, reasons):
    """What the run prints once the version is saved: numbers, reasons, verdict."""
    baseline = measured.baseline
    fit = measured.calibration_fit
    lines = [
        f"Saved {path} as version {row.version}: MNIST test {metrics['accuracy']:.4%}"
        + (f", canvas {metrics['canvas_accuracy']:.4%}" if metrics["canvas_accuracy"] is not None
           else "")
        + f" ({duration:.0f}s)",
        "Accuracy before -> after" + (f" ({baseline['version']} -> {row.version}):"
                                      if baseline is not None else ":"),
        *describe_before_after(metrics["before_after"]),
        f"Confidence (the game's 0.9; without -> with the temperature, fitted on "
        f"{fit['count'] if fit else 0} held-out training digits):",
    ]
    if baseline is not None:
        lines += confidence.describe(f"before ({baseline['version']})", baseline["confidence"])
    lines += confidence.describe("after", measured.confidence)
    lines += [f"  {reason}" for reason in reasons]
    lines.append(f"Version {row.version} is {'now active' if activate else 'not activated'}.")
    return lines


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
