"""Fixtures shared by the whole suite.

- `mnist_dir`: the real MNIST files (../shared/data/mnist or $MNIST_DATA_DIR).
- `model_dir` / `active_model`: a model directory under tmp_path and a small
  untrained model registered as the active version, for tests that need a
  model but not a good one.
- `daphne_server`: a real Daphne process serving the site on a free port.
- `browser`: headless Chromium driven by Playwright.
- `manual_clock`: the game's clock replaced by one that moves only when the
  test advances it, so game timers fire when the test says, not after real
  seconds that a loaded machine stretches.

Tests that need something this machine lacks skip with the reason, except
under CI=true, where a missing dependency is a failure.
"""

import os
from pathlib import Path

import pytest

from tests.support import BASE_DIR, require

pytest_plugins = ["tests.services"]

# One PyTorch (OpenMP) thread in each test process and in every process it
# starts, unless the environment says otherwise; tests of more threads set
# them. `make test` runs three test processes on two cores, beside servers
# and browsers. With two busy loops beside it (timed once each), a finetune
# of 400 digits for 3 epochs used 21 s of CPU and took 34 s on one thread,
# and used 34 s and took 41 s on two, whose threads spent the difference
# waiting for each other; on an idle machine, 21 and 23 s of CPU. Set
# before torch (and numpy's OpenBLAS) is imported: each reads it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ARTIFACTS_DIR = Path(os.environ.get("ARTIFACTS_DIR", BASE_DIR / "artifacts"))


# The files whose tests take longest, longest first (the sum of their steps'
# durations in one run of the whole suite with three processes on 2 cores:
# 150 s down to 41 s; the rest take 39 s or less). `make test` hands whole
# files to the processes in collection order (pytest-xdist's loadfile with
# --no-loadscope-reorder, whose default order, by number of tests, started
# test_ws_limits_shared.py, 3 tests and 73 s, among the last): these go
# first, so that the run does not end on one process finishing one of them
# while the others wait.
LONGEST_FILES = [
    "test_finetune.py", "test_scaleout.py", "test_database_outages.py", "test_server_zygote.py",
    "test_teaching_pages_browser.py", "test_ws_limits_shared.py", "test_teaching_browser.py",
    "test_teach_browser.py", "test_round_upkeep.py", "test_training_kernels.py",
    "test_security_browser.py", "test_deploy_check.py", "test_ws_limits.py",
    "test_feedback_loop.py", "test_game_browser.py", "test_teach_class_browser.py",
]


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(LONGEST_FILES)}
    # A stable sort: the tests of a file keep their order, and so do the other files.
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file, as the site's own is, not
    Django's default shared-cache in-memory database.

    In shared cache a connection that meets another's table lock fails at
    once with "database table is locked", which no busy timeout waits out:
    a test reading or writing from its own thread while the game's pool
    wrote failed now and then (four tests were made to take turns by hand).
    A file in write-ahead-log mode behaves as in production: readers run
    beside the writer and a writer waits its turn (digitsite/settings.py),
    and the game's pool has its GAME_DB_THREADS threads, not one.
    (tmp_path_factory's folder is this process's own under pytest-xdist.)
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if (database["ENGINE"] == "django.db.backends.sqlite3"
            and not database.get("TEST", {}).get("NAME")):
        database.setdefault("TEST", {})["NAME"] = str(
            tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(scope="session")
def mnist_dir():
    candidates = [os.environ.get("MNIST_DATA_DIR"), BASE_DIR.parent / "shared" / "data" / "mnist"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "t10k-labels-idx1-ubyte.gz").exists():
            return Path(candidate)
    require(False, "the MNIST files are not in ../shared/data/mnist nor in $MNIST_DATA_DIR")


@pytest.fixture
def model_dir(settings, tmp_path):
    settings.RECOGNIZER_MODEL_DIR = tmp_path / "models"
    settings.RECOGNIZER_MODEL_DIR.mkdir()
    return settings.RECOGNIZER_MODEL_DIR


@pytest.fixture
def active_model(model_dir, db):
    """A freshly initialised network registered and active (seeded: repeatable)."""
    from tests.support import register_random_model

    return register_random_model(model_dir, seed=0, activate=True)


@pytest.fixture
def inference_service(settings):
    """A private inference service that re-reads the active version on every batch."""
    from recognizer.inference import InferenceService

    return InferenceService(reload_seconds=0)


@pytest.fixture(autouse=True)
def fresh_api_limits(monkeypatch):
    from recognizer import clients

    monkeypatch.setattr(clients, "_limits", None)
    monkeypatch.setattr(clients, "_teaching_limits", None)


@pytest.fixture(autouse=True)
def fresh_address_bytes():
    """Each test starts with full byte budgets per address (digitsite/game/message_rate.py):
    in-process sockets share one address, and a manual clock never refills them."""
    from digitsite.game import session

    session.address_bytes.buckets.clear()


@pytest.fixture(autouse=True)
def no_outage_under_way():
    """Each test starts with no outage in the process's logs of repeated work
    (digitsite/game/outage_log.py): one test's failures would make the next
    one's first failure a count, on a clock that may have restarted."""
    from digitsite.game import outage_log, session  # noqa: F401 (makes the logs)

    outage_log.reset_all()


@pytest.fixture(autouse=True)
def model_card_read_every_view(monkeypatch):
    """The model page reads its state at every view (recognizer/teaching/card_state.py):
    tests change versions and drawings and look at the page at once. The kept
    state is tested on its own, with a manual clock. (Not pytest-django's
    `settings` fixture: some tests have a parameter of that name.)"""
    from django.conf import settings

    from recognizer.teaching import views

    monkeypatch.setattr(settings, "MODEL_CARD_STATE_SECONDS", 0)
    # And waits for the accuracy on the approved drawings, whatever the
    # machine's speed: the page that does not is tested on its own.
    monkeypatch.setattr(settings, "MODEL_CARD_WAIT_SECONDS", 600)
    views.card_state.forget()


@pytest.fixture
def manual_clock():
    from digitsite.game import clock

    manual = clock.ManualClock()
    previous = clock.install(manual)
    yield manual
    clock.install(previous)


@pytest.fixture(scope="session")
def artifacts_dir():
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def daphne_server(tmp_path_factory):
    """One real Daphne server for the session, on SQLite and the in-memory layer."""
    from tests.live import LiveServer

    server = LiveServer(tmp_path_factory.mktemp("live"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def game_server(daphne_server):
    """The live server with an active model (an untrained one if none is shipped),
    for the tests that play the game in a browser."""
    return daphne_server.ensure_model()


# Per module: Playwright's sync API keeps an event loop running in this thread
# while it is open, which the asyncio tests of other modules cannot share.
@pytest.fixture(scope="module")
def browser():
    from tests.live import launch_chromium

    playwright, chromium = launch_chromium()
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser, artifacts_dir):
    from tests.live import open_page

    with open_page(browser, viewport={"width": 1280, "height": 900}) as page:
        yield page


@pytest.fixture
def hops(monkeypatch):
    """The names of the functions sent to a thread by sync_to_async, as they happen."""
    import asgiref.sync

    names = []
    original = asgiref.sync.SyncToAsync.__call__

    def counting(self, *args, **kwargs):
        names.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counting)
    return names
