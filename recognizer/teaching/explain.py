"""What the teaching pages show about one drawing: every step, on the real network.

`explain_drawing` follows a drawing through the preprocessing and the active
network and returns what "How it works" draws; `attention` measures which
parts of the input the network relies on for a digit, two ways:

- occlusion: cover a small patch of the input with blank paper, run the
  network again, and see how much the digit's probability drops. One forward
  pass per patch position, all in one batch.
- gradient saliency: the derivative of the digit's score (its logit) with
  respect to every input pixel: where adding ink would raise the score
  (positive) or lower it (negative), averaged over noisy copies of the
  input (SmoothGrad) so that it is not speckle. It answers "what if this
  pixel were a little darker", not "what if a stroke were added": the page
  runs that experiment for real (the counterfactual activity).

Everything runs off the event loop: the stages through the inference service,
which owns the model's thread, the attention maps in a worker thread on the
very model the service is serving.
"""

import asyncio
import hashlib
import json

import numpy as np

from recognizer import preprocessing
from recognizer.inference import get_service
from recognizer.teaching.encoding import (
    deflated_image,
    exact_values,
    image_bytes,
    quantise_within,
)
from recognizer.teaching.memo import WAITING_COMPUTATIONS, Memo

# torch and the network: imported where a model is used (recognizer/checkpoints.py).

# Occlusion: a 6x6 blank patch moved 2 pixels at a time, starting 2 pixels
# outside the image, so that cell (i, j) of the 14x14 map is centred on the
# 2x2 block of input pixels (2i, 2j): the map lines up with the drawing.
OCCLUSION_PATCH = 6
OCCLUSION_STRIDE = 2
OCCLUSION_OFFSET = -2
OCCLUSION_CELLS = 14

STAGE_ORDER = ("conv1", "conv2", "pool1", "conv3", "conv4", "pool2", "dense")
# The most an answer of /learn/api/stages may weigh, in bytes of JSON. A class
# of 30 on one classroom connection shares a few Mbit/s: 125 kB answers (all
# seven stages) six times a second each did not fit. The page asks only for
# the stages on screen; those that do not fit come back listed in "omitted"
# and the page asks for them next.
ANSWER_BYTES = 15_000
# JSON around each encoded stage: keys, shape, levels, quotes.
STAGE_OVERHEAD = 120


def _json_number(value, digits=6):
    return round(float(value), digits)


def _point(value):
    return [_json_number(v, 4) for v in value]


def preprocessing_payload(stages):
    """The preprocessing steps as JSON: geometry as numbers, images as bytes."""
    payload = {}
    for key, value in stages.items():
        if isinstance(value, np.ndarray) and value.ndim == 2:
            payload[key] = {"shape": list(value.shape), "deflated": deflated_image(value)}
        elif isinstance(value, np.ndarray):
            payload[key] = [_json_number(v, 4) for v in value.ravel()]
        elif isinstance(value, (list, tuple)):
            payload[key] = [
                _point(v) if isinstance(v, (list, tuple, np.ndarray)) else _json_number(v, 4)
                for v in value
            ]
        elif isinstance(value, (np.floating, np.integer)):
            payload[key] = value.item()
        else:
            payload[key] = value
    return payload


def activations_payload(activations, names=STAGE_ORDER, budget=ANSWER_BYTES):
    """({name: encoded stage}, [names left out]) for the stages asked for, within `budget`.

    The dense layer's 128 values are sent exactly (the page prints them); the
    feature maps, drawn as images, are quantised (see encoding.py).
    """
    encoded, omitted = {}, []
    maps = {name: activations[name] for name in names if name != "dense"}
    if "dense" in names:
        encoded["dense"] = exact_values(activations["dense"])
        budget -= len(encoded["dense"]["float32"]) + STAGE_OVERHEAD
    fitted, omitted = quantise_within(maps, budget - STAGE_OVERHEAD * len(maps))
    # In the page's order, whatever order they were asked in.
    ordered = {**fitted, **encoded}
    return {name: ordered[name] for name in STAGE_ORDER if name in ordered}, omitted


def prediction_payload(prediction, logits=None):
    payload = {
        "digit": prediction.digit,
        "probabilities": prediction.probabilities,
        "model": prediction.version,
    }
    if logits is not None:
        payload["logits"] = [float(v) for v in np.asarray(logits).ravel()]
    return payload


def _answer(prediction, activations, image, stages, names):
    """The whole answer, its maps fitted into what the rest leaves of ANSWER_BYTES."""
    payload = {
        "prediction": prediction_payload(prediction, activations["logits"]),
        "input": {"shape": [28, 28], "deflated": deflated_image(image)},
    }
    if stages is not None:
        payload["preprocessing"] = preprocessing_payload(stages)
    rest = len(json.dumps(payload)) + len('"activations": {}, "omitted": []') + 20 * len(names)
    payload["activations"], payload["omitted"] = activations_payload(
        activations, names, ANSWER_BYTES - rest)
    return payload


