"""Drawings for the teach tests: MNIST digits written in a style the served model
reads badly, as a player's canvas would send them.

The shipped models stay in the repository: the first (v1) reads slashed zeros
made by trainer/styles.py right only 85% of the time (README), the one
served now (v2) was trained on them. The teach tests serve v1, so a copy has
something to learn.
"""

import numpy as np

from recognizer.preprocessing import strokes_to_input
from trainer import styles
from trainer.canvas_eval import redraw_on_canvas, trace_strokes

V1_WEIGHTS = "digitcnn-v1-seed1.pt"


def styled_drawings(images, style, seed):
    """Drawings ({width, height, strokes}) of `images` (uint8, 28x28) written in `style`."""
    drawings = []
    for index, image in enumerate(np.asarray(images)):
        rng = np.random.default_rng([seed, index])
        strokes = trace_strokes(image)
        if not strokes:
            continue
        drawn, width, height = redraw_on_canvas(styles.apply_style(style, strokes, rng), rng)
        drawings.append({"width": width, "height": height,
                         "strokes": [[list(point) for point in stroke] for stroke in drawn]})
    return drawings


def inputs_of(drawings):
    """The network's (N, 28, 28) inputs of the drawings."""
    return np.stack([strokes_to_input(d["strokes"], d["width"], d["height"])
                     for d in drawings]).astype(np.float32)


def register_v1(activate=True):
    """The first shipped model registered (as the migrations register shipped ones) and active."""
    from recognizer.checkpoints import sha256_of
    from recognizer.models import ModelVersion
    from recognizer.versions import BUILTIN_DIR, BUILTIN_PREFIX, activate_version

    path = BUILTIN_DIR / V1_WEIGHTS
    row, _ = ModelVersion.objects.get_or_create(
        path=BUILTIN_PREFIX + V1_WEIGHTS,
        defaults={"version": "teach-test-v1", "sha256": sha256_of(path),
                  "size_bytes": path.stat().st_size})
    if activate:
        activate_version(row)
    return row
