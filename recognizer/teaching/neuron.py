"""One neuron's arithmetic: the numbers that make one value of one layer.

Lesson 1 lets a learner click a feature map and a position (or a dense
neuron, or a digit's probability) and shows how the network computed that
one value from the layer before it, with the served model's own weights:

- a convolution (conv1-conv4): the 3x3 patch of the layer before (every
  channel of it), the filter's 3x3 weights for each channel, the weighted
  sum, batch norm's scale and shift, the ReLU;
- a max pooling cell (pool1, pool2): the 2x2 window and its largest value;
- a dense neuron: the biggest of its 3,136 products (input x weight), the
  sum of the others, the bias, the ReLU;
- a digit's probability: softmax with the ten scores (logits) and the
  version's temperature plugged in, and how that digit's score is made from
  the 128 dense values.

Every answer also carries `network`: the value the network itself computed
there (a forward pass of the same eager model), so the page can show that
the arithmetic lands on it, and tests check that it does.

The forward pass is cached per (model, input) in a bounded LRU
(NEURON_CACHE_SIZE), like the attention maps: a learner clicking around one
drawing costs one forward pass, and the arithmetic is a few hundred
multiplications.
"""

import asyncio
import functools
import threading

import numpy as np

from recognizer.inference import ModelUnavailable, get_service
from recognizer.teaching.explain import input_key
from recognizer.teaching.memo import WAITING_COMPUTATIONS, Memo

# torch and the network: imported where a model is used (recognizer/checkpoints.py).

CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4")
POOL_LAYERS = ("pool1", "pool2")
LAYERS = (*CONV_LAYERS, *POOL_LAYERS, "dense", "softmax")
# What each layer reads: conv1 the normalised input, the others the layer before.
PREVIOUS = {"conv1": "normalised", "conv2": "conv1", "pool1": "conv2", "conv3": "pool1",
            "conv4": "conv3", "pool2": "conv4", "dense": "pool2", "softmax": "dense"}
# A deep filter reads 32 or 64 channels: 288 or 576 products. All the channels'
# sums travel (they add up to the weighted sum); the 3x3 patch and weights
# only of the channels that contribute most, which is what a page can show.
DETAILED_CHANNELS = 4
# A dense neuron has 3,136 products; its biggest ones and the sum of the rest.
TOP_PRODUCTS = 12
# The classifier row that makes a digit's score: 128 products.
TOP_SCORE_PRODUCTS = 8
# Forward passes by (model, input): about 340 kB of activations each, so
# 32 of them hold at most 11 MB.
NEURON_CACHE_SIZE = 32
forward_cache = Memo(NEURON_CACHE_SIZE, workers=1, name="teaching-neuron",
                     max_waiting=WAITING_COMPUTATIONS)


class NeuronError(ValueError):
    """The layer, map or position asked for does not exist."""


def forward(model, image):
    """Every stage of `model` for one 28x28 input, as float32 numpy arrays without the batch.

    "normalised" is what conv1 reads: the network's own first step.
    """
    import torch

    from recognizer import network

    x = torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None]
    with torch.inference_mode():
        logits, activations = model.forward_with_activations(x)
    stages = {name: value[0].numpy() for name, value in activations.items()}
    stages["normalised"] = ((x - network.MNIST_MEAN) / network.MNIST_STD)[0].numpy()
    stages["logits"] = logits[0].numpy()
    return stages


@functools.lru_cache(maxsize=1)
def _shapes():
    """{layer: (maps, height, width)} of this code's network; softmax has the logits' ten."""
    from recognizer import network

    shapes = {}
    for name, _, shape, _ in network.describe_layers(network.build_model()):
        shapes[name] = (tuple(shape) + (1, 1))[:3]
    shapes["softmax"] = shapes.pop("logits")
    return shapes


def shape_of(layer):
    """(maps, height, width) of a layer's output; a dense layer is (neurons, 1, 1)."""
    return _shapes()[layer]


