"""Snapshots of the network while it learns, for the lesson "How it learned".

`finetune --snapshots DIR` keeps the network as it was before its first
step, after 1, 10, 100 and 1,000 steps and at the end of every epoch. Each
snapshot is one file, `step-NNNNNN.pt`, written atomically
(recognizer/atomic_files.py): a `torch.save` of a plain dict, the
architecture, the state dict in float16 and what was measured then. Beside
them `snapshots.json` lists them in order with the run's command, seed and
data, and is rewritten (atomically) after each snapshot, so an interrupted
run leaves a consistent set of the snapshots taken so far.

float16 halves the size: 468,010 weights take 0.94 MB instead of 1.88 MB a
snapshot. The rounding (a relative error below 0.05%) moves the ten
probabilities of a drawing by far less than the page shows (0.1 points); the
lesson compares snapshots with each other, not with the served model.

Each snapshot is measured on a quick test set (the first
QUICK_TEST_DIGITS MNIST test digits, eval mode, no augmentation), about a
second on one CPU thread, so that the step snapshots, taken mid-epoch, have
a test accuracy too.
"""

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from recognizer.atomic_files import write_atomically
from recognizer.network import ARCHITECTURE
from trainer.evaluation import evaluate

# The steps after which a snapshot is taken (0: the random weights it starts
# from), besides the end of each epoch.
SNAPSHOT_STEPS = (0, 1, 10, 100, 1000)
MANIFEST_NAME = "snapshots.json"
FORMAT = 1
QUICK_TEST_DIGITS = 1000


def file_name(step):
    return f"step-{step:06d}.pt"


def compact_state(model):
    """The state dict with every float tensor in float16, contiguous and on the CPU."""
    state = {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.to(torch.float16)
        state[name] = value.contiguous().clone()
    return state


@dataclass
class SnapshotWriter:
    """Takes the snapshots of one training run into `directory`.

    `quick_test` is a DigitData measured at every snapshot; `record` is the
    run's description written into the manifest (command, seed, data).
    """

    directory: Path
    quick_test: object
    record: dict = field(default_factory=dict)
    steps: tuple = SNAPSHOT_STEPS
    entries: list = field(default_factory=list)

    def __post_init__(self):
        self.directory = Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # A folder reused for a new run holds only the new run's snapshots.
        for old in self.directory.glob("step-*.pt"):
            old.unlink()

    # -- the three moments the training loop reports ------------------------------

    def at_start(self, model):
        """Before the first step: the random (or starting) weights."""
        if 0 in self.steps:
            self.take(model, step=0, epoch=0, train_loss=None)

    def after_step(self, model, step, epoch, loss):
        if step in self.steps:
            self.take(model, step=step, epoch=epoch, train_loss=loss)

    def after_epoch(self, model, step, epoch, history_entry):
        """At an epoch's end; the step's snapshot when one was just taken is marked instead."""
        if self.entries and self.entries[-1]["step"] == step:
            self.entries[-1]["epoch_end"] = epoch
            self.entries[-1]["epoch_train_loss"] = history_entry.get("train_loss")
            self._write_manifest()
            return
        self.take(model, step=step, epoch=epoch, train_loss=history_entry.get("train_loss"),
                  epoch_end=True)

    # -- writing ------------------------------------------------------------------------

    def take(self, model, step, epoch, train_loss, epoch_end=False):
        """Measure the model on the quick test set and write it; returns the manifest entry."""
        measured = evaluate(model, self.quick_test)
        entry = {
            "file": file_name(step),
            "step": step,
            # The epoch it was taken in (0: before the first step).
            "epoch": epoch,
            "train_loss": None if train_loss is None else round(float(train_loss), 6),
            "test_loss": measured["loss"],
            "test_accuracy": measured["accuracy"],
            "test_count": measured["count"],
        }
        if epoch_end:
            entry["epoch_end"] = epoch
            entry["epoch_train_loss"] = entry["train_loss"]
        payload = {"architecture": ARCHITECTURE, "state_dict": compact_state(model),
                   "metadata": {key: value for key, value in entry.items() if key != "file"}}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        write_atomically(self.directory / entry["file"], buffer.getvalue())
        entry["size_bytes"] = len(buffer.getvalue())
        self.entries.append(entry)
        self._write_manifest()
        return entry

    def _write_manifest(self):
        manifest = {
            "format": FORMAT,
            "architecture": ARCHITECTURE,
            "dtype": "float16",
            "quick_test": {"set": "mnist_test", "first": len(self.quick_test)},
            **self.record,
            "snapshots": self.entries,
        }
        write_atomically(self.directory / MANIFEST_NAME,
                         (json.dumps(manifest, indent=2) + "\n").encode())
