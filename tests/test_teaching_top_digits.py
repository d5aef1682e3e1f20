"""The training digits that excite each deeper map most (teaching/top_digits.py).

- The digits shown for a map are the sample's strongest for it, strongest
  first: checked against a forward pass of the whole sample.
- Computed once per model version, in the background: the page's first view
  says the digits are being prepared; a view after that (or after a restart,
  from the file) computes nothing; the sprite has a row per map.
- Without MNIST's files the page says so in plain words, without paths.
"""

import io
import re
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from recognizer.checkpoints import load_checkpoint
from recognizer.teaching import top_digits
from tests.support import register_random_model

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = 300


@pytest.fixture(autouse=True)
def small_sample(settings, tmp_path, mnist_dir, monkeypatch):
    from recognizer import inference

    settings.VAR_DIR = tmp_path
    settings.MNIST_DATA_DIR = mnist_dir
    settings.TEACHING_TOP_DIGITS_SAMPLE = SAMPLE
    settings.TEACHING_TOP_DIGITS_PLAYERS = 50
    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))
    top_digits.forget()
    yield
    top_digits.forget()


@pytest.fixture(scope="module")
def shipped_model():
    from pathlib import Path

    weights = Path(__file__).resolve().parent.parent / "recognizer" / "weights"
    model, _ = load_checkpoint(weights / "digitcnn-v2-styles-seed1.pt")
    return model.eval()


def test_the_digits_shown_are_the_samples_strongest_for_each_map(shipped_model):
    result = top_digits.compute(shipped_model, "f" * 64, SAMPLE, 0)
    images, labels = top_digits.training_sample(SAMPLE)
    answers = top_digits.strongest_answers(shipped_model, images)
    for layer in top_digits.LAYERS:
        maps = answers[layer].shape[1]
        assert result.pixels[layer].shape == (maps, top_digits.SHOWN, 28, 28)
        shown = top_digits.strongest_answers(
            shipped_model, result.pixels[layer].reshape(-1, 28, 28))[layer]
        # Row m of the shown digits, answered by map m.
        own = shown.reshape(maps, top_digits.SHOWN, maps)[np.arange(maps), :, np.arange(maps)]
        best = -np.sort(-answers[layer], axis=0)[:top_digits.SHOWN].T
        np.testing.assert_allclose(own, best, rtol=1e-5, atol=1e-5)
        assert (np.diff(own, axis=1) <= 1e-6).all()  # strongest first
        # The labels are those of the digits shown.
        for m in (0, maps - 1):
            first = np.flatnonzero((images == result.pixels[layer][m, 0]).all(axis=(1, 2)))[0]
            assert result.labels[layer][m, 0] == labels[first]
    described = result.describe()
    assert len(described["layers"]["conv3"]["labels"]) == 64 * top_digits.SHOWN
    assert described["sample"] == SAMPLE


def test_computed_once_per_version_in_the_background_and_kept_on_disk(
        monkeypatch, client, model_dir):
    from recognizer import inference

    version = register_random_model(model_dir, seed=3, activate=True)
    release = threading.Event()
    computations = []
    real_compute = top_digits.compute

    def gated(*args):
        computations.append(args[1])
        assert release.wait(60)
        return real_compute(*args)

    monkeypatch.setattr(top_digits, "compute", gated)
    first = client.get("/learn/how-it-works/").content.decode()
    assert "being worked out" in first
    second = client.get("/learn/how-it-works/").content.decode()
    assert "being worked out" in second
    release.set()
    future = top_digits.compute_cache.get((version.sha256, SAMPLE, 50), lambda: None)
    future.result(timeout=120)
    assert computations == [version.sha256]

    page = client.get("/learn/how-it-works/").content.decode()
    assert "being worked out" not in page and '"labels": "' in page
    # The address names the weights and the digits chosen.
    key = re.search(r'"key": "([0-9a-f]{16}-[0-9a-f]{16})"', page).group(1)
    assert key.startswith(version.sha256[:16])
    sprite = client.get(f"/learn/top-digits/{key}/conv2.png")
    assert sprite["Content-Type"] == "image/png"
    # Kept an hour, not a year: it may show drawings a reviewer rejects later.
    assert sprite["Cache-Control"] == "public, max-age=3600"
    image = Image.open(io.BytesIO(sprite.content))
    assert image.size == (top_digits.SHOWN * 28, 32 * 28)
    assert client.get(f"/learn/top-digits/{key}/pool1.png").status_code == 404

    # Another process of the site (or this one after a restart) serves the
    # sprite from the file.
    top_digits.forget()
    assert client.get(f"/learn/top-digits/{key}/dense.png").status_code == 200
    # The same weights with other digits chosen (another computation): not served.
    other = f"{version.sha256[:16]}-{'0' * 16}"
    assert client.get(f"/learn/top-digits/{other}/dense.png").status_code == 404
    assert client.get(f"/learn/top-digits/{version.sha256[:16]}/dense.png").status_code == 404
    assert client.get("/learn/top-digits/0123456789abcdef/dense.png").status_code == 404
    assert client.get("/learn/top-digits/..%2F..%2Fetc/dense.png").status_code == 404

    # A restart: the file answers, nothing is computed again.
    top_digits.forget()
    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))
    page = client.get("/learn/how-it-works/").content.decode()
    assert '"labels": "' in page
    assert computations == [version.sha256]
    assert top_digits.cache_path(version.sha256, SAMPLE, 50).exists()


def test_without_mnist_files_the_page_says_so_in_plain_words(
        settings, tmp_path, client, caplog, model_dir):
    register_random_model(model_dir, seed=4, activate=True)
    settings.MNIST_DATA_DIR = tmp_path / "no-mnist-here"
    page = client.get("/learn/how-it-works/").content.decode()
    assert "training digits are not installed on this server" in page
    assert len(top_digits.compute_cache) == 0  # nothing started
    assert "no-mnist-here" not in page
    assert "no-mnist-here" in caplog.text


def test_a_map_answers_with_its_largest_value_anywhere():
    torch.manual_seed(0)
    from recognizer.network import build_model

    model = build_model().eval()
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    answers = top_digits.strongest_answers(model, images)
    with torch.inference_mode():
        _, activations = model.forward_with_activations(
            torch.tensor(images)[:, None].float() / 255.0)
    np.testing.assert_allclose(answers["conv4"], activations["conv4"].amax(dim=(2, 3)).numpy())
    np.testing.assert_allclose(answers["dense"], activations["dense"].numpy())
