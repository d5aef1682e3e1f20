"""Lesson 1's deeper maps in headless Chromium against a real Daphne server.

- The neuron panel shows, for a conv3 map and a dense neuron, the training
  digits that excite it most: the labels the page was given, a sprite row
  that loads, and for conv1 (whose filters are painted) nothing.
- The filter slides over its input on Play: the output fills in position by
  position, Pause stops it and the panel computes the arithmetic of the
  position reached, whose output is the number the animation showed there;
  with prefers-reduced-motion it moves a whole row at a time.
- axe-core finds no serious violation with the strip or a paused animation
  on show; the colour keys write their numbers with signs.
"""

import json

import pytest

from recognizer.teaching import share
from tests.live import LiveServer
from tests.support import SEVEN, wait_until
from tests.test_teaching_browser import wait_for_answer
from tests.test_teaching_lab_browser import wait_for_neuron
from tests.test_teaching_pages_browser import axe_violations

pytestmark = pytest.mark.browser

URL = f"/learn/how-it-works/?d={share.encode(SEVEN)}"


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_dir):
    live = LiveServer(tmp_path_factory.mktemp("teaching-maps"), env={
        "MNIST_DATA_DIR": str(mnist_dir),
        "TEACHING_MNIST_LIMIT": "500",
        "TEACHING_TOP_DIGITS_SAMPLE": "600",
    })
    live.start()
    yield live
    live.stop()


def top_digits_data(page):
    text = page.evaluate("document.getElementById('top-digits')?.textContent ?? 'null'")
    return json.loads(text)


def open_map(page, layer, after=0):
    page.locator(f'[data-step="{layer}"]').scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => document.querySelector('[data-maps=\"{layer}\"]').dataset.tile", timeout=30_000)
    page.focus(f'[data-maps="{layer}"]')
    page.keyboard.press("Enter")
    return wait_for_neuron(page, after)


def test_the_panel_shows_the_training_digits_that_excite_a_map_most(server, page, artifacts_dir):
    # The first view starts the computation in the background; the page is
    # reloaded until it is done (600 digits: seconds).
    page.goto(server.url + URL)

    def ready():
        data = top_digits_data(page)
        if data and "layers" in data:
            return True
        assert data["preparing"] and "being worked out" in data["note"]
        page.reload()
        return False

    wait_until(ready, timeout=120, what="the top digits")
    data = top_digits_data(page)
    assert data["shown"] == 6 and data["sample"] == 600
    wait_for_answer(page, "[data-explorer]", 0)

    answers = open_map(page, "conv3")
    figure = page.locator("[data-neuron-top]")
    assert figure.get_attribute("data-state") == "ready"
    assert figure.get_attribute("data-labels") == data["layers"]["conv3"]["labels"][:6]
    caption = page.text_content("[data-neuron-top-caption]")
    assert "Of 600 MNIST training digits, the 6 that excite this map most" in caption
    strip = page.locator("[data-neuron-top-strip]")
    assert "most: " in strip.get_attribute("aria-label")
    # The sprite behind the strip loads: 6 digits across, a row per map.
    size = page.evaluate("""async (url) => {
        const image = new Image(); image.src = url; await image.decode();
        return [image.naturalWidth, image.naturalHeight]; }""", data["layers"]["conv3"]["sprite"])
    assert size == [6 * 28, 64 * 28]
    assert data["layers"]["conv3"]["sprite"] in strip.evaluate(
        "s => getComputedStyle(s).backgroundImage")
    # The next map: the strip's row follows.
    page.focus("[data-neuron-map]")
    page.keyboard.press("]")
    answers = wait_for_neuron(page, answers)
    assert figure.get_attribute("data-labels") == data["layers"]["conv3"]["labels"][6:12]
    assert strip.evaluate("s => getComputedStyle(s).backgroundPositionY") == "-37px"
    page.locator("[data-neuron]").screenshot(path=str(artifacts_dir / "teaching-top-digits.png"))
    assert axe_violations(page) == []

    # conv1 has its filters instead: no strip.
    open_map(page, "conv1", answers)
    assert figure.is_hidden()
    assert page.js_errors == []


