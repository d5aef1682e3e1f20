"""One teach step: examples in, a measured taught copy out.

`make_copy` trains the head of a copy of the base version on the training
part of the examples (trainer/head_only.py, the trainer's own loop), with
MNIST train digits replayed beside them when asked, stores the head
(recognizer.taught) and measures the base and the stored copy on the same
sets: the held-out examples and MNIST test digits. The copy is measured
after the round trip through its stored form, so the numbers are those of
the copy the site serves.

MNIST comes from the site's own files (settings.MNIST_DATA_DIR, never
downloaded here): without them a copy trains on the examples alone and
reports no MNIST numbers (`mnist` is null) rather than failing.
"""

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import close_old_connections

from recognizer import taught
from recognizer.mnist_files import MnistError, load_local_split
from recognizer.models import ModelVersion

# torch and the trainer's modules that import it: imported where they are
# used (recognizer/checkpoints.py).

logger = logging.getLogger(__name__)


@dataclass
class Work:
    """What one job trains: everything it needs, read before it waits in the queue."""

    owner_kind: str
    owner_key: str
    base_version_id: int
    inputs: np.ndarray  # (N, 28, 28) float32 in [0, 1]
    labels: list
    train_index: list
    held_index: list
    steps: int
    replay: bool
    seed: int


_mnist = {}
_mnist_lock = threading.Lock()


def mnist_split(split):
    """MNIST `split` as a DigitData from the site's files, or None without them."""
    from trainer.datasets import DigitData

    with _mnist_lock:
        if split not in _mnist:
            try:
                images, labels = load_local_split(split, settings.MNIST_DATA_DIR)
                _mnist[split] = DigitData.from_arrays(images, labels)
            except (MnistError, OSError) as exc:
                logger.warning("the teach page measures without MNIST %s: %s", split, exc)
                _mnist[split] = None
        return _mnist[split]


def _measured_sets(base, version):
    """(replay features or None, MNIST test features or None) of the base version."""
    from trainer import head_only

    key = (version.pk, version.sha256)
    replay = test = None
    train_data = mnist_split("train") if settings.TEACH_REPLAY_DIGITS else None
    if train_data is not None:
        replay = head_only.replay_features(base, key, train_data, settings.TEACH_REPLAY_DIGITS)
    test_data = mnist_split("test") if settings.TEACH_TEST_DIGITS else None
    if test_data is not None:
        test = head_only.test_features(base, key, test_data, settings.TEACH_TEST_DIGITS)
    return replay, test


def _accuracy(model, inputs, labels):
    import torch

    if not len(labels):
        return None
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.asarray(inputs, dtype=np.float32))[:, None])
        return round(float((logits.argmax(dim=1) == torch.as_tensor(labels)).float().mean()), 6)


def _score(count, before, after):
    return {"count": count, "before": before, "after": after}


def warm_up():
    """Do now what the first training of this process would do first.

    torch.optim imports torch._dynamo when the first optimizer is made (3 to
    6 s on the 2-core machine), and the served version's replayed and
    measured digits need their features (about 7 s of CPU). The worker
    does this as soon as its threads start, which the teach page's GET
    asks for: a learner draws for a minute before pressing Teach.
    """
    from recognizer import versions
    from trainer.training import import_optimizer_machinery

    import_optimizer_machinery()

    close_old_connections()
    version = versions.active_version()
    if version is not None:
        base, _ = taught.base_model(version)
        _measured_sets(base, version)


def make_copy(work, on_step=None, clock=time.perf_counter):
    """Train, store and measure the copy of `work`; return the job's result.

    {"held_out": {"count", "before", "after"}, "mnist": {...} or None,
    "trained_on", "seconds", "phases", "copy", "replay", "steps", "examples",
    "base", "head_bytes"}: accuracies are fractions; `phases` the seconds of
    loading the base and MNIST, training (features included) and measuring.
    `on_step(step, loss)` follows the training and may stop it by raising.
    Raises recognizer.versions.CheckpointError if the base cannot be loaded.
    """
    from trainer import head_only
    from trainer.datasets import DigitData

    started = clock()
    phases = {}

    def phase(name, since):
        now = clock()
        phases[name] = round(now - since, 3)
        return now

    version = ModelVersion.objects.get(pk=work.base_version_id)
    base, _ = taught.base_model(version)
    replay, test = _measured_sets(base, version)
    mark = phase("base_and_mnist", started)
    inputs = np.asarray(work.inputs, dtype=np.float32)
    labels = np.asarray(work.labels, dtype=np.int64)
    train = DigitData.from_arrays(inputs[work.train_index], labels[work.train_index])
    model = head_only.teach(base, train, work.steps, replay=replay if work.replay else None,
                            seed=work.seed, on_step=on_step)
    mark = phase("training", mark)
    head_state = taught.pack_head(base, model)
    served = taught.unpack_head(base, head_state)

    held_inputs, held_labels = inputs[work.held_index], labels[work.held_index]
    result = {
        "held_out": _score(len(held_labels), _accuracy(base, held_inputs, held_labels),
                           _accuracy(served, held_inputs, held_labels)),
        "mnist": None if test is None else _score(
            len(test), round(head_only.head_accuracy(base, test), 6),
            round(head_only.head_accuracy(served, test), 6)),
        "trained_on": _score(len(train), _accuracy(base, train.inputs()[:, 0], train.labels),
                             _accuracy(served, train.inputs()[:, 0], train.labels)),
        "replay": bool(work.replay and replay is not None),
        "steps": work.steps,
        "examples": len(labels),
        "base": version.version,
        "head_bytes": len(head_state),
    }
    phase("measuring", mark)
    result["seconds"] = round(clock() - started, 2)
    result["phases"] = phases
    row = taught.save_copy(work.owner_kind, work.owner_key, version, head_state, result)
    result["copy"] = str(row.pk)
    return result