def check_position(layer, unit, y, x):
    """A NeuronError naming what is wrong, unless (layer, unit, y, x) exists."""
    if layer not in LAYERS:
        raise NeuronError("'layer' must be one of " + ", ".join(LAYERS))
    maps, height, width = shape_of(layer)
    what = {"dense": "neuron", "softmax": "digit"}.get(layer, "map")
    for name, value, limit in (("map", unit, maps), ("y", y, height), ("x", x, width)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
            detail = f" (the {what})" if name == "map" else ""
            raise NeuronError(f"'{name}'{detail} must be a whole number from 0 to {limit - 1} "
                              f"for {layer}")


def _numbers(tensor):
    """A parameter or buffer of the model as float64 numpy, outside autograd."""
    return tensor.detach().numpy().astype(np.float64)


def _floats(values):
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def conv_arithmetic(model, stages, layer, unit, y, x):
    """The value of `layer`'s map `unit` at (y, x), computed step by step."""
    from recognizer import network

    block = getattr(model, layer)
    conv, norm = block[0], block[1]
    source = np.asarray(stages[PREVIOUS[layer]], dtype=np.float64)
    # padding=1: the filter reads zeros past the edges (after the normalisation).
    padded = np.pad(source, ((0, 0), (1, 1), (1, 1)))
    patch = padded[:, y:y + 3, x:x + 3]
    weights = _numbers(conv.weight)[unit]
    sums = (patch * weights).sum(axis=(1, 2))
    weighted_sum = float(sums.sum())
    gamma, beta = float(_numbers(norm.weight)[unit]), float(_numbers(norm.bias)[unit])
    mean, variance = (float(_numbers(norm.running_mean)[unit]),
                      float(_numbers(norm.running_var)[unit]))
    # Batch norm in eval mode: (s - mean) / sqrt(variance + eps) * gamma + beta,
    # which is s * scale + shift with these two numbers.
    scale = gamma / np.sqrt(variance + norm.eps)
    shift = beta - mean * scale
    before_relu = weighted_sum * scale + shift
    order = np.argsort(-np.abs(sums))[:DETAILED_CHANNELS]
    answer = {
        "kind": "conv",
        "reads": PREVIOUS[layer],
        "in_channels": int(source.shape[0]),
        "channel_sums": _floats(sums),
        "detailed": [{"channel": int(c), "patch": _floats(patch[c]),
                      "weights": _floats(weights[c]), "sum": float(sums[c])} for c in order],
        "weighted_sum": weighted_sum,
        "bias": None if conv.bias is None else float(_numbers(conv.bias)[unit]),
        "batch_norm": {"scale": float(scale), "shift": float(shift), "gamma": gamma,
                       "beta": beta, "mean": mean, "variance": variance,
                       "eps": float(norm.eps)},
        "before_relu": before_relu,
        "output": max(0.0, before_relu),
    }
    if layer == "conv1":
        # The drawing's own pixels (0 paper .. 1 ink) under the patch, before
        # the rescaling, where they exist (the border reads zeros after it).
        raw = np.pad(np.asarray(stages["input"], dtype=np.float64)[0], 1,
                     constant_values=np.nan)[y:y + 3, x:x + 3]
        answer["pixels"] = [None if np.isnan(v) else float(v) for v in raw.ravel()]
        answer["normalisation"] = {"mean": network.MNIST_MEAN, "std": network.MNIST_STD}
    return answer


def pool_arithmetic(stages, layer, unit, y, x):
    """The largest of the 2x2 window of the layer before, at (y, x) of `layer`'s map."""
    window = np.asarray(stages[PREVIOUS[layer]][unit, 2 * y:2 * y + 2, 2 * x:2 * x + 2],
                        dtype=np.float64)
    return {
        "kind": "pool",
        "reads": PREVIOUS[layer],
        "window": _floats(window),
        "top_left": [2 * y, 2 * x],
        "output": float(window.max()),
    }


def _top_products(inputs, weights, count):
    """The `count` biggest products by size, the sum of the others, and how many there are."""
    products = inputs * weights
    order = np.argsort(-np.abs(products), kind="stable")[:count]
    rest = np.ones(len(products), dtype=bool)
    rest[order] = False
    return products, order, float(products[rest].sum()), int(rest.sum())


def dense_arithmetic(model, stages, unit):
    """Dense neuron `unit`: 3,136 products of pool2's values and its weights, plus its bias."""
    pooled = np.asarray(stages["pool2"], dtype=np.float64)
    inputs = pooled.ravel()
    weights = _numbers(model.dense.weight)[unit]
    bias = float(_numbers(model.dense.bias)[unit])
    products, order, rest, rest_count = _top_products(inputs, weights, TOP_PRODUCTS)
    weighted_sum = float(products.sum())
    _, height, width = pooled.shape
    top = []
    for index in order:
        channel, rest_index = divmod(int(index), height * width)
        top.append({"index": int(index), "map": channel, "y": rest_index // width,
                    "x": rest_index % width, "input": float(inputs[index]),
                    "weight": float(weights[index]), "product": float(products[index])})
    return {
        "kind": "dense",
        "reads": "pool2",
        "inputs": int(inputs.size),
        "inputs_above_zero": int((inputs > 0).sum()),
        "top": top,
        "rest_sum": rest,
        "rest_count": rest_count,
        "weighted_sum": weighted_sum,
        "bias": bias,
        "before_relu": weighted_sum + bias,
        "output": max(0.0, weighted_sum + bias),
    }


def softmax_arithmetic(model, stages, digit, temperature):
    """Digit `digit`'s probability: softmax of the ten scores over the temperature.

    The scores themselves are the classifier's weighted sums of the 128 dense
    values; the chosen digit's comes with its biggest products. e^(score / T)
    can be huge (e^40 for a sure answer): it travels as it is unless a
    score / T passes 300, when every term is divided by e^(largest - 300),
    which leaves each fraction unchanged; `exp_shift` says by how much.
    """
    logits = np.asarray(stages["logits"], dtype=np.float64)
    scaled = logits / temperature
    shift = max(0.0, float(scaled.max()) - 300.0)
    exps = np.exp(scaled - shift)
    dense = np.asarray(stages["dense"], dtype=np.float64)
    weights = _numbers(model.classifier.weight)[digit]
    bias = float(_numbers(model.classifier.bias)[digit])
    products, order, rest, rest_count = _top_products(dense, weights, TOP_SCORE_PRODUCTS)
    return {
        "kind": "softmax",
        "reads": "dense",
        "digit": digit,
        "logits": _floats(logits),
        "temperature": float(temperature),
        "scaled": _floats(scaled),
        "exp": _floats(exps),
        "exp_shift": shift,
        "exp_sum": float(exps.sum()),
        "output": float(exps[digit] / exps.sum()),
        "score": {
            "top": [{"index": int(i), "input": float(dense[i]), "weight": float(weights[i]),
                     "product": float(products[i])} for i in order],
            "rest_sum": rest, "rest_count": rest_count,
            "weighted_sum": float(products.sum()), "bias": bias,
            "output": float(products.sum()) + bias,
        },
    }


def network_value(stages, layer, unit, y, x, temperature):
    """What the network itself computed at that place (for softmax: the served probability)."""
    import torch

    from recognizer import calibration

    if layer == "softmax":
        return float(calibration.probabilities(torch.from_numpy(stages["logits"]),
                                               temperature)[unit])
    if layer == "dense":
        return float(stages["dense"][unit])
    return float(stages[layer][unit, y, x])


def arithmetic(model, stages, layer, unit, y=0, x=0, temperature=1.0):
    """The answer for one value: the steps, the result and the network's own value."""
    check_position(layer, unit, y, x)
    if layer in CONV_LAYERS:
        steps = conv_arithmetic(model, stages, layer, unit, y, x)
    elif layer in POOL_LAYERS:
        steps = pool_arithmetic(stages, layer, unit, y, x)
    elif layer == "dense":
        steps = dense_arithmetic(model, stages, unit)
    else:
        steps = softmax_arithmetic(model, stages, unit, temperature)
    maps, height, width = shape_of(layer)
    return {"layer": layer, "map": unit, "y": y, "x": x, "maps": maps,
            "height": height, "width": width, **steps,
            "network": network_value(stages, layer, unit, y, x, temperature)}


def _stages_with_input(model, image):
    stages = forward(model, image)
    stages["input"] = np.asarray(image, dtype=np.float32)[None]
    return stages


async def neuron(image, layer, unit, y=0, x=0):
    """`arithmetic` on the served model, its forward pass cached per (model, input)."""
    from recognizer import calibration

    check_position(layer, unit, y, x)
    loaded = await asyncio.to_thread(get_service().refresh)
    image = np.array(image, dtype=np.float32)
    key = (loaded.version_id, loaded.sha256, input_key(image))
    future = forward_cache.get(key, lambda: _stages_with_input(loaded.model, image))
    stages = await asyncio.shield(asyncio.wrap_future(future))
    temperature = calibration.temperature_of(loaded.metadata)
    answer = await asyncio.to_thread(arithmetic, loaded.model, stages, layer, unit, y, x,
                                     temperature)
    return {"model": loaded.version, **answer}


# conv1's filters by (version id, weights): one version is served at a time.
_filters = {}
_filters_lock = threading.Lock()


def conv1_filters(model):
    """conv1's 3x3 filters as the page paints them beside their maps.

    {"weights": 32 lists of 9 numbers (rows of the 3x3), "peak": the largest
    weight by size, "flipped": the filters whose batch-norm scale is negative}.
    A negative scale turns a filter's pattern round (ink where it is positive
    then lowers the map), so the page paints those with their signs swapped,
    the way the map sees them, and says how many; the shipped model has none.
    """
    weights = _numbers(model.conv1[0].weight)[:, 0]
    norm = model.conv1[1]
    scale = _numbers(norm.weight) / np.sqrt(_numbers(norm.running_var) + norm.eps)
    return {
        "weights": [[round(float(v), 4) for v in w.ravel()] for w in weights],
        "peak": round(float(np.abs(weights).max()), 4),
        "flipped": [int(i) for i in np.flatnonzero(scale < 0)],
    }


def served_filters():
    """conv1_filters of the model being served, with its version; None without one.

    Blocking (the database the first time a version is served): a worker thread.
    """
    try:
        loaded = get_service().refresh()
    except ModelUnavailable:
        return None
    key = (loaded.version_id, loaded.sha256)
    with _filters_lock:
        if key not in _filters:
            _filters.clear()
            _filters[key] = {"version": loaded.version, **conv1_filters(loaded.model)}
        return _filters[key]
