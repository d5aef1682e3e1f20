"""The bounded runner of teach jobs: a few threads, a queue, and stopping jobs nobody wants.

Per process: at most `workers` jobs train at once (TEACH_WORKERS, default 1,
each on TEACH_TORCH_THREADS torch threads, default 1), so on the 2-core
machine one core trains while the other serves the game, whose guesses go
through the inference service's own thread. Training never runs on the
event loop: the views only queue a job and read its record.

At most `max_queue` jobs wait behind them (TEACH_MAX_QUEUE); one more is
refused (QueueFull, a 503). Waiting jobs start in order; each knows how many
are ahead of it (its record's `position`, trainer/teach/status.py).

A job stops (at its next training step, or before it starts) when:

- its page cancels it (POST .../cancel, also sent when the page is closed);
- its page stops asking for it for `abandon_seconds` (TEACH_ABANDON_SECONDS:
  the page polls every 0.4 s, so 15 s means it is gone);
- it has used `cpu_seconds` of CPU time (TEACH_CPU_SECONDS): the thread's
  own CPU clock, which the single torch thread computes on, so a machine
  loaded by others does not count against it. It then fails, saying why.

Clocks are injected (`clock`: wall time shared with the other processes'
polls, `cpu_clock`), so tests decide when a page is gone or a budget spent.
"""

import collections
import logging
import math
import os
import threading
import time
from dataclasses import dataclass

from django.db import close_old_connections

from recognizer.thread_names import name_os_thread
from trainer.teach import status
from trainer.teach.status import CANCELLED, DONE, FAILED, RUNNING, StatusStore

logger = logging.getLogger(__name__)

# The niceness of a training thread (Linux schedules threads apart): the
# game's event loop and the inference service's thread, at the process's
# own niceness, get the cores first when both want them.
TRAINING_NICENESS = 10
# How often idle worker threads look for queued jobs whose page went away.
SWEEP_SECONDS = 1.0
# How often a running job writes its step and loss (the page polls every 0.4 s),
# and reads whether it must stop: a cache round trip per step of a few ms
# would cost Redis 300 writes a job for nothing.
PROGRESS_SECONDS = 0.2


class QueueFull(Exception):
    """No room in this process's queue (a 503)."""


class JobStopped(Exception):
    """A job ended before its result: state CANCELLED or FAILED, and why."""

    def __init__(self, state, message):
        super().__init__(message)
        self.state = state
        self.message = message


@dataclass
class Job:
    id: str
    work: object  # what `runner` trains (trainer.teach.copies.Work)
    reader: str  # the session owner key allowed to read it
    owner: str  # the key of its one-job-per-owner slot
    steps: int


def _default_runner(work, on_step):
    from trainer.teach.copies import make_copy

    return make_copy(work, on_step=on_step)


def _default_warm_up():
    from trainer.teach.copies import warm_up

    warm_up()


