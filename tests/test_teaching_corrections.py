"""Lessons 2 and 3 tell the truth about the model being served.

Against the shipped model and its own training record: the training curves
are the comparable ones, and where a version has only the smoothed training
loss the card explains the gap with the floor label smoothing puts under it;
MNIST test is called the gate's test set once it decided an activation; the
"Training digits" line counts every part of the training data; the gradient
map is SmoothGrad, smoother than one gradient, and the page says what it
cannot show; closing the top of the open 4 raises the 9 as the experiment
says; lesson 2 shows an MNIST digit in its drawing box.
"""

import json
import re
from html import unescape

import numpy as np
import pytest
import torch

from recognizer import preprocessing, versions
from recognizer.teaching import explain, modelcard
from tests.support import SEVEN, register_random_model
from tests.teaching_models import CLOSED_FOUR, OPEN_FOUR, register_shipped

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    """Each test gets its own service and attention cache: no model leaks in from another test."""
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))
    explain.attention_cache.clear()


def text(html):
    """The page's words without tags, spaces collapsed, entities read."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def chart_points(html, series):
    """{epoch: value} of a loss chart's points of `series`, from their tooltips."""
    return {int(epoch): float(value) for epoch, value in
            re.findall(re.escape(series) + r", epoch (\d+): ([0-9.]+)<", unescape(html))}


# -- the training curves -----------------------------------------------------------------------


def test_shipped_card_shows_the_comparable_training_loss_and_the_gates_test_set(client,
                                                                                  model_dir):
    shipped = register_shipped()
    curves = shipped.metrics["curves"]
    html = client.get("/learn/model/").content.decode()
    words = text(html)
    # The loss chart's training points are the ones measured like the test,
    # not the running, smoothed ones (0.3277 at the last epoch).
    training = chart_points(html, "training")
    assert training[40] == pytest.approx(curves[-1]["train_eval_loss"], abs=1e-4)
    assert training[40] != pytest.approx(curves[-1]["train_loss"], abs=1e-3)
    tested = chart_points(html, "the gate's test set")
    assert tested[1] == pytest.approx(curves[0]["eval_loss"], abs=1e-4)
    assert "measured exactly like the test line" in words
    # The gap that remains, explained by the training data's mix (58,000 +
    # 58,000 + 22,000 digits) and the numbers at the last epoch.
    assert ("42% MNIST digits as scanned, 42% the same digits redrawn like the site's canvas, "
            "16% digits written in other styles") in words
    assert "at the last epoch 0.061 against 0.053" in words
    # MNIST test decided this version's activation: the card says so.
    assert shipped.metrics["activation"]["reasons"][0].startswith("mnist_test:")
    assert "right on the gate's test set, MNIST test (10000 digits)" in words
    assert "also the gate's test set" in words
    assert "test line is measured on the gate's test set" in words


def test_smoothed_training_loss_alone_is_explained_with_its_floor(client, model_dir):
    version = register_random_model(model_dir, seed=0, activate=True)
    version.training = {"epochs": 2, "label_smoothing": 0.05}
    version.metrics = {"curves": [
        {"epoch": 1, "train_loss": 0.52, "train_accuracy": 0.9, "eval_loss": 0.08,
         "eval_accuracy": 0.975},
        {"epoch": 2, "train_loss": 0.33, "train_accuracy": 0.99, "eval_loss": 0.05,
         "eval_accuracy": 0.99},
    ]}
    version.save()
    html = client.get("/learn/model/").content.decode()
    words = text(html)
    # The floor is PyTorch's own loss for a network that answers exactly the
    # smoothed target: nothing can score lower.
    target = torch.full((1, 10), 0.005)
    target[0, 3] = 0.955
    floor = torch.nn.CrossEntropyLoss(label_smoothing=0.05)(target.log(), torch.tensor([3]))
    assert modelcard.smoothing_floor(0.05) == pytest.approx(float(floor), abs=1e-6)
    assert f"even a perfect answer scores {float(floor):.2f}" in words
    assert "not 100% but 95.5%" in words
    assert "0.330 against 0.050 at the last epoch" in words
    assert "cannot be compared" in words and "measured exactly like" not in words
    # No activation decided by MNIST test was recorded: it is plain "test".
    assert "also the gate's test set" not in words
    assert "test line is measured on the MNIST test digits" in words
    assert not chart_points(html, "the gate's test set")
    assert chart_points(html, "test")[2] == pytest.approx(0.05)


def test_gate_only_counts_a_comparison_on_mnist_test():
    def gated(reasons):
        return modelcard.gated_on_mnist_test({"activation": {"reasons": reasons}})

    assert gated(["mnist_test: 99.67% vs 99.63% (not worse)"])
    assert not gated(["no usable active version to compare with"])
    assert not gated(["mnist_test: not measured on both models"])
    assert not gated(["--no-activate: left inactive"])
    assert not modelcard.gated_on_mnist_test({"activation": "yes"})
    assert not modelcard.gated_on_mnist_test({})


