"""The teaching pages' second edition in headless Chromium against a real Daphne
server serving the shipped model.

Lesson 2 shows an MNIST digit in its drawing box and runs the open-4
experiment; lesson 1 shows one neuron's arithmetic for a clicked map and
position, and conv1's filters; a drawing travels in a link and across
lessons; Escape leaves the drawing alone and the live region speaks on
pen-up only. Screenshots go to artifacts/teaching-lab-*.png.
"""

import numpy as np
import pytest

from tests.live import LiveServer
from tests.test_teaching_browser import canvas_pixels, stroke, wait_for_answer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_dir):
    """A server with MNIST and the shipped model (migrations register it)."""
    live = LiveServer(tmp_path_factory.mktemp("teaching-lab"), env={
        "MNIST_DATA_DIR": str(mnist_dir),
        "TEACHING_MNIST_LIMIT": "2000",
    })
    live.start()
    yield live
    live.stop()


def bar(page, digit):
    return float(page.get_attribute(f"[data-probabilities] li:nth-child({digit + 1})",
                                    "data-probability"))


def test_lesson_two_shows_the_mnist_digit_and_runs_the_open_four_experiment(
        server, page, mnist_dir, artifacts_dir):
    from trainer.mnist import load_split

    images, _ = load_split("test", data_dir=mnist_dir, download=False)
    page.goto(server.url + "/learn/attention/?mnist=42")
    root = "[data-attention]"
    count = wait_for_answer(page, root, 0)
    page.wait_for_selector("[data-sample-image][data-painted]", state="visible")
    width, height, data = canvas_pixels(page, "[data-sample-image]")
    assert (width, height) == (28, 28)
    shades = np.array(data, dtype=float).reshape(28, 28, 4)[..., 0]
    np.testing.assert_allclose(shades, 255 * (1 - images[42] / 255.0), atol=1.5)
    assert "scanned digit" in page.text_content("[data-counterfactual]")

    # The experiment: the open 4 asks about 9, then one stroke closes the top.
    page.click('[data-activity="open-four"]')
    count = wait_for_answer(page, root, count)
    page.wait_for_selector("[data-sample-image]", state="hidden")
    assert page.is_checked('input[name="target"][value="9"]')
    assert page.text_content("[data-guess-digit]") == "4"
    before = bar(page, 9)
    assert before < 0.001
    assert page.is_enabled('[data-activity="close-top"]')
    page.click('[data-activity="close-top"]')
    wait_for_answer(page, root, count)
    after = bar(page, 9)
    assert after > 0.3
    line = page.locator("[data-counterfactual]")
    assert float(line.get_attribute("data-before")) == pytest.approx(before)
    assert float(line.get_attribute("data-after")) == pytest.approx(after)
    assert "with 2 strokes" in line.text_content() and "with your last stroke" in line.text_content()
    assert page.is_disabled('[data-activity="close-top"]')
    page.screenshot(path=str(artifacts_dir / "teaching-lab-counterfactual.png"), full_page=True)

    # A stroke of the learner's own is compared with the drawing before it.
    count = int(page.get_attribute(root, "data-updates"))
    stroke(page, page.locator("canvas[data-pad]"), [(0.2, 0.9), (0.3, 0.9)])
    page.wait_for_function(
        "() => document.querySelector('[data-counterfactual]').textContent.includes('with 3 strokes')",
        timeout=30_000)
    assert page.js_errors == []
