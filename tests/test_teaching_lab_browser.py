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
from tests.support import wait_until
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
    words = line.text_content()
    assert "with 2 strokes" in words and "with your last stroke" in words
    assert page.is_disabled('[data-activity="close-top"]')
    page.screenshot(path=str(artifacts_dir / "teaching-lab-counterfactual.png"), full_page=True)

    # A stroke of the learner's own is compared with the drawing before it.
    count = int(page.get_attribute(root, "data-updates"))
    stroke(page, page.locator("canvas[data-pad]"), [(0.2, 0.9), (0.3, 0.9)])
    page.wait_for_function(
        "() => document.querySelector('[data-counterfactual]').textContent"
        ".includes('with 3 strokes')",
        timeout=30_000)
    assert page.js_errors == []


def shipped_forward(drawing):
    """The shipped model's own stages and probabilities for a drawing, computed here."""
    import torch

    from recognizer import calibration, preprocessing, versions
    from recognizer.checkpoints import load_checkpoint

    model, metadata = load_checkpoint(versions.BUILTIN_DIR / "digitcnn-v2-styles-seed1.pt")
    image = preprocessing.strokes_to_input(drawing["strokes"], drawing["width"], drawing["height"])
    with torch.inference_mode():
        logits, stages = model.forward_with_activations(
            torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None])
    probabilities = calibration.probabilities(logits, calibration.temperature_of(metadata))
    return {k: v[0].numpy() for k, v in stages.items()}, probabilities[0].numpy(), model


def click_canvas(page, selector, x, y):
    """Click a canvas at (x, y) of its own pixels.

    Through the locator, which scrolls it into view and checks that the click
    reaches it (not the sticky header above it).
    """
    canvas = page.locator(selector)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    width, height = canvas.evaluate("c => [c.width, c.height]")
    canvas.click(position={"x": (x + 0.5) * box["width"] / width,
                           "y": (y + 0.5) * box["height"] / height})


def wait_for_neuron(page, after):
    page.wait_for_function(
        "(after) => { const p = document.querySelector('[data-neuron]');"
        " return !p.hidden && p.dataset.state === 'ready' && Number(p.dataset.answers) > after; }",
        arg=after, timeout=30_000)
    return int(page.get_attribute("[data-neuron]", "data-answers"))


def shown(page, selector):
    """The numbers of the cells matching `selector`: (exact, as written)."""
    cells = page.eval_on_selector_all(
        selector, "cells => cells.map(c => [Number(c.dataset.value), c.firstChild.textContent])")
    return (np.array([c[0] for c in cells]),
            np.array([float(c[1].replace("−", "-")) for c in cells]))


def number(page, attribute):
    return float(page.get_attribute(f"[data-neuron] [{attribute}]", attribute))


