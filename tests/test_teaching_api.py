"""The teaching pages' data: what the server sends is the network's own.

Every number the pages draw is checked against a direct computation on the
same model: a forward pass for the activations and probabilities, the same
occluded input for the occlusion map, autograd for the saliency map (copy by
copy, for the average over noisy copies).
"""

import base64
import json

import numpy as np
import pytest
import torch

from recognizer import versions
from recognizer.models import Drawing
from recognizer.network import build_model, count_parameters, describe_layers
from recognizer.preprocessing import strokes_to_stages
from recognizer.teaching import explain, gallery
from recognizer.teaching.encoding import (
    dequantise_maps,
    inflate_image,
    quantisation_step,
    quantise_maps,
)
from tests.support import SEVEN, register_random_model

pytestmark = pytest.mark.django_db(transaction=True)

STAGES_URL = "/learn/api/stages"
ATTENTION_URL = "/learn/api/attention"

ZERO = {
    "width": 300,
    "height": 300,
    "strokes": [[[150 + 80 * np.cos(a), 150 + 110 * np.sin(a)]
                 for a in np.linspace(0, 2 * np.pi, 40)]],
}


def post(client, url, payload):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return client.post(url, data=body, content_type="application/json")


def direct_forward(version, image):
    """The model's own activations and probabilities for one 28x28 input."""
    model, _ = versions.load_version(version)
    with torch.inference_mode():
        logits, activations = model.forward_with_activations(
            torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None]
        )
        probabilities = torch.softmax(logits.double(), dim=1)[0].numpy()
    return model, {k: v[0].numpy() for k, v in activations.items()}, probabilities


def all_stages(client, payload):
    """Every stage of one drawing, asked for as the page does: again for the omitted ones."""
    response = post(client, STAGES_URL, payload)
    assert response.status_code == 200, response.content
    body = response.json()
    activations = dict(body["activations"])
    omitted = body["omitted"]
    while omitted:
        more = post(client, STAGES_URL, {**payload, "stages": omitted}).json()
        assert more["activations"], "an answer that carries no stage would never finish"
        activations.update(more["activations"])
        omitted = more["omitted"]
    body["activations"] = {name: activations[name] for name in explain.STAGE_ORDER}
    return body


def decode_image(encoded):
    if "deflated" in encoded:
        return inflate_image(encoded) / 255.0
    data = np.frombuffer(base64.b64decode(encoded["data"]), dtype=np.uint8)
    return data.reshape(encoded["shape"]) / 255.0


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    """Each test gets its own service, so a model from another test never leaks in."""
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))


# -- the encoding ------------------------------------------------------------------


def test_quantised_maps_decode_within_half_a_step():
    rng = np.random.default_rng(1)
    # float32: the network's type, in which the exact min and max travel.
    maps = (rng.normal(size=(5, 7, 7)) * np.arange(1, 6)[:, None, None]).astype(np.float32)
    maps[2] = 0.0  # a dead map, as ReLU leaves many
    encoded = quantise_maps(maps)
    decoded = dequantise_maps(encoded)
    step = quantisation_step(encoded)
    assert decoded.shape == maps.shape
    for channel in range(5):
        error = np.abs(decoded[channel] - maps[channel]).max()
        assert error <= step[channel] + 1e-6
    assert np.all(decoded[2] == 0.0)
    # Each map keeps its own range, so a weak map is not flattened by a strong one,
    # and the extremes are exact.
    high = np.frombuffer(base64.b64decode(encoded["max"]), dtype="<f4")
    np.testing.assert_array_equal(high, maps.reshape(5, -1).max(axis=1))
    assert high[0] < high[4]


# -- "How it works" -------------------------------------------------------------------


