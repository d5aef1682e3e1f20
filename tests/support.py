"""Helpers for tests: requirements that skip locally and fail on CI, test models,
race scripts run in a process of their own."""

import asyncio
import inspect
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# A 7 drawn on a 300x300 canvas (with a cross bar), with point times in ms.
SEVEN = {
    "width": 300,
    "height": 300,
    "strokes": [
        [[60, 50, 0], [240, 50, 120], [150, 260, 400]],
        [[100, 150, 900], [200, 150, 1000]],
    ],
}


def require(condition, reason):
    """Skip when `condition` is false, or fail under CI=true where all must be present."""
    if condition:
        return
    if ON_CI:
        pytest.fail(f"required on CI: {reason}")
    pytest.skip(reason)


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def register_random_model(model_dir, seed=0, activate=True, version=None):
    """Save a seeded, untrained network in `model_dir` and register it."""
    import torch

    from recognizer.checkpoints import save_checkpoint
    from recognizer.network import build_model
    from recognizer.versions import register_version

    torch.manual_seed(seed)
    model = build_model()
    path = Path(model_dir) / f"random-{seed}.pt"
    save_checkpoint(model, path, metadata={"seed": seed, "trained": False})
    return register_version(path, activate=activate, version=version or f"random-{seed}",
                            training={"seed": seed, "untrained": True})


def wait_until(condition, timeout=30, what="the condition", interval=0.01):
    """Poll `condition` until it returns something true, and return it; fail
    after `timeout` seconds (a loaded machine), showing the last value seen."""
    deadline = time.monotonic() + timeout
    while not (last := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                                 f"(last: {last!r})")
        time.sleep(interval)
    return last


async def eventually(condition, what, timeout=60, interval=0.05):
    """Await until `condition()` (a function or a coroutine function) returns
    something true, and return it; fail after `timeout` seconds of the event
    loop's clock, which bounds a loaded machine's wait, not the code's speed.

    `what` names the condition in the failure, or is a function that does
    (to show the state that did not come about).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")
        await asyncio.sleep(interval)


# How every race script starts: Django on the database DATABASE_URL names,
# migrated, its connection closed before the script's threads open their own.
RACE_PRELUDE = """
import json, sys, threading
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
"""


def run_race_script(script, *args, database_url, tmp_path, env=None):
    """Run RACE_PRELUDE + `script` with `args` in a Python process of its own, on
    `database_url` (no Redis) with its folders under `tmp_path` and `env` added;
    return the JSON the script printed last."""
    environment = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    environment.update({
        "DJANGO_SETTINGS_MODULE": "digitsite.settings",
        "DATABASE_URL": database_url,
        "DIGITSITE_VAR_DIR": str(tmp_path / "var"),
        "RECOGNIZER_MODEL_DIR": str(tmp_path / "models"),
        **(env or {}),
    })
    result = subprocess.run(
        [sys.executable, "-c", RACE_PRELUDE + script, *args],
        cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=540,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the game's pages in Chromium --------------------------------------------------

# Digits as strokes in a unit square (y down), roughly how people write them.
DIGIT_STROKES = {
    0: [[(0.5, 0.12), (0.3, 0.25), (0.24, 0.5), (0.3, 0.75), (0.5, 0.88), (0.7, 0.75),
         (0.76, 0.5), (0.7, 0.25), (0.5, 0.12)]],
    1: [[(0.4, 0.25), (0.52, 0.12), (0.52, 0.88)]],
    2: [[(0.27, 0.3), (0.36, 0.16), (0.55, 0.12), (0.71, 0.22), (0.72, 0.4), (0.26, 0.86),
         (0.78, 0.86)]],
    3: [[(0.28, 0.18), (0.62, 0.14), (0.72, 0.3), (0.5, 0.47), (0.75, 0.62), (0.7, 0.82),
         (0.3, 0.86)]],
    4: [[(0.6, 0.12), (0.22, 0.62), (0.8, 0.62)], [(0.62, 0.35), (0.62, 0.9)]],
    5: [[(0.72, 0.14), (0.33, 0.14), (0.3, 0.45), (0.6, 0.42), (0.74, 0.6), (0.66, 0.82),
         (0.3, 0.86)]],
    6: [[(0.65, 0.12), (0.38, 0.4), (0.28, 0.68), (0.4, 0.87), (0.62, 0.85), (0.7, 0.68),
         (0.55, 0.52), (0.32, 0.6)]],
    7: [[(0.25, 0.15), (0.78, 0.15), (0.42, 0.88)]],
    8: [[(0.5, 0.5), (0.3, 0.32), (0.5, 0.13), (0.7, 0.32), (0.5, 0.5), (0.28, 0.7),
         (0.5, 0.88), (0.72, 0.7), (0.5, 0.5)]],
    9: [[(0.7, 0.3), (0.5, 0.15), (0.3, 0.3), (0.45, 0.48), (0.7, 0.35), (0.68, 0.88)]],
}

CONNECTED_ROOM = "[data-room][data-connection-state='connected']"


def join_room(page, url, name, timeout_ms=30_000):
    """Open room `url`, join it as `name` and wait until its socket is connected."""
    page.goto(url)
    page.fill("#id_name", name)
    page.click("text=Join the room")
    page.wait_for_selector(CONNECTED_ROOM, timeout=timeout_ms)


def canvas_point(page, margin=0.0):
    """A function from the unit square (y down) to screen pixels on the page's
    canvas, leaving `margin` (a fraction of the canvas) around the square."""
    box = page.locator("canvas[data-pad]").bounding_box()

    def at(x, y):
        return (box["x"] + box["width"] * (margin + (1 - 2 * margin) * x),
                box["y"] + box["height"] * (margin + (1 - 2 * margin) * y))

    return at


def stroke_down(page, start, end, steps=8):
    """Put the pen down at `start` and move it to `end` (unit square), leaving it down."""
    at = canvas_point(page)
    page.mouse.move(*at(*start))
    page.mouse.down()
    page.mouse.move(*at(*end), steps=steps)


def draw_stroke(page, points, steps=4):
    """One pen stroke through `points` (unit square, y down, a margin of a tenth
    around it) on the page's canvas, `steps` pointer moves between points."""
    at = canvas_point(page, margin=0.1)
    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(*point), steps=steps)
    page.mouse.up()


def draw_strokes(page, strokes, steps=8):
    """Draw `strokes` (each as for draw_stroke) on the page's canvas, scrolled into view."""
    page.locator("canvas[data-pad]").scroll_into_view_if_needed()
    for stroke in strokes:
        draw_stroke(page, stroke, steps=steps)


def draw_digit(page, digit):
    """Draw `digit` on the page's canvas with mouse pointer events."""
    draw_strokes(page, DIGIT_STROKES[digit])
