"""The lesson "How it learned" and POST /learn/api/snapshots.

Each shipped snapshot's probabilities, as the endpoint sends them, equal a
direct forward pass of that snapshot's file; a missing or damaged snapshot
gives a message that names it (a 503 from the API, a sentence on the page),
not a server error; the versions before and after the last fine-tune answer
with their own weights and temperatures, and a lone version says so.
Answers are kept per input: the same drawing again runs no network, another
drawing, another active version or a snapshot file replaced on disk does.
"""

import json
import shutil

import numpy as np
import pytest
import torch

from recognizer import calibration, versions
from recognizer.models import ModelVersion
from recognizer.network import build_model
from recognizer.preprocessing import strokes_to_input
from recognizer.teaching import snapshots
from tests.support import SEVEN, register_random_model
from tests.teaching_models import register_shipped

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/learn/api/snapshots"
PAGE = "/learn/how-it-learned/"
SHIPPED = versions.BUILTIN_DIR / "snapshots"


@pytest.fixture(autouse=True)
def shipped_versions(model_dir):
    """v1 and v2 as `migrate` registers them (v2 active, its metrics naming v1)."""
    ModelVersion.objects.all().delete()
    v1 = json.loads((versions.BUILTIN_DIR / "digitcnn-v1-seed1.manifest.json").read_text())
    versions.register_version(versions.BUILTIN_DIR / v1["file"], version=v1["version"],
                              training=v1.get("training"), metrics=v1.get("metrics"))
    v2 = json.loads((versions.BUILTIN_DIR / "manifest.json").read_text())
    return register_shipped(version=v2["version"])


@pytest.fixture(autouse=True)
def fresh_answer_cache():
    snapshots.answer_cache.clear()
    yield
    snapshots.answer_cache.clear()


@pytest.fixture
def forward_passes(monkeypatch):
    """{"snapshots": n, "versions": n}: how often each set of networks has been run."""
    counts = {"snapshots": 0, "versions": 0}
    run_snapshots, run_versions = snapshots.snapshot_probabilities, snapshots.version_probabilities

    def counted_snapshots(image):
        counts["snapshots"] += 1
        return run_snapshots(image)

    def counted_versions(rows, image):
        counts["versions"] += 1
        return run_versions(rows, image)

    monkeypatch.setattr(snapshots, "snapshot_probabilities", counted_snapshots)
    monkeypatch.setattr(snapshots, "version_probabilities", counted_versions)
    return counts


def post(client, payload):
    return client.post(URL, data=json.dumps(payload), content_type="application/json")


def seven_input():
    return np.asarray(strokes_to_input(SEVEN["strokes"], SEVEN["width"], SEVEN["height"]),
                      dtype=np.float32)


def direct_probabilities(path, image):
    """softmax of the logits of the snapshot in `path`, loaded by hand, for one input."""
    payload = torch.load(path, weights_only=True)
    model = build_model()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in payload["state_dict"].items()})
    model.eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None])
    return torch.softmax(logits.double(), dim=1)[0].numpy()


@pytest.fixture
def snapshot_copy(tmp_path, settings):
    """A copy of the shipped snapshots that a test may damage."""
    folder = tmp_path / "snapshots"
    shutil.copytree(SHIPPED, folder)
    settings.TEACHING_SNAPSHOT_DIR = str(folder)
    return folder


def test_the_shipped_set_is_what_its_manifest_says():
    manifest = json.loads((SHIPPED / snapshots.MANIFEST_NAME).read_text())
    steps = [entry["step"] for entry in manifest["snapshots"]]
    assert steps[:5] == [0, 1, 10, 100, 500] and steps[-1] == 1000
    assert [e.get("epoch_end") for e in manifest["snapshots"] if e.get("epoch_end")] == [1, 2]
    assert manifest["seed"] == 1
    assert "--snapshots recognizer/weights/snapshots" in manifest["command"]
    total = 0
    for entry in manifest["snapshots"]:
        path = SHIPPED / entry["file"]
        assert path.stat().st_size == entry["size_bytes"]
        total += entry["size_bytes"]
    assert total < 8_000_000
    # Trained: the last snapshot reads the quick test set far better than the first.
    assert manifest["snapshots"][0]["test_accuracy"] < 0.3
    assert manifest["snapshots"][-1]["test_accuracy"] > 0.95


