"""The databases a killed test process leaves on PostgreSQL (tests/services.py).

A test process drops what it made when it exits; one killed first (a CI
timeout, kill -9) cannot, and PostgreSQL outlives the run. The next process
that makes a database drops them: those of this machine's processes that are
gone, and nothing else.
"""

import os
import subprocess
import sys

from tests import services
from tests.support import require


def _admin():
    server_url = os.environ.get("TEST_POSTGRES_URL") or services.DEFAULT_POSTGRES_URL
    try:
        return services._admin_connection(server_url)
    except Exception as exc:
        require(False, f"PostgreSQL is not reachable: {exc} (set TEST_POSTGRES_URL)")


def _names(admin):
    return {name for (name,) in admin.execute("SELECT datname FROM pg_database").fetchall()}


def test_a_gone_process_databases_are_dropped_and_no_one_elses():
    # A process that ran and is gone: its id is free.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    gone_pid = int(gone.stdout)
    other_machine = "0" * 6 if services.MACHINE != "0" * 6 else "1" * 6
    made = {
        "gone": f"digitsite_template_{services.MACHINE}_{gone_pid}_0123abcd",
        "gone, a test database": f"digitsite_test_{services.MACHINE}_{gone_pid}_4567abcd",
        "living (this process)": services.database_name("digitsite_test"),
        "another machine's": f"digitsite_test_{other_machine}_{gone_pid}_89abcdef",
        "not made here": f"digitsite_{gone_pid}_kept",
    }
    with _admin() as admin:
        lingering = None
        try:
            for name in made.values():
                admin.execute(f'CREATE DATABASE "{name}"')
            # A session on the gone process's database, as a killed server leaves.
            lingering = services._admin_connection(services._with_database(
                os.environ.get("TEST_POSTGRES_URL") or services.DEFAULT_POSTGRES_URL,
                made["gone"]))
            lingering.execute("SELECT 1")
            dropped = services.drop_orphans(admin)
            left = _names(admin)
        finally:
            if lingering is not None:
                lingering.close()
            for name in made.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # Gone: by this call, or by another test process's first database
    # made meanwhile (it drops them the same way).
    assert not {made["gone"], made["gone, a test database"]} & left
    for kept in ("living (this process)", "another machine's", "not made here"):
        assert made[kept] in left and made[kept] not in dropped
