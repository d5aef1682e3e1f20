"""Compact encodings of arrays for the teaching pages.

Feature maps travel as bytes: each map (one channel of a stage) is scaled
from its own minimum and maximum to 0..255, so a dim map keeps its contrast,
and the page gets back the real values from `min + q / 255 * (max - min)`.
The error of a decoded value is at most (max - min) / 510 of its map.
"""

import base64
import io

import numpy as np
from PIL import Image


def quantise_maps(array):
    """Encode a (C, H, W) or (N,) array; return a JSON-able dict.

    A 1-D array (the dense layer) counts as a single map.
    """
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1:
        maps = array[None, :]
        shape = [int(array.shape[0])]
        channels = 1
    elif array.ndim == 3:
        maps = array.reshape(array.shape[0], -1)
        shape = [int(s) for s in array.shape]
        channels = int(array.shape[0])
    else:
        raise ValueError(f"expected a 1-D or 3-D array, got shape {array.shape}")
    low = maps.min(axis=1)
    high = maps.max(axis=1)
    span = high - low
    # A constant map (often all zeros after ReLU) would divide by zero.
    safe = np.where(span > 0, span, 1.0)
    q = np.rint((maps - low[:, None]) / safe[:, None] * 255.0)
    q = np.clip(q, 0, 255).astype(np.uint8)
    return {
        "shape": shape,
        "channels": channels,
        "min": [float(v) for v in low],
        "max": [float(v) for v in high],
        "data": base64.b64encode(q.tobytes()).decode("ascii"),
    }


def dequantise_maps(encoded):
    """The inverse of quantise_maps: a float array of the original shape."""
    shape = tuple(encoded["shape"])
    channels = int(encoded["channels"])
    q = np.frombuffer(base64.b64decode(encoded["data"]), dtype=np.uint8).astype(np.float64)
    q = q.reshape(channels, -1)
    low = np.asarray(encoded["min"], dtype=np.float64)[:, None]
    high = np.asarray(encoded["max"], dtype=np.float64)[:, None]
    return (low + q / 255.0 * (high - low)).reshape(shape)


def quantisation_step(encoded):
    """Largest possible error of each decoded value, per map."""
    return (np.asarray(encoded["max"]) - np.asarray(encoded["min"])) / 510.0


def image_bytes(image):
    """A [0, 1] float image as base64 of uint8 rows, 255 = ink."""
    image = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255)
    return base64.b64encode(image.astype(np.uint8).tobytes()).decode("ascii")


def png_bytes(pixels, scale=1):
    """PNG of a uint8 (H, W) array drawn dark ink on white paper."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    image = Image.fromarray(255 - pixels, mode="L")
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def png_data_url(pixels, scale=1):
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels, scale)).decode("ascii")


def sprite(images, columns):
    """Tile uint8 (N, 28, 28) images into one (rows*28, columns*28) array, 1 px apart."""
    images = np.asarray(images, dtype=np.uint8)
    count = len(images)
    if count == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    h, w = images.shape[1:]
    gap = 1
    # The gaps carry a light grey ink value so the tiles read as separate cells.
    sheet = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), 40, dtype=np.uint8)
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        sheet[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = image
    return sheet