def test_clicking_a_map_and_a_position_shows_the_neurons_arithmetic(server, page, artifacts_dir):
    import json

    bodies = []
    page.on("request", lambda r: r.url.endswith("/learn/api/neuron") and bodies.append(r))
    page.goto(server.url + "/learn/how-it-works/")
    root = "[data-explorer]"
    page.click('[data-example="7"]')
    wait_for_answer(page, root, 0)
    page.locator('[data-step="conv1"]').scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('[data-maps=\"conv1\"]').dataset.drawing"
                           " === document.querySelector('[data-explorer]').dataset.drawing")

    # conv1's filters are painted beside the maps, from the model's own weights.
    assert page.get_attribute("[data-filters]", "data-painted") == "32"

    # Map 6 (index 5), at row 9, column 12 of the 28x28 map: tiles are 56 px
    # (2 px a value) with 3 px between them, 8 to a row.
    # The page shrinks the tiles to about 1.4 screen pixels a value, and the
    # browser rounds the pointer to whole pixels: the place may be one off.
    unit, y, x = 5, 8, 11
    click_canvas(page, '[data-maps="conv1"]', unit * 59 + 2 * x, 2 * y)
    answers = wait_for_neuron(page, 0)
    panel = "[data-neuron]"

    def place():
        return [int(page.get_attribute(panel, f"data-{k}")) for k in ("map", "y", "x")]

    assert page.get_attribute(panel, "data-layer") == "conv1"
    assert place()[0] == unit and abs(place()[1] - y) <= 1 and abs(place()[2] - x) <= 1
    unit, y, x = place()
    assert page.text_content("[data-neuron-title]") == f"conv1, map 6, row {y + 1}, column {x + 1}"
    drawing = {k: v for k, v in json.loads(bodies[-1].post_data).items()
               if k in ("width", "height", "strokes")}
    stages, probabilities, model = shipped_forward(drawing)

    def check_conv(unit, y, x):
        patch, patch_text = shown(page, "[data-neuron] .neuron__grid--patch td")
        weights, weights_text = shown(page, "[data-neuron] .neuron__grid--weights td")
        np.testing.assert_allclose(weights, model.conv1[0].weight.detach().numpy()[unit, 0].ravel(),
                                   rtol=1e-6)
        # Added up as written on the page (three decimals) and exactly.
        total = number(page, "data-neuron-sum")
        assert abs(np.dot(patch_text, weights_text) - total) < 0.02
        assert np.dot(patch, weights) == pytest.approx(total, abs=1e-5)
        scale, shift = number(page, "data-neuron-scale"), number(page, "data-neuron-shift")
        output = number(page, "data-neuron-output")
        assert output == pytest.approx(max(0.0, total * scale + shift), abs=1e-5)
        # The network's own activation there, computed in this process.
        assert output == pytest.approx(float(stages["conv1"][unit, y, x]), abs=1e-4)
        assert number(page, "data-neuron-network") == pytest.approx(output, abs=1e-5)
        assert "the same" in page.text_content(".neuron__check")

    check_conv(unit, y, x)
    page.screenshot(path=str(artifacts_dir / "teaching-lab-neuron-conv1.png"), full_page=True)

    # Another position, picked in the enlarged map (8 px a value).
    y2, x2 = 14, 16
    click_canvas(page, "[data-neuron-map]", 8 * x2 + 3, 8 * y2 + 3)
    answers = wait_for_neuron(page, answers)
    assert (page.get_attribute(panel, "data-y"), page.get_attribute(panel, "data-x")) == \
        (str(y2), str(x2))
    check_conv(unit, y2, x2)
    # And by keyboard: one step right.
    page.focus("[data-neuron-map]")
    page.keyboard.press("ArrowRight")
    answers = wait_for_neuron(page, answers)
    check_conv(unit, y2, x2 + 1)

    # A pooling cell: the largest of its window.
    page.locator('[data-step="pool1"]').scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('[data-maps=\"pool1\"]').dataset.drawing"
                           " === document.querySelector('[data-explorer]').dataset.drawing")
    click_canvas(page, '[data-maps="pool1"]', 2 * (14 * 4 + 3) + 4 * 6 + 1, 4 * 7 + 1)
    answers = wait_for_neuron(page, answers)
    assert page.get_attribute(panel, "data-layer") == "pool1"
    unit, y, x = place()
    assert unit == 2 and abs(y - 7) <= 1 and abs(x - 6) <= 1
    window, _ = shown(page, "[data-neuron] .neuron__grid--window td")
    assert number(page, "data-neuron-output") == window.max()
    assert window.max() == pytest.approx(float(stages["pool1"][unit, y, x]), abs=1e-5)
    np.testing.assert_allclose(window, stages["conv2"][unit, 2 * y:2 * y + 2, 2 * x:2 * x + 2]
                               .ravel(), atol=1e-5)

    # A dense neuron (squares of 20 px, 16 to a row) and a digit's bar.
    page.locator('[data-step="dense"]').scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('[data-dense]').dataset.drawing"
                           " === document.querySelector('[data-explorer]').dataset.drawing")
    click_canvas(page, "[data-dense]", 20 * 3 + 10, 20 * 1 + 10)
    answers = wait_for_neuron(page, answers)
    assert page.get_attribute(panel, "data-map") == "19"
    assert number(page, "data-neuron-output") == pytest.approx(float(stages["dense"][19]), abs=1e-4)
    products, _ = shown(page, "[data-neuron] [data-neuron-product] td[data-value]")
    total = products.sum() + number(page, "data-neuron-rest")
    assert total == pytest.approx(number(page, "data-neuron-sum"), abs=1e-5)

    page.locator('[data-step="probabilities"] [data-probabilities] li').nth(7).click()
    answers = wait_for_neuron(page, answers)
    assert page.text_content("[data-neuron-title]") == "The probability of 7"
    exps, _ = shown(page, "[data-neuron] .neuron__softmax tbody td[data-value]")
    assert exps[7] / exps.sum() == pytest.approx(number(page, "data-neuron-output"), rel=1e-9)
    assert number(page, "data-neuron-output") == pytest.approx(float(probabilities[7]), rel=1e-6)
    page.screenshot(path=str(artifacts_dir / "teaching-lab-neuron-softmax.png"), full_page=True)
    assert page.js_errors == []


def distance_to_segment(point, a, b):
    p, a, b = (np.asarray(v, dtype=float) for v in (point, a, b))
    span = b - a
    t = np.clip(np.dot(p - a, span) / max(np.dot(span, span), 1e-9), 0, 1)
    return float(np.hypot(*(p - a - t * span)))


