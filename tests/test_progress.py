"""Training progress in a log: a line every few seconds, never carriage returns."""

import io

import numpy as np
import torch

from trainer.datasets import DigitData
from trainer.progress import Progress
from trainer.training import fixed_subset


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_line_every_interval_and_one_at_the_end():
    """1,000 batches over 35 seconds (a fake clock): 3 lines and the last, not 1,000."""
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(32000, "epoch 1/3", stream=stream, interval=10.0, clock=clock)
    for step in range(1000):
        clock.now += 0.035
        progress.update(32, loss=1.0 / (step + 1))
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("epoch 1/3: ") and "samples/s" in lines[0]
    assert lines[-1].startswith("epoch 1/3: 32000/32000 (100%)")
    assert "loss 0.0010" in lines[-1]
    # 32 samples every 35 ms.
    assert "914 samples/s" in lines[-1]


def test_a_silent_progress_writes_nothing():
    stream = io.StringIO()
    progress = Progress(10, "epoch", stream=stream, enabled=False, interval=0.0)
    progress.update(10)
    progress.close()
    assert stream.getvalue() == ""


def test_a_terminal_gets_the_live_bar():
    stream = Terminal()
    progress = Progress(100, "epoch 1/1", stream=stream, interval=0.0)
    for _ in range(10):
        progress.update(10, loss=0.5)
    progress.close()
    assert "\r" in stream.getvalue()


def test_the_fixed_training_subset_spans_every_part_of_the_data():
    labels = np.repeat(np.arange(10), 100)
    data = DigitData.from_arrays(np.zeros((1000, 28, 28), dtype=np.uint8), labels)
    subset = fixed_subset(data, 50)
    assert len(subset) == 50
    assert torch.bincount(subset.labels, minlength=10).tolist() == [5] * 10
    assert fixed_subset(data, 5000) is data
    assert fixed_subset(data, 0) is None
