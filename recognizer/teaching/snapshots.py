"""The lesson "How it learned": the network's snapshots while it learned, and
the model versions before and after the last fine-tune.

The snapshots are those `finetune --snapshots` wrote (trainer/snapshots.py),
shipped in recognizer/weights/snapshots/ (settings.TEACHING_SNAPSHOT_DIR
names another folder). Each is loaded once, cast back to float32, and kept
in memory: six of them take about 11 MB. `snapshot_probabilities` runs one
drawing through every snapshot in one go.

The versions are the active one and the one it was compared with when it was
made (its metrics' "baseline", else its parent): each gives its probabilities
for the drawing at its own temperature, as the site serves it.

A snapshot file that is missing or cannot be read raises SnapshotUnavailable,
whose message says which snapshot and what is wrong, without the server's
paths.

`cached_answer` is what POST /learn/api/snapshots sends for one input, kept
per (input, the two versions' weights, the snapshot files' sizes and times)
like lesson 2's attention maps: a learner scrubbing through the run, or
opening the same drawing again, costs no forward pass.
"""

import asyncio
import io
import json
import shlex
import threading
from pathlib import Path

from django.conf import settings

from recognizer import versions
from recognizer.metrics_display import percent
from recognizer.models import ModelVersion
from recognizer.teaching import unavailable
from recognizer.teaching.explain import input_key
from recognizer.teaching.memo import WAITING_COMPUTATIONS, Memo

# torch and the network: imported where a model is used (recognizer/checkpoints.py).

MANIFEST_NAME = "snapshots.json"


class SnapshotUnavailable(Exception):
    """The snapshots cannot be shown; the message is for the visitor."""


def snapshot_dir():
    chosen = getattr(settings, "TEACHING_SNAPSHOT_DIR", None)
    return Path(chosen) if chosen else versions.BUILTIN_DIR / "snapshots"


_lock = threading.Lock()
# {(folder, file name, size, mtime): model}: a file replaced on disk is read again.
_models = {}
# {(folder, size, mtime): manifest}
_manifests = {}


def _stamp(path):
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def manifest():
    """The snapshots' manifest: the run's command, seed and data, and the snapshots in order."""
    path = snapshot_dir() / MANIFEST_NAME
    try:
        key = (str(path), *_stamp(path))
    except FileNotFoundError:
        raise SnapshotUnavailable(
            "The training snapshots are not installed on this server.") from None
    with _lock:
        if key not in _manifests:
            try:
                loaded = json.loads(path.read_text())
                entries = loaded["snapshots"]
                if not isinstance(entries, list) or not entries:
                    raise ValueError("it lists no snapshots")
                for entry in entries:
                    if not isinstance(entry.get("file"), str) or not isinstance(
                            entry.get("step"), int):
                        raise ValueError("a snapshot has no file or step")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise SnapshotUnavailable(
                    f"The list of training snapshots cannot be read ({exc}).") from None
            _manifests.clear()
            _manifests[key] = loaded
        return _manifests[key]


def _load(entry):
    """The float32 network of one manifest entry, in eval mode."""
    import torch

    from recognizer.network import ARCHITECTURE, build_model

    name = Path(entry["file"]).name
    label = f"the snapshot after {entry['step']} steps ({name})"
    path = snapshot_dir() / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotUnavailable(f"{label[0].upper()}{label[1:]} is missing.") from None
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("architecture") != ARCHITECTURE:
            raise ValueError(f"it does not hold a {ARCHITECTURE} network")
        model = build_model()
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in payload["state_dict"].items()}
        model.load_state_dict(state)
    except Exception as exc:  # torch raises many kinds for a damaged file
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise SnapshotUnavailable(
            f"{label[0].upper()}{label[1:]} cannot be read: {reason}") from None
    model.eval()
    return model


def _file_key(entry):
    """(path, size, mtime) of a manifest entry's file; SnapshotUnavailable if it is missing."""
    path = snapshot_dir() / Path(entry["file"]).name
    try:
        return (str(path), *_stamp(path))
    except FileNotFoundError:
        raise SnapshotUnavailable(
            f"The snapshot after {entry['step']} steps ({path.name}) is missing.") from None


