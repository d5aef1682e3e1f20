"""Faster CPU kernels for training and evaluation, and what each one changes.

Two settings, each measured on the 2-core machine the site is developed on
(torch 2.13, oneDNN 3.12, one thread, batch 128; numbers from
bench/bench_training.py and the profiles behind docs/training.md, "Speed"):

- Channels-last tensors (NHWC). oneDNN's convolutions, and torch's batch norm
  and max pooling, run faster on them than on the default NCHW layout: the
  training step went from about 180 to 330 digits a second with the machine
  loaded (load average 6 to 9 on 2 cores) and from 560 to 720 with it quiet.
  The weights are not NCHW's bit for bit: channels-last sums in another
  order, and its batch norm keeps less precision (one step's gradients lie
  about 1e-3 from a float64 computation, relative, NCHW's about 1e-6; one
  128-digit batch rather than another changes them by about their own size).
  Runs part like NCHW runs on one thread and on two do, and train as well:
  after 40 steps of 32 digits the test accuracies of the three were within
  1.0 point of each other; after a 60,000-digit epoch, over six seeds and thread
  counts, channels-last minus NCHW was -0.06 to +0.06 points of MNIST test
  accuracy (docs/training.md, "Speed"). A run repeated with the same seed,
  options, layout and thread count gives the same bits. `--nchw` trains in
  NCHW; on CUDA the layout stays NCHW, not measured there.
- No filling of uninitialised memory. `torch.use_deterministic_algorithms`
  (seed_everything turns it on) also fills every new tensor with NaN, so
  that a kernel that reads memory it never wrote shows up; torch's kernels
  write every element they return, so the fill only costs time: 84 ms of a
  447 ms step in a profile on the loaded machine; in turns, 10-13% more
  digits a second without it. The weights come out bit-identical.
"""

import contextlib

import torch


def memory_format(device, channels_last=None):
    """The layout to train in: channels-last on the CPU unless told otherwise."""
    if channels_last is None:
        channels_last = str(device) == "cpu"
    return torch.channels_last if channels_last else torch.contiguous_format


def layout_name(layout):
    """'channels_last' or 'nchw', as the training record names the layout."""
    return "channels_last" if layout == torch.channels_last else "nchw"


def as_layout(inputs, layout):
    """`inputs` (N, C, H, W) in `layout`.

    `Tensor.contiguous(memory_format=...)` leaves a one-channel batch as it is
    (with C = 1 both layouts count as contiguous); `to` restrides it.
    """
    if layout == torch.contiguous_format or inputs.dim() != 4:
        # Rows of features (trainer/head_only.py) have no channels to move.
        return inputs.contiguous()
    return inputs.to(memory_format=layout)


@contextlib.contextmanager
def model_layout(model, layout):
    """`model`'s 4-d weights in `layout` inside the block, NCHW again after it.

    The model that leaves training (and the checkpoint written from it) has
    the layout of one trained in NCHW; the values are copied, not changed.
    """
    if layout == torch.contiguous_format:
        yield model
        return
    model.to(memory_format=layout)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)


@contextlib.contextmanager
def unfilled_memory():
    """New tensors are not filled with NaN inside the block (see the module's note)."""
    before = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = before
