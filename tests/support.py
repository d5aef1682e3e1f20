"""Helpers for tests: requirements that skip locally and fail on CI, test models,
race scripts run in a process of their own."""

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


def wait_until(condition, timeout=30, what="the condition"):
    """Poll `condition` until it is true; fail after `timeout` seconds (a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


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