# Scroll lesson 1's pool2 card onto the screen; resolves once the page's own
# IntersectionObserver (created before this one) has been told.
SCROLL_TO_POOL2 = """() => new Promise((seen) => {
    const card = document.querySelector('[data-step="pool2"]');
    new IntersectionObserver((entries, me) => {
      if (entries.some((e) => e.isIntersecting)) { me.disconnect(); setTimeout(seen, 0); }
    }).observe(card);
    card.scrollIntoView();
})"""


def test_a_drawing_travels_in_a_link_and_from_lesson_to_lesson(server, page):
    import json
    import urllib.parse

    from recognizer.teaching import share
    from tests.support import SEVEN

    # The page's encoder writes what the server's decoder reads: the same code
    # as share.encode for a drawing that fits, and a simplified one that still
    # fits for the pad's longest drawing (2,000 points).
    page.goto(server.url + "/learn/")
    # A Lissajous curve of 2,000 points 2-3 pixels apart, like a long pad stroke.
    scribble = {"width": 400, "height": 400, "strokes": [[
        [200 + 180 * np.sin(0.0045 * a * 3), 200 + 180 * np.sin(0.0045 * a * 2)]
        for a in range(2000)]]}
    # Every point a corner 80 pixels from the last: nothing to leave out.
    zigzag = {"width": 400, "height": 400, "strokes": [[
        [100 + 80 * (a % 2), 20 + a * 0.18] for a in range(2000)]]}
    codes = page.evaluate(
        """async (drawings) => {
            const share = await import('/static/js/teaching/share.js');
            return drawings.map((d) => share.encodeDrawing(d));
        }""", [SEVEN, scribble, zigzag])
    assert codes[0] == share.encode(SEVEN)
    assert len(share.encode(scribble)) > 2400 >= len(codes[1])
    simplified = [p[:2] for p in share.decode(codes[1])["strokes"][0]]
    assert 50 < len(simplified) < 2000
    # Within the largest tolerance tried (8 pixels) of the curve, whole pixels aside.
    for x, y in np.array(scribble["strokes"][0])[::25]:
        segments = zip(simplified[:-1], simplified[1:], strict=True)
        assert min(distance_to_segment((x, y), a, b) for a, b in segments) < 9
    assert codes[2] is None

    # A drawing made in lesson 1 ...
    bodies = []
    page.on("request", lambda r: r.url.endswith("/learn/api/stages") and bodies.append(r))
    page.goto(server.url + "/learn/how-it-works/")
    root = "[data-explorer]"
    stroke(page, page.locator("canvas[data-pad]"), [(0.5, 0.15), (0.5, 0.85)])
    count = wait_for_answer(page, root, 0)
    # The address follows the drawing once the pen is up; the last drawing
    # sent (after pen-up) is the one it holds.
    def address_code():
        query = urllib.parse.urlparse(page.evaluate("location.href")).query
        return urllib.parse.parse_qs(query).get("d", [""])[0]

    def last_drawing():
        return json.loads(bodies[-1].post_data)

    # A race: a card scrolled onto the screen while the pen-up drawing's
    # answer is on its way. The card's request, for the drawing answered
    # before, once went after it, so the page ended on an older drawing than
    # the one on the pad. The pen-up drawing's request is held here until
    # the card is on screen.
    held, releasing = [], []

    def hold(route):
        if releasing:
            route.continue_()
        else:
            held.append(route)

    page.route("**/learn/api/stages", hold)
    stroke(page, page.locator("canvas[data-pad]"), [(0.3, 0.2), (0.55, 0.15)])
    pen_up = []

    def only_the_pen_up_drawing_held():
        # Playwright calls `hold` only while this thread is in one of its calls.
        code = address_code()
        while held and not pen_up:
            route = held.pop(0)
            if share.encode(json.loads(route.request.post_data)) == code:
                pen_up.append(route)
            else:
                route.continue_()
        return bool(pen_up)

    wait_until(only_the_pen_up_drawing_held, what="the pen-up drawing's request")
    page.evaluate(SCROLL_TO_POOL2)
    releasing.append(True)
    for route in pen_up + held:
        route.continue_()
    wait_until(lambda: address_code() and "pool2" in last_drawing().get("stages", []),
               what="the scrolled-to card asked for")
    assert share.encode(last_drawing()) == address_code(), (
        "a request for an older drawing went after the pen-up drawing's")
    wait_for_answer(page, root, count)
    wait_until(lambda: len(last_drawing()["strokes"]) == 2
               and address_code() == share.encode(last_drawing()), what="the address's drawing")
    page.evaluate("window.scrollTo(0, 0)")
    drawing = last_drawing()
    page.click("[data-share-copy]")
    link = page.input_value("[data-share-link]")
    assert link.startswith(server.url + "/learn/how-it-works/?d=")
    code = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["d"][0]
    assert code == address_code()
    assert [[p[:2] for p in s] for s in share.decode(code)["strokes"]] == [
        [list(p) for p in share.whole_points(s, drawing["width"], drawing["height"])]
        for s in drawing["strokes"]]
    guess = page.text_content("[data-guess-digit]")

    # ... opens from its link (on the pad, with the same answer) ...
    page.goto(link)
    wait_for_answer(page, root, 0)
    assert page.text_content("[data-guess-digit]") == guess
    inked = page.eval_on_selector("canvas[data-pad]", """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert inked > 100

    # ... goes on to lesson 2 by the lesson links, and comes back past the model page.
    page.click('.lesson-nav a[href*="/learn/attention/"]')
    page.wait_for_url("**/learn/attention/?d=*")
    wait_for_answer(page, "[data-attention]", 0)
    assert page.text_content("[data-guess-digit]") == guess
    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["d"][0] == code
    page.click('.lesson-nav a[href^="/learn/model/"]')
    page.wait_for_url("**/learn/model/")
    page.wait_for_function(
        "() => document.querySelector('.lesson-nav a[data-carry]').href.includes('d=')")
    page.click('.lesson-nav a[href*="/learn/how-it-works/"]')
    page.wait_for_url("**/learn/how-it-works/?d=*")
    wait_for_answer(page, root, 0)
    assert page.text_content("[data-guess-digit]") == guess

    # Clearing the drawing takes it out of the address and the links.
    page.click('[data-pad-action="clear"]')
    page.wait_for_function("() => !location.search.includes('d=')")
    assert "d=" not in page.get_attribute('.lesson-nav a[href*="/learn/attention/"]', "href")
    assert page.js_errors == []


def test_the_pages_speak_on_pen_up_only_and_escape_keeps_the_drawing(server, page):
    page.goto(server.url + "/learn/how-it-works/")
    root = "[data-explorer]"
    region = "[data-announce]"
    pad = page.locator("canvas[data-pad]")
    box = pad.bounding_box()

    def at(fx, fy):
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    # Pen down, part of a stroke, until the page has drawn an answer for it.
    page.mouse.move(*at(0.5, 0.1))
    page.mouse.down()
    for i in range(1, 7):
        page.mouse.move(*at(0.5, 0.1 + 0.05 * i))
    wait_for_answer(page, root, 0)
    count = int(page.get_attribute(root, "data-updates"))
    # Answers arrive while the pen is down; the live region stays silent.
    for i in range(7, 15):
        page.mouse.move(*at(0.5, 0.1 + 0.05 * i))
    page.wait_for_function(f"() => Number(document.querySelector('{root}').dataset.updates)"
                           f" > {count}", timeout=30_000)
    assert page.text_content(region) == ""
    page.mouse.up()
    page.wait_for_function(f"() => document.querySelector('{region}').textContent"
                           ".startsWith('The network reads')", timeout=30_000)
    guess = page.text_content("[data-guess-digit]")
    assert page.text_content(region).startswith(f"The network reads {guess},")
    assert page.get_attribute(region, "data-count") == "1"
    # The canvases describe what they show now.
    assert "pixels hold some ink" in page.get_attribute('[data-image="input"]', "aria-label")
    assert "Your drawing: 1 stroke" in page.get_attribute("canvas[data-pad]", "aria-label")

    # Escape, from the page or from the pad, leaves the drawing alone.
    page.keyboard.press("Escape")
    pad.focus()
    page.keyboard.press("Escape")
    assert page.get_attribute(root, "data-state") == "ready"
    assert page.text_content("[data-guess-digit]") == guess
    assert "d=" in page.evaluate("location.search")

    # Heat maps and filters: blue against, orange for; no red.
    colours = page.evaluate("""async () => {
        const common = await import('/static/js/teaching/common.js');
        return [common.divergingColour(-1), common.divergingColour(0), common.divergingColour(1)];
    }""")
    from recognizer.metrics_display import MISTAKE_RGB, RIGHT_RGB

    assert colours == [list(RIGHT_RGB), [255, 255, 255], list(MISTAKE_RGB)]

    # Lesson 2 speaks once its answer is in, and says what its maps show.
    page.goto(server.url + "/learn/attention/")
    page.click('[data-example="7"]')
    wait_for_answer(page, "[data-attention]", 0)
    page.wait_for_function(f"() => document.querySelector('{region}').textContent"
                           ".startsWith('The network reads 7')", timeout=30_000)
    assert "biggest drop" in page.get_attribute('[data-heat="occlusion"]', "aria-label")
    assert "would raise its score" in page.get_attribute('[data-heat="saliency"]', "aria-label")
    assert page.js_errors == []