def test_stages_are_a_direct_forward_pass_of_the_preprocessed_drawing(client, active_model):
    body = all_stages(client, SEVEN)

    stages = strokes_to_stages(SEVEN["strokes"], SEVEN["width"], SEVEN["height"])
    _, activations, probabilities = direct_forward(active_model, stages["input"])

    assert body["prediction"]["model"] == active_model.version
    # The probabilities are the model's, to the last bit.
    assert body["prediction"]["probabilities"] == [float(p) for p in probabilities]
    assert body["prediction"]["digit"] == int(np.argmax(probabilities))
    np.testing.assert_allclose(body["prediction"]["logits"], activations["logits"], rtol=1e-6)

    assert list(body["activations"]) == ["conv1", "conv2", "pool1", "conv3", "conv4", "pool2",
                                         "dense"]
    for name, encoded in body["activations"].items():
        expected = activations[name]
        decoded = dequantise_maps(encoded)
        assert decoded.shape == expected.shape, name
        step = quantisation_step(encoded)
        per_map = np.abs(decoded - expected).reshape(len(step), -1).max(axis=1)
        assert np.all(per_map <= step + 1e-6), (name, per_map.max())
        # Not a blank picture: the maps carry the network's actual variation.
        assert expected.max() > expected.min()

    # The input the network saw, and the preprocessing steps that made it.
    np.testing.assert_allclose(decode_image(body["input"]), stages["input"], atol=0.5 / 255 + 1e-7)
    pre = body["preprocessing"]
    assert pre["strokes"] == 2 and pre["points"] == 5
    assert pre["bbox"]["left"] == 60 and pre["bbox"]["right"] == 240
    assert pre["bbox"]["top"] == 50 and pre["bbox"]["bottom"] == 260
    assert pre["scale"] == pytest.approx(stages["scale"], rel=1e-6)
    np.testing.assert_allclose(pre["shift"], stages["shift"], atol=1e-4)
    np.testing.assert_allclose(pre["center_of_mass"], stages["center_of_mass"], atol=1e-4)
    assert pre["fitted"]["shape"] == [20, 20]
    np.testing.assert_allclose(decode_image(pre["fitted"]), stages["fitted"], atol=0.5 / 255 + 1e-7)
    np.testing.assert_allclose(decode_image(pre["centered_box"]), stages["centered_box"],
                               atol=0.5 / 255 + 1e-7)


def test_a_ready_input_is_explained_as_it_is(client, active_model):
    rng = np.random.default_rng(7)
    image = np.round(rng.random((28, 28)) * (rng.random((28, 28)) > 0.7), 4)
    response = post(client, STAGES_URL, {"input": image.tolist()})
    assert response.status_code == 200, response.content
    body = response.json()
    assert "preprocessing" not in body
    _, activations, probabilities = direct_forward(active_model, image)
    assert body["prediction"]["probabilities"] == [float(p) for p in probabilities]
    conv1 = dequantise_maps(body["activations"]["conv1"])
    step = quantisation_step(body["activations"]["conv1"])
    assert np.all(np.abs(conv1 - activations["conv1"]).reshape(32, -1).max(axis=1) <= step + 1e-6)


def test_different_drawings_light_up_different_maps(client, active_model):
    seven = all_stages(client, SEVEN)
    zero = all_stages(client, ZERO)
    for name in ("conv1", "conv4", "dense"):
        a = dequantise_maps(seven["activations"][name])
        b = dequantise_maps(zero["activations"][name])
        assert np.abs(a - b).max() > 0.2 * max(np.abs(a).max(), np.abs(b).max()), name
    assert seven["prediction"]["probabilities"] != zero["prediction"]["probabilities"]


# -- "What the model looks at" ------------------------------------------------------------


def test_occlusion_map_is_the_probability_drop_of_each_patch(client, active_model):
    response = post(client, ATTENTION_URL, SEVEN)
    assert response.status_code == 200, response.content
    body = response.json()
    image = strokes_to_stages(SEVEN["strokes"], SEVEN["width"], SEVEN["height"])["input"]
    model, _, probabilities = direct_forward(active_model, image)

    assert body["model"] == active_model.version
    assert body["digit"] == body["target"] == int(np.argmax(probabilities))
    np.testing.assert_allclose(body["probabilities"], probabilities, atol=1e-9)
    occlusion = np.array(body["occlusion"]["values"]).reshape(body["occlusion"]["shape"])
    assert occlusion.shape == (14, 14)

    # A patch that covers no ink changes nothing; the map responds where the ink is.
    covered = explain.occlusion_inputs(image)
    touches_ink = np.array([np.any(c != image) for c in covered]).reshape(14, 14)
    assert touches_ink.any() and not touches_ink.all()
    assert np.abs(occlusion[~touches_ink]).max() < 1e-6
    assert np.abs(occlusion[touches_ink]).max() > 1e-4

    # Any cell, recomputed by hand: blank that patch, run the model, take the drop.
    i, j = np.unravel_index(np.abs(occlusion).argmax(), occlusion.shape)
    hidden = image.copy()
    top, left = max(0, -2 + 2 * i), max(0, -2 + 2 * j)
    hidden[top:-2 + 2 * i + 6, left:-2 + 2 * j + 6] = 0.0
    with torch.inference_mode():
        p = torch.softmax(model(torch.from_numpy(hidden)[None, None]).double(), dim=1)[0]
    target = body["target"]
    assert occlusion[i, j] == pytest.approx(probabilities[target] - float(p[target]), abs=1e-5)


