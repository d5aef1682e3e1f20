"""Model versions in the inference service, and the shipped model's registration."""

import importlib
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from django.apps import apps as django_apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from recognizer.checkpoints import load_checkpoint, save_checkpoint, sha256_of
from recognizer.inference import InferenceService
from recognizer.models import ModelVersion
from recognizer.network import build_model
from recognizer.versions import BUILTIN_DIR, activate_version, active_version, register_version
from tests.support import register_random_model

shipped_migration = importlib.import_module(
    "recognizer.migrations.0002_register_shipped_model"
)
styles_migration = importlib.import_module("recognizer.migrations.0005_ship_styles_model")
MANIFEST = BUILTIN_DIR / "manifest.json"
# The first shipped model: no longer the one `migrate` activates, but kept,
# since existing databases have it registered.
FIRST_MANIFEST = BUILTIN_DIR / "digitcnn-v1-seed1.manifest.json"
FIRST_SHA256 = "e1cceaab452403f364f8e5f42d0edf30df18db92beef1db1931698a2f0db1a0a"
SHIPPED_SHA256 = "454df92397e92fb900730c88e4d4dddde6918225ff7d5dbefe2f97281c440c18"


def digit_like_input():
    image = np.zeros((28, 28), dtype=np.float32)
    image[6:22, 13:16] = 1.0  # a "1"
    return image


@pytest.fixture
def two_versions(model_dir, transactional_db):
    ModelVersion.objects.all().delete()
    first = register_random_model(model_dir, seed=1, activate=True, version="first")
    second = register_random_model(model_dir, seed=2, activate=False, version="second")
    return first, second


@pytest.mark.django_db(transaction=True)
def test_switching_versions_reaches_the_service(two_versions):
    first, second = two_versions
    service = InferenceService(reload_seconds=3600)
    assert service.refresh(force=True).version == "first"
    before = service.predict(digit_like_input())
    assert before.version == "first"

    activate_version(second)
    # Without force the service keeps its model until the reload interval ends.
    assert service.refresh().version == "first"
    assert service.refresh(force=True).version == "second"
    after = service.predict(digit_like_input())
    assert after.version == "second"
    # Two differently seeded networks: different outputs for the same drawing.
    assert not np.allclose(before.probabilities, after.probabilities)
    assert sum(after.probabilities) == pytest.approx(1.0)


@pytest.mark.django_db(transaction=True)
def test_a_file_failing_its_checksum_is_refused(two_versions, model_dir, caplog):
    first, _ = two_versions
    service = InferenceService(reload_seconds=3600)
    service.refresh(force=True)
    expected = service.predict(digit_like_input()).probabilities

    tampered = register_random_model(model_dir, seed=3, activate=False, version="tampered")
    # A complete, loadable checkpoint, but not the one that was registered.
    torch.manual_seed(4)
    save_checkpoint(build_model(), model_dir / "random-3.pt")
    activate_version(tampered)
    with caplog.at_level(logging.ERROR, logger="recognizer.inference"):
        loaded = service.refresh(force=True)
    assert loaded.version == "first"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "refusing model version tampered" in record.getMessage()
    assert "fails its checksum" in record.getMessage()
    assert "still serving first" in record.getMessage()
    prediction = service.predict(digit_like_input())
    assert prediction.version == "first" and prediction.probabilities == expected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_file_is_refused(two_versions, model_dir, caplog, damage):
    first, _ = two_versions
    service = InferenceService(reload_seconds=3600)
    service.refresh(force=True)

    path = model_dir / f"{damage}.pt"
    if damage == "garbage":
        path.write_bytes(b"not a torch file at all" * 100)
    else:
        torch.manual_seed(5)
        save_checkpoint(build_model(), path)
        path.write_bytes(path.read_bytes()[:50_000])
    # Registered as it is now, so the checksum matches and only loading fails.
    broken = register_version(path, version=damage, activate=True)
    assert active_version() == broken
    with caplog.at_level(logging.ERROR, logger="recognizer.inference"):
        assert service.refresh(force=True).version == "first"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"refusing model version {damage}" in m and "cannot be read" in m
               for m in messages), messages
    assert service.predict(digit_like_input()).version == "first"


# -- the shipped model ---------------------------------------------------------


def shipped_manifest():
    if not MANIFEST.is_file():
        pytest.fail(f"the shipped model's manifest {MANIFEST} is missing")
    return json.loads(MANIFEST.read_text())