async def explain_input(image, stages=None, names=STAGE_ORDER):
    """The network's stages `names` for a 28x28 input in [0, 1] (and its preprocessing, if any)."""
    prediction, activations = await get_service().apredict_with_activations(image)
    # Quantising and deflating the maps: a worker thread, not the loop.
    return await asyncio.to_thread(_answer, prediction, activations, image, stages, names)


async def explain_drawing(drawing, names=STAGE_ORDER):
    """Follow a parsed Drawing through the preprocessing and the network."""
    stages = await asyncio.to_thread(
        preprocessing.strokes_to_stages, drawing.strokes, drawing.width, drawing.height
    )
    return await explain_input(stage_input(stages), stages, names)


def stage_input(stages):
    return np.asarray(stages["input"], dtype=np.float32)


# -- attention ---------------------------------------------------------------


def occlusion_patches():
    """(i, j, rows, columns) of each cell of the 14x14 map: the slices of the
    input its patch covers, clipped at the input's top and left edges."""
    for i in range(OCCLUSION_CELLS):
        top = max(0, OCCLUSION_OFFSET + i * OCCLUSION_STRIDE)
        bottom = OCCLUSION_OFFSET + i * OCCLUSION_STRIDE + OCCLUSION_PATCH
        for j in range(OCCLUSION_CELLS):
            left = max(0, OCCLUSION_OFFSET + j * OCCLUSION_STRIDE)
            right = OCCLUSION_OFFSET + j * OCCLUSION_STRIDE + OCCLUSION_PATCH
            yield i, j, slice(top, bottom), slice(left, right)


def occlusion_inputs(image):
    """Every occluded copy of `image`: an array (14 * 14, 28, 28)."""
    image = np.asarray(image, dtype=np.float32)
    copies = np.repeat(image[None], OCCLUSION_CELLS * OCCLUSION_CELLS, axis=0)
    for i, j, rows, columns in occlusion_patches():
        copies[i * OCCLUSION_CELLS + j, rows, columns] = 0.0
    return copies


def paper_cells(image):
    """(14, 14) booleans: the cells whose patch covers only blank paper.

    Blanking paper leaves the input as it was, so those cells measure nothing:
    their drop is 0 by construction, not because that part does not matter.
    """
    image = np.asarray(image, dtype=np.float32)
    paper = np.ones((OCCLUSION_CELLS, OCCLUSION_CELLS), dtype=bool)
    for i, j, rows, columns in occlusion_patches():
        paper[i, j] = not image[rows, columns].any()
    return paper


def _probabilities(model, inputs, temperature=1.0):
    import torch

    from recognizer import calibration

    with torch.inference_mode():
        logits = model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))[:, None])
        return calibration.probabilities(logits, temperature).numpy()


def occlusion_map(model, image, target, temperature=1.0):
    """(14, 14) drop of the target's probability when each patch is blanked out.

    A patch over blank paper leaves the input as it is, so its drop is 0
    without a forward pass: only the copies that differ from the input are
    run. A digit's ink touches about half the patches, which halves the cost
    of the map (about 200 ms of CPU for all 196 on one slow core).
    """
    image = np.asarray(image, dtype=np.float32)
    base = _probabilities(model, image[None], temperature)[0]
    copies = occlusion_inputs(image)
    changed = np.flatnonzero((copies != image[None]).reshape(len(copies), -1).any(axis=1))
    drop = np.zeros(len(copies), dtype=np.float64)
    if len(changed):
        drop[changed] = (base[target]
                         - _probabilities(model, copies[changed], temperature)[:, target])
    return drop.reshape(OCCLUSION_CELLS, OCCLUSION_CELLS), base


def gradient_saliency(model, image, target):
    """(28, 28) derivative of the target's logit with respect to each input pixel."""
    import torch

    x = torch.tensor(np.asarray(image, dtype=np.float32)[None, None], requires_grad=True)
    with torch.enable_grad():
        logits = model(x)
        # Only the input's gradient: the model's own parameters get no .grad.
        (gradient,) = torch.autograd.grad(logits[0, target], x)
    return gradient[0, 0].numpy()


# SmoothGrad (Smilkov et al., 2017): the gradient averaged over noisy copies
# of the input. A single gradient is speckled: neighbouring pixels often get
# opposite signs. Measured on the shipped model (a 7, an open 4 asked about 4
# and about 9), the correlation of each pixel's value with its neighbour's
# rose from 0.20-0.24 for the plain gradient to 0.36-0.38 with 32 copies at
# noise 0.15 (16 copies: 0.30-0.34; noise 0.3 blurred the loop's pixels away).
# 0.15 is within the paper's 10-20% of the input's range. The noise comes
# from a fixed seed, so one input always gets the same map (and the answer
# cache holds it). Cost: one batch of 32 forward and backward passes, about
# 90 ms on a loaded 2-core machine, once per input and digit.
SMOOTHGRAD_SAMPLES = 32
SMOOTHGRAD_SIGMA = 0.15
SMOOTHGRAD_SEED = 0