# -- the training data -------------------------------------------------------------------------


def test_training_digits_line_counts_the_canvas_style_and_styles_sets(client, model_dir):
    shipped = register_shipped()
    data = shipped.training["data"]
    html = client.get("/learn/model/").content.decode()
    line = text(re.search(r"<dd data-training-digits>(.*?)</dd>", html, re.S).group(1))
    assert line == (f"{data['train_total']}: {data['mnist_train']} from MNIST, as scanned, "
                    f"{data['canvas_train']} MNIST digits redrawn like the site's canvas, "
                    f"{data['styles_train']} written in handwriting styles from around the world, "
                    f"{data['collected']} drawn by players")
    assert (data["mnist_train"] + data["canvas_train"] + data["styles_train"]
            + data["collected"]) == data["train_total"] == 138000


def test_training_digits_line_of_a_version_without_the_extra_sets(client, model_dir):
    version = register_random_model(model_dir, seed=0, activate=True)
    version.training = {"data": {"mnist_train": 60000, "collected": 25, "train_total": 60025}}
    version.save()
    line = text(re.search(r"<dd data-training-digits>(.*?)</dd>",
                          client.get("/learn/model/").content.decode(), re.S).group(1))
    assert line == "60025: 60000 from MNIST, as scanned, 25 drawn by players"


# -- lesson 2: the gradient map and the experiment ---------------------------------------------


def neighbour_correlation(values):
    """How alike neighbouring pixels are: 1 is smooth, 0 is speckle."""
    across = np.corrcoef(values[:, :-1].ravel(), values[:, 1:].ravel())[0, 1]
    down = np.corrcoef(values[:-1].ravel(), values[1:].ravel())[0, 1]
    return (across + down) / 2


def drawing_input(drawing):
    return np.asarray(preprocessing.strokes_to_input(
        drawing["strokes"], drawing["width"], drawing["height"]), dtype=np.float32)


def test_gradient_map_is_smoothgrad_smoother_than_one_gradient(client, model_dir):
    shipped = register_shipped()
    model, _ = versions.load_version(shipped)
    for drawing, target in ((SEVEN, 7), (OPEN_FOUR, 9), (OPEN_FOUR, 4)):
        response = client.post("/learn/api/attention", data=json.dumps({**drawing,
                                                                          "target": target}),
                               content_type="application/json")
        assert len(response.content) <= 15_000
        answer = response.json()["saliency"]
        assert (answer["method"], answer["samples"], answer["noise"]) == ("smoothgrad", 32, 0.15)
        smooth = np.array(answer["values"]).reshape(28, 28)
        plain = explain.gradient_saliency(model, drawing_input(drawing), target)
        # Measured 0.20-0.24 for one gradient, 0.36-0.38 for SmoothGrad.
        assert neighbour_correlation(smooth) > neighbour_correlation(plain) + 0.08, target


def test_closing_the_open_four_raises_the_nine_more_than_its_gradient_shows(client, model_dir):
    register_shipped()

    def ask(drawing):
        response = client.post("/learn/api/attention", data=json.dumps({**drawing, "target": 9}),
                               content_type="application/json")
        return response.json()

    before, after = ask(OPEN_FOUR), ask(CLOSED_FOUR)
    # common.js says: from 0.03% to 36%.
    assert before["digit"] == 4 and before["probabilities"][9] < 0.001
    assert after["probabilities"][9] > 0.30
    # The pixels the closing stroke inks are not where the gradient map for 9
    # is strongest: most of them rank outside its 50 reddest pixels.
    open_input, closed_input = drawing_input(OPEN_FOUR), drawing_input(CLOSED_FOUR)
    closing = (closed_input - open_input > 0.3) & (open_input < 0.1)
    assert closing.sum() >= 5
    saliency = np.array(before["saliency"]["values"])
    rank = np.empty(784, dtype=int)
    rank[np.argsort(-saliency)] = np.arange(784)
    assert np.mean(rank[closing.ravel()] < 50) < 0.5

    words = text(client.get("/learn/attention/").content.decode())
    assert "What it cannot show" in words and "SmoothGrad" in words
    assert "Draw the stroke that closes the top" in words
    assert "Watch the 9 bar" in words
    assert "see where the network wants the loop closed" not in words


def test_lesson_two_puts_an_mnist_digit_in_the_drawing_box(client, settings, mnist_dir,
                                                             model_dir):
    settings.MNIST_DATA_DIR = mnist_dir
    register_shipped()
    html = client.get("/learn/attention/?mnist=42").content.decode()
    assert "data-sample-image" in html and 'aria-label="MNIST test digit 42' in html
    sample = json.loads(re.search(r'<script id="mnist-sample" type="application/json">(.*?)'
                                  r"</script>", html, re.S).group(1))
    assert sample["index"] == 42 and len(sample["input"]) == 28
