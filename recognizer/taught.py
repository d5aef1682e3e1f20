"""Taught copies: a model version whose head learnt one learner's or one class's drawings.

The teach page (trainer/teach/) trains the dense layers of a private copy of
the served model on a learner's drawings; a class's teacher does the same with
the class's drawings of a game. What is kept of the copy is its head
(recognizer.network.HEAD_LAYERS: the dense layers) as a change from its base version, the rest
being the base's own convolutions (`pack_head`, `unpack_head`).

Who sees a copy: a session's copy answers only that browser session's
predictions on the teach page; a class's copy answers the guesses of that
class room's games (digitsite/game/scoring.py) and nobody else's. A copy is
kept for TEACH_COPY_HOURS, then never served again (every lookup compares
`expires_at` with now) and deleted (`purge_expired`: whenever a copy is
saved, and by `purge_old_data`). An owner has one copy: saving a new one
deletes its older ones. A copy keeps the convolutions of the version it was
taught from, also after another version is activated.

Predictions go through the copy's frozen network on a thread of their own
with one torch thread (`apredict`), calibrated with the base version's
temperature, as the inference service does for the base.
"""

import asyncio
import copy as copying
import hashlib
import io
import logging
import threading
from collections import OrderedDict
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from recognizer import class_copies, versions
from recognizer.inference import Prediction
from recognizer.models import TaughtCopy
from recognizer.thread_names import thread_pool

# torch and the network: imported where a model is used (recognizer/checkpoints.py).

logger = logging.getLogger(__name__)

# What a copy's predictions carry after its base version's name ("v3+taught");
# recognizer.collection stores such drawings under the base version.
TAUGHT_SUFFIX = "+taught"

SESSION = TaughtCopy.Owner.SESSION
CLASS = TaughtCopy.Owner.CLASS

# The stored head's layout; bump when `pack_head` changes.
HEAD_FORMAT = 1
# Copies whose frozen network a process keeps, newest use last. A frozen copy
# takes about 2 MB; a class of 40 students playing with its copy and a few
# learners predicting on the teach page at once fit.
LOADED_COPIES = 16
# Base versions kept loaded to rebuild copies from (the active one, and the
# one before an activation while older copies live on).
LOADED_BASES = 2


class CopyError(Exception):
    """A stored head that cannot be read or does not fit its base version."""


def session_owner(session_key):
    """The owner key of a browser session: a hash, never the key (a credential) itself."""
    if not session_key:
        raise ValueError("a copy needs a session")
    return hashlib.sha256(b"taught-copy:" + session_key.encode()).hexdigest()


def class_owner(code):
    return str(code).upper()


# -- the head as bytes ------------------------------------------------------------------