def test_saliency_is_the_smoothed_gradient_of_the_chosen_digits_score(client, active_model):
    response = post(client, ATTENTION_URL, {**SEVEN, "target": 3})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["target"] == 3
    image = strokes_to_stages(SEVEN["strokes"], SEVEN["width"], SEVEN["height"])["input"]
    model, _ = versions.load_version(active_model)
    # SmoothGrad by hand: each noisy copy's own gradient, one at a time, averaged.
    saliency = body["saliency"]
    assert saliency["method"] == "smoothgrad"
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn((saliency["samples"], 1, 28, 28), generator=generator)
    gradients = []
    for copy_noise in noise * saliency["noise"]:
        x = (torch.from_numpy(np.asarray(image, dtype=np.float32))[None]
             + copy_noise)[None].requires_grad_(True)
        model(x)[0, 3].backward()
        gradients.append(x.grad[0, 0].numpy())
    expected = np.mean(gradients, axis=0)
    values = np.array(saliency["values"]).reshape(28, 28)
    np.testing.assert_allclose(values, expected, atol=1e-6, rtol=1e-4)
    assert np.abs(values).max() > 0

    other = post(client, ATTENTION_URL, {**SEVEN, "target": 8}).json()
    assert other["target"] == 8
    assert other["saliency"]["values"] != body["saliency"]["values"]
    assert other["occlusion"]["values"] != body["occlusion"]["values"]
    # The model's own answer does not depend on the digit asked about.
    assert other["digit"] == body["digit"]


def test_attention_responds_to_the_drawing(client, active_model):
    seven = post(client, ATTENTION_URL, {**SEVEN, "target": 1}).json()
    zero = post(client, ATTENTION_URL, {**ZERO, "target": 1}).json()
    assert seven["input"] != zero["input"]
    assert seven["occlusion"]["values"] != zero["occlusion"]["values"]
    assert seven["saliency"]["values"] != zero["saliency"]["values"]


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [STAGES_URL, ATTENTION_URL])
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2, 3]", "JSON object"),
        ({"width": 300, "height": 300}, "strokes"),
        ({"width": 300, "height": 300, "strokes": []}, "empty"),
        ({"width": 300, "height": 300, "strokes": [[["a", 1]]]}, "number"),
        ({"width": 300, "height": 300, "strokes": [[[500, 500], [600, 600]]]}, "outside"),
        ({**SEVEN, "target": 12}, "target"),
        ({**SEVEN, "target": "7"}, "target"),
        ({**SEVEN, "target": True}, "target"),
        ({"input": [[0.0] * 28] * 27}, "28 rows"),
        ({"input": [[0.0] * 28] * 27 + [[0.0] * 27]}, "28 numbers"),
        ({"input": [[0.0] * 28] * 27 + [[0.0] * 27 + [2.0]]}, "0..1"),
        ({"input": [[0.0] * 28] * 27 + [[0.0] * 27 + [None]]}, "not a number"),
    ],
)
def test_bad_input_gets_a_json_error(client, active_model, url, body, words):
    response = post(client, url, body)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert words.lower() in response.json()["error"].lower()


