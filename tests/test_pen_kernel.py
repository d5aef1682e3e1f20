"""The renderer's compiled loop (recognizer/pen_kernel.py): compiled before a
player's first drawing, and never again while a server runs.

numba compiles a function once per combination of argument types. A caller
passing, say, float32 ends or an integer shift would make it compile a new
version in the middle of a request, about a second with the interpreter
held, on a player's drawing. So every entry point must reach the kernel
with the one set of types the warm-up compiled. Whether the images are
right is tests/test_worst_drawing.py's business (the same to the bit as
tests/reference_renderer.py).
"""

import io
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from recognizer import pen_kernel
from recognizer.preprocessing import image_to_input, strokes_to_input, strokes_to_stages
from tests.support import BASE_DIR

# The compiled functions the renderer calls from Python.
KERNELS = ("render", "segments", "mass_centre", "centred", "whole_pieces", "bounds",
           "piece_steps")

SERVER_START = """
import json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
from recognizer import pen_kernel
before = len(pen_kernel.render.signatures)
import digitsite.asgi  # what Daphne imports
print(json.dumps([before, [str(s) for s in pen_kernel.render.signatures]]))
"""


def test_the_server_compiles_the_kernel_as_it_starts():
    done = subprocess.run([sys.executable, "-c", SERVER_START], cwd=BASE_DIR,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert before == 0
    assert len(after) == 1 and "float64" in after[0] and "float32" in after[0]


def test_every_kind_of_drawing_reaches_the_kernel_with_the_warmed_up_types():
    pen_kernel.warm_up()
    warmed = {name: list(getattr(pen_kernel, name).signatures) for name in KERNELS}
    # mass_centre: of centred's float32 renders, and of any image as float64.
    assert {name: len(signatures) for name, signatures in warmed.items()} == {
        name: 2 if name == "mass_centre" else 1 for name in KERNELS}
    drawings = [
        ([[(1, 2), (30, 40), (5, 60)]], 100, 100),  # whole numbers
        ([[(10.5, 10.5)]], 50, 50),  # a dot
        ([[(0.0, 0.0), (400.0, 400.0)], [(0, 400), (200.5, 0)]], 400, 400),
        ([[(-50, -50), (60, 60), (500, 20)]], 100, 100),  # across the canvas edge
        (np.array([[[3.0, 4.0, 0.0], [80.0, 90.0, 16.0]]], dtype=np.float32), 90, 90),
    ]
    for strokes, width, height in drawings:
        assert strokes_to_input(strokes, width, height).sum() > 0
        assert strokes_to_stages(strokes, width, height)["input"].sum() > 0
    picture = Image.new("L", (64, 64), 255)
    picture.paste(0, (20, 10, 30, 54))
    data = io.BytesIO()
    picture.save(data, "PNG")
    assert image_to_input(data.getvalue()).sum() > 0
    assert {name: list(getattr(pen_kernel, name).signatures) for name in KERNELS} == warmed


NO_CACHE_FOLDER = """
import json, logging, os
import numpy as np
from numba.core import caching

def nowhere(self):
    raise PermissionError("read-only")

caching._CacheLocator.ensure_cache_path = nowhere
records = []
logging.getLogger("recognizer.pen_kernel").addHandler(logging.Handler())
logging.getLogger("recognizer.pen_kernel").handlers[0].emit = records.append
from recognizer import pen_kernel
pen_kernel.warm_up()
ends = np.array([[2.0, 3.0], [20.0, 24.0]])
image = np.zeros(28 * 28, dtype=np.float32)
pen_kernel.render(ends[:1], ends[1:], 0.25, -0.5, 1.7, 28, image)
print(json.dumps({"warnings": [r.getMessage() for r in records],
                  "cached": pen_kernel.render._cache.__class__.__name__,
                  "image": image.tolist()}))
"""


def test_without_a_writable_cache_folder_the_kernel_is_compiled_in_each_process():
    """numba raises as the module is imported when no folder can hold its
    cache (a read-only install run by a user without a home): the site must
    still start, compiling instead, and say how to give it a cache."""
    done = subprocess.run([sys.executable, "-c", NO_CACHE_FOLDER], cwd=BASE_DIR,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["cached"] == "NullCache"
    assert len(result["warnings"]) == len(KERNELS) + 2  # and render's helpers _floor, _ceil
    assert all("NUMBA_CACHE_DIR" in message for message in result["warnings"])
    image = np.zeros(28 * 28, dtype=np.float32)
    ends = np.array([[2.0, 3.0], [20.0, 24.0]])
    pen_kernel.render(ends[:1], ends[1:], 0.25, -0.5, 1.7, 28, image)
    assert image.sum() > 10
    assert result["image"] == image.tolist()
