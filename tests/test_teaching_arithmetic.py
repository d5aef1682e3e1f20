"""One neuron's arithmetic (POST /learn/api/neuron) is the network's own.

For each kind of layer (a convolution reading the input, one reading 32
maps, a max pooling cell, a dense neuron, a digit's probability) the numbers
the page shows are added up again here, step by step as the page writes
them, and the result must be the value a direct forward pass of the shipped
model computes at that place; the patch and weights must be the model's own.
Also: bad places are refused with the reason, the forward pass is computed
once per drawing, and every answer stays under 15 kB.
"""

import json

import numpy as np
import pytest
import torch

from recognizer import calibration, network, preprocessing, versions
from recognizer.teaching import neuron
from tests.support import SEVEN
from tests.teaching_models import register_shipped

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/learn/api/neuron"
# Arithmetic in float64 from float32 numbers against the network's float32
# convolution: they agree to about 1e-6; the bound leaves room, not slack.
CLOSE = {"rel": 1e-5, "abs": 1e-5}


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))
    neuron.forward_cache.clear()


@pytest.fixture
def shipped(model_dir):
    return register_shipped()


@pytest.fixture
def direct(shipped):
    """The shipped model and a direct forward pass of the seven: (model, stages, probabilities)."""
    model, metadata = versions.load_version(shipped)
    image = preprocessing.strokes_to_input(SEVEN["strokes"], SEVEN["width"], SEVEN["height"])
    x = torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None]
    with torch.inference_mode():
        logits, activations = model.forward_with_activations(x)
    stages = {k: v[0].numpy().astype(np.float64) for k, v in activations.items()}
    stages["input"] = np.asarray(image, dtype=np.float64)
    temperature = calibration.temperature_of(metadata)
    probabilities = calibration.probabilities(logits, temperature)[0].numpy()
    return model, stages, probabilities, temperature


def ask(client, **where):
    response = client.post(URL, data=json.dumps({**SEVEN, **where}),
                           content_type="application/json")
    assert response.status_code == 200, response.content
    assert len(response.content) <= 15_000, (where, len(response.content))
    return response.json()


