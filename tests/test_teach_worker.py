"""The teach worker's bounds (trainer/teach/worker.py): jobs at once, the queue and
its positions, cancelling, abandoned pages, the CPU cap, one job per owner.

The runner here trains nothing: it takes one step each time the test lets it,
and both clocks are the test's, so every outcome is decided by the test,
never by how fast a loaded machine runs.
"""

import threading

import pytest
from django.core.cache.backends.locmem import LocMemCache

from tests.support import wait_until
from trainer.teach.status import StatusStore, public
from trainer.teach.worker import Job, QueueFull, TeachWorker


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class SteppingRunner:
    """Trains nothing: one step (loss 1/step) whenever the test calls `step`."""

    def __init__(self):
        self.allowed = {}
        self.started = []
        self.fail = set()

    def permit(self, job_id):
        return self.allowed.setdefault(job_id, threading.Semaphore(0))

    def step(self, job_id, count=1):
        for _ in range(count):
            self.permit(job_id).release()

    def __call__(self, work, on_step):
        self.started.append(work["id"])
        if work["id"] in self.fail:
            raise RuntimeError("no model to copy")
        for step in range(1, work["steps"] + 1):
            assert self.permit(work["id"]).acquire(timeout=30), "the test never let it step"
            on_step(step, 1.0 / step)
        return {"copy": f"copy-of-{work['id']}", "seconds": 0.1}


@pytest.fixture
def clocks():
    return Clock(), Clock(0.0)


@pytest.fixture
def runner():
    return SteppingRunner()


@pytest.fixture
def make_worker(clocks, runner):
    wall, cpu = clocks

    def make(**options):
        store = StatusStore(cache=LocMemCache(f"teach-test-{id(options)}", {}), clock=wall)
        settings = dict(workers=1, max_queue=2, abandon_seconds=15.0, cpu_seconds=30.0,
                        store=store, runner=runner, clock=wall, cpu_clock=cpu,
                        sweep_seconds=0.02, progress_seconds=0.0)
        settings.update(options)
        return TeachWorker(**settings)

    return make


def job(job_id, steps=3, owner=None):
    return Job(job_id, {"id": job_id, "steps": steps}, reader="reader",
               owner=owner or f"owner-{job_id}", steps=steps)


def state(worker, job_id):
    record = worker.store.get(job_id)
    return public(record, worker.store.cancel_requested(job_id))


def wait_for(worker, job_id, wanted, what=None):
    wait_until(lambda: worker.store.get(job_id)["state"] == wanted, timeout=30,
               what=what or f"job {job_id} to be {wanted}")
    return state(worker, job_id)


def test_one_job_at_a_time_the_rest_wait_in_order_with_positions(make_worker, runner):
    worker = make_worker(max_queue=2)
    first = worker.submit(job("a"))
    assert first["state"] == "queued" and first["position"] == 0
    wait_for(worker, "a", "running")
    assert worker.submit(job("b"))["position"] == 0
    assert worker.submit(job("c"))["position"] == 1
    # The page asks often for the running job and the next, less for the rest.
    assert [state(worker, name)["poll_after"] for name in "abc"] == [0.4, 0.4, 2.0]
    # Two wait: the queue (max 2) is full, a fourth is refused.
    with pytest.raises(QueueFull):
        worker.submit(job("d"))
    assert worker.store.get("d") is None

    runner.step("a")
    wait_until(lambda: state(worker, "a")["step"] == 1, what="a's first step")
    assert state(worker, "a")["loss"] == 1.0
    assert (state(worker, "b")["state"], state(worker, "c")["state"]) == ("queued", "queued")
    runner.step("a", 2)
    done = wait_for(worker, "a", "done")
    assert done["result"]["copy"] == "copy-of-a" and done["step"] == 3
    assert "poll_after" not in done
    wait_for(worker, "b", "running")
    assert state(worker, "c")["position"] == 0  # moved up
    assert runner.started == ["a", "b"]  # never two at once with one worker
    runner.step("b", 3)
    runner.step("c", 3)
    wait_for(worker, "c", "done")