class TeachWorker:
    def __init__(self, *, workers=1, max_queue=64, abandon_seconds=15.0, cpu_seconds=30.0,
                 store=None, runner=_default_runner, clock=time.time,
                 cpu_clock=time.thread_time, torch_threads=1, sweep_seconds=SWEEP_SECONDS,
                 progress_seconds=PROGRESS_SECONDS, niceness=TRAINING_NICENESS,
                 warm_up=None):
        self.workers = workers
        self.max_queue = max_queue
        self.abandon_seconds = abandon_seconds
        self.cpu_seconds = cpu_seconds
        self.store = store or StatusStore(clock=clock)
        self.runner = runner
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.torch_threads = torch_threads
        self.sweep_seconds = sweep_seconds
        self.progress_seconds = progress_seconds
        self.niceness = niceness
        self.warm_up = warm_up
        self._warm_lock = threading.Lock()
        self._waiting = collections.deque()
        self._running = {}
        self._condition = threading.Condition()
        self._threads = []
        self.finished = 0

    # -- the views' side ---------------------------------------------------------

    def submit(self, job):
        """Queue `job`; its record. QueueFull when max_queue jobs already wait."""
        with self._condition:
            self._sweep_locked()
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} trainings are waiting already")
            record = self.store.create(job.id, reader=job.reader, owner=job.owner,
                                       steps=job.steps, position=len(self._waiting))
            self._waiting.append(job)
            self._start_threads()
            self._condition.notify()
        return record

    def cancel(self, job_id):
        """Stop `job_id`: now if it waits, at its next step if it runs."""
        self.store.request_cancel(job_id)
        with self._condition:
            self._sweep_locked()

    def start(self):
        """Start the threads now (they warm up before the first job arrives)."""
        with self._condition:
            self._start_threads()

    def sweep(self):
        """End the waiting jobs that were cancelled or whose page went away."""
        with self._condition:
            self._sweep_locked()

    def queued(self):
        with self._condition:
            return [job.id for job in self._waiting]

    def running(self):
        with self._condition:
            return list(self._running)

    # -- the threads ---------------------------------------------------------------

    def _start_threads(self):
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._serve, daemon=True,
                                      name=f"teach-worker-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def _sweep_locked(self):
        kept = collections.deque()
        for job in self._waiting:
            reason = self.store.stop_reason(job.id, self.abandon_seconds)
            if reason is None:
                kept.append(job)
            else:
                self._end(job, CANCELLED, _stop_message(reason))
        changed = len(kept) != len(self._waiting)
        self._waiting = kept
        if changed:
            self._write_positions()

    def _write_positions(self):
        self.store.set_positions({job.id: ahead for ahead, job in enumerate(self._waiting)})

    def _take(self):
        with self._condition:
            while True:
                self._sweep_locked()
                if self._waiting:
                    job = self._waiting.popleft()
                    try:
                        self._write_positions()
                    except Exception:  # the status store failed: the job keeps its place
                        self._waiting.appendleft(job)
                        raise
                    self._running[job.id] = job
                    return job
                self._condition.wait(timeout=self.sweep_seconds)

    def _serve(self):
        import torch  # here, not at the top: see recognizer/checkpoints.py

        name_os_thread()
        # In the thread itself: torch's thread count is a per-thread setting
        # (see recognizer/inference.py), and so is a Linux thread's niceness.
        torch.set_num_threads(self.torch_threads)
        _lower_priority(self.niceness)
        self._warm()
        while True:
            try:
                job = self._take()
            except Exception:  # the status store failed (a cache outage): try again
                logger.exception("the teach worker could not take its next job")
                time.sleep(self.sweep_seconds)
                continue
            try:
                self._run(job)
            except Exception:  # never let one job end the thread
                logger.exception("teach job %s failed outside its training", job.id)
            finally:
                with self._condition:
                    self._running.pop(job.id, None)

    def _warm(self):
        with self._warm_lock:
            warm_up, self.warm_up = self.warm_up, None
            if warm_up is None:
                return
            try:
                warm_up()
            except Exception:  # the first job will do it, or say what is wrong
                logger.exception("warming up the teach worker failed")
            finally:
                try:
                    close_old_connections()
                except Exception:  # nor may this end the thread (a database gone)
                    logger.exception("closing the warm-up's database connection failed")

    def _run(self, job):
        close_old_connections()
        self.store.update(job.id, state=RUNNING, position=0, step=0)
        started_cpu = self.cpu_clock()
        progress = {"checked": None}

        def on_step(step, loss):
            used = self.cpu_clock() - started_cpu
            if used > self.cpu_seconds:
                raise JobStopped(FAILED, f"stopped after {used:.0f} s of computing, more than "
                                         f"the {self.cpu_seconds:g} s a training may use; "
                                         "ask for fewer steps")
            now = self.clock()
            if (progress["checked"] is not None and step < job.steps
                    and now - progress["checked"] < self.progress_seconds):
                return
            progress["checked"] = now
            self.store.update(job.id, step=step, loss=_finite(loss))
            reason = self.store.stop_reason(job.id, self.abandon_seconds)
            if reason is not None:
                raise JobStopped(CANCELLED, _stop_message(reason))

        try:
            reason = self.store.stop_reason(job.id, self.abandon_seconds)
            if reason is not None:
                raise JobStopped(CANCELLED, _stop_message(reason))
            result = self.runner(job.work, on_step)
        except JobStopped as stop:
            self._end(job, stop.state, stop.message)
        except Exception as exc:
            logger.exception("teach job %s failed", job.id)
            self._end(job, FAILED, f"the training failed: {exc}")
        else:
            self._end(job, DONE, None, result=result)
        finally:
            close_old_connections()

    def _end(self, job, state, message, result=None):
        fields = {"state": state, "error": message, "position": 0}
        if result is not None:
            fields.update(result=result, step=job.steps)
        self.store.update(job.id, **fields)
        self.store.release_owner(job.owner, job.id)
        self.finished += 1


def _lower_priority(niceness):
    if not niceness:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                       min(19, current + niceness))
    except (AttributeError, OSError) as exc:  # not Linux: every thread shares the process's
        logger.info("teach worker threads keep the process's priority: %s", exc)


def _stop_message(reason):
    if reason == "abandoned":
        return "cancelled: the page stopped asking for it"
    return "cancelled"


def _finite(value):
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


_worker = None
_worker_lock = threading.Lock()


def get_worker():
    """This process's worker, built from the TEACH_* settings on first use."""
    from django.conf import settings

    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = TeachWorker(
                workers=settings.TEACH_WORKERS, max_queue=settings.TEACH_MAX_QUEUE,
                abandon_seconds=settings.TEACH_ABANDON_SECONDS,
                cpu_seconds=settings.TEACH_CPU_SECONDS,
                torch_threads=settings.TEACH_TORCH_THREADS, warm_up=_default_warm_up)
        return _worker


__all__ = ["Job", "JobStopped", "QueueFull", "TeachWorker", "get_worker", "status"]