def strongest(values):
    """(map, y, x) of a layer's largest value."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(values), values.shape))


def check_conv(answer):
    """The conv steps as the page shows them, added up: returns the output."""
    for channel in answer["detailed"]:
        products = np.multiply(channel["patch"], channel["weights"])
        assert products.sum() == pytest.approx(channel["sum"], **CLOSE)
        assert answer["channel_sums"][channel["channel"]] == pytest.approx(channel["sum"], **CLOSE)
    assert len(answer["channel_sums"]) == answer["in_channels"]
    assert sum(answer["channel_sums"]) == pytest.approx(answer["weighted_sum"], **CLOSE)
    norm = answer["batch_norm"]
    scale = norm["gamma"] / np.sqrt(norm["variance"] + norm["eps"])
    assert norm["scale"] == pytest.approx(scale, **CLOSE)
    assert norm["shift"] == pytest.approx(norm["beta"] - norm["mean"] * scale, **CLOSE)
    before = answer["weighted_sum"] * norm["scale"] + norm["shift"]
    assert answer["before_relu"] == pytest.approx(before, **CLOSE)
    assert answer["output"] == max(0.0, answer["before_relu"])
    return answer["output"]


def test_conv1_arithmetic_is_the_networks_value_with_the_models_weights(client, direct):
    model, stages, _, _ = direct
    weights = model.conv1[0].weight.detach().numpy()
    paper = (0 - network.MNIST_MEAN) / network.MNIST_STD
    unit, y, x = strongest(stages["conv1"])
    # The strongest place, one on the border (the filter reads zeros past the
    # edge) and one over blank paper.
    for where in ((unit, y, x), (unit, 0, 5), (3, 2, 2)):
        answer = ask(client, layer="conv1", map=where[0], y=where[1], x=where[2])
        assert answer["kind"] == "conv" and answer["in_channels"] == 1
        assert answer["bias"] is None
        assert check_conv(answer) == pytest.approx(stages["conv1"][where], **CLOSE)
        assert answer["network"] == pytest.approx(stages["conv1"][where], abs=1e-6)
        (channel,) = answer["detailed"]
        np.testing.assert_allclose(channel["weights"], weights[where[0], 0].ravel(), rtol=1e-6)
        # The patch is the normalised input, zeros past the border.
        padded = np.pad((stages["input"] - network.MNIST_MEAN) / network.MNIST_STD, 1)
        expected = padded[where[1]:where[1] + 3, where[2]:where[2] + 3].ravel()
        np.testing.assert_allclose(channel["patch"], expected, rtol=1e-5, atol=1e-6)
        pixels = np.pad(stages["input"], 1, constant_values=np.nan)[
            where[1]:where[1] + 3, where[2]:where[2] + 3].ravel()
        for shown, pixel, value in zip(answer["pixels"], pixels, channel["patch"], strict=True):
            if np.isnan(pixel):
                assert shown is None and value == 0.0
            else:
                assert shown == pytest.approx(pixel, abs=1e-6)
    assert answer["detailed"][0]["patch"] == pytest.approx([paper] * 9, abs=1e-5)
    assert stages["conv1"][unit, y, x] > 0


def test_deeper_conv_arithmetic_adds_up_every_channel(client, direct):
    _, stages, _, _ = direct
    for layer, reads in (("conv2", 32), ("conv4", 64)):
        where = strongest(stages[layer])
        answer = ask(client, layer=layer, map=where[0], y=where[1], x=where[2])
        assert answer["in_channels"] == reads and len(answer["detailed"]) == 4
        # The detailed channels are those that contribute most.
        sizes = sorted(np.abs(answer["channel_sums"]), reverse=True)
        assert [abs(c["sum"]) for c in answer["detailed"]] == pytest.approx(sizes[:4])
        assert check_conv(answer) == pytest.approx(stages[layer][where], **CLOSE)
        assert answer["output"] > 0


def test_pool_cell_is_the_largest_of_its_window(client, direct):
    _, stages, _, _ = direct
    for layer, reads in (("pool1", "conv2"), ("pool2", "conv4")):
        unit, y, x = strongest(stages[layer])
        answer = ask(client, layer=layer, map=unit, y=y, x=x)
        assert answer["kind"] == "pool" and answer["reads"] == reads
        window = stages[reads][unit, 2 * y:2 * y + 2, 2 * x:2 * x + 2].ravel()
        np.testing.assert_allclose(answer["window"], window, rtol=1e-6)
        assert max(answer["window"]) == answer["output"]
        assert answer["output"] == pytest.approx(stages[layer][unit, y, x], abs=1e-6)


def test_dense_neuron_is_its_top_products_the_rest_and_the_bias(client, direct):
    model, stages, _, _ = direct
    unit = int(np.argmax(stages["dense"]))
    answer = ask(client, layer="dense", map=unit)
    assert answer["kind"] == "dense" and answer["inputs"] == 64 * 7 * 7
    inputs = stages["pool2"].ravel()
    weights = model.dense.weight.detach().numpy()[unit]
    for product in answer["top"]:
        assert product["input"] == pytest.approx(inputs[product["index"]], abs=1e-6)
        assert product["input"] == pytest.approx(
            stages["pool2"][product["map"], product["y"], product["x"]], abs=1e-6)
        assert product["weight"] == pytest.approx(float(weights[product["index"]]), rel=1e-6)
        assert product["product"] == pytest.approx(product["input"] * product["weight"], **CLOSE)
    assert len(answer["top"]) == 12 and answer["rest_count"] == 3136 - 12
    total = sum(p["product"] for p in answer["top"]) + answer["rest_sum"]
    assert total == pytest.approx(answer["weighted_sum"], **CLOSE)
    assert answer["before_relu"] == pytest.approx(total + answer["bias"], **CLOSE)
    assert answer["output"] == pytest.approx(stages["dense"][unit], **CLOSE)
    assert answer["output"] > 0


def test_softmax_is_the_formula_with_the_scores_and_temperature_plugged_in(client, direct):
    _, stages, probabilities, temperature = direct
    for digit in (7, 1):
        answer = ask(client, layer="softmax", map=digit)
        assert answer["temperature"] == pytest.approx(temperature)
        np.testing.assert_allclose(answer["logits"], stages["logits"], rtol=1e-6)
        exps = np.exp(np.array(answer["logits"]) / answer["temperature"] - answer["exp_shift"])
        np.testing.assert_allclose(answer["exp"], exps, rtol=1e-9)
        assert sum(answer["exp"]) == pytest.approx(answer["exp_sum"], rel=1e-12)
        shown = answer["exp"][digit] / answer["exp_sum"]
        assert answer["output"] == pytest.approx(shown, rel=1e-12)
        # The probability the game and the API serve for this drawing.
        assert answer["output"] == pytest.approx(probabilities[digit], rel=1e-9, abs=1e-12)
        assert answer["network"] == pytest.approx(probabilities[digit], rel=1e-9, abs=1e-12)
        score = answer["score"]
        total = sum(p["product"] for p in score["top"]) + score["rest_sum"]
        assert total == pytest.approx(score["weighted_sum"], **CLOSE)
        assert score["output"] == pytest.approx(total + score["bias"], **CLOSE)
        assert score["output"] == pytest.approx(stages["logits"][digit], **CLOSE)
    assert np.argmax(stages["logits"]) == 7


@pytest.mark.parametrize(("where", "reason"), [
    ({}, "'layer' must be one of conv1"),
    ({"layer": "conv9", "map": 0}, "'layer' must be one of"),
    ({"layer": "conv1", "map": 32},
     "'map' (the map) must be a whole number from 0 to 31 for conv1"),
    ({"layer": "conv3", "map": 0, "y": 14}, "'y' must be a whole number from 0 to 13 for conv3"),
    ({"layer": "pool2", "map": 0, "x": -1}, "'x' must be a whole number from 0 to 6 for pool2"),
    ({"layer": "conv1", "map": True}, "'map' (the map) must be a whole number"),
    ({"layer": "conv1", "map": 1.5}, "'map' (the map) must be a whole number"),
    ({"layer": "dense", "map": 128}, "'map' (the neuron) must be a whole number from 0 to 127"),
    ({"layer": "dense", "map": 3, "y": 1}, "'y' must be a whole number from 0 to 0 for dense"),
    ({"layer": "softmax", "map": 10}, "'map' (the digit) must be a whole number from 0 to 9"),
])
def test_places_that_do_not_exist_are_refused_with_the_reason(client, shipped, where, reason):
    response = client.post(URL, data=json.dumps({**SEVEN, **where}),
                           content_type="application/json")
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_bad_drawings_and_no_model(client, db):
    response = client.post(URL, data=json.dumps({"layer": "conv1", "map": 0, "strokes": "x"}),
                           content_type="application/json")
    assert response.status_code == 400
    response = client.post(URL, data="layer=conv1", content_type="text/plain")
    assert response.status_code == 415
    response = client.get(URL)
    assert response.status_code == 405
    response = client.post(URL, data=json.dumps({**SEVEN, "layer": "conv1", "map": 0}),
                           content_type="application/json")
    assert response.status_code == 503 and "no model" in response.json()["error"]


def test_a_ready_input_works_too_and_one_drawing_costs_one_forward_pass(client, direct):
    _, stages, _, _ = direct
    image = stages["input"].round(4).tolist()
    for layer in neuron.LAYERS:
        response = client.post(URL, data=json.dumps({"input": image, "layer": layer, "map": 1}),
                               content_type="application/json")
        assert response.status_code == 200, (layer, response.content)
        assert len(response.content) <= 15_000
    assert (neuron.forward_cache.misses, neuron.forward_cache.hits) == (1, len(neuron.LAYERS) - 1)


def test_lesson_one_sends_conv1s_filters_of_the_served_model(client, shipped):
    import re
    from html import unescape

    model, _ = versions.load_version(shipped)
    html = client.get("/learn/how-it-works/").content.decode()
    filters = json.loads(re.search(r'<script id="conv1-filters" type="application/json">(.*?)'
                                   r"</script>", html, re.S).group(1))
    weights = model.conv1[0].weight.detach().numpy()[:, 0].reshape(32, 9)
    np.testing.assert_allclose(filters["weights"], weights, atol=5e-5)
    assert filters["peak"] == pytest.approx(np.abs(weights).max(), abs=5e-5)
    assert filters["flipped"] == [] and filters["version"] == "shipped"
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert "the 32 filters themselves" in words and "Click any map" in words
    assert "data-filters" in html and 'data-neuron-url="/learn/api/neuron"' in html

    # A filter whose batch-norm scale is negative is counted as turned round.
    model.conv1[1].weight.data[3] *= -1
    assert neuron.conv1_filters(model)["flipped"] == [3]
