"""Model versions: where their files live, registering, activating, loading."""

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recognizer.checkpoints import CheckpointError, load_checkpoint, sha256_of
from recognizer.models import ModelVersion

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
BUILTIN_DIR = Path(__file__).resolve().parent / "weights"


def resolve_path(stored_path):
    if stored_path.startswith(BUILTIN_PREFIX):
        return BUILTIN_DIR / stored_path[len(BUILTIN_PREFIX):]
    path = Path(stored_path)
    return path if path.is_absolute() else Path(settings.RECOGNIZER_MODEL_DIR) / path


def new_version_name(sha256):
    return f"{timezone.now():%Y%m%d-%H%M%S}-{sha256[:8]}"


def register_version(path, *, parent=None, training=None, metrics=None, activate=False,
                     version=None, notes=""):
    """Record a model file that is already on disk as a new version."""
    path = Path(path)
    sha = sha256_of(path)
    model_dir = Path(settings.RECOGNIZER_MODEL_DIR).resolve()
    try:
        stored = str(path.resolve().relative_to(model_dir))
    except ValueError:
        stored = str(path.resolve())
    with transaction.atomic():
        row = ModelVersion.objects.create(
            version=version or new_version_name(sha),
            parent=parent,
            path=stored,
            sha256=sha,
            size_bytes=path.stat().st_size,
            training=training or {},
            metrics=metrics or {},
            notes=notes,
        )
        if activate:
            activate_version(row)
    return row


def lock_versions():
    """Lock every version row until the transaction ends; return the active one.

    Must be called inside `transaction.atomic()`. Two activations that each
    only switch flags race on PostgreSQL: both clear the version active when
    their statement began, both set their own, and the second trips the
    one-active constraint (an IntegrityError, in 13 of 20 runs of 20 threads).
    Holding the row locks serialises them: the second waits for the first to
    commit, then sees (and clears) the version the first activated. All rows,
    not only the active one, so that the wait also happens when no version is
    active yet; there are tens of versions, not thousands. SQLite has no row
    locks, but its transactions start IMMEDIATE (settings), which serialises
    writers the same way.
    """
    list(ModelVersion.objects.select_for_update().order_by("pk").values_list("pk", flat=True))
    return ModelVersion.objects.filter(is_active=True).first()


def activate_version(version):
    """Make `version` the only active one. Every process picks it up shortly.

    Safe to call concurrently: exactly one version ends up active, the last
    one activated.
    """
    with transaction.atomic():
        lock_versions()
        ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        now = timezone.now()
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True, last_activated=now)
    version.is_active = True
    version.last_activated = now
    logger.info("model version %s activated", version.version)
    return version


def active_version():
    return ModelVersion.objects.filter(is_active=True).first()


def load_version(version):
    """Load and verify a version's weights; raises CheckpointError."""
    model, metadata = load_checkpoint(resolve_path(version.path), expected_sha256=version.sha256)
    return model, metadata


__all__ = [
    "CheckpointError", "activate_version", "active_version", "load_version", "lock_versions",
    "register_version", "resolve_path",
]
