"""Server threads carry their names to the OS (recognizer/thread_names.py), and
the load benchmark splits a server's CPU by them (bench/bench_load.py).

What was tried: a thread named through prctl, names longer than the kernel
keeps (cut on a character boundary), the recognizer's worker and the game's
database pool in a running process, and the benchmark's reading of
/proc/PID/task with a thread that burns CPU under a pool's name while the
others wait.
"""

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.bench_load import thread_cpu_seconds, window_cpu_by_role, window_cpu_summary
from recognizer.thread_names import MAX_NAME_BYTES, name_os_thread, os_name

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="thread names are read from /proc (Linux)")


def os_thread_name(native_id):
    return Path(f"/proc/{os.getpid()}/task/{native_id}/comm").read_text().strip()


def in_named_thread(name, function):
    result = {}

    def run():
        result["named"] = name_os_thread()
        result["value"] = function()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    return result


def test_a_name_is_cut_to_what_the_kernel_keeps_on_a_character_boundary():
    assert os_name("game-db_0") == b"game-db_0"
    assert os_name("recognizer-inference") == b"recognizer-infe"
    assert len(os_name("x" * 40)) == MAX_NAME_BYTES
    # Seven two-byte characters fit in 15 bytes; half of the eighth is dropped.
    assert os_name("é" * 10) == ("é" * 7).encode()


@linux_only
def test_a_thread_shows_its_python_name_to_the_os():
    result = in_named_thread("recognizer-inference",
                             lambda: os_thread_name(threading.get_native_id()))
    assert result["named"] is True
    assert result["value"] == "recognizer-infe"
    # The caller's own name is left alone.
    assert os_thread_name(threading.get_native_id()) != "recognizer-infe"


@linux_only
# Committed: the worker reads the active version on its own connection.
@pytest.mark.django_db(transaction=True)
def test_the_recognizers_worker_and_the_games_database_pool_are_named(active_model,
                                                                    inference_service):
    from digitsite.game.database import db

    inference_service.predict([[0.0] * 28] * 28)
    assert os_thread_name(inference_service._worker.native_id) == "recognizer-infe"

    native_id = asyncio.run(db(threading.get_native_id)())
    assert os_thread_name(native_id).startswith("game-db_")


@linux_only
def test_the_teaching_pools_and_the_taught_copies_thread_are_named():
    from recognizer import taught
    from recognizer.teaching.memo import Memo

    ran = []
    memo = Memo(1, name="teaching-test", initializer=lambda: ran.append(True))
    native_id = memo.get("key", threading.get_native_id).result(timeout=60)
    # The pool's own initializer still runs, after the naming.
    assert ran == [True]
    assert os_thread_name(native_id) == "teaching-test_0"

    native_id = taught._get_executor().submit(threading.get_native_id).result(timeout=60)
    assert os_thread_name(native_id) == "taught-copies_0"


@linux_only
def test_the_benchmark_counts_a_threads_cpu_under_its_role():
    burnt = threading.Event()
    release = threading.Event()

    def burn():
        name_os_thread()
        # CPU time, not wall time: the same on a fast or a loaded machine.
        start = time.thread_time()
        while time.thread_time() - start < 0.3:
            pass
        burnt.set()
        release.wait()  # alive while it is read: an ended thread leaves /proc

    before = thread_cpu_seconds(os.getpid())
    thread = threading.Thread(target=burn, name="game-db_test")
    thread.start()
    try:
        assert burnt.wait(60)
        after = thread_cpu_seconds(os.getpid())
    finally:
        release.set()
        thread.join()
    roles = {role for role, _seconds in after["threads"].values()}
    assert {"event loop", "database"} <= roles
    spent = window_cpu_by_role([before], [after])
    # The kernel counts in ticks (10 ms): 0.3 s of CPU reads as about that
    # (a little more if a pool thread of an earlier test was still busy).
    assert 0.25 <= spent["database"] <= 0.6
    assert spent["inference"] == 0


def test_the_window_counts_each_thread_and_leaves_the_rest_of_the_process_to_other():
    before = [
        {"process": 10.0, "threads": {"100": ("event loop", 6.0), "101": ("inference", 2.0),
                                      "102": ("database", 1.0), "103": ("database", 0.5)}},
        {"process": 4.0, "threads": {"200": ("event loop", 3.0), "201": ("inference", 0.5)}},
    ]
    after = [
        # 103 ended in the window (its share is in the process's figure only);
        # 104 started in it.
        {"process": 13.0, "threads": {"100": ("event loop", 7.5), "101": ("inference", 3.0),
                                      "102": ("database", 1.2), "104": ("database", 0.1)}},
        {"process": 5.2, "threads": {"200": ("event loop", 3.5), "201": ("inference", 1.0),
                                     "202": ("other", 0.1)}},
    ]
    by_role = window_cpu_by_role(before, after)
    assert by_role == {"event loop": 2.0, "inference": 1.5, "database": 0.3, "other": 0.4}
    assert sum(by_role.values()) == pytest.approx(3.0 + 1.2)
    summary = window_cpu_summary(by_role, guesses=1000)
    assert summary["server_cpu_seconds_in_window"] == 4.2
    assert summary["server_cpu_ms_per_guess_in_window"] == 4.2
    assert summary["server_cpu_ms_per_guess_by_thread"] == {
        "event loop": 2.0, "inference": 1.5, "database": 0.3, "other": 0.4}
    # A server that could not be read (not Linux) reports nothing rather than a wrong figure.
    assert window_cpu_by_role([None], after[:1]) is None
    assert window_cpu_by_role(None, after) is None
    assert window_cpu_summary(None, 1000) == {"server_cpu_ms_per_guess_in_window": None}
