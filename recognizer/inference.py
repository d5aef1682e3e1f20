"""The inference service: one loaded model per process, batched, off the event loop.

Callers hand in 28x28 inputs from any thread or coroutine. A single worker
thread owns the model: it takes every request that is waiting, runs them as
one forward pass and resolves each caller's future. Under load requests pile
up while a pass runs, so batches grow by themselves; when idle a request waits
for nobody (unless RECOGNIZER_BATCH_WAIT_MS asks it to).

Predictions go through the frozen, batch-norm-folded form of the network
(`recognizer.frozen`), about twice as fast as the eager one with the same
probabilities; requests for the layers' activations (the teaching pages) go
through the eager network in the same batch.

Waiting requests queue per client (an IP address, a player: whatever the
caller names; recognizer/fair_queue.py) and a batch takes them round robin, so
a client with a thousand requests waiting delays another client's one by at
most one batch, not by a thousand requests. A request whose caller gave up
(its future cancelled: the coroutine awaiting it was cancelled because its
client went away) leaves the queue at once and is never computed.

The worker also looks at the database every RECOGNIZER_RELOAD_SECONDS for the
active model version, so an activation in the admin (or by `finetune`) reaches
every process without a restart. A version whose file is corrupt or fails its
checksum is refused with an error log line and the current model keeps
serving; a process that starts with such an active version serves the newest
version that loads instead (and /healthz fails, naming both). The refused
version is tried again whenever its file changes, so restoring the file heals
every process without a restart.
"""

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import Q

from recognizer import versions
from recognizer.checkpoints import CheckpointError
from recognizer.fair_queue import FairQueue
from recognizer.models import ModelVersion
from recognizer.thread_names import name_os_thread

# torch and the network: imported where a model is used (recognizer/checkpoints.py).
if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Versions tried (previously active ones first) when the active one does not
# load at start-up.
# A handful: a model folder whose newest several files are all broken has a
# problem that serving something older would only hide.
FALLBACK_CANDIDATES = 5


class ModelUnavailable(Exception):
    """No model could be loaded: none is active, or the active one is broken."""


@dataclass(frozen=True)
class Prediction:
    digit: int
    probabilities: list  # ten floats summing to 1
    version: str

    def top(self, k=3):
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def as_dict(self):
        return {"digit": self.digit, "probabilities": self.probabilities, "model": self.version}


@dataclass(eq=False)
class _Request:
    image: np.ndarray
    # A concurrent.futures.Future; or, for a coroutine's request, an asyncio
    # future of `loop`, the event loop it waits on.
    future: object
    with_activations: bool = False
    client: object = None
    loop: object = None

    def claim(self):
        """Whether the request is still wanted, the worker taking it."""
        if self.loop is None:
            return self.future.set_running_or_notify_cancel()
        # Read from the worker's thread: a cancel that comes after it only
        # makes the answer unwanted (_settle leaves a done future alone).
        return not self.future.cancelled()


def _checked_input(image):
    image = np.asarray(image, dtype=np.float32)
    if image.shape != (28, 28):
        raise ValueError(f"expected a 28x28 input, got shape {image.shape}")
    return image


def _settle(answers):
    """On a coroutine's event loop: each (asyncio future, result, error)."""
    for future, result, error in answers:
        if future.done():  # cancelled meanwhile: its caller went away
            continue
        try:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
        except Exception:  # an error asyncio refuses to carry: the others still get theirs
            logger.exception("an inference answer could not be delivered")
            future.set_exception(ModelUnavailable("the recognizer's answer was lost"))


@dataclass(frozen=True)
class Refusal:
    """An active version this process could not load, and why."""

    version: str
    error: str
    # (id, checksum, file state): the same attempt is not repeated.
    attempt: tuple