def test_the_shipped_file_matches_its_manifest():
    manifest = shipped_manifest()
    assert manifest["file"] == "digitcnn-v2-styles-seed1.pt"
    assert manifest["sha256"] == SHIPPED_SHA256
    weights = BUILTIN_DIR / manifest["file"]
    assert weights.stat().st_size == manifest["size_bytes"] <= 2_000_000
    assert sha256_of(weights) == manifest["sha256"]
    model, metadata = load_checkpoint(weights, expected_sha256=manifest["sha256"])
    assert manifest["metrics"]["accuracy"] >= 0.99
    assert manifest["seed"] == manifest["training"]["seed"]
    assert "--from-scratch" in manifest["command"]
    # Calibrated: the temperature in the file is the one the manifest reports.
    assert metadata["temperature"] == manifest["training"]["temperature"] < 1.0


def test_the_first_shipped_file_is_kept_for_existing_databases():
    manifest = json.loads(FIRST_MANIFEST.read_text())
    weights = BUILTIN_DIR / manifest["file"]
    assert manifest["file"] == "digitcnn-v1-seed1.pt"
    assert manifest["sha256"] == sha256_of(weights) == FIRST_SHA256
    load_checkpoint(weights, expected_sha256=FIRST_SHA256)


def test_shipped_model_recognises_mnist(mnist_dir):
    from trainer import datasets
    from trainer.evaluation import evaluate

    manifest = shipped_manifest()
    model, _ = load_checkpoint(BUILTIN_DIR / manifest["file"], manifest["sha256"])
    data = datasets.mnist_split("test", mnist_dir, limit=2000)
    result = evaluate(model, data)
    assert result["accuracy"] >= 0.99
    # The first 2000 test digits are part of what the manifest measured.
    assert result["accuracy"] >= manifest["metrics"]["accuracy"] - 0.01


@pytest.mark.django_db
def test_migrate_registered_the_shipped_model():
    # A transactional test run before this one (another file, the same
    # worker) flushes what migrations wrote: re-run the two migrations'
    # functions (idempotent), as `migrate` runs them on a fresh database.
    shipped_migration.register_shipped_model(django_apps, None)
    styles_migration.ship_styles_model(django_apps, None)
    manifest = shipped_manifest()
    row = ModelVersion.objects.get(version=manifest["version"])
    assert row.path == f"builtin:{manifest['file']}"
    assert row.sha256 == manifest["sha256"]
    assert row.is_active
    # A fresh database also has the first shipped model, inactive (to roll back to).
    first = ModelVersion.objects.get(path=styles_migration.REPLACES)
    assert first.sha256 == FIRST_SHA256 and not first.is_active
    assert row.metrics["accuracy"] == manifest["metrics"]["accuracy"]
    service = InferenceService(reload_seconds=3600)
    assert service.refresh(force=True).version == manifest["version"]


@pytest.mark.django_db
def test_shipped_registration_is_idempotent_and_respects_an_active_version(model_dir):
    manifest = json.loads(shipped_migration.MANIFEST.read_text())
    ModelVersion.objects.all().delete()
    other = register_random_model(model_dir, seed=0, activate=True, version="mine")

    shipped_migration.register_shipped_model(django_apps, None)
    shipped_migration.register_shipped_model(django_apps, None)
    [row] = ModelVersion.objects.filter(version=manifest["version"])
    assert not row.is_active
    assert active_version() == other


@pytest.mark.django_db
def test_shipped_registration_without_a_usable_manifest_does_nothing(tmp_path):
    ModelVersion.objects.all().delete()
    shipped_migration.register_shipped_model(django_apps, None, tmp_path / "absent.json")
    damaged = tmp_path / "manifest.json"
    damaged.write_text("{not json")
    shipped_migration.register_shipped_model(django_apps, None, damaged)
    # A manifest naming a file that is not beside it.
    damaged.write_text(json.dumps({"file": "gone.pt", "sha256": "0" * 64, "version": "gone"}))
    shipped_migration.register_shipped_model(django_apps, None, damaged)
    assert ModelVersion.objects.count() == 0

    # The same manifest with its file present registers it, active.
    manifest = shipped_manifest()
    shutil.copy(MANIFEST, tmp_path / "manifest.json")
    shutil.copy(BUILTIN_DIR / manifest["file"], tmp_path / manifest["file"])
    shipped_migration.register_shipped_model(django_apps, None, tmp_path / "manifest.json")
    assert active_version().version == manifest["version"]


# -- the second shipped model taking over (migration 0005) ----------------------

