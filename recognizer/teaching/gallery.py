"""Data for the teaching pages: MNIST test digits, approved drawings, mistakes.

The active model's predictions on the 10,000 MNIST test digits are computed
once per model version (keyed by the weights' sha256) and kept in
settings.VAR_DIR, so only the first visitor after an activation waits for
them, and a restart costs nothing.
"""

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, Max

from recognizer import mnist_files, versions
from recognizer.atomic_files import atomic_writer
from recognizer.models import Drawing, DrawingLabelChange
from recognizer.teaching.memo import Memo

# torch and the network: imported where a model is used (recognizer/checkpoints.py).

logger = logging.getLogger(__name__)

_lock = threading.Lock()
# Separate from _lock: computing predictions takes seconds and must not block
# page views that only need the cached data.
_compute_lock = threading.Lock()
_mnist_test = None
_models = {}


class DataUnavailable(Exception):
    """The MNIST files or a usable model are missing; the message says which."""


def cache_dir():
    return Path(settings.VAR_DIR) / "teaching"


def mnist_limit():
    """How many MNIST test digits the pages use: all of them unless limited.

    settings.TEACHING_MNIST_LIMIT keeps the first N only: the predictions cost
    about a second per thousand digits on one slow core, which matters on
    small machines and in tests.
    """
    return settings.TEACHING_MNIST_LIMIT or None


def mnist_test():
    """(images uint8 (N, 28, 28), labels int64) from settings.MNIST_DATA_DIR; cached."""
    global _mnist_test
    key = (Path(settings.MNIST_DATA_DIR), mnist_limit())
    with _lock:
        if _mnist_test is None or _mnist_test[0] != key:
            try:
                # A page view never downloads: that is the trainer's job.
                images, labels = mnist_files.load_local_split("test", data_dir=key[0])
            except mnist_files.MnistError as exc:
                raise DataUnavailable(str(exc)) from exc
            _mnist_test = (key, images[:key[1]], labels[:key[1]])
        return _mnist_test[1], _mnist_test[2]


def _loaded(version):
    from recognizer import calibration

    with _lock:
        loaded = _models.get(version.sha256)
        if loaded is None:
            try:
                model, metadata = versions.load_version(version)
            except versions.CheckpointError as exc:
                raise DataUnavailable(str(exc)) from exc
            _models.clear()  # keep one: the active version changes rarely
            loaded = _models[version.sha256] = (model, calibration.temperature_of(metadata))
        return loaded


def model_for(version):
    """The weights of a ModelVersion row, loaded once per process."""
    return _loaded(version)[0]


def temperature_for(version):
    """The version's calibration temperature (recognizer/calibration.py)."""
    return _loaded(version)[1]