def files_stamp():
    """The manifest's and every snapshot file's (path, size, mtime): another
    value as soon as any of them is replaced, added or removed."""
    path = snapshot_dir() / MANIFEST_NAME
    try:
        manifest_key = (str(path), *_stamp(path))
    except FileNotFoundError:
        raise SnapshotUnavailable(
            "The training snapshots are not installed on this server.") from None
    return (manifest_key, *(_file_key(entry) for entry in manifest()["snapshots"]))


def snapshot_model(entry):
    """One snapshot's network, loaded on first use and kept."""
    key = _file_key(entry)
    with _lock:
        model = _models.get(key)
        if model is None:
            model = _load(entry)
            # A file replaced on disk: its old network goes.
            for stale in [k for k in _models if k[0] == key[0]]:
                del _models[stale]
            _models[key] = model
        return model


def snapshot_models():
    """[(manifest entry, network)] of every snapshot, in training order."""
    return [(entry, snapshot_model(entry)) for entry in manifest()["snapshots"]]


def snapshot_probabilities(image):
    """Each snapshot's ten probabilities (T = 1: snapshots are not calibrated) for a
    28x28 input in 0..1, as lists of floats, in training order."""
    import torch

    from recognizer import calibration

    batch = torch.as_tensor(image, dtype=torch.float32).reshape(1, 1, 28, 28)
    answers = []
    with torch.inference_mode():
        for entry, model in snapshot_models():
            probabilities = calibration.probabilities(model(batch))[0]
            answers.append({"step": entry["step"],
                            "probabilities": [round(float(p), 7) for p in probabilities]})
    return answers


def conv1_filters(model):
    """conv1's 32 filters: each its 3x3 weights, row by row, rounded to 4 decimals."""
    weights = model.conv1[0].weight.detach().float().reshape(32, 9)
    return [[round(float(w), 4) for w in row] for row in weights]


