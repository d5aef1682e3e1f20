"""Model files: written atomically, verified by checksum, loaded safely.

A model file is a `torch.save` of a plain dict (architecture name, state dict,
metadata) loaded with `weights_only=True`, so a file cannot run code.
"""

import hashlib
import io
from pathlib import Path

from recognizer.atomic_files import write_atomically

# torch, the network and calibration are imported where a model is saved or
# loaded, not here: the admin imports this module (for CheckpointError) at
# every Django start, and with torch a `manage.py shell` took 3.8 s of CPU to
# start, against 1.6 s without (bench/bench_django_start.py; importing torch
# alone 2.4 s). The same holds for the modules the views import (the
# recognizer's service, the teaching and teach pages): `migrate` and `check`
# import every view through the URLs' system checks, and took 3.7 s of CPU
# with torch against 1.7 s without. tests/test_import_graph.py keeps
# django.setup() and `check` free of it.


class CheckpointError(Exception):
    """A model file that is missing, corrupt, or not what it claims to be."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(model, path, metadata=None):
    """Write the model to `path` atomically and return its sha256.

    A crash or Ctrl-C at any moment leaves either no file or a complete one.
    """
    import torch

    from recognizer.network import ARCHITECTURE

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"architecture": ARCHITECTURE, "state_dict": state, "metadata": metadata or {}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    write_atomically(path, data)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(path, expected_sha256=None):
    """Load a model from `path`; return (model in eval mode, metadata).

    Raises CheckpointError when the file is missing, its checksum differs from
    `expected_sha256`, or it does not hold this architecture's weights.
    """
    import torch

    from recognizer import calibration
    from recognizer.network import ARCHITECTURE, build_model

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    data = path.read_bytes()
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise CheckpointError(
                f"model file {path} fails its checksum: expected {expected_sha256[:12]}..., "
                f"got {actual[:12]}..."
            )
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a corrupt file
        raise CheckpointError(f"model file {path} cannot be read: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("architecture") != ARCHITECTURE:
        raise CheckpointError(f"model file {path} does not hold a {ARCHITECTURE} model")
    model = build_model()
    try:
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:
        raise CheckpointError(f"model file {path} has weights that do not fit: {exc}") from exc
    model.eval()
    metadata = payload.get("metadata", {})
    try:
        calibration.temperature_of(metadata)
    except ValueError as exc:
        raise CheckpointError(f"model file {path} has an unusable temperature: {exc}") from exc
    return model, metadata