def smoothgrad_noise(samples=SMOOTHGRAD_SAMPLES, sigma=SMOOTHGRAD_SIGMA, seed=SMOOTHGRAD_SEED):
    """The noise added to each copy: (samples, 1, 28, 28), the same every time."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn((samples, 1, 28, 28), generator=generator) * sigma


def smooth_gradient(model, image, target, noise=None):
    """(28, 28) SmoothGrad: the target logit's gradient, averaged over noisy copies.

    The copies are not clipped to 0..1: the network takes any number, and
    clipping would make the noise one-sided on paper.
    """
    import torch

    noise = smoothgrad_noise() if noise is None else noise
    x = torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None]
    copies = (x + noise).requires_grad_(True)
    with torch.enable_grad():
        logits = model(copies)
        # Each copy's logit depends on its own input only: the gradient of
        # the sum is every copy's gradient at once.
        (gradient,) = torch.autograd.grad(logits[:, target].sum(), copies)
    return gradient.mean(dim=0)[0].numpy()


# Attention answers by (model weights, input bytes, digit asked for). One
# answer is about 12 kB of JSON (60 kB as Python objects): 256 of them cost
# at most 16 MB.
ATTENTION_CACHE_SIZE = 256
# Two workers, each with RECOGNIZER_TORCH_THREADS PyTorch threads (1 unless
# an operator says otherwise), as the inference worker. One map of a digit in
# one process: 56 ms of wall time and 111 ms of CPU on two threads (the
# second thread's share is mostly OpenMP waiting for the first), 92 ms and
# 92 ms on one. A class asking for new maps keeps the cores busy, so CPU a
# map is what bounds the wait: two one-thread workers serve about 22 maps a
# second, one two-thread worker about 18. The count is set in each worker:
# a thread that has used PyTorch keeps its own.
ATTENTION_WORKERS = 2


def _attention_worker_threads():
    import torch
    from django.conf import settings

    if settings.RECOGNIZER_TORCH_THREADS:
        torch.set_num_threads(settings.RECOGNIZER_TORCH_THREADS)


attention_cache = Memo(ATTENTION_CACHE_SIZE, workers=ATTENTION_WORKERS,
                       name="teaching-attention", max_waiting=WAITING_COMPUTATIONS,
                       initializer=_attention_worker_threads)


def input_key(image):
    """The exact 28x28 float32 input, as a short digest."""
    data = np.ascontiguousarray(image, dtype=np.float32)
    return hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()


def attention_maps(image, target=None, loaded=None):
    """Occlusion and saliency maps for `target` (default: the predicted digit).

    Blocking; call it in a worker thread. Uses the model the inference
    service is serving, so the maps and the page's prediction agree.
    """
    from recognizer import calibration

    loaded = loaded or get_service().refresh()
    model = loaded.model
    temperature = calibration.temperature_of(loaded.metadata)
    base = _probabilities(model, np.asarray(image, dtype=np.float32)[None], temperature)[0]
    predicted = int(base.argmax())
    target = predicted if target is None else int(target)
    # The occluded copies need no activations or gradients: the serving
    # graph (recognizer/frozen.py) runs them, 28 ms for a digit's 102 copies
    # against 51 ms on the eager network (one process, 2 threads), with
    # probabilities within 3e-7 of the eager network's.
    occlusion, _ = occlusion_map(loaded.serving or model, image, target, temperature)
    saliency = smooth_gradient(model, image, target)
    return {
        "model": loaded.version,
        "digit": predicted,
        "target": target,
        "probabilities": [float(p) for p in base],
        "input": {"shape": [28, 28], "data": image_bytes(image)},
        "occlusion": {
            "shape": [OCCLUSION_CELLS, OCCLUSION_CELLS],
            "patch": OCCLUSION_PATCH,
            "stride": OCCLUSION_STRIDE,
            "offset": OCCLUSION_OFFSET,
            "values": [_json_number(v) for v in occlusion.ravel()],
            # 1 where the patch covered only blank paper: nothing to hide there.
            "paper": [int(v) for v in paper_cells(image).ravel()],
        },
        "saliency": {
            "shape": [28, 28],
            "method": "smoothgrad",
            "samples": SMOOTHGRAD_SAMPLES,
            "noise": SMOOTHGRAD_SIGMA,
            "values": [_json_number(v, 7) for v in saliency.ravel()],
        },
    }


async def attention(image, target=None):
    """attention_maps, computed once per (model, input, digit) while cached."""
    loaded = await asyncio.to_thread(get_service().refresh)
    image = np.array(image, dtype=np.float32)
    # The version's id and weights: the answer names the version, and a file
    # replaced under the same name must not be answered from the old one.
    key = (loaded.version_id, loaded.sha256, input_key(image), target)
    future = attention_cache.get(key, lambda: attention_maps(image, target, loaded))
    # shield: a client that goes away does not cancel the computation that
    # other learners (or its own next request) are waiting for.
    return await asyncio.shield(asyncio.wrap_future(future))


def drawing_input(drawing):
    return np.asarray(
        preprocessing.strokes_to_input(drawing.strokes, drawing.width, drawing.height),
        dtype=np.float32,
    )