def test_each_snapshot_answers_as_its_own_file(client):
    image = seven_input()
    response = post(client, {"input": np.asarray(image).round(6).tolist()})
    assert response.status_code == 200, response.content
    answer = response.json()
    manifest = json.loads((SHIPPED / snapshots.MANIFEST_NAME).read_text())
    assert [s["step"] for s in answer["snapshots"]] == [e["step"] for e in manifest["snapshots"]]
    sent = np.asarray(image).round(6).astype(np.float32)
    for got, entry in zip(answer["snapshots"], manifest["snapshots"], strict=True):
        expected = direct_probabilities(SHIPPED / entry["file"], sent)
        np.testing.assert_allclose(got["probabilities"], expected, atol=1e-5, rtol=0)
    # Untrained, then trained: the last snapshot reads the 7.
    last = answer["snapshots"][-1]["probabilities"]
    assert int(np.argmax(last)) == 7 and last[7] > 0.5
    assert max(answer["snapshots"][0]["probabilities"]) < 0.5


def test_a_drawing_gets_the_same_answers_as_its_input(client):
    by_drawing = post(client, SEVEN).json()
    by_input = post(client, {"input": np.asarray(seven_input()).tolist()}).json()
    for a, b in zip(by_drawing["snapshots"], by_input["snapshots"], strict=True):
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-6)


def test_the_two_versions_answer_with_their_own_weights(client):
    image = seven_input()
    answer = post(client, {"input": np.asarray(image).tolist()}).json()
    roles = {v["role"]: v for v in answer["versions"]}
    active = versions.active_version()
    previous = ModelVersion.objects.get(version=active.metrics["baseline"]["version"])
    assert roles["active"]["version"] == active.version
    assert roles["previous"]["version"] == previous.version
    for role, row in (("active", active), ("previous", previous)):
        model, metadata = versions.load_version(row)
        with torch.inference_mode():
            logits = model(torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None])
        expected = calibration.probabilities(logits, calibration.temperature_of(metadata))[0]
        np.testing.assert_allclose(roles[role]["probabilities"], expected.numpy(), atol=1e-5)


def test_the_page_shows_the_run_the_versions_and_the_before_after(client):
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-snapshot-slider' in html and 'role="img" data-filters' in html
    assert html.count("data-snapshot-row=") == len(
        json.loads((SHIPPED / snapshots.MANIFEST_NAME).read_text())["snapshots"])
    active = versions.active_version()
    assert f"<code>{active.version}</code>" in html
    # v1 -> v2 on MNIST test: 99.63% -> 99.67%, as the shipped manifest records.
    assert '<tr data-set="mnist_test">' in html and "99.63%" in html and "99.67%" in html
    assert "data-no-heldout" in html  # v2 was made before any drawing was approved


def test_a_lone_version_says_so(client):
    active = versions.active_version()
    ModelVersion.objects.exclude(pk=active.pk).delete()
    ModelVersion.objects.filter(pk=active.pk).update(parent=None)
    html = client.get(PAGE).content.decode()
    assert "data-one-version" in html and "Only one version" in html
    answer = post(client, SEVEN).json()
    assert [v["role"] for v in answer["versions"]] == ["active"]


def test_a_damaged_snapshot_is_named_not_a_server_error(client, snapshot_copy):
    manifest = json.loads((snapshot_copy / snapshots.MANIFEST_NAME).read_text())
    victim = manifest["snapshots"][2]
    (snapshot_copy / victim["file"]).write_bytes(b"not a snapshot at all")
    response = post(client, SEVEN)
    assert response.status_code == 503
    message = response.json()["error"]
    assert f"after {victim['step']} steps" in message and "cannot be read" in message
    assert str(snapshot_copy) not in message
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "cannot be read" in page.content.decode()
    assert "data-snapshot-slider" not in page.content.decode()


def test_a_missing_snapshot_or_manifest_is_named(client, snapshot_copy):
    manifest = json.loads((snapshot_copy / snapshots.MANIFEST_NAME).read_text())
    (snapshot_copy / manifest["snapshots"][-1]["file"]).unlink()
    response = post(client, SEVEN)
    assert response.status_code == 503
    assert f"after {manifest['snapshots'][-1]['step']} steps" in response.json()["error"]
    assert "missing" in response.json()["error"]

    (snapshot_copy / snapshots.MANIFEST_NAME).unlink()
    response = post(client, SEVEN)
    assert response.status_code == 503
    assert response.json()["error"] == "The training snapshots are not installed on this server."
    assert "not installed" in client.get(PAGE).content.decode()