def test_wrong_method_and_size(client, active_model):
    response = client.get(STAGES_URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "POST" in response.json()["error"]
    big = {**SEVEN, "padding": "x" * (1024 * 1024 + 10)}
    response = post(client, ATTENTION_URL, big)
    assert response.status_code == 413
    assert "larger" in response.json()["error"]
    # Beyond Django's own upload limit too, the answer is still this API's JSON.
    huge = {**SEVEN, "padding": "x" * (3 * 1024 * 1024)}
    response = post(client, STAGES_URL, huge)
    assert response.status_code == 413
    assert "larger" in response.json()["error"]
    response = client.post(STAGES_URL, data="width=3", content_type="text/plain")
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["error"]


@pytest.mark.parametrize("url", [STAGES_URL, ATTENTION_URL])
@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded"])
def test_a_drawing_not_declared_as_json_is_a_415(client, active_model, url, content_type):
    """What a cross-site page can send without a preflight (a Blob without a type is "")."""
    response = client.post(url, data=json.dumps(SEVEN), content_type=content_type)
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["error"]


@pytest.mark.parametrize("url", [STAGES_URL, ATTENTION_URL])
def test_too_much_ink_is_refused_on_the_teaching_endpoints(client, active_model, url):
    from tests.worst_drawings import corner_zigzag

    response = post(client, url, corner_zigzag(10_000))
    assert response.status_code == 400
    assert "too much ink for one digit" in response.json()["error"]


def test_no_active_model_is_a_503_with_a_reason(client, db):
    for url in (STAGES_URL, ATTENTION_URL):
        response = post(client, url, SEVEN)
        assert response.status_code == 503
        assert "no model" in response.json()["error"]


# -- "The model" -----------------------------------------------------------------------------


def model_metrics():
    confusion = (np.eye(10, dtype=int) * 970).tolist()
    confusion[4][9] = 17
    confusion[7][2] = 8
    return {
        "accuracy": 0.987654,
        "canvas_accuracy": 0.912345,
        "mnist_test": {
            "count": 10000, "accuracy": 0.987654, "loss": 0.04,
            "per_class_accuracy": [0.99, 0.995, 0.98, 0.985, 0.9734, 0.98, 0.99, 0.9812, 0.97,
                                   0.96],
            "confusion_matrix": confusion,
        },
        "canvas": {"count": 2000, "accuracy": 0.912345, "loss": 0.3},
        "curves": [
            {"epoch": 1, "train_loss": 0.41, "train_accuracy": 0.88, "eval_loss": 0.09,
             "eval_accuracy": 0.971},
            {"epoch": 2, "train_loss": 0.12, "train_accuracy": 0.962, "eval_loss": 0.05,
             "eval_accuracy": 0.983},
            {"epoch": 3, "train_loss": 0.08, "train_accuracy": 0.975, "eval_loss": 0.04,
             "eval_accuracy": 0.9877},
        ],
    }


def test_model_page_shows_the_active_models_real_numbers(client, model_dir):
    old = register_random_model(model_dir, seed=1, activate=False, version="older-model")
    old.metrics = {"accuracy": 0.95}
    old.save()
    active = register_random_model(model_dir, seed=0, activate=True, version="the-active-one")
    active.metrics = model_metrics()
    active.training = {
        "command": "manage.py finetune --epochs 3 --seed 42", "seed": 42, "epochs": 3,
        "batch_size": 128, "optimizer": "adamw", "lr": 0.002,
        "data": {"mnist_train": 60000, "collected": 25, "train_total": 60025,
                 "mnist_test": 10000, "canvas": 2000, "train_per_class": [6000] * 10},
    }
    active.save()
    # Approved player drawings: the page measures the active model on them itself.
    rng = np.random.default_rng(3)
    images = (rng.random((6, 28, 28)) > 0.8).astype(np.uint8) * 255
    for index, image in enumerate(images):
        Drawing.objects.create(
            label=index % 10, strokes={}, input_image=image.tobytes(), prediction=0,
            probabilities=[0.1] * 10, player_id=f"p{index}", player_name="Ann",
            game_id="g", round_number=index, status=Drawing.Status.APPROVED,
        )
    Drawing.objects.create(
        label=1, strokes={}, input_image=images[0].tobytes(), prediction=0,
        probabilities=[0.1] * 10, player_id="p9", player_name="Bo", game_id="g",
        round_number=9, status=Drawing.Status.REJECTED,
    )
    model, _ = versions.load_version(active)
    with torch.inference_mode():
        guesses = model(torch.from_numpy(images / 255.0).float()[:, None]).argmax(1).numpy()
    collected = (guesses == np.arange(6) % 10).mean()

    response = client.get("/learn/model/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-version="the-active-one"' in html
    assert ">98.77%<" in html  # MNIST test accuracy
    assert ">91.23%<" in html  # canvas-style accuracy
    assert f">{collected * 100:.1f}%<" in html
    assert "right on 6 approved player drawings" in html
    assert "manage.py finetune --epochs 3 --seed 42" in html
    assert '<dd data-seed>42</dd>' in html and '<dd data-epochs>3</dd>' in html
    assert "60025" in html and "25 drawn by players" in html

    # The architecture table: every layer with the network's real shapes and parameters.
    for name, _, shape, params in describe_layers(build_model()):
        assert f'data-parameters="{name}">{params}<' in html
        assert " x ".join(map(str, shape)) in html
    assert f"data-total-parameters>{count_parameters(build_model())}<" in html

    # Charts are SVG drawn from the recorded numbers.
    assert html.count('<svg class="chart') >= 4
    assert "<title>true 4, guessed 9: 17</title>" in html
    assert "<title>true 7, guessed 2: 8</title>" in html
    assert "<title>4: 97.3%</title>" in html  # per-class accuracy bar
    assert "training, epoch 3: 0.0800" in html  # a point on the loss curve
    assert "test, epoch 3: 98.8%" in html  # a point on the accuracy curve

    # The history of versions, with their metrics.
    assert "older-model" in html and ">95.00%<" in html


def test_model_page_shows_styles_confidence_and_a_comparable_training_loss(client, model_dir):
    """A version trained with the styles, calibrated, with the training loss measured like the
    test loss: the card shows each style, the confidence numbers and those loss values."""
    active = register_random_model(model_dir, seed=0, activate=True, version="styled")
    metrics = model_metrics()
    for epoch, value in zip(metrics["curves"], (0.31, 0.0917, 0.0312), strict=True):
        epoch["train_eval_loss"] = value
        epoch["train_eval_accuracy"] = 0.99
    metrics["styles"] = {"count": 600, "accuracy": 0.975, "per_style": {
        "zero_slashed": {"count": 300, "accuracy": 0.9633, "read_as": [289, 0, 0, 0, 0, 0, 0,
                                                                          0, 11, 0]},
        "one_flag": {"count": 300, "accuracy": 0.9867, "read_as": [0, 296, 0, 0, 0, 0, 0, 4,
                                                                      0, 0]},
    }}
    metrics["calibration"] = {"temperature": 0.612, "after": {"canvas": {"calibrated": {
        "correct_reaching": 0.9781, "wrong_reaching": 0.1234, "ece": 0.004}}}}
    active.metrics = metrics
    active.save()

    html = client.get("/learn/model/").content.decode()
    assert ">97.50%<" in html  # the styles set as a whole
    assert 'data-style="zero_slashed">96.3%<' in html and "0 with a slash" in html
    assert 'data-style="one_flag">98.7%<' in html
    assert "97.8% get 90% or more" in html and "12.3% get 90% for the wrong one" in html
    assert "divided by 0.612" in html
    # The training line is the one measured like the test line.
    assert "training, epoch 2: 0.0917" in html and "training, epoch 2: 0.1200" not in html
    assert "measured exactly like the test line" in html


def test_model_page_without_an_active_model(client, db):
    response = client.get("/learn/model/")
    assert response.status_code == 200
    assert "No model is active" in response.content.decode()


# -- "The data" -------------------------------------------------------------------------------


def test_data_page_shows_a_class_and_the_active_models_mistakes(client, settings, mnist_dir,
                                                                active_model, tmp_path):
    from trainer.mnist import load_split

    settings.MNIST_DATA_DIR = mnist_dir
    settings.VAR_DIR = tmp_path / "var"
    # The first 1,000 test digits: predicting all 10,000 twice would dominate the suite.
    settings.TEACHING_MNIST_LIMIT = 1000
    images, labels = load_split("test", data_dir=mnist_dir, download=False)
    images, labels = images[:1000], labels[:1000]
    model, _ = versions.load_version(active_model)
    with torch.inference_mode():
        guesses = torch.cat([
            model(torch.from_numpy(images[i:i + 500].copy()).float().div(255)[:, None]).argmax(1)
            for i in range(0, 1000, 500)
        ]).numpy()
    wrong = guesses != labels

    # The first visit prepares the numbers in the background.
    response = client.get("/learn/data/?digit=3")
    assert 'data-preparing="mistakes"' in response.content.decode()
    wait_for_predictions()
    response = client.get("/learn/data/?digit=3")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"The test set holds {(labels == 3).sum()} handwritten 3s" in html
    assert 'data-sprite="mnist"' in html and "data:image/png;base64," in html
    assert f"<strong data-mistakes-all>{wrong.sum()}</strong> of the 1000 test digits" in html
    assert f"<strong data-mistakes-total>{(wrong & (labels == 3)).sum()}</strong>" in html
    shown = html.count('class="mistake"')
    assert shown == min(48, (wrong & (labels == 3)).sum())
    # Every guess shown is one the model really made on a 3 it got wrong.
    guessed = {int(g) for g in guesses[wrong & (labels == 3)]}
    for part in html.split('data-guess="')[1:]:
        assert int(part[0]) in guessed

    cache = list((tmp_path / "var" / "teaching").glob("mnist-test-*.npy"))
    assert len(cache) == 1
    stamp = cache[0].stat().st_mtime_ns
    assert client.get("/learn/data/?digit=5").status_code == 200
    assert cache[0].stat().st_mtime_ns == stamp  # computed once per model version
    assert client.get("/learn/data/?digit=3&page=2").status_code == 200  # 101 threes
    assert client.get("/learn/data/?digit=3&page=3").status_code == 404


def wait_for_predictions():
    for future in list(gallery.predictions_cache._entries.values()):
        future.result(timeout=300)


def test_data_page_shows_approved_drawings_of_the_class(client, settings, tmp_path, active_model):
    settings.MNIST_DATA_DIR = tmp_path / "no-mnist-here"
    image = np.zeros((28, 28), dtype=np.uint8)
    image[5:23, 13:15] = 255
    for status, n in ((Drawing.Status.APPROVED, 3), (Drawing.Status.PENDING, 2)):
        for i in range(n):
            Drawing.objects.create(
                label=1, strokes={}, input_image=image.tobytes(), prediction=1,
                probabilities=[0.1] * 10, player_id=f"{status}{i}", player_name="Ann",
                game_id="g", round_number=i, status=status,
            )
    html = client.get("/learn/data/?digit=1").content.decode()
    assert "3 approved drawings of a 1" in html
    assert 'data-sprite="drawings"' in html
    # No MNIST files: said plainly, not a crash.
    assert 'data-error="mnist"' in html
    assert "The MNIST examples are not installed on this server" in html
    html = client.get("/learn/data/?digit=2").content.decode()
    assert 'data-empty="drawings"' in html


@pytest.mark.parametrize("query", ["digit=10", "digit=x", "digit=-1", "digit=3&page=0",
                                   "page=abc"])
def test_data_page_refuses_bad_parameters(client, db, query):
    assert client.get(f"/learn/data/?{query}").status_code == 404


def test_an_mnist_digit_opens_in_the_lessons(client, settings, mnist_dir, db):
    from trainer.mnist import load_split

    settings.MNIST_DATA_DIR = mnist_dir
    images, labels = load_split("test", data_dir=mnist_dir, download=False)
    for url in ("/learn/how-it-works/", "/learn/attention/"):
        response = client.get(f"{url}?mnist=123")
        assert response.status_code == 200
        html = response.content.decode()
        assert f"#123</a>, a {labels[123]}." in html
        marker = '<script id="mnist-sample" type="application/json">'
        start = html.index(marker) + len(marker)
        sample = json.loads(html[start:html.index("</script>", start)])
        assert sample["index"] == 123 and sample["label"] == labels[123]
        np.testing.assert_allclose(sample["input"], images[123] / 255.0, atol=5e-5)
        assert client.get(f"{url}?mnist=10000").status_code == 404
        assert client.get(f"{url}?mnist=seven").status_code == 404


# -- the lesson path -------------------------------------------------------------------------


def test_each_lesson_links_to_the_next(client, db):
    path = ["/learn/", "/learn/how-it-works/", "/learn/attention/", "/learn/model/",
            "/learn/data/"]
    for here, following in zip(path[:-1], path[1:], strict=True):
        html = client.get(here).content.decode()
        assert f'rel="next" data-next-lesson href="{following}"' in html, here
    html = client.get("/learn/how-it-works/").content.decode()
    assert 'data-stages-url="/learn/api/stages"' in html
    assert "js/teaching/how-it-works.js" in html
    html = client.get("/learn/attention/").content.decode()
    assert 'data-attention-url="/learn/api/attention"' in html
