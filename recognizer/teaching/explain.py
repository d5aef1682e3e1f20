"""What the teaching pages show about one drawing: every step, on the real network.

`explain_drawing` follows a drawing through the preprocessing and the active
network and returns what "How it works" draws; `attention` measures which
parts of the input the network relies on for a digit, two ways:

- occlusion: cover a small patch of the input with blank paper, run the
  network again, and see how much the digit's probability drops. One forward
  pass per patch position, all in one batch.
- gradient saliency: the derivative of the digit's score (its logit) with
  respect to every input pixel: where adding ink would raise the score
  (positive) or lower it (negative).

Everything runs off the event loop: the stages through the inference service,
which owns the model's thread, the attention maps in a worker thread on the
very model the service is serving.
"""

import asyncio

import numpy as np
import torch

from recognizer import calibration, preprocessing
from recognizer.inference import get_service
from recognizer.teaching.encoding import image_bytes, quantise_maps

# Occlusion: a 6x6 blank patch moved 2 pixels at a time, starting 2 pixels
# outside the image, so that cell (i, j) of the 14x14 map is centred on the
# 2x2 block of input pixels (2i, 2j): the map lines up with the drawing.
OCCLUSION_PATCH = 6
OCCLUSION_STRIDE = 2
OCCLUSION_OFFSET = -2
OCCLUSION_CELLS = 14

STAGE_ORDER = ("conv1", "conv2", "pool1", "conv3", "conv4", "pool2", "dense")


def _json_number(value, digits=6):
    return round(float(value), digits)


def _point(value):
    return [_json_number(v, 4) for v in value]


def preprocessing_payload(stages):
    """The preprocessing steps as JSON: geometry as numbers, images as bytes."""
    payload = {}
    for key, value in stages.items():
        if isinstance(value, np.ndarray) and value.ndim == 2:
            payload[key] = {"shape": list(value.shape), "data": image_bytes(value)}
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


def activations_payload(activations):
    return {name: quantise_maps(activations[name]) for name in STAGE_ORDER}


def prediction_payload(prediction, logits=None):
    payload = {
        "digit": prediction.digit,
        "probabilities": prediction.probabilities,
        "model": prediction.version,
    }
    if logits is not None:
        payload["logits"] = [float(v) for v in np.asarray(logits).ravel()]
    return payload


async def explain_input(image, stages=None):
    """The network's stages for a 28x28 input in [0, 1] (and its preprocessing, if any)."""
    prediction, activations = await get_service().apredict_with_activations(image)
    # Quantising and base64 of about 85 kB of maps: worker thread, not the loop.
    encoded = await asyncio.to_thread(activations_payload, activations)
    payload = {
        "prediction": prediction_payload(prediction, activations["logits"]),
        "input": {"shape": [28, 28], "data": image_bytes(image)},
        "activations": encoded,
    }
    if stages is not None:
        payload["preprocessing"] = await asyncio.to_thread(preprocessing_payload, stages)
    return payload


async def explain_drawing(drawing):
    """Follow a parsed Drawing through the preprocessing and the network."""
    stages = await asyncio.to_thread(
        preprocessing.strokes_to_stages, drawing.strokes, drawing.width, drawing.height
    )
    return await explain_input(stage_input(stages), stages)


def stage_input(stages):
    return np.asarray(stages["input"], dtype=np.float32)


# -- attention ---------------------------------------------------------------


def occlusion_inputs(image):
    """Every occluded copy of `image`: an array (14 * 14, 28, 28)."""
    image = np.asarray(image, dtype=np.float32)
    copies = np.repeat(image[None], OCCLUSION_CELLS * OCCLUSION_CELLS, axis=0)
    for i in range(OCCLUSION_CELLS):
        top = max(0, OCCLUSION_OFFSET + i * OCCLUSION_STRIDE)
        bottom = OCCLUSION_OFFSET + i * OCCLUSION_STRIDE + OCCLUSION_PATCH
        for j in range(OCCLUSION_CELLS):
            left = max(0, OCCLUSION_OFFSET + j * OCCLUSION_STRIDE)
            right = OCCLUSION_OFFSET + j * OCCLUSION_STRIDE + OCCLUSION_PATCH
            copies[i * OCCLUSION_CELLS + j, top:bottom, left:right] = 0.0
    return copies


def _probabilities(model, inputs, temperature=1.0):
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))[:, None])
        return calibration.probabilities(logits, temperature).numpy()


def occlusion_map(model, image, target, temperature=1.0):
    """(14, 14) drop of the target's probability when each patch is blanked out."""
    base = _probabilities(model, np.asarray(image, dtype=np.float32)[None], temperature)[0]
    occluded = _probabilities(model, occlusion_inputs(image), temperature)
    drop = base[target] - occluded[:, target]
    return drop.reshape(OCCLUSION_CELLS, OCCLUSION_CELLS), base


def gradient_saliency(model, image, target):
    """(28, 28) derivative of the target's logit with respect to each input pixel."""
    x = torch.tensor(np.asarray(image, dtype=np.float32)[None, None], requires_grad=True)
    with torch.enable_grad():
        logits = model(x)
        # Only the input's gradient: the model's own parameters get no .grad.
        (gradient,) = torch.autograd.grad(logits[0, target], x)
    return gradient[0, 0].numpy()


def attention_maps(image, target=None):
    """Occlusion and saliency maps for `target` (default: the predicted digit).

    Blocking; call it in a worker thread. Uses the model the inference
    service is serving, so the maps and the page's prediction agree.
    """
    loaded = get_service().refresh()
    model = loaded.model
    temperature = calibration.temperature_of(loaded.metadata)
    base = _probabilities(model, np.asarray(image, dtype=np.float32)[None], temperature)[0]
    predicted = int(base.argmax())
    target = predicted if target is None else int(target)
    occlusion, _ = occlusion_map(model, image, target, temperature)
    saliency = gradient_saliency(model, image, target)
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
        },
        "saliency": {
            "shape": [28, 28],
            "values": [_json_number(v, 7) for v in saliency.ravel()],
        },
    }


async def attention(image, target=None):
    return await asyncio.to_thread(attention_maps, image, target)


def drawing_input(drawing):
    return np.asarray(
        preprocessing.strokes_to_input(drawing.strokes, drawing.width, drawing.height),
        dtype=np.float32,
    )