def test_bad_input_is_refused_like_the_other_lessons(client):
    assert client.get(URL).status_code == 405
    assert post(client, {"input": [[2] * 28] * 28}).status_code == 400
    response = client.post(URL, data="x" * 2_000_000, content_type="application/json")
    assert response.status_code == 413


# -- the answer cache --------------------------------------------------------------


def test_the_same_drawing_again_runs_no_network(client, forward_passes):
    first = post(client, SEVEN)
    assert first.status_code == 200, first.content
    assert forward_passes == {"snapshots": 1, "versions": 1}
    for _ in range(3):
        again = post(client, SEVEN)
        assert again.json() == first.json()
    assert forward_passes == {"snapshots": 1, "versions": 1}
    # The same drawing sent as its ready input is the same input.
    post(client, {"input": seven_input().tolist()})
    assert forward_passes == {"snapshots": 1, "versions": 1}
    assert snapshots.answer_cache.misses == 1 and snapshots.answer_cache.hits == 4

    # A drawing one point shorter is another input.
    moved = {**SEVEN, "strokes": [SEVEN["strokes"][0][:-1]] + SEVEN["strokes"][1:]}
    other = post(client, moved).json()
    assert forward_passes == {"snapshots": 2, "versions": 2}
    assert other["snapshots"][-1]["probabilities"] != first.json()["snapshots"][-1][
        "probabilities"]


def test_a_new_active_version_is_answered_afresh(client, model_dir, forward_passes):
    before = post(client, SEVEN).json()
    register_random_model(model_dir, seed=7, activate=True, version="random-seven")
    after = post(client, SEVEN).json()
    assert forward_passes == {"snapshots": 2, "versions": 2}
    assert [v["version"] for v in after["versions"]] == ["random-seven"]
    assert after["versions"] != before["versions"]
    assert after["snapshots"] == before["snapshots"]


def test_a_snapshot_file_replaced_is_answered_afresh(client, snapshot_copy, forward_passes):
    before = post(client, SEVEN).json()
    manifest = json.loads((snapshot_copy / snapshots.MANIFEST_NAME).read_text())
    first, last = manifest["snapshots"][0], manifest["snapshots"][-1]
    # The first snapshot's file now holds the trained network of the last.
    shutil.copyfile(snapshot_copy / last["file"], snapshot_copy / first["file"])
    after = post(client, SEVEN).json()
    assert forward_passes == {"snapshots": 2, "versions": 2}
    assert after["snapshots"][0]["probabilities"] == before["snapshots"][-1]["probabilities"]
    assert after["snapshots"][0]["probabilities"] != before["snapshots"][0]["probabilities"]


def test_the_page_shows_the_training_command_without_the_machines_paths():
    from recognizer.teaching.snapshots import public_command

    recorded = ("python manage.py finetune --from-scratch --seed 1 --data-dir /srv/site/mnist "
                "--output=/srv/site/models/run.pt --snapshots /srv/site/snapshots --epochs 2")
    shown = public_command(recorded)
    assert shown == "python manage.py finetune --from-scratch --seed 1 --epochs 2"
    assert "/srv" not in shown


def test_a_full_queue_is_answered_busy_with_a_wait_not_queued_without_end(client, monkeypatch):
    # As many computations as the lesson takes already wait (learners who
    # asked and left): a new drawing is told to come back, and one whose
    # answer is kept is still answered.
    from recognizer.teaching.memo import Memo

    image = np.asarray(seven_input()).round(6).tolist()
    assert post(client, {"input": image}).status_code == 200
    full = Memo(snapshots.ANSWER_CACHE_SIZE, workers=1, name="test-full", max_waiting=0)
    full._entries = snapshots.answer_cache._entries
    monkeypatch.setattr(snapshots, "answer_cache", full)
    assert post(client, {"input": image}).status_code == 200
    other = (np.asarray(image) * 0.5).round(6).tolist()
    refused = post(client, {"input": other})
    assert refused.status_code == 503
    assert int(refused["Retry-After"]) >= 1 and refused.json()["retry_after"] >= 1
    assert "busy" in refused.json()["error"]