def _file_state(path):
    """What changes when a file is restored or replaced: (inode, size, mtime), or None."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass
class LoadedModel:
    version: str
    version_id: int
    sha256: str
    model: "torch.nn.Module"  # eager: activations, gradients (the teaching pages)
    metadata: dict = field(default_factory=dict)
    # The frozen, batch-norm-folded graph with the version's calibration:
    # the probabilities of plain predictions, in one call
    # (recognizer.frozen.freeze_calibrated).
    answering: "torch.nn.Module" = None
    _serving: "torch.nn.Module" = field(default=None, repr=False)
    _serving_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, row, model, metadata):
        from recognizer import calibration, frozen

        return cls(row.version, row.pk, row.sha256, model, metadata,
                   frozen.freeze_calibrated(model, calibration.temperature_of(metadata)))

    @property
    def serving(self):
        """The frozen graph's logits (the teaching pages' occlusion maps).
        Frozen when first asked for: every load of a version froze it, about
        0.2 s, and the game and the API never ask."""
        if self._serving is None:
            from recognizer import frozen

            with self._serving_lock:
                if self._serving is None:
                    self._serving = frozen.freeze(self.model)
        return self._serving


def fallback_candidates(active):
    """Up to FALLBACK_CANDIDATES versions to serve instead of `active`, best first
    (see InferenceService._load_fallback)."""
    others = ModelVersion.objects.exclude(pk=active.pk)
    tiers = [
        others.filter(pk=active.parent_id) if active.parent_id else others.none(),
        others.filter(last_activated__isnull=False).order_by("-last_activated", "-id"),
        others.filter(last_activated__isnull=True).filter(
            Q(path__startswith=versions.BUILTIN_PREFIX) | Q(metrics__activation__activated=True)
        ).order_by("-created", "-id"),
        others.order_by("-created", "-id"),
    ]
    chosen = {}
    for tier in tiers:
        for row in tier[:FALLBACK_CANDIDATES]:
            chosen.setdefault(row.pk, row)
            if len(chosen) == FALLBACK_CANDIDATES:
                return list(chosen.values())
    return list(chosen.values())


class InferenceService:
    def __init__(self, max_batch=None, batch_wait_ms=None, reload_seconds=None):
        self.max_batch = max_batch or settings.RECOGNIZER_MAX_BATCH
        wait = settings.RECOGNIZER_BATCH_WAIT_MS if batch_wait_ms is None else batch_wait_ms
        self.batch_wait = wait / 1000.0
        self.reload_seconds = (
            settings.RECOGNIZER_RELOAD_SECONDS if reload_seconds is None else reload_seconds
        )
        self._queue = FairQueue()
        self._lock = threading.Lock()
        self._lock_counts = threading.Lock()
        self._loaded = None
        # The active version this process could not load, while it cannot.
        self.refused = None
        self._last_check = 0.0
        # The last check could not read the active version (the database away).
        self._check_failing = False
        self._worker = None
        self.batches_run = 0
        self.requests_served = 0  # inputs that went through a forward pass
        self.requests_dropped = 0  # cancelled while waiting: never computed

    # -- model loading -------------------------------------------------------

    def refresh(self, force=False):
        """Load the active version if it changed; return the loaded model.

        Safe to call from any synchronous thread. Keeps the current model when
        the active one cannot be loaded, or the database cannot be read; with
        no model yet (a start-up with a broken active file) it serves the
        newest version that loads instead.
        Either way the active one is tried again at every check once its file
        has changed, so restoring the file heals the process.
        """
        now = time.monotonic()
        if not force and self._loaded is not None and now - self._last_check < self.reload_seconds:
            return self._loaded
        with self._lock:
            self._last_check = now
            try:
                row = versions.active_version()
            except DatabaseError:
                if self._loaded is None:
                    raise
                # The database away: the model in memory still answers.
                # Each check failed the batch it came with (an error to each
                # of its players, a traceback for the batch and one for each
                # drawing in it), every RECOGNIZER_RELOAD_SECONDS for as long
                # as the outage lasted. Logged once an outage.
                if not self._check_failing:
                    logger.warning("the active model version could not be read; still "
                                   "serving %s until it can", self._loaded.version,
                                   exc_info=True)
                    self._check_failing = True
                return self._loaded
            if self._check_failing:
                logger.warning("the active model version can be read again")
                self._check_failing = False
            if row is None:
                self.refused = None
                if self._loaded is None:
                    raise ModelUnavailable("no model version is active")
                return self._loaded
            current = self._loaded
            # The checksum too: a test database reuses ids after a rollback.
            if current is not None and (current.version_id, current.sha256) == (row.pk, row.sha256):
                self.refused = None
                return current
            attempt = (row.pk, row.sha256, _file_state(versions.resolve_path(row.path)))
            if self.refused is not None and self.refused.attempt == attempt:
                # Refused before and its file has not changed since: reading
                # and hashing 1.9 MB at every check would cost the worker
                # thread for nothing.
                return self._serve_instead_of(row)
            try:
                model, metadata = versions.load_version(row)
            except CheckpointError as exc:
                self.refused = Refusal(row.version, str(exc), attempt)
                if current is not None:
                    serving = f"still serving {current.version}"
                else:
                    current = self._load_fallback(row)
                    serving = (f"serving {current.version} instead, the best earlier "
                               "version that loads" if current else "no model to serve")
                logger.error("refusing model version %s: %s; %s", row.version, exc, serving)
                return self._serve_instead_of(row)
            self.refused = None
            self._loaded = LoadedModel.build(row, model, metadata)
            logger.info("serving model version %s", row.version)
            return self._loaded

    def _load_fallback(self, active):
        """Load a version other than `active` that loads; None if none does.

        The newest row is often the wrong one: a fine-tune the gate refused, or
        a version an operator rolled back from. Tried in order: `active`'s
        parent (what it was fine-tuned from, usually what served before it);
        versions that were active before, most recently activated first; the
        shipped model and versions `finetune` activated before activations were
        timed, newest first; only then any other, newest first.
        """
        return self._load_first(fallback_candidates(active))

    def _load_first(self, candidates):
        for row in candidates:
            try:
                model, metadata = versions.load_version(row)
            except CheckpointError as exc:
                logger.warning("fallback model version %s cannot be loaded either: %s",
                               row.version, exc)
                continue
            self._loaded = LoadedModel.build(row, model, metadata)
            return self._loaded
        return None

    def _serve_instead_of(self, row):
        if self._loaded is None:
            raise ModelUnavailable(f"the active model version {row.version} cannot be loaded")
        return self._loaded

    @property
    def current_version(self):
        return self._loaded.version if self._loaded else None

    # -- requests ------------------------------------------------------------

    def submit(self, image, with_activations=False, client=None):
        """Queue a (28, 28) float image in [0, 1]; return a Future.

        The future resolves to a Prediction, or to (Prediction, activations)
        when `with_activations` is true. `client` (any hashable: an address,
        a player) picks the request's lane in the round robin. Cancelling
        the future while it waits removes the request: it is not computed.
        """
        return self._queue_request(
            _Request(_checked_input(image), Future(), with_activations, client))

    def _queue_request(self, request):
        request.future.add_done_callback(lambda future: self._forget(request, future))
        self._ensure_worker()
        self._queue.put(request)
        return request.future

    def _submit_here(self, image, with_activations=False, client=None):
        """`submit` for a coroutine: an asyncio future of the running loop.

        A concurrent future wrapped for the loop (asyncio.wrap_future) cost
        a lock and a condition a request, and the worker woke the loop once
        for each request of its batch. An asyncio future is answered with
        the others of its batch, in one call on the loop (_settle):
        measured with ten coroutines and a thread answering them, 60 us of
        CPU a request against 16-22 us.
        """
        loop = asyncio.get_running_loop()
        return self._queue_request(
            _Request(_checked_input(image), loop.create_future(), with_activations, client,
                     loop))

    def _forget(self, request, future):
        if future.cancelled() and self._queue.discard(request):
            with self._lock_counts:
                self.requests_dropped += 1

    @property
    def waiting(self):
        """Requests queued for the worker, not yet taken."""
        return len(self._queue)

    def predict(self, image, timeout=30, client=None):
        """Blocking prediction, for synchronous code."""
        return self.submit(image, client=client).result(timeout=timeout)

    async def apredict(self, image, client=None):
        """Prediction for coroutines: the event loop never waits on torch.

        Cancelling the awaiting task (a client that went away) cancels the
        request: still queued, it is dropped without being computed.
        """
        return await self._submit_here(image, client=client)

    async def apredict_with_activations(self, image, client=None):
        return await self._submit_here(image, with_activations=True, client=client)

    def predict_with_activations(self, image, timeout=30, client=None):
        return self.submit(image, with_activations=True, client=client).result(timeout=timeout)

    # -- the worker ----------------------------------------------------------

    def _ensure_worker(self):
        if self._worker is not None and self._worker.is_alive():
            return
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._run, name="recognizer-inference", daemon=True
                )
                self._worker.start()

    def _run(self):
        import torch

        name_os_thread()
        # In the worker itself: OpenMP's thread count is a per-thread setting,
        # and a thread left at the default splits oneDNN's convolutions
        # differently (answers differing in the 7th digit from one thread to
        # the next).
        if settings.RECOGNIZER_TORCH_THREADS:
            torch.set_num_threads(settings.RECOGNIZER_TORCH_THREADS)
        while True:
            batch = self._queue.take(self.max_batch, self.batch_wait)
            # A caller that gave up between `take` and here costs nothing either.
            live = [r for r in batch if r.claim()]
            if len(live) < len(batch):
                with self._lock_counts:
                    self.requests_dropped += len(batch) - len(live)
            if not live:
                continue
            try:
                results = self._forward(live)
            except Exception as exc:  # deliver the failure to every caller
                if not isinstance(exc, ModelUnavailable):
                    logger.exception("inference failed")
                self._answer(live, [None] * len(live), exc)
                continue
            self._answer(live, results)

    @staticmethod
    def _answer(requests, results, error=None):
        """Each request's result (or `error`); the coroutines' of one event
        loop in one call on it."""
        by_loop = {}
        for request, result in zip(requests, results, strict=True):
            if request.loop is None:
                if error is not None:
                    request.future.set_exception(error)
                else:
                    request.future.set_result(result)
            else:
                by_loop.setdefault(request.loop, []).append((request.future, result, error))
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:  # the loop is closed: nobody waits on it
                pass

    def _forward(self, batch):
        import torch

        from recognizer import calibration

        # The worker thread's own database connection lives as long as the
        # thread: drop it when it broke or outlived CONN_MAX_AGE, as Django
        # does for a request.
        close_old_connections()
        loaded = self.refresh()
        explained = [i for i, r in enumerate(batch) if r.with_activations]
        plain = [i for i, r in enumerate(batch) if not r.with_activations]
        probabilities = np.empty((len(batch), 10))
        activations = {}
        with torch.inference_mode():
            if plain:
                # The calibrated probabilities in one torch call (see
                # recognizer.frozen.freeze_calibrated); the rest is numpy's.
                inputs = torch.from_numpy(np.stack([batch[i].image for i in plain])[:, None])
                probabilities[plain] = loaded.answering(inputs).numpy()
            if explained:
                # Every layer's output: the eager network, which keeps them.
                inputs = torch.from_numpy(np.stack([batch[i].image for i in explained]))[:, None]
                eager_logits, activations = loaded.model.forward_with_activations(inputs)
                # The version's temperature (recognizer/calibration.py): the
                # probabilities the game and the API use are calibrated.
                probabilities[explained] = calibration.probabilities(
                    eager_logits, calibration.temperature_of(loaded.metadata)).numpy()
        self.batches_run += 1
        self.requests_served += len(batch)
        row_of = {index: row for row, index in enumerate(explained)}
        results = []
        for index, request in enumerate(batch):
            probs = probabilities[index]
            prediction = Prediction(int(probs.argmax()), probs.tolist(), loaded.version)
            if request.with_activations:
                acts = {name: value[row_of[index]].numpy().copy()
                        for name, value in activations.items()}
                results.append((prediction, acts))
            else:
                results.append(prediction)
        return results


_service = None
_service_lock = threading.Lock()


def get_service():
    """The process-wide service (created on first use)."""
    global _service
    if _service is None:
        with _service_lock:
            if _service is None:
                _service = InferenceService()
    return _service