BEFORE_STYLES = [("recognizer", "0004_review_groups")]
# Upgrades go to the latest migrations, 0005 among them: the site's own code
# (active_version, register_version, the inference service) uses the latest
# model, whose columns a database stopped at 0005 may not have.
UPGRADED = None


@pytest.fixture
def migrate_recognizer(transactional_db):
    """migrate_recognizer(targets) -> the app registry of that migration state.

    The database goes back to the latest migrations afterwards.
    """
    def migrate(targets):
        executor = MigrationExecutor(connection)
        if targets is UPGRADED:
            targets = executor.loader.graph.leaf_nodes()
        executor.migrate(targets)
        return MigrationExecutor(connection).loader.project_state(targets).apps

    yield migrate
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def as_before_the_styles_model(old_apps):
    """A database as the site left it before: only the first shipped model, active."""
    old_apps.get_model("recognizer", "ModelVersion").objects.all().delete()
    shipped_migration.register_shipped_model(old_apps, None)
    return old_apps.get_model("recognizer", "ModelVersion")


def test_upgrading_a_database_with_the_first_model_active_activates_the_new_one(
        migrate_recognizer):
    manifest = shipped_manifest()
    OldVersion = as_before_the_styles_model(migrate_recognizer(BEFORE_STYLES))
    [first] = OldVersion.objects.all()
    assert first.path == styles_migration.REPLACES and first.is_active

    migrate_recognizer(UPGRADED)
    active = active_version()
    assert active.version == manifest["version"]
    assert active.path == f"builtin:{manifest['file']}" and active.sha256 == SHIPPED_SHA256
    assert active.training["temperature"] == manifest["training"]["temperature"]
    assert ModelVersion.objects.get(pk=first.pk).is_active is False
    service = InferenceService(reload_seconds=3600)
    assert service.refresh(force=True).version == manifest["version"]

    # Migrating back hands activation back to the first model and keeps the row.
    OldVersion = migrate_recognizer(BEFORE_STYLES).get_model("recognizer", "ModelVersion")
    assert OldVersion.objects.get(is_active=True).pk == first.pk
    assert OldVersion.objects.filter(version=manifest["version"]).exists()


def test_upgrading_keeps_an_operators_own_active_version(migrate_recognizer, model_dir):
    """Hostile for an upgrade: the operator fine-tuned a version of their own and
    activated it; the shipped model must not take its place."""
    manifest = shipped_manifest()
    OldVersion = as_before_the_styles_model(migrate_recognizer(BEFORE_STYLES))
    # Registered and activated through the model of that time (the latest one
    # has columns this database does not have yet).
    from recognizer.checkpoints import save_checkpoint, sha256_of
    from recognizer.network import build_model

    path = model_dir / "mine.pt"
    save_checkpoint(build_model(), path, metadata={"trained": False})
    OldVersion.objects.update(is_active=False)
    OldVersion.objects.create(version="mine", path="mine.pt", sha256=sha256_of(path),
                              size_bytes=path.stat().st_size, is_active=True)

    migrate_recognizer(UPGRADED)
    mine = ModelVersion.objects.get(version="mine")
    assert active_version() == mine
    shipped = ModelVersion.objects.get(version=manifest["version"])
    assert not shipped.is_active and shipped.sha256 == SHIPPED_SHA256
    # Running it again changes nothing (no second row, still the operator's).
    styles_migration.ship_styles_model(django_apps, None)
    assert ModelVersion.objects.filter(version=manifest["version"]).count() == 1
    assert active_version() == mine


@pytest.mark.django_db
def test_the_styles_migration_ignores_unusable_or_other_manifests(tmp_path):
    """Tried: no manifest, broken JSON, a manifest of another file, and one whose
    file is not beside it: nothing is registered, the active version stays."""
    before = list(ModelVersion.objects.values_list("version", "is_active"))
    styles_migration.ship_styles_model(django_apps, None, tmp_path / "absent.json")
    damaged = tmp_path / "manifest.json"
    damaged.write_text("{not json")
    styles_migration.ship_styles_model(django_apps, None, damaged)
    manifest = shipped_manifest()
    damaged.write_text(json.dumps({**manifest, "file": "digitcnn-v3.pt", "version": "v3"}))
    shutil.copy(BUILTIN_DIR / manifest["file"], tmp_path / "digitcnn-v3.pt")
    styles_migration.ship_styles_model(django_apps, None, damaged)
    damaged.write_text(json.dumps({**manifest, "version": "elsewhere"}))
    styles_migration.ship_styles_model(django_apps, None, damaged)
    assert list(ModelVersion.objects.values_list("version", "is_active")) == before