def scrubber():
    """What the page's scrubber shows: the run and, for each snapshot, its numbers and filters."""
    loaded = manifest()
    data = loaded.get("data") or {}
    entries = []
    for entry, model in snapshot_models():
        entries.append({
            "step": entry["step"], "epoch": entry.get("epoch"),
            "epoch_end": entry.get("epoch_end"),
            "train_loss": entry.get("train_loss"), "test_loss": entry.get("test_loss"),
            "test_accuracy": entry.get("test_accuracy"),
            "test_accuracy_text": percent(entry.get("test_accuracy"), 1),
            "size_bytes": entry.get("size_bytes"),
            "filters": conv1_filters(model),
        })
    batch_size = loaded.get("batch_size") or 0
    train_total = data.get("train_total") or 0
    return {
        "command": public_command(loaded.get("command")), "seed": loaded.get("seed"),
        "epochs": loaded.get("epochs"), "batch_size": batch_size,
        "train_total": train_total, "train_total_text": f"{train_total:,}",
        "mnist_train": data.get("mnist_train"),
        "canvas_train": data.get("canvas_train"), "styles_train": data.get("styles_train"),
        "steps_per_epoch": -(-train_total // batch_size) if batch_size else None,
        "quick_test": (loaded.get("quick_test") or {}).get("first"),
        "total_bytes": sum(e["size_bytes"] or 0 for e in entries),
        "snapshots": entries,
    }


# -- version N and N+1 ---------------------------------------------------------------

# Options of the recorded command whose values are places on the machine
# that made the snapshots: the page shows the command without them.
PATH_OPTIONS = ("--data-dir", "--output", "--snapshots")


def public_command(command):
    """The recorded training command as the public page shows it: every
    option but those naming files or folders (an operator's paths stay off
    the page)."""
    if not command:
        return command
    words, shown = shlex.split(command), []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in PATH_OPTIONS:
            skip = True
        elif not word.startswith(tuple(f"{option}=" for option in PATH_OPTIONS)):
            shown.append(word)
    return shlex.join(shown)


_versions = {}  # (version, sha256) -> (model, temperature), oldest first
VERSIONS_KEPT = 4


def version_pair():
    """(previous row or None, active row or None): the active version and the one it
    was measured against when it was made (else the one it started from)."""
    active = versions.active_version()
    if active is None:
        return None, None
    baseline = (active.metrics or {}).get("baseline") or {}
    previous = None
    if baseline.get("version"):
        previous = ModelVersion.objects.filter(version=baseline["version"]).first()
    if previous is None and active.parent_id:
        previous = active.parent
    return previous, active


def version_count():
    return ModelVersion.objects.count()


def version_model(row):
    """(model, temperature) of a version, loaded (and checked) once; raises CheckpointError."""
    from recognizer import calibration

    key = (row.version, row.sha256)
    with _lock:
        if key not in _versions:
            model, metadata = versions.load_version(row)
            _versions[key] = (model, calibration.temperature_of(metadata))
            # The lesson shows two versions; older ones (activations since)
            # are dropped rather than kept for the life of the process.
            while len(_versions) > VERSIONS_KEPT:
                del _versions[next(iter(_versions))]
        return _versions[key]


def version_probabilities(rows, image):
    """{version name: ten probabilities at its temperature} for each row in `rows`."""
    import torch

    from recognizer import calibration

    batch = torch.as_tensor(image, dtype=torch.float32).reshape(1, 1, 28, 28)
    answers = {}
    with torch.inference_mode():
        for row in rows:
            model, temperature = version_model(row)
            probabilities = calibration.probabilities(model(batch), temperature)[0]
            answers[row.version] = [round(float(p), 7) for p in probabilities]
    return answers


# -- the endpoint's answer, cached ---------------------------------------------------

# Answers by (input, versions, snapshot files). One answer is 8 x 10
# probabilities, about 2 kB of JSON (under 10 kB as Python objects): 256 of
# them hold at most 2.5 MB. One worker: the eight forward passes of an answer
# (about 8 ms) already use the cores through PyTorch.
ANSWER_CACHE_SIZE = 256
answer_cache = Memo(ANSWER_CACHE_SIZE, workers=1, name="teaching-snapshots",
                    max_waiting=WAITING_COMPUTATIONS)


def answer(image, previous, active):
    """Every snapshot's probabilities and both versions' for one 28x28 input. Blocking."""
    answers = snapshot_probabilities(image)
    rows = [row for row in (previous, active) if row is not None]
    try:
        probabilities = version_probabilities(rows, image)
    except versions.CheckpointError as exc:
        return {"snapshots": answers, "versions": [],
                "versions_error": unavailable.explained(
                    "The model versions cannot be run on this server right now.", exc,
                    "api_snapshots")}
    return {"snapshots": answers,
            "versions": [{"version": row.version, "role": role,
                          "probabilities": probabilities[row.version]}
                         for role, row in (("previous", previous), ("active", active))
                         if row is not None],
            "versions_error": None}


def _version_key(row):
    # The row and its weights: a file replaced under the same name is another model.
    return None if row is None else (row.pk, row.version, row.sha256)


async def cached_answer(image, previous, active):
    """`answer`, computed once per (input, the two versions, the snapshot files) while kept."""
    stamp = await asyncio.to_thread(files_stamp)
    key = (input_key(image), _version_key(previous), _version_key(active), stamp)
    future = answer_cache.get(key, lambda: answer(image, previous, active))
    # shield: a learner who leaves does not cancel what the others wait for.
    result = await asyncio.shield(asyncio.wrap_future(future))
    if result["versions_error"] is not None:
        # A version that could not be loaded may be mended without a new sha256.
        answer_cache.forget(key, future)
    return result


BEFORE_AFTER_SETS = (
    ("heldout_drawings", "held-out players' drawings (players never trained on)"),
    ("mnist_test", "MNIST test"),
    ("canvas", "MNIST test redrawn like the site's canvas"),
    ("styles", "handwriting styles from around the world"),
)


def before_after_rows(active):
    """The last fine-tune's accuracies before and after, from the active version's metrics."""
    if active is None:
        return []
    table = (active.metrics or {}).get("before_after") or {}
    rows = []
    for key, label in BEFORE_AFTER_SETS:
        row = table.get(key)
        if not isinstance(row, dict) or row.get("after") is None:
            continue
        change = row.get("change_points")
        rows.append({"key": key, "label": label, "count": row.get("count"),
                     "before": row.get("before"), "after": row.get("after"),
                     "before_text": percent(row.get("before")),
                     "after_text": percent(row.get("after")),
                     "change_text": "—" if change is None else f"{change:+.2f} points"})
    return rows
