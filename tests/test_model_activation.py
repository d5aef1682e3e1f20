"""Activating model versions concurrently, on the real PostgreSQL.

Activation clears one flag and sets another; two of them at once on
PostgreSQL each cleared the version active when their statement began, both
set their own, and the later one broke the one-active constraint (an
IntegrityError, a 500 in the admin). SQLite serialises writers itself, so the
race only shows on PostgreSQL.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.support import BASE_DIR

pytestmark = pytest.mark.services

THREADS = 20
ROUNDS = 10

# Runs in its own process, with DATABASE_URL naming a fresh PostgreSQL
# database: migrate, register THREADS versions, then ROUNDS times start
# THREADS threads behind a barrier, each activating a different version.
RACE_SCRIPT = r"""
import json, sys, threading
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from recognizer.models import ModelVersion
from recognizer.versions import activate_version

threads, rounds = int(sys.argv[1]), int(sys.argv[2])
rows = [ModelVersion.objects.create(version=f"race-{i}", path="race.pt", sha256="0" * 64)
        for i in range(threads)]
connection.close()
errors, actives = [], []
for _ in range(rounds):
    barrier = threading.Barrier(threads)

    def activate(row):
        try:
            barrier.wait(timeout=120)
            activate_version(row)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    workers = [threading.Thread(target=activate, args=(row,)) for row in rows]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    actives.append(sorted(ModelVersion.objects.filter(is_active=True)
                          .values_list("version", flat=True)))
    connection.close()
print(json.dumps({"errors": errors, "actives": actives}))
"""


def test_concurrent_activations_leave_exactly_one_active_on_postgresql(
        own_postgres_database, tmp_path):
    """20 threads activate 20 different versions at the same moment, 10 times over.

    Hostile input: simultaneous activations of different versions (as two
    operators clicking "activate", or an operator and `finetune`).
    """
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({
        "DJANGO_SETTINGS_MODULE": "digitsite.settings",
        "DATABASE_URL": own_postgres_database,
        "DIGITSITE_VAR_DIR": str(tmp_path / "var"),
        "RECOGNIZER_MODEL_DIR": str(tmp_path / "models"),
    })
    result = subprocess.run(
        [sys.executable, "-c", RACE_SCRIPT, str(THREADS), str(ROUNDS)],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=540,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert len(report["actives"]) == ROUNDS
    for actives in report["actives"]:
        assert len(actives) == 1 and actives[0].startswith("race-"), actives