def test_two_workers_run_two_jobs_at_once(make_worker, runner):
    worker = make_worker(workers=2)
    worker.submit(job("a"))
    worker.submit(job("b"))
    wait_for(worker, "a", "running")
    wait_for(worker, "b", "running")
    worker.submit(job("c"))
    assert state(worker, "c")["state"] == "queued" and worker.queued() == ["c"]
    for name in ("a", "b", "c"):
        runner.step(name, 3)
    wait_for(worker, "c", "done")


def test_a_page_that_stops_asking_loses_its_job(make_worker, runner, clocks):
    wall, _ = clocks
    worker = make_worker()
    worker.submit(job("a", steps=5))
    wait_for(worker, "a", "running")
    worker.submit(job("b"))
    runner.step("a")
    wait_until(lambda: state(worker, "a")["step"] == 1, what="a's first step")
    # The page keeps asking for a (at 14 s and 28 s), but never for b.
    wall.advance(14)
    worker.store.touch("a")
    wall.advance(14)
    worker.store.touch("a")
    runner.step("a")
    wait_until(lambda: state(worker, "a")["step"] == 2, what="a's second step")
    assert state(worker, "a")["state"] == "running"
    worker.sweep()
    gone = state(worker, "b")
    assert gone["state"] == "cancelled"
    assert worker.store.get("b")["error"] == "cancelled: the page stopped asking for it"
    # a's page goes away too: the next step ends it, before the result.
    wall.advance(15.5)
    runner.step("a")
    stopped = wait_for(worker, "a", "cancelled")
    assert stopped["step"] == 3 and "result" not in stopped  # the step it stopped after
    assert runner.started == ["a"]  # b never ran


def test_cancelling_a_waiting_and_a_running_job(make_worker, runner):
    worker = make_worker()
    worker.submit(job("a"))
    wait_for(worker, "a", "running")
    worker.submit(job("b"))
    worker.submit(job("c"))
    worker.cancel("b")
    assert worker.store.get("b")["state"] == "cancelled" and worker.queued() == ["c"]
    assert state(worker, "c")["position"] == 0
    worker.cancel("a")
    # Answered as cancelled at once; the training stops at its next step.
    assert state(worker, "a")["state"] == "cancelled"
    runner.step("a")
    wait_for(worker, "a", "cancelled")
    wait_for(worker, "c", "running")
    runner.step("c", 3)
    wait_for(worker, "c", "done")
    assert runner.started == ["a", "c"]


def test_a_job_past_its_cpu_time_fails_and_says_why(make_worker, runner, clocks):
    _, cpu = clocks
    worker = make_worker(cpu_seconds=30.0)
    worker.submit(job("a", steps=10))
    wait_for(worker, "a", "running")
    runner.step("a")
    wait_until(lambda: state(worker, "a")["step"] == 1, what="a's first step")
    cpu.advance(31)
    runner.step("a")
    failed = wait_for(worker, "a", "failed")
    assert "more than the 30 s a training may use" in failed["error"]
    assert failed["step"] == 1


def test_a_failing_training_fails_its_job_and_the_worker_goes_on(make_worker, runner):
    worker = make_worker()
    runner.fail.add("a")
    worker.submit(job("a"))
    worker.submit(job("b"))
    failed = wait_for(worker, "a", "failed")
    assert failed["error"] == "the training failed: no model to copy"
    wait_for(worker, "b", "running")
    runner.step("b", 3)
    wait_for(worker, "b", "done")


