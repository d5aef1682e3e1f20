"""The model the site ships with, registered for the teaching pages' tests, and the
drawings those tests make the way the pages' own examples are made."""

import json
import math

import numpy as np

SHIPPED = "digitcnn-v2-styles-seed1.pt"


def register_shipped(version="shipped", activate=True):
    """The shipped model, with the training record and metrics it ships with."""
    from recognizer import versions

    manifest = json.loads((versions.BUILTIN_DIR / "manifest.json").read_text())
    assert manifest["file"] == SHIPPED
    return versions.register_version(versions.BUILTIN_DIR / SHIPPED, activate=activate,
                                     version=version, training=manifest["training"],
                                     metrics=manifest["metrics"])


def line(points):
    """A stroke through `points` with a point every 6 px or so: common.js's line()."""
    out = []
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        steps = max(1, round(float(np.hypot(x1 - x0, y1 - y0)) / 6))
        out += [[x0 + (x1 - x0) * s / steps, y0 + (y1 - y0) * s / steps] for s in range(steps)]
    out.append(list(points[-1]))
    # Math.round: halves go up (Python's round goes to even).
    def js_round(v):
        return math.floor(v * 10 + 0.5) / 10

    return [[js_round(x), js_round(y), t * 16] for t, (x, y) in enumerate(out)]


# Lesson 2's experiment, as EXAMPLES.open4 and CLOSING_STROKE in common.js.
OPEN_FOUR = {"width": 300, "height": 300, "strokes": [
    line([(125, 60), (115, 150), (200, 150)]),
    line([(190, 60), (190, 250)]),
]}
CLOSING_STROKE = line([(125, 60), (190, 60)])
CLOSED_FOUR = {**OPEN_FOUR, "strokes": [*OPEN_FOUR["strokes"], CLOSING_STROKE]}