def predict(model, images, batch_size=500, temperature=1.0):
    """Probabilities (N, 10) float32 for uint8 images (N, 28, 28), at `temperature`."""
    import torch

    from recognizer import calibration

    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            # A copy: the MNIST arrays are read-only views of the IDX files.
            batch = torch.tensor(images[start:start + batch_size])
            logits = model(batch[:, None].float().div_(255.0))
            chunks.append(calibration.probabilities(logits, temperature).numpy())
    if not chunks:
        return np.zeros((0, 10), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def predictions_path(version, count):
    return cache_dir() / f"mnist-test-{version.sha256[:16]}-{count}.npy"


def mnist_test_probabilities(version):
    """The version's probabilities (N, 10) on MNIST test, computed once and cached."""
    images, _ = mnist_test()
    path = predictions_path(version, len(images))
    try:
        cached = np.load(path)
        if cached.shape == (len(images), 10):
            return cached
    except (OSError, ValueError):
        pass  # absent or damaged: compute it again
    with _compute_lock:
        if path.exists():
            # Another request computed it while this one waited for the lock.
            try:
                return np.load(path)
            except (OSError, ValueError):
                pass
        logger.info("computing MNIST test predictions of %s", version.version)
        probabilities = predict(model_for(version), images,
                                temperature=temperature_for(version))
        with atomic_writer(path) as handle:
            np.save(handle, probabilities)
        return probabilities


# The first visit of the data page after a new model ran the 10,000 test
# digits through it inside the request: 11-20 s of a blank page. Now the
# computation runs here, one at a time, and the page says it is preparing
# the numbers and reloads itself until they are there.
predictions_cache = Memo(2, workers=1, name="teaching-predictions")


# A failed computation, by key, until one visit has said so: that visit
# shows the error and stops reloading; the visit after it tries again
# (the Memo forgets failures), so a restored file heals the page.
_failed_predictions = {}


def _predictions_in_background(version, key):
    try:
        return mnist_test_probabilities(version)
    except Exception as exc:
        _failed_predictions[key] = exc
        raise
    finally:
        connection.close()  # this pool's own thread: give its connection back


def predictions_ready(version):
    """Whether the version's MNIST test probabilities are ready; if not, start them.

    Cheap once they are (a file's existence); raises DataUnavailable when the
    MNIST files are missing or the computation failed for that reason.
    """
    images, _ = mnist_test()
    if predictions_path(version, len(images)).exists():
        return True
    key = (version.pk, version.sha256, len(images))
    failure = _failed_predictions.pop(key, None)
    if failure is not None:
        raise failure
    future = predictions_cache.get(key, lambda: _predictions_in_background(version, key))
    if not future.done():
        return False
    future.result()  # its exception, if it failed
    return True


@dataclass
class Mistake:
    index: int
    label: int
    guess: int
    confidence: float
    pixels: np.ndarray


def mistakes(version, digit=None, limit=48):
    """MNIST test digits the version gets wrong, surest wrong answers first.

    Returns (the mistakes shown, the number of mistakes per true digit, how
    many test digits were looked at).
    """
    images, labels = mnist_test()
    probabilities = mnist_test_probabilities(version)
    guesses = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(guesses != labels)
    per_class = np.bincount(labels[wrong], minlength=10).tolist()
    if digit is not None:
        wrong = wrong[labels[wrong] == digit]
    confidence = probabilities[wrong, guesses[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:limit]
    shown = [
        Mistake(int(i), int(labels[i]), int(guesses[i]), float(probabilities[i, guesses[i]]),
                images[i])
        for i in order
    ]
    return shown, per_class, len(labels)


def mnist_digits(digit, page=1, per_page=100):
    """One page of the MNIST test digits of a class: (images, indices, total)."""
    images, labels = mnist_test()
    indices = np.flatnonzero(labels == digit)
    start = (page - 1) * per_page
    chosen = indices[start:start + per_page]
    return images[chosen], chosen, len(indices)


def approved_drawings(digit, limit=100):
    """The newest approved player drawings of a class: (images uint8, total)."""
    rows = Drawing.objects.filter(status=Drawing.Status.APPROVED, label=digit)
    total = rows.count()
    images = [
        np.frombuffer(bytes(data), dtype=np.uint8).reshape(28, 28)
        for data in rows.values_list("input_image", flat=True)[:limit]
        if data is not None and len(bytes(data)) == 784
    ]
    return (np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)), total


def approved_inputs():
    """(labels, uint8 images (N, 28, 28)) of every approved player drawing."""
    rows = Drawing.objects.filter(status=Drawing.Status.APPROVED).order_by("id")
    labels, images = [], []
    for label, data in rows.values_list("label", "input_image"):
        data = bytes(data) if data is not None else b""
        if len(data) == 784:
            labels.append(label)
            images.append(np.frombuffer(data, dtype=np.uint8).reshape(28, 28))
    if not images:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 28, 28), dtype=np.uint8)
    return np.asarray(labels, dtype=np.int64), np.stack(images)


def accuracy_on(version, labels, images):
    """The version's accuracy on labelled uint8 images, or None if there are none."""
    if len(labels) == 0:
        return None
    return accuracy_of(labels, predict(model_for(version), images).argmax(axis=1))


