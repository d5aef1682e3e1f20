"""Activating model versions concurrently, on the real PostgreSQL.

Activation clears one flag and sets another; two of them at once on
PostgreSQL each cleared the version active when their statement began, both
set their own, and the later one broke the one-active constraint (an
IntegrityError, a 500 in the admin). SQLite serialises writers itself, so the
race only shows on PostgreSQL.
"""

import pytest

from tests.support import run_race_script

pytestmark = pytest.mark.services

THREADS = 20
ROUNDS = 10

# Runs in its own process (after tests.support.RACE_PRELUDE), with DATABASE_URL
# naming a fresh PostgreSQL database: migrate, register THREADS versions, then
# ROUNDS times start THREADS threads behind a barrier, each activating a
# different version.
RACE_SCRIPT = r"""
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
    report = run_race_script(RACE_SCRIPT, str(THREADS), str(ROUNDS),
                             database_url=own_postgres_database, tmp_path=tmp_path)
    assert report["errors"] == []
    assert len(report["actives"]) == ROUNDS
    for actives in report["actives"]:
        assert len(actives) == 1 and actives[0].startswith("race-"), actives