def test_a_warm_up_whose_connection_cannot_be_closed_leaves_the_thread_serving(
        make_worker, runner, monkeypatch):
    """Tried: the warm-up fails, and so does closing its database connection
    after it (as when the database went away meanwhile). Before, the second
    error ended the worker's only thread, and a queued job waited for the
    next submission to start another."""
    from trainer.teach import worker as worker_module

    closes = []

    def unreachable_once():  # the job's own close, later, works
        closes.append(1)
        if len(closes) == 1:
            raise RuntimeError("the database went away")

    def failing_warm_up():
        raise RuntimeError("no model to warm")

    monkeypatch.setattr(worker_module, "close_old_connections", unreachable_once)
    worker = make_worker(warm_up=failing_warm_up)
    worker.submit(job("a", steps=1))
    wait_for(worker, "a", "running")
    runner.step("a")
    assert wait_for(worker, "a", "done")["result"]["copy"] == "copy-of-a"


def test_a_status_store_that_fails_as_a_job_is_taken_leaves_the_thread_serving(
        make_worker, runner):
    """Tried: writing the queue's positions fails once as the worker takes a
    job (a cache outage). Before, the error ended the thread, and the job,
    already counted as running, was never run."""
    worker = make_worker()
    real = worker.store.set_positions
    failures = []

    def failing_once_in_the_worker(positions):
        if threading.current_thread().name.startswith("teach-worker") and not failures:
            failures.append(positions)
            raise ConnectionError("the cache went away")
        return real(positions)

    worker.store.set_positions = failing_once_in_the_worker
    worker.submit(job("a", steps=1))
    wait_for(worker, "a", "running")
    assert failures, "the store never failed"
    runner.step("a")
    assert wait_for(worker, "a", "done")["result"]["copy"] == "copy-of-a"


def test_one_job_per_owner(make_worker, runner, clocks):
    wall, _ = clocks
    worker = make_worker()
    store = worker.store
    assert store.claim_owner("learner", "a", 15.0) == (True, None)
    worker.submit(job("a", owner="learner"))
    claimed, current = store.claim_owner("learner", "b", 15.0)
    assert not claimed and current["job"] == "a"
    # Another learner is not held up.
    assert store.claim_owner("other", "c", 15.0) == (True, None)
    runner.step("a", 3)
    wait_for(worker, "a", "done")
    # A job that ended frees its owner.
    assert store.claim_owner("learner", "b", 15.0) == (True, None)
    worker.submit(job("b", owner="learner", steps=2))
    wait_for(worker, "b", "running")
    # A job whose page stopped asking (its process may be gone) gives way.
    wall.advance(16)
    assert store.claim_owner("learner", "d", 15.0) == (True, None)
    assert store.cancel_requested("b")
    runner.step("b")
    wait_for(worker, "b", "cancelled")


def test_a_claim_not_yet_queued_holds_its_owner(clocks):
    # Two requests at once: the first has claimed the owner's slot but its
    # job has no record yet (worker.submit writes it next). The second must
    # be refused, not overwrite the claim and run a second job beside it.
    wall, _ = clocks
    store = StatusStore(cache=LocMemCache("teach-test-claims", {}), clock=wall)
    assert store.claim_owner("learner", "a", 15.0) == (True, None)
    claimed, current = store.claim_owner("learner", "b", 15.0)
    assert not claimed and current["job"] == "a" and current["state"] == "queued"
    assert store.owner_job("learner", 15.0)["job"] == "a"
    # A claim whose record never came (its process died in between) gives
    # way after CLAIM_SECONDS, to one request only.
    wall.advance(11)
    assert store.owner_job("learner", 15.0) is None
    assert store.claim_owner("learner", "c", 15.0) == (True, None)
    claimed, current = store.claim_owner("learner", "d", 15.0)
    assert not claimed and current["job"] == "c"
    # Releasing another job's slot leaves the holder's alone.
    store.release_owner("learner", "a")
    assert store.owner_job("learner", 15.0)["job"] == "c"
    store.release_owner("learner", "c")
    assert store.claim_owner("learner", "d", 15.0) == (True, None)