def accuracy_of(labels, guesses):
    """Overall and per-class accuracy of `guesses`, or None without drawings."""
    if len(labels) == 0:
        return None
    correct = guesses == labels
    per_class = [
        float(correct[labels == d].mean()) if (labels == d).any() else None for d in range(10)
    ]
    return {"count": int(len(labels)), "accuracy": float(correct.mean()), "per_class": per_class}


# The accuracy on the approved drawings, by (model weights, approved_stamp()).
# Recomputing it loads every approved drawing and runs the model on them: 1.5 s
# with 2,000 and 22 s with 20,000, once per anonymous view before this cache.
# Now once per model version and change of the approved set, by one worker
# (30 learners opening the page together wait for the same computation).
collected_cache = Memo(4, workers=1, name="teaching-collected")


def approved_stamp():
    """A value that changes whenever the approved set or its labels change.

    Approving stamps reviewed_at (review.set_status), un-approving or deleting
    lowers the count, as does adding an approved drawing raise it, and
    relabelling (review.relabel) writes a DrawingLabelChange. Each part is
    read from an index (status + reviewed_at, the primary key), so the key
    costs the same however many drawings there are; summing the labels too
    (to catch an edit that bypasses review.relabel) scanned the table, 16 ms
    with 20,000 approved on SQLite, most of a view's time.
    """
    approved = Drawing.objects.filter(status=Drawing.Status.APPROVED).aggregate(
        count=Count("id"), reviewed=Max("reviewed_at"),
    )
    relabelled = DrawingLabelChange.objects.aggregate(last=Max("id"))["last"]
    reviewed = approved["reviewed"].isoformat() if approved["reviewed"] else None
    return (approved["count"], reviewed, relabelled)


# The version's guess for each approved drawing it has seen, by drawing id:
# a drawing's input never changes, so after an approval only the new
# drawings are run (the whole set took 25 s with 20,000 on a busy 2-core
# machine; one approval now costs a query of ids and labels and one
# forward pass). Kept for one version at a time.
_guesses = {"version": None, "by_id": {}}
IMAGE_BATCH = 2000


def _approved_guesses(version):
    """(labels, guesses) of every approved drawing with a valid input, by id."""
    key = (version.pk, version.sha256)
    if _guesses["version"] != key:
        _guesses.update(version=key, by_id={})
    known = _guesses["by_id"]
    rows = list(Drawing.objects.filter(status=Drawing.Status.APPROVED)
                .order_by("id").values_list("id", "label"))
    missing = [pk for pk, _ in rows if pk not in known]
    for start in range(0, len(missing), IMAGE_BATCH):
        ids, images = [], []
        chunk = Drawing.objects.filter(pk__in=missing[start:start + IMAGE_BATCH])
        for pk, data in chunk.values_list("id", "input_image"):
            data = bytes(data) if data is not None else b""
            if len(data) == 784:
                ids.append(pk)
                images.append(np.frombuffer(data, dtype=np.uint8).reshape(28, 28))
            else:
                known[pk] = None  # no usable input: left out, as before
        if images:
            guesses = predict(model_for(version), np.stack(images)).argmax(axis=1)
            known.update(zip(ids, (int(g) for g in guesses), strict=True))
    kept = [(label, known[pk]) for pk, label in rows if known.get(pk) is not None]
    labels = np.asarray([label for label, _ in kept], dtype=np.int64)
    guesses = np.asarray([guess for _, guess in kept], dtype=np.int64)
    return labels, guesses


def _collected_accuracy(version):
    try:
        labels, guesses = _approved_guesses(version)
    finally:
        # This runs in the cache's own thread: give its connection back.
        connection.close()
    return accuracy_of(labels, guesses)


def collected_accuracy(version, stamp):
    """accuracy_on every approved drawing, cached per (version, stamp); a Future."""
    key = (version.pk, version.sha256, stamp)
    return collected_cache.get(key, lambda: _collected_accuracy(version))
