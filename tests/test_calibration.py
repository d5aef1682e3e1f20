"""Temperature scaling: fitted on held-out digits, stored with the version, applied everywhere.

Hostile inputs tried: temperatures that are NaN, infinite, zero, negative,
absurdly large, a string, a bool; logits and labels that do not match; no
data at all.
"""

import json

import numpy as np
import pytest
import torch

from recognizer import calibration
from recognizer.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from recognizer.network import build_model
from tests.support import SEVEN


def noisy_logits(count, scale, seed=0, wrong=0.05):
    """Logits whose right answer wins by `scale`, and a share `wrong` of wrong answers."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    logits = rng.normal(0.0, 1.0, (count, 10))
    winners = np.where(rng.random(count) < wrong, (labels + 1) % 10, labels)
    logits[np.arange(count), winners] += scale
    return logits, labels


def test_an_underconfident_model_gets_a_temperature_below_one_and_a_lower_nll():
    # Like a network trained with label smoothing: right 95% of the time,
    # but with margins that give it only ~60% probability.
    logits, labels = noisy_logits(2000, scale=2.0)
    temperature = calibration.fit_temperature(logits, labels)
    assert temperature < 0.8
    assert calibration.nll(logits, labels, temperature) < calibration.nll(logits, labels) - 0.05
    report = calibration.confidence_report(logits, labels, temperature)
    raw = calibration.confidence_report(logits, labels, 1.0)
    assert report["ece"] < raw["ece"]
    assert report["correct_reaching"] > raw["correct_reaching"]


def test_an_overconfident_model_gets_a_temperature_above_one():
    logits, labels = noisy_logits(2000, scale=30.0, wrong=0.1)
    temperature = calibration.fit_temperature(logits, labels)
    assert temperature > 2
    assert calibration.nll(logits, labels, temperature) < calibration.nll(logits, labels)


def test_the_fit_is_the_minimum_of_the_nll():
    logits, labels = noisy_logits(500, scale=3.0, seed=1)
    temperature = calibration.fit_temperature(logits, labels)
    best = calibration.nll(logits, labels, temperature)
    for other in (temperature * 0.97, temperature * 1.03):
        assert calibration.nll(logits, labels, other) > best


def test_nothing_to_fit_and_mismatched_inputs():
    assert calibration.fit_temperature(np.zeros((0, 10)), np.zeros(0, dtype=int)) == 1.0
    with pytest.raises(ValueError, match="do not match"):
        calibration.fit_temperature(np.zeros((3, 10)), np.zeros(2, dtype=int))
    assert calibration.confidence_report(np.zeros((0, 10)), np.zeros(0, dtype=int))["count"] == 0


def test_the_report_counts_the_games_threshold_and_the_calibration_error():
    logits = np.log(np.array([
        [0.95, 0.05] + [1e-9] * 8,   # right, sure
        [0.85, 0.15] + [1e-9] * 8,   # right, not sure enough
        [0.05, 0.95] + [1e-9] * 8,   # wrong, sure of the wrong digit
        [0.40, 0.60] + [1e-9] * 8,   # wrong, unsure
    ]))
    report = calibration.confidence_report(logits, np.array([0, 0, 0, 0]), 1.0)
    assert report["correct"] == 2
    assert report["correct_reaching"] == 0.5
    assert report["wrong_reaching"] == 0.5
    # Bins (15 equal ones) of 0.6, 0.85, 0.95 (x2): |0.6-0| + |0.85-1| + 2|0.95-0.5|, over 4.
    assert report["ece"] == pytest.approx((0.6 + 0.15 + 0.9) / 4, abs=1e-6)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -1.0, 1000.0, "hot", True])
def test_a_checkpoint_with_an_unusable_temperature_is_refused(tmp_path, value):
    path = tmp_path / "model.pt"
    save_checkpoint(build_model(), path, metadata={"temperature": value})
    with pytest.raises(CheckpointError, match="temperature"):
        load_checkpoint(path)


def test_a_checkpoint_without_a_temperature_has_none():
    assert calibration.temperature_of({}) == 1.0
    assert calibration.temperature_of({"temperature": None}) == 1.0
    assert calibration.temperature_of({"temperature": 0.4}) == 0.4


# -- applied in the game's, the API's and the teaching pages' probabilities --------

TEMPERATURE = 0.37


@pytest.fixture
def calibrated_model(model_dir, db):
    """A seeded network with a temperature, registered and active."""
    from recognizer.versions import register_version

    torch.manual_seed(3)
    model = build_model()
    path = model_dir / "calibrated.pt"
    save_checkpoint(model, path, metadata={"temperature": TEMPERATURE})
    return register_version(path, activate=True, version="calibrated")


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))


def expected_probabilities(version, image):
    from recognizer import versions

    model, _ = versions.load_version(version)
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None])
    plain = torch.softmax(logits.double(), dim=1)[0].numpy()
    scaled = torch.softmax(logits.double() / TEMPERATURE, dim=1)[0].numpy()
    return scaled, plain


@pytest.mark.django_db(transaction=True)
def test_the_api_and_the_teaching_pages_show_softmax_of_logits_over_t(client, calibrated_model):
    from recognizer.preprocessing import strokes_to_input

    image = strokes_to_input(SEVEN["strokes"], SEVEN["width"], SEVEN["height"])
    scaled, plain = expected_probabilities(calibrated_model, image)
    # The temperature makes a visible difference for this drawing.
    assert np.abs(scaled - plain).max() > 0.01

    body = client.post("/api/recognize", data=json.dumps(SEVEN),
                       content_type="application/json").json()
    assert body["model"] == "calibrated"
    np.testing.assert_allclose(body["probabilities"], scaled, atol=1e-9)

    stages = client.post("/learn/api/stages", data=json.dumps(SEVEN),
                         content_type="application/json").json()
    np.testing.assert_allclose(stages["prediction"]["probabilities"], scaled, atol=1e-9)
    # The logits shown are the network's own, before the temperature.
    np.testing.assert_allclose(
        calibration.probabilities(torch.tensor(stages["prediction"]["logits"]),
                                  TEMPERATURE).numpy(), scaled, atol=1e-5)

    attention = client.post("/learn/api/attention", data=json.dumps(SEVEN),
                            content_type="application/json").json()
    np.testing.assert_allclose(attention["probabilities"], scaled, atol=1e-9)


@pytest.mark.django_db(transaction=True)
def test_the_game_service_and_the_gallery_apply_the_temperature(calibrated_model):
    from recognizer.inference import get_service
    from recognizer.teaching import gallery

    rng = np.random.default_rng(0)
    image = (rng.random((28, 28)) > 0.8).astype(np.float32)
    scaled, _ = expected_probabilities(calibrated_model, image)
    prediction = get_service().predict(image)
    np.testing.assert_allclose(prediction.probabilities, scaled, atol=1e-9)

    assert gallery.temperature_for(calibrated_model) == TEMPERATURE
    model = gallery.model_for(calibrated_model)
    from_gallery = gallery.predict(model, (image[None] * 255).astype(np.uint8),
                                   temperature=gallery.temperature_for(calibrated_model))
    np.testing.assert_allclose(from_gallery[0], scaled, atol=1e-5)
