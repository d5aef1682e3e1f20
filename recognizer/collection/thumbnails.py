"""Small pictures of collected drawings for the admin, made inline.

The strokes become an SVG (vector, drawn by the browser) and the 28x28
network input a tiny PNG in a data URL, so a changelist of a hundred rows is
one HTML response with no image requests behind it. Both tolerate stored
data that is not what it should be: they return None instead of raising, and
the page shows a dash.
"""

import math

import numpy as np
from django.utils.html import escape
from django.utils.safestring import mark_safe

from recognizer.images import png_data_url
from recognizer.preprocessing import SIZE

# The stored network input (Drawing.input_image, preprocessing.input_to_bytes):
# SIZE x SIZE bytes, row by row.
INPUT_SIDE = SIZE
INPUT_BYTES = SIZE * SIZE


def _clean_strokes(data):
    """(width, height, [[(x, y), ...], ...]) from stored strokes JSON, or None."""
    if not isinstance(data, dict):
        return None
    try:
        width = float(data.get("width"))
        height = float(data.get("height"))
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        return None
    strokes = []
    for raw_stroke in data.get("strokes") or []:
        if not isinstance(raw_stroke, list):
            continue
        stroke = []
        for point in raw_stroke:
            try:
                x, y = float(point[0]), float(point[1])
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            if math.isfinite(x) and math.isfinite(y):
                stroke.append((x, y))
        if stroke:
            strokes.append(stroke)
    return width, height, strokes


def strokes_svg(data, size=84, label=""):
    """An inline SVG of the strokes, `size` CSS pixels on its longer side.

    Points closer together than one thumbnail pixel are merged, which keeps a
    10,000-point drawing as small in the page as a 100-point one.
    """
    cleaned = _clean_strokes(data)
    if cleaned is None:
        return None
    width, height, strokes = cleaned
    side = max(width, height)
    scale = size / side
    # A game canvas pen is a few percent of the canvas; this keeps the
    # thumbnail's ink weight close to what the player saw.
    pen = max(side / 28.0, 1.0)
    paths = []
    for stroke in strokes:
        parts = []
        last = None
        for x, y in stroke:
            cell = (round(x * scale), round(y * scale))
            if cell == last:
                continue
            last = cell
            parts.append(f"{x:.0f},{y:.0f}")
        if len(parts) == 1:
            # A tap: a zero-length segment with round caps draws a dot.
            paths.append(f"M{parts[0]}l0,0")
        else:
            paths.append("M" + "L".join(parts))
    svg_width = round(width * scale)
    svg_height = round(height * scale)
    # Every value put into the markup is a number or escaped.
    return mark_safe(
        f'<svg class="drawing-thumb" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{escape(label)}" width="{svg_width}" height="{svg_height}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}">'
        f'<rect width="100%" height="100%" fill="#fff"/>'
        f'<path d="{" ".join(paths)}" fill="none" stroke="#111" stroke-width="{pen:.1f}" '
        f'stroke-linecap="round" stroke-linejoin="round"/></svg>'
    )


def input_data_url(data, scale=1):
    """The stored 28x28 input as a PNG data URL (white ink on black, as MNIST), or None."""
    data = bytes(data or b"")
    if len(data) != INPUT_BYTES:
        return None
    return png_data_url(np.frombuffer(data, dtype=np.uint8).reshape(INPUT_SIDE, INPUT_SIDE),
                        scale)