def pack_head(base, taught_model):
    """The taught model's head as bytes: its change from the base, compactly.

    The dense layer's weights (401,408 of the head's 402,698 numbers) are
    stored as their change from the base's, quantised to int8 with one scale
    per output row: 402 kB in all instead of 1.6 MB in float32. The
    quantisation moves a weight by at most 1/254 of its row's largest
    change; the copy is measured after this round trip (trainer/teach), so
    the numbers the page shows are those of the copy as served.
    """
    import torch

    before = base.state_dict()
    taught = taught_model.state_dict()
    delta = (taught["dense.weight"] - before["dense.weight"]).float()
    scale = delta.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    quantised = torch.round(delta / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    payload = {
        "format": HEAD_FORMAT,
        "dense.weight.delta": quantised,
        "dense.weight.scale": scale,
        "dense.bias": taught["dense.bias"].detach().clone(),
        "classifier.weight": taught["classifier.weight"].detach().clone(),
        "classifier.bias": taught["classifier.bias"].detach().clone(),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def unpack_head(base, data):
    """A copy of `base` (eval mode) with the head stored in `data`; CopyError if unusable."""
    import torch

    try:
        payload = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for damaged bytes
        raise CopyError(f"the stored head cannot be read: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != HEAD_FORMAT:
        raise CopyError("the stored head is not in a format this version reads")
    model = copying.deepcopy(base).eval()
    state = model.state_dict()
    try:
        delta = payload["dense.weight.delta"].float() * payload["dense.weight.scale"][:, None]
        update = {
            "dense.weight": state["dense.weight"] + delta,
            "dense.bias": payload["dense.bias"],
            "classifier.weight": payload["classifier.weight"],
            "classifier.bias": payload["classifier.bias"],
        }
        for name, value in update.items():
            if value.shape != state[name].shape:
                raise CopyError(f"the stored {name} has shape {tuple(value.shape)}, "
                                f"not {tuple(state[name].shape)}")
        model.load_state_dict({**state, **update})
    except (KeyError, RuntimeError, TypeError, AttributeError, IndexError) as exc:
        raise CopyError(f"the stored head does not fit the base version: {exc}") from exc
    return model


# -- saving, finding, expiring ---------------------------------------------------------


def save_copy(owner_kind, owner_key, base_version, head_state, summary, hours=None, now=None):
    """Store a new copy for its owner, deleting the owner's older copies and every
    expired one; return it."""
    now = now or timezone.now()
    hours = settings.TEACH_COPY_HOURS if hours is None else hours
    with transaction.atomic():
        TaughtCopy.objects.filter(owner_kind=owner_kind, owner_key=owner_key).delete()
        row = TaughtCopy.objects.create(
            owner_kind=owner_kind, owner_key=owner_key, base_version=base_version,
            head_state=bytes(head_state), expires_at=now + timedelta(hours=hours),
            summary=summary)
    purge_expired(now)
    return row


def latest_copy(owner_kind, owner_key, now=None):
    """The owner's copy if it has one that has not expired (head not loaded), else None."""
    now = now or timezone.now()
    return (TaughtCopy.objects.filter(owner_kind=owner_kind, owner_key=owner_key,
                                      expires_at__gt=now)
            .defer("head_state").select_related("base_version").first())


def purge_expired(now=None):
    """Delete every expired copy; return how many."""
    now = now or timezone.now()
    deleted, _ = TaughtCopy.objects.filter(expires_at__lte=now).delete()
    if deleted:
        with _cache_lock:
            cached = list(_copies)
        live = set(TaughtCopy.objects.filter(pk__in=[pk for pk, _ in cached]).values_list(
            "pk", "created"))
        with _cache_lock:
            for key in cached:
                if key not in live:
                    _copies.pop(key, None)
    return deleted


_class_lookups = {}  # class owner key -> (its token when looked up, copy or None)


def class_copy(code):
    """The class room `code`'s copy, or None.

    Called for every guess of a class room (on the game's database threads):
    the answer is kept until a copy of the class is saved or deleted, in this
    process or another (recognizer/class_copies.py), or the copy expires.
    A guess costs one cache read; the database is asked after a change.
    """
    key = class_owner(code)
    current = class_copies.token(key)  # read first: a change after it is seen next time
    found = _class_lookups.get(key)
    if found is not None and found[0] == current:
        copy = found[1]
        if copy is None or copy.expires_at > timezone.now():
            return copy
    copy = latest_copy(CLASS, key)
    _class_lookups[key] = (current, copy)
    if len(_class_lookups) > 4096:  # rooms come and go; the table stays small
        _class_lookups.clear()
    return copy


# -- predicting --------------------------------------------------------------------------

_cache_lock = threading.Lock()
# (copy pk, created) -> LoadedCopy: a test database reuses ids after a rollback.
_copies = OrderedDict()
_bases = OrderedDict()  # (version pk, sha256) -> (model, temperature)


class LoadedCopy:
    """A copy's network, ready to answer: eager (for tests) and frozen (serving)."""

    def __init__(self, copy, model, temperature):
        from recognizer import frozen

        self.key = cache_key(copy)
        self.name = copy_name(copy)
        self.model = model
        self.temperature = temperature
        self.serving = frozen.freeze(model)


def cache_key(copy):
    return (copy.pk, copy.created)


def copy_name(copy):
    """The name predictions of a copy carry, in place of a version's name.

    The base's name is cut, not the suffix, so that a drawing stored with it
    finds the base (recognizer.collection.store): a name over 57 characters
    (64, the field's length, less the suffix) is then stored with no version.
    """
    base = copy.base_version.version[:64 - len(TAUGHT_SUFFIX)]
    return f"{base}{TAUGHT_SUFFIX}"


def base_model(version):
    """(eager model, temperature) of a version, loaded once per process (CheckpointError)."""
    from recognizer import calibration

    key = (version.pk, version.sha256)
    with _cache_lock:
        if key in _bases:
            _bases.move_to_end(key)
            return _bases[key]
    model, metadata = versions.load_version(version)
    loaded = (model, calibration.temperature_of(metadata))
    with _cache_lock:
        _bases[key] = loaded
        while len(_bases) > LOADED_BASES:
            _bases.popitem(last=False)
    return loaded


def load_copy(copy):
    """The LoadedCopy of `copy` (a TaughtCopy), from this process's cache or built.

    Raises CopyError when its head or its base version cannot be loaded.
    """
    key = cache_key(copy)
    with _cache_lock:
        if key in _copies:
            _copies.move_to_end(key)
            return _copies[key]
    try:
        base, temperature = base_model(copy.base_version)
    except versions.CheckpointError as exc:
        raise CopyError(f"the base version {copy.base_version.version} cannot be loaded: "
                        f"{exc}") from exc
    head = TaughtCopy.objects.filter(pk=copy.pk).values_list("head_state", flat=True).first()
    if head is None:
        raise CopyError("the copy was deleted")
    loaded = LoadedCopy(copy, unpack_head(base, head), temperature)
    with _cache_lock:
        _copies[key] = loaded
        while len(_copies) > LOADED_COPIES:
            _copies.popitem(last=False)
    return loaded


def probabilities_with_copy(copy, inputs):
    """Calibrated probabilities (N, 10) of `copy` for inputs (N, 28, 28) in [0, 1]."""
    import torch

    from recognizer import calibration

    loaded = copy if isinstance(copy, LoadedCopy) else load_copy(copy)
    batch = torch.from_numpy(np.asarray(inputs, dtype=np.float32).reshape(-1, 1, 28, 28))
    with torch.inference_mode():
        logits = loaded.serving(batch)
        return calibration.probabilities(logits, loaded.temperature).numpy()


def _predict(copy, image):
    # This thread's own database connection: dropped when broken or too old,
    # as Django does around a request.
    close_old_connections()
    loaded = load_copy(copy)
    probabilities = probabilities_with_copy(loaded, np.asarray(image)[None])[0]
    return Prediction(int(probabilities.argmax()), [float(p) for p in probabilities],
                      loaded.name)


def _thread_setup():
    # As the inference service's worker: one torch thread, set in the thread itself.
    import torch

    if settings.RECOGNIZER_TORCH_THREADS:
        torch.set_num_threads(settings.RECOGNIZER_TORCH_THREADS)


_executor = None
_executor_lock = threading.Lock()


def _get_executor():
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = thread_pool(1, "taught-copies", initializer=_thread_setup)
        return _executor


def predict(copy, image):
    """The copy's Prediction for one (28, 28) input, computed on the copies' thread."""
    return _get_executor().submit(_predict, copy, image).result()


async def apredict(copy, image):
    """`predict` for coroutines: the event loop never waits on torch or the database."""
    return await asyncio.wrap_future(_get_executor().submit(_predict, copy, image))
