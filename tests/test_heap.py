"""The server process's start-up objects are out of Python's full collections
(digitsite/heap.py): a full collection then walks only what requests made,
not the few hundred thousand objects of Django, Channels and torch.

Checked in a fresh Python process that loads the ASGI application as Daphne
does (the test process itself has imported far more than a server would).
"""

import gc
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from digitsite import heap

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


def test_the_heap_settings_read_as_the_site_reads_its_switches_and_numbers(monkeypatch):
    # GC_FREEZE_AT_START took only "0" for off: "false" left it on, silently.
    frozen = gc.get_freeze_count()
    for off in ("false", " Off ", "no"):
        monkeypatch.setenv("GC_FREEZE_AT_START", off)
        assert heap.freeze_start_up_objects() is False
    assert gc.get_freeze_count() == frozen
    monkeypatch.setenv("GC_FREEZE_AT_START", "nein")
    with pytest.raises(ImproperlyConfigured, match="GC_FREEZE_AT_START must be on"):
        heap.freeze_start_up_objects()
    threshold = gc.get_threshold()
    for bad in ("-1", "lots"):
        monkeypatch.setenv("GC_YOUNG_THRESHOLD", bad)
        with pytest.raises(ImproperlyConfigured, match="GC_YOUNG_THRESHOLD must be a whole "
                                                       "number, 0 or more"):
            heap.collect_young_objects_less_often()
    assert gc.get_threshold() == threshold
