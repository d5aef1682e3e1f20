"""The serving form of a network: batch norm folded into the convolutions, graph frozen.

`freeze` traces the eval-mode network, freezes it (parameters become
constants) and lets `torch.jit.optimize_for_inference` fold each batch norm
into the convolution before it and run the convolutions with oneDNN. Measured
on a shared 2-core machine with one torch thread (the shipped model, 500 MNIST
test digits): eager 1.38 ms at batch 1 and 0.96 ms a drawing at batch 64;
frozen 0.65 ms and 0.41 ms. Folding alone (`fold_batch_norm`, torch's
`fuse_conv_bn_eval` on each block) gave 0.98 ms and 0.52 ms: it removes the
batch norms but keeps the eager dispatch. Either way the probabilities differ
from the eager network's by at most 6e-7 at any batch size
(tests/test_frozen_model.py holds them to 1e-5 on MNIST test digits).

TorchScript is deprecated in favour of `torch.compile`, which needs a C++
compiler on the server and seconds of compilation per model version and
process. Should a later torch drop or break TorchScript, `freeze` serves the
folded eager network instead and says so in the log.

The frozen graph returns the logits only. The teaching pages, which show every
layer's activations and take gradients, use the eager network; their
occlusion maps, which need neither, use the frozen one.
"""

import copy
import logging
import warnings

import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

logger = logging.getLogger(__name__)

# Batch sizes run once after freezing, so that the first real requests do not
# pay for the JIT's profiling runs (a few ms each).
WARMUP_BATCHES = (1, 2, 7)

CONV_BLOCKS = ("conv1", "conv2", "conv3", "conv4")


def _require_eval(model):
    if model.training:
        raise ValueError("freeze a network in eval mode: batch norm folds its running statistics")


def fold_batch_norm(model):
    """An eager copy of `model` whose conv blocks have their batch norm folded in.

    Each block (conv, batch norm, ReLU) becomes (conv with folded weights and
    bias, identity, ReLU): the same names, so `forward_with_activations` still
    works on it.
    """
    _require_eval(model)
    folded = copy.deepcopy(model)
    for name in CONV_BLOCKS:
        block = getattr(folded, name)
        block[0] = fuse_conv_bn_eval(block[0], block[1])
        block[1] = torch.nn.Identity()
    return folded.eval()


def jit_freeze(model):
    """A traced, frozen, oneDNN-optimised copy of `model`: (N, 1, 28, 28) -> logits."""
    _require_eval(model)
    example = torch.zeros(1, 1, 28, 28)
    with warnings.catch_warnings():
        # The deprecation of TorchScript: see the module's docstring.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Traced under no_grad, not inference_mode: a graph traced on
        # inference tensors cannot be frozen.
        with torch.no_grad():
            traced = torch.jit.trace(model, example)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    with torch.inference_mode():
        for size in WARMUP_BATCHES:
            frozen(torch.zeros(size, 1, 28, 28))
    return frozen


def freeze(model):
    """The fastest serving form of `model` that this torch offers (logits only)."""
    try:
        return jit_freeze(model)
    except ValueError:
        raise
    except Exception as exc:  # TorchScript gone or broken in this torch
        logger.warning("cannot freeze the network with TorchScript (%s); serving it with "
                       "batch norm folded, about 1.5x slower", exc)
        return fold_batch_norm(model)


class Calibrated(torch.nn.Module):
    """`model`'s calibrated probabilities: softmax(logits / temperature) in
    float64, the same operations as recognizer.calibration.probabilities."""

    def __init__(self, model, temperature):
        super().__init__()
        self.model = model
        self.temperature = float(temperature)

    def forward(self, x):
        return torch.softmax(self.model(x).double() / self.temperature, dim=-1)


def freeze_calibrated(model, temperature):
    """The serving form of `model` that answers calibrated probabilities
    (float64) in one call.

    One call, because every torch operation called from Python lets go of the
    interpreter while it runs and must take it back after: the inference
    worker's batch took seven such calls (the inputs, the graph, the logits
    put in place, the calibration's four), and under load each taking back
    waited for the event loop's thread to let go, up to the interpreter's
    switch interval (5 ms). Inside the frozen graph the calibration's
    operations run without a return to Python: the same operations, the same
    probabilities to the bit (tests/test_frozen_model.py). Timed with
    temporary timers in the worker at 64 players in one process
    (bench/bench_load.py), one run before and one after, with the batch's
    answers also handed to the event loop in one call (recognizer.inference):
    a batch of 3 (p50) took 7.3 ms of wall time for 3.9 ms of CPU before,
    and a batch of 2 4.7 ms for 2.9 ms after; the batch a drawing was in
    took 19 ms (p50) before and 11 ms after. In one process, timed alone,
    a batch of 3 costs 2.6 ms of CPU this way against 3.1 ms.
    """
    _require_eval(model)
    try:
        return jit_freeze(Calibrated(model, temperature).eval())
    except Exception as exc:  # TorchScript gone or broken in this torch
        logger.warning("cannot freeze the calibrated network with TorchScript (%s); "
                       "serving it with batch norm folded", exc)
        return Calibrated(fold_batch_norm(model), temperature).eval()