def test_the_filter_slides_over_its_input_and_pauses_on_a_position(server, page, artifacts_dir):
    page.goto(server.url + URL)
    wait_for_answer(page, "[data-explorer]", 0)
    answers = open_map(page, "conv3")
    controls = page.locator("[data-neuron-play-controls]")
    assert controls.is_visible()
    button = page.locator("[data-neuron-play]")
    assert button.get_attribute("aria-pressed") == "false"

    button.click()
    page.wait_for_function(
        "() => document.querySelector('[data-neuron-play-controls]').dataset.state === 'done'",
        timeout=60_000)
    assert controls.get_attribute("data-filled") == str(14 * 14)
    assert button.get_attribute("aria-pressed") == "false"
    assert page.text_content("[data-neuron-play-status]").startswith("row 14, column 14: ")

    # Again, paused part way: the panel shows the arithmetic of that position.
    button.click()
    assert button.get_attribute("aria-pressed") == "true"
    page.wait_for_function(
        "() => Number(document.querySelector('[data-neuron-play-controls]').dataset.filled) > 20",
        timeout=60_000)
    button.click()
    assert controls.get_attribute("data-state") == "paused"
    filled = int(controls.get_attribute("data-filled"))
    assert 20 < filled < 14 * 14
    shown = page.text_content("[data-neuron-play-status]")
    y, x = divmod(filled - 1, 14)
    assert shown.startswith(f"row {y + 1}, column {x + 1}: ")
    answers = wait_for_neuron(page, answers)
    panel = page.locator("[data-neuron]")
    assert [panel.get_attribute(f"data-{k}") for k in ("y", "x")] == [str(y), str(x)]
    # The arithmetic ends on the number the animation showed there: the
    # map's own value, sent in 8 bits (within 0.03 for conv3's range).
    output = float(page.get_attribute("[data-neuron] [data-neuron-output]", "data-neuron-output"))
    assert float(shown.split(": ")[1].replace("−", "-")) == pytest.approx(output, abs=0.03)
    page.locator("[data-neuron]").screenshot(path=str(artifacts_dir / "teaching-kernel-slide.png"))
    assert axe_violations(page) == []
    # Still paused: nothing moves however many frames pass.
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => "
                  "requestAnimationFrame(() => requestAnimationFrame(done))))")
    assert int(controls.get_attribute("data-filled")) == filled

    # With reduced motion, whole rows at a time.
    page.emulate_media(reduced_motion="reduce")
    button.click()  # play on from the paused position
    page.wait_for_function(
        "(from) => Number(document.querySelector('[data-neuron-play-controls]').dataset.filled)"
        " > from", arg=filled, timeout=60_000)
    button.click()
    now = int(controls.get_attribute("data-filled"))
    assert now % 14 == 0 and now > filled
    assert page.js_errors == []


def test_the_colour_keys_write_their_numbers_with_signs(server, page):
    page.goto(server.url + URL)
    wait_for_answer(page, "[data-explorer]", 0)
    key = page.locator("[data-filters-key]")
    peak = json.loads(page.text_content("#conv1-filters"))["peak"]
    assert key.get_attribute("data-labels") == f"−{peak:.2f} 0 +{peak:.2f}"
    assert f"−{peak}" in key.get_attribute("aria-label")
    # The key's ends are the scale's ends: dark blue, white, orange.
    ends = key.evaluate("""c => { const ctx = c.getContext('2d');
        const at = (x) => Array.from(ctx.getImageData(x, 10, 1, 1).data.slice(0, 3));
        return [at(20), at(c.width / 2), at(c.width - 20)]; }""")
    assert ends[1] == [255, 255, 255], ends
    assert ends[0][2] > ends[0][0] + 100 and ends[2][0] > ends[2][2] + 150

    page.goto(server.url + "/learn/attention/")
    labels = page.get_attribute("[data-legend]", "data-labels")
    # A drop in the probability (orange) with a minus, a rise (blue) with a plus.
    assert labels == "−100% −50% −10% 0 +10% +50% +100%"
