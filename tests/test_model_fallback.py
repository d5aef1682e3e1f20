"""A process that starts while the active model file is broken, and heals when it is restored.

Real model files in a temporary model folder, damaged the ways a disk or a
careless copy damages them: bytes flipped in the middle, the file cut short,
the file gone. Before, such a start-up answered 503 to every drawing, and
restoring the file changed nothing until another restart.
"""

import json
import logging

import pytest

from recognizer import inference
from recognizer.atomic_files import write_atomically
from recognizer.inference import InferenceService
from recognizer.models import ModelVersion
from tests.support import register_random_model

pytestmark = pytest.mark.django_db(transaction=True)

STROKES = {"width": 300, "height": 300,
           "strokes": [[[150, 40, 0], [150, 260, 300]]]}


def damage(path, how):
    good = path.read_bytes()
    if how == "corrupt bytes":
        middle = len(good) // 2
        write_atomically(path, good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 64])
                         + good[middle + 64:])
    elif how == "truncated":
        write_atomically(path, good[: len(good) // 3])
    else:
        path.unlink()
    return good


@pytest.fixture
def versions_on_disk(model_dir):
    """Oldest (good), a newer one whose file is broken too, and the active one, newest."""
    ModelVersion.objects.all().delete()
    oldest = register_random_model(model_dir, seed=1, activate=False, version="oldest")
    newer = register_random_model(model_dir, seed=2, activate=False, version="newer-broken")
    active = register_random_model(model_dir, seed=3, activate=True, version="active")
    (model_dir / newer.path).write_bytes(b"\x00" * 1000)
    return oldest, newer, active


@pytest.fixture
def service(monkeypatch):
    """A fresh process's service: nothing loaded yet (a start-up)."""
    fresh = InferenceService(reload_seconds=0)
    monkeypatch.setattr(inference, "_service", fresh)
    return fresh


def errors(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR and r.name == "recognizer.inference"]


@pytest.mark.parametrize("how", ["corrupt bytes", "truncated", "missing"])
def test_a_broken_active_file_at_start_falls_back_and_heals_when_restored(
        versions_on_disk, service, model_dir, client, caplog, how):
    oldest, newer, active = versions_on_disk
    path = model_dir / active.path
    good = damage(path, how)

    with caplog.at_level(logging.WARNING, logger="recognizer.inference"):
        # No version served before: the newest that loads serves, "newer-broken" skipped.
        assert service.refresh().version == "oldest"
        response = client.post("/api/recognize", json.dumps(STROKES),
                               content_type="application/json")
        assert response.status_code == 200, response.content
        assert response.json()["model"] == "oldest"
        health = client.get("/healthz")
        # Checked again at every refresh, but the unchanged file is not
        # reloaded and the refusal is logged once.
        for _ in range(3):
            assert service.refresh().version == "oldest"
    [error] = errors(caplog)
    assert "refusing model version active" in error
    assert "serving oldest instead, the best earlier version that loads" in error
    assert any("newer-broken cannot be loaded either" in r.getMessage()
               for r in caplog.records)

    assert health.status_code == 503
    model = health.json()["checks"]["model"]
    assert model["ok"] is False
    assert model["active"] == "active" and model["loaded"] == "oldest"
    assert model["fallback"] == "oldest"
    assert "version active" in model["error"]

    # Restored as an operator would, from a backup: the process heals
    # without a restart.
    write_atomically(path, good)
    assert service.refresh().version == "active"
    assert service.refused is None
    response = client.post("/api/recognize", json.dumps(STROKES),
                           content_type="application/json")
    assert response.json()["model"] == "active"
    health = client.get("/healthz")
    assert health.status_code == 200, health.content
    assert "fallback" not in health.json()["checks"]["model"]


def test_a_file_that_loads_but_was_registered_broken_falls_back(model_dir, service, caplog):
    """Registered truncated (its checksum matches), so only loading it fails."""
    ModelVersion.objects.all().delete()
    register_random_model(model_dir, seed=1, activate=False, version="good")
    path = model_dir / "cut.pt"
    good = (model_dir / "random-1.pt").read_bytes()
    path.write_bytes(good[:40_000])
    from recognizer.versions import register_version

    register_version(path, version="cut", activate=True)
    with caplog.at_level(logging.ERROR, logger="recognizer.inference"):
        assert service.refresh().version == "good"
    [error] = errors(caplog)
    assert "refusing model version cut" in error and "cannot be read" in error


def test_nothing_loadable_is_still_a_503_not_a_500(versions_on_disk, service, model_dir, client):
    oldest, _, active = versions_on_disk
    damage(model_dir / oldest.path, "truncated")
    damage(model_dir / active.path, "corrupt bytes")
    with pytest.raises(inference.ModelUnavailable):
        service.refresh()
    response = client.post("/api/recognize", json.dumps(STROKES),
                           content_type="application/json")
    assert response.status_code == 503
    assert client.get("/healthz").status_code == 503



def test_the_fallback_is_a_version_that_served_before_not_the_newest(model_dir, service,
                                                                     caplog):
    """Hostile history: "older" served, then "previous"; then a newer version was
    registered and never activated (a fine-tune the gate refused), then "active".
    With the active file broken, the version most recently active before it
    serves, not the newest row nor an older active one."""
    ModelVersion.objects.all().delete()
    register_random_model(model_dir, seed=4, activate=True, version="older")
    register_random_model(model_dir, seed=1, activate=True, version="previous")
    register_random_model(model_dir, seed=2, activate=False, version="refused-finetune")
    active = register_random_model(model_dir, seed=3, activate=True, version="active")
    damage(model_dir / active.path, "corrupt bytes")
    with caplog.at_level(logging.ERROR, logger="recognizer.inference"):
        assert service.refresh().version == "previous"
    [error] = errors(caplog)
    assert "serving previous instead" in error


def test_the_fallback_prefers_the_active_versions_parent(model_dir, service):
    """A fine-tune of "parent" activated, after "other" was activated over the
    parent and rolled back from: the parent, what the fine-tune was made from,
    serves, though "other" was activated more recently."""
    from recognizer.versions import activate_version, register_version

    ModelVersion.objects.all().delete()
    parent = register_random_model(model_dir, seed=1, activate=True, version="parent")
    register_random_model(model_dir, seed=3, activate=False, version="spare")
    child_path = model_dir / "child.pt"
    child_path.write_bytes((model_dir / "random-3.pt").read_bytes())
    register_random_model(model_dir, seed=2, activate=True, version="other")
    activate_version(parent)  # rolled back from "other"
    register_random_model(model_dir, seed=5, activate=True, version="newest")
    child = register_version(child_path, version="child", parent=parent, activate=True)
    assert child.parent_id == parent.pk
    damage(child_path, "truncated")
    assert service.refresh().version == "parent"


def test_while_the_database_is_away_the_loaded_model_still_answers(
        versions_on_disk, service, monkeypatch, caplog):
    """The database cannot be read when the service checks which version is
    active (every RECOGNIZER_RELOAD_SECONDS; here at every batch): the model
    in memory answers all the same, the outage is logged once, and its end
    once. Tried: each check failed its batch, an error for every drawing."""
    from django.db import OperationalError

    from recognizer import versions
    from recognizer.preprocessing import strokes_to_input

    image = strokes_to_input(STROKES["strokes"], STROKES["width"], STROKES["height"])
    before = service.predict(image)
    assert before.version == "active"
    real_active_version = versions.active_version
    reads = []

    def away():
        reads.append(1)
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(versions, "active_version", away)
    answers = [service.predict(image) for _ in range(3)]
    assert len(reads) == 3
    assert [a.version for a in answers] == ["active"] * 3
    assert [a.probabilities for a in answers] == [before.probabilities] * 3
    monkeypatch.setattr(versions, "active_version", real_active_version)
    assert service.predict(image).version == "active"
    logged = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records
              if r.name == "recognizer.inference" and r.levelno >= logging.WARNING]
    assert logged == [
        ("WARNING", "the active model version could not be read; still serving active "
                    "until it can", True),
        ("WARNING", "the active model version can be read again", False)]


def test_a_start_up_with_the_database_away_has_no_model_to_serve(service, monkeypatch):
    """With nothing loaded yet there is nothing to keep serving: the error
    goes to the caller (the API answers 503 for it, the game an error)."""
    from django.db import OperationalError

    from recognizer import versions

    def away():
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(versions, "active_version", away)
    with pytest.raises(OperationalError):
        service.refresh()
