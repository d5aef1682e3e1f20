"""The lessons for readers who do not see colour as most do, or do not see.

The model card's confusion matrix (the shipped model's own) is blue for
right answers and orange for mistakes, with an outlined diagonal, a key of
numbers and the matrix in words; every canvas of the drawing lessons is an
image with a text alternative (or hidden, when it is decoration); the only
live region is the one the pages fill once the pen is up (tested in
Chromium in test_teaching_lab_browser.py, with Escape leaving the drawing).
"""

import re
from html import unescape

import pytest

from recognizer.teaching import charts
from tests.teaching_models import register_shipped

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))


def rgba(fill):
    return tuple(float(v) for v in re.fullmatch(r"rgba\(([^)]*)\)", fill).group(1).split(","))


def test_confusion_matrix_is_blue_and_orange_with_a_labelled_diagonal_and_a_key(client,
                                                                                 model_dir):
    shipped = register_shipped()
    matrix = shipped.metrics["mnist_test"]["confusion_matrix"]
    html = client.get("/learn/model/").content.decode()
    svg = re.search(r'<figure data-confusion>(.*?)</figure>', html, re.S).group(1)
    cells = re.findall(r'<rect class="chart__cell chart__cell--(right|mistake)" x="[^"]+" '
                       r'y="[^"]+" width="[^"]+" height="[^"]+" fill="([^"]+)"><title>true (\d), '
                       r"guessed (\d): (\d+)</title>", svg)
    assert len(cells) == 100
    for kind, fill, true, guessed, count in cells:
        red, green, blue, alpha = rgba(fill)
        assert (kind == "right") == (true == guessed)
        assert int(count) == matrix[int(true)][int(guessed)]
        if true == guessed:
            assert (red, green, blue) == charts.RIGHT_RGB and alpha > 0.8
        else:
            assert (red, green, blue) == charts.MISTAKE_RGB
            share = int(count) / sum(matrix[int(true)])
            assert alpha == pytest.approx(charts.mistake_opacity(share), abs=1e-3)
    # Neither the admin's red nor its green: the pair colour-blind readers confuse.
    assert "rgba(210, 50, 40" not in svg and "rgba(40, 160, 70" not in svg
    # The key: what the diagonal is, and the shades of mistakes with their numbers.
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", svg)).split())
    assert "right (the diagonal)" in words and "mistakes: 0.1% 1% 10%" in words
    # And the same in words for a screen reader: right answers, the biggest mistakes.
    right = sum(matrix[i][i] for i in range(10))
    worst = max((matrix[i][j], i, j) for i in range(10) for j in range(10) if i != j)
    desc = unescape(re.search(r"<desc>(.*?)</desc>", svg).group(1))
    assert desc.startswith(f"{right} of 10000 right. Most common mistakes: "
                           f"{worst[1]} read as {worst[2]}, {worst[0]} times")
    page = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert "blue, outlined diagonal" in page and "green diagonal" not in page


def test_mistake_shades_grow_with_the_share_and_show_a_single_mistake():
    shades = [charts.mistake_opacity(s) for s in (0, 0.001, 0.01, 0.1, 0.5)]
    assert shades[0] == 0 and shades[1] > 0.15 and shades == sorted(shades)
    assert shades[-1] <= 0.9


def test_every_canvas_is_an_image_with_words_or_hidden(client, model_dir, settings, mnist_dir):
    settings.MNIST_DATA_DIR = mnist_dir
    register_shipped()
    for path in ("/learn/how-it-works/", "/learn/attention/", "/learn/attention/?mnist=3",
                 "/learn/how-it-learned/", "/learn/how-it-learned/?mnist=3"):
        html = client.get(path).content.decode()
        canvases = re.findall(r"<canvas [^>]*>", html)
        assert len(canvases) >= 3, path
        for tag in canvases:
            if 'aria-hidden="true"' in tag:
                continue
            assert 'role="img"' in tag, (path, tag)
            label = re.search(r'aria-label="([^"]*)"', tag)
            assert label and len(label.group(1)) > 10, (path, tag)
        # One live region, for what the pages announce once the pen is up;
        # the guess, which changes while drawing, is not one.
        assert html.count("aria-live") == 1, path
        assert re.search(r'<p class="visually-hidden" data-announce aria-live="polite"', html)
