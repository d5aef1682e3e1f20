"""Compact encodings of arrays for the teaching pages.

Feature maps travel as deflated bytes: each map (one channel of a stage) is
scaled from its own minimum and maximum to 0..levels (255 unless the answer's
byte budget forces fewer), so a dim map keeps its contrast, and the page gets
back the values from `min + q / levels * (max - min)`. The error of a decoded
value is at most (max - min) / (2 * levels) of its map; with 255 levels,
(max - min) / 510. The minimum and maximum themselves are exact (float32).
"""

import base64
import zlib

import numpy as np

# The most levels a map is drawn with: 8 bits, as before. When the stages
# asked for do not fit the answer's byte budget at 8 bits (only pathological
# inputs such as random noise do: their maps barely compress), the largest
# stage is redrawn with fewer levels until they fit; each stage says how many
# levels it has, so the error bound below always holds.
MAX_LEVELS = 255
LEVEL_STEPS = (255, 63, 15, 7, 3, 1)
# zlib level 6: within 3% of level 9's size on feature maps at a third of its
# time (1 ms against 3 ms for conv1 on one slow core).
ZLIB_LEVEL = 6


def _maps_2d(array):
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 1:
        return array[None, :], [int(array.shape[0])]
    if array.ndim == 3:
        return array.reshape(array.shape[0], -1), [int(s) for s in array.shape]
    raise ValueError(f"expected a 1-D or 3-D array, got shape {array.shape}")


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def quantise_maps(array, levels=MAX_LEVELS):
    """Encode a (C, H, W) or (N,) array as deflated bytes; return a JSON-able dict.

    A 1-D array (the dense layer) counts as a single map. Each map's own
    minimum and maximum travel exactly (float32, the network's own type, as
    base64 little-endian), so the numbers the page prints (a map's peak, how
    many maps stay blank) are the network's; only the pixels drawn between
    them are quantised, to `levels` steps.
    """
    maps, shape = _maps_2d(array)
    levels = int(levels)
    if not 1 <= levels <= 255:
        raise ValueError(f"levels must be 1..255, not {levels}")
    low = maps.min(axis=1)
    high = maps.max(axis=1)
    span = high.astype(np.float64) - low
    # A constant map (often all zeros after ReLU) would divide by zero.
    safe = np.where(span > 0, span, 1.0)
    q = np.rint((maps - low[:, None]) / safe[:, None] * levels)
    q = np.clip(q, 0, levels).astype(np.uint8)
    return {
        "shape": shape,
        "channels": int(maps.shape[0]),
        "levels": levels,
        "min": _b64(low.astype("<f4").tobytes()),
        "max": _b64(high.astype("<f4").tobytes()),
        # Deflate (zlib) rather than raw base64: ReLU maps are mostly zeros,
        # 113 kB of base64 became 28 kB for a typical drawing; a PNG sprite
        # of the same bytes was 15% larger and needs an image decode on the page.
        "data": _b64(zlib.compress(q.tobytes(), ZLIB_LEVEL)),
    }


def exact_values(array):
    """A small 1-D array (the dense layer) sent exactly: float32 as base64."""
    values = np.asarray(array, dtype="<f4").ravel()
    return {"shape": [int(values.size)], "channels": 1, "float32": _b64(values.tobytes())}


def _floats(text):
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)


def dequantise_maps(encoded):
    """The inverse of quantise_maps (and of exact_values): a float array of the original shape."""
    shape = tuple(encoded["shape"])
    if "float32" in encoded:
        return _floats(encoded["float32"]).reshape(shape)
    channels = int(encoded["channels"])
    levels = int(encoded["levels"])
    q = np.frombuffer(zlib.decompress(base64.b64decode(encoded["data"])), dtype=np.uint8)
    q = q.astype(np.float64).reshape(channels, -1)
    low = _floats(encoded["min"])[:, None]
    high = _floats(encoded["max"])[:, None]
    return (low + q / levels * (high - low)).reshape(shape)


def quantisation_step(encoded):
    """Largest possible error of each decoded value, per map (0 for exact values)."""
    if "float32" in encoded:
        return np.zeros(1)
    span = _floats(encoded["max"]) - _floats(encoded["min"])
    return span / (2.0 * int(encoded["levels"]))


def encoded_size(encoded):
    return sum(len(v) for v in encoded.values() if isinstance(v, str))


def quantise_within(stages, budget):
    """Encode {name: array} into at most `budget` characters of encoded maps.

    Returns ({name: encoded}, [names left out]). Precision first: while over
    the budget and more than one stage is in, the last stage is left out (the
    page asks for it in its next request); a single stage still over the
    budget (only inputs like random noise, whose maps barely compress) steps
    down through LEVEL_STEPS, and if even one level per value does not fit it
    is left out too. So the answer never exceeds the budget, and every stage
    it holds says its own levels, which bound its error.
    """
    encoded, omitted, total = {}, [], 0
    names = list(stages)
    for index, name in enumerate(names):
        stage = quantise_maps(stages[name])
        if encoded and total + encoded_size(stage) > budget:
            # Precision first: this one and the rest go in the next answer,
            # and are not deflated for nothing now.
            omitted = names[index:]
            break
        encoded[name] = stage
        total += encoded_size(stage)
    if total > budget and encoded:
        (name,) = encoded
        for levels in LEVEL_STEPS[1:]:
            encoded[name] = quantise_maps(stages[name], levels)
            if encoded_size(encoded[name]) <= budget:
                break
        else:
            encoded.pop(name)
            omitted.insert(0, name)
    return encoded, omitted


def image_bytes(image):
    """A [0, 1] float image as base64 of uint8 rows, 255 = ink."""
    image = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255)
    return base64.b64encode(image.astype(np.uint8).tobytes()).decode("ascii")


def deflated_image(image):
    """A [0, 1] float image as deflated uint8 rows (255 = ink), base64.

    For the "How it works" answer, where every byte counts: a drawing's 784
    pixels are mostly paper, 1,045 characters as plain base64, about 300
    deflated.
    """
    image = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255)
    return _b64(zlib.compress(image.astype(np.uint8).tobytes(), ZLIB_LEVEL))


def inflate_image(encoded):
    """deflated_image's inverse, as uint8 (H, W)."""
    data = zlib.decompress(base64.b64decode(encoded["deflated"]))
    return np.frombuffer(data, dtype=np.uint8).reshape(encoded["shape"])
