"""The server process's start-up objects are out of Python's full collections
(digitsite/heap.py): a full collection then walks only what requests made,
not the few hundred thousand objects of Django, Channels and torch.

Checked in a fresh Python process that loads the ASGI application as Daphne
does (the test process itself has imported far more than a server would).
"""

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import gc, json
import digitsite.asgi  # what `python -m digitsite.serve` loads
import torch  # noqa: F401
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}))
"""


def _probe(**env):
    environment = dict(os.environ, DJANGO_SETTINGS_MODULE="digitsite.settings", **env)
    environment.pop("GC_FREEZE_AT_START", None)
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=settings.BASE_DIR,
                          env=environment, check=True, capture_output=True, text=True,
                          timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_asgi_application_freezes_what_it_imported():
    counts = _probe()
    # Torch alone brings well over 100,000 container objects.
    assert counts["frozen"] > 100_000
    # What a full collection still walks: a small share of it.
    assert counts["walked"] < counts["frozen"] // 10


def test_the_freeze_can_be_turned_off_to_measure_it():
    counts = _probe(GC_FREEZE_AT_START="0")
    assert counts["frozen"] == 0
    assert counts["walked"] > 100_000
