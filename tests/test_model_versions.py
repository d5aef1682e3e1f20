"""Model versions in the inference service, and the shipped model's registration."""

import importlib
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from django.apps import apps as django_apps

from recognizer.checkpoints import load_checkpoint, save_checkpoint, sha256_of
from recognizer.inference import InferenceService
from recognizer.models import ModelVersion
from recognizer.network import build_model
from recognizer.versions import BUILTIN_DIR, activate_version, active_version, register_version
from tests.support import register_random_model

shipped_migration = importlib.import_module(
    "recognizer.migrations.0002_register_shipped_model"
)
MANIFEST = BUILTIN_DIR / "manifest.json"


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
    weights = BUILTIN_DIR / manifest["file"]
    assert weights.stat().st_size == manifest["size_bytes"] <= 2_000_000
    assert sha256_of(weights) == manifest["sha256"]
    model, _ = load_checkpoint(weights, expected_sha256=manifest["sha256"])
    assert manifest["metrics"]["accuracy"] >= 0.99
    assert manifest["seed"] == manifest["training"]["seed"]
    assert "--from-scratch" in manifest["command"]


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
    manifest = shipped_manifest()
    row = ModelVersion.objects.get(version=manifest["version"])
    assert row.path == f"builtin:{manifest['file']}"
    assert row.sha256 == manifest["sha256"]
    assert row.is_active
    assert row.metrics["accuracy"] == manifest["metrics"]["accuracy"]
    service = InferenceService(reload_seconds=3600)
    assert service.refresh(force=True).version == manifest["version"]


@pytest.mark.django_db
def test_shipped_registration_is_idempotent_and_respects_an_active_version(model_dir):
    manifest = shipped_manifest()
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
