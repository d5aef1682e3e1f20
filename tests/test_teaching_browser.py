"""The teaching pages in headless Chromium against a real Daphne server.

Draws on "How it works" with the mouse and checks that the feature maps and
the probabilities follow the drawing; visits every lesson and saves a
screenshot of each as artifacts/teaching-*.png.
"""

import base64
import hashlib
import json
import urllib.request

import numpy as np
import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.browser

# The seeded stand-in, registered only when no trained model ships with the site.
REGISTER_STAND_IN = """
import torch
from django.conf import settings
from recognizer import versions
from recognizer.checkpoints import save_checkpoint
from recognizer.network import build_model
if versions.active_version() is None:
    torch.manual_seed(0)
    path = settings.RECOGNIZER_MODEL_DIR / "stand-in.pt"
    save_checkpoint(build_model(), path)
    versions.register_version(path, activate=True, version="stand-in")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_dir):
    """A server that can read MNIST (the shared one is started without it)."""
    live = LiveServer(tmp_path_factory.mktemp("teaching"), env={
        "MNIST_DATA_DIR": str(mnist_dir),
        # Predicting 2,000 test digits instead of 10,000 keeps the data page's
        # first visit to a few seconds on a slow machine.
        "TEACHING_MNIST_LIMIT": "2000",
    })
    live.start()
    live.manage("shell", "-c", REGISTER_STAND_IN)
    yield live
    live.stop()


def stroke(page, canvas, points, steps=6):
    """Drag the mouse through `points`, given as fractions of the canvas."""
    box = canvas.bounding_box()

    def at(point):
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for start, end in zip(points[:-1], points[1:], strict=True):
        for i in range(1, steps + 1):
            f = i / steps
            page.mouse.move(*at((start[0] + (end[0] - start[0]) * f,
                                 start[1] + (end[1] - start[1]) * f)))
    page.mouse.up()


def wait_for_update(page, root_selector, after):
    page.wait_for_function(
        "([selector, after]) => Number(document.querySelector(selector).dataset.updates || 0)"
        " > after && document.querySelector(selector).dataset.state === 'ready'",
        arg=[root_selector, after], timeout=20_000,
    )
    # Throttled updates may still be on their way: wait until they settle.
    page.wait_for_timeout(600)
    return int(page.get_attribute(root_selector, "data-updates"))


def show_stages(page, names):
    """Scroll to each stage in turn and wait until it is drawn for the newest drawing.

    The page asks only for the stages on screen, so a stage off screen is
    drawn when the learner scrolls to it.
    """
    for name in names:
        page.locator(f'[data-step="{name}"]').scroll_into_view_if_needed()
        selector = "[data-dense]" if name == "dense" else f'[data-maps="{name}"]'
        page.wait_for_function(
            "([selector]) => document.querySelector(selector).dataset.drawing !== undefined"
            " && document.querySelector(selector).dataset.drawing"
            " === document.querySelector('[data-explorer]').dataset.drawing",
            arg=[selector], timeout=20_000,
        )


MAP_STAGES = ("conv1", "conv2", "pool1", "conv3", "conv4", "pool2")


def canvas_digest(page, selector):
    """A hash of the canvas's pixels and how many of them are coloured.

    Coloured: clearly red or blue, as activations and heat maps are drawn;
    paper, ink, grid lines and the grey gaps between tiles are not.
    """
    data = page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector);
            const ctx = canvas.getContext('2d');
            const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let coloured = 0;
            for (let i = 0; i < pixels.length; i += 4) {
                if (Math.abs(pixels[i] - pixels[i + 2]) > 25) coloured++;
            }
            return {url: canvas.toDataURL(), coloured, width: canvas.width};
        }""",
        selector,
    )
    return hashlib.sha256(data["url"].encode()).hexdigest(), data["coloured"], data


def probabilities(page, selector="[data-probabilities] li"):
    return [float(v) for v in page.eval_on_selector_all(
        selector, "items => items.map(item => item.dataset.probability)")]


def test_how_it_works_follows_the_drawing(server, page, artifacts_dir):
    page.goto(server.url + "/learn/how-it-works/")
    root = "[data-explorer]"
    assert page.get_attribute(root, "data-state") == "empty"
    pad = page.locator("canvas[data-pad]")

    answers = []

    def keep(response):
        if response.url.endswith("/learn/api/stages"):
            answers.append(response)

    page.on("response", keep)

    # A vertical stroke: a "1".
    stroke(page, pad, [(0.5, 0.15), (0.5, 0.85)])
    first = wait_for_update(page, root, 0)
    show_stages(page, MAP_STAGES + ("dense",))
    maps_before = {name: canvas_digest(page, f'[data-maps="{name}"]')
                   for name in ("conv1", "conv2", "pool1", "conv3", "conv4", "pool2")}
    dense_before = canvas_digest(page, "[data-dense]")
    input_before = canvas_digest(page, '[data-image="input"]')
    probs_before = probabilities(page)
    assert len(probs_before) == 10
    assert sum(probs_before) == pytest.approx(1.0, abs=1e-6)
    for name, (_, coloured, data) in maps_before.items():
        # Every tile grid is drawn and some of its maps respond.
        assert data["width"] > 100 and coloured > 0, name
    assert page.locator("[data-strokes-svg] circle").count() >= 2
    assert page.text_content("[data-guess-digit]") == str(probs_before.index(max(probs_before)))

    # A second stroke across the top turns it into a "7"-like shape.
    page.locator("canvas[data-pad]").scroll_into_view_if_needed()
    stroke(page, pad, [(0.25, 0.15), (0.5, 0.15)])
    wait_for_update(page, root, first)
    show_stages(page, MAP_STAGES + ("dense",))
    for name, (digest, _, _) in maps_before.items():
        assert canvas_digest(page, f'[data-maps="{name}"]')[0] != digest, name
    assert canvas_digest(page, "[data-dense]")[0] != dense_before[0]
    assert canvas_digest(page, '[data-image="input"]')[0] != input_before[0]
    probs_after = probabilities(page)
    assert probs_after != probs_before
    assert sum(probs_after) == pytest.approx(1.0, abs=1e-6)
    assert "2 strokes" in page.text_content('[data-facts="strokes"]')
    # Only the stages on screen travel: no answer over 15 kB, none with every stage.
    bodies = [answer.body() for answer in answers if answer.ok]
    assert bodies and max(len(body) for body in bodies) <= 15_000
    assert all(len(json.loads(body)["activations"]) < 7 for body in bodies)
    page.screenshot(path=str(artifacts_dir / "teaching-how-it-works.png"), full_page=True)

    # Clearing empties every view again.
    page.click('[data-pad-action="clear"]')
    page.wait_for_function(
        "() => document.querySelector('[data-explorer]').dataset.state === 'empty'")
    assert page.locator("[data-probabilities] li").count() == 0
    assert page.js_errors == []


def test_attention_maps_for_the_answer_and_for_a_chosen_digit(server, page, artifacts_dir):
    page.goto(server.url + "/learn/attention/")
    root = "[data-attention]"
    # Every state the page goes through, to see "computing" while the maps are made.
    page.evaluate("""() => {
        const root = document.querySelector('[data-attention]');
        window.attentionStates = [];
        new MutationObserver(() => window.attentionStates.push(root.dataset.state))
            .observe(root, {attributes: true, attributeFilter: ['data-state']});
    }""")
    page.click('[data-example="7"]')
    count = wait_for_update(page, root, 0)
    states = page.evaluate("window.attentionStates")
    assert states[0] == "computing" and states[-1] == "ready", states
    occlusion_auto, coloured, _ = canvas_digest(page, '[data-heat="occlusion"]')
    assert coloured > 0
    answer = int(page.text_content("[data-guess-digit]"))
    pick = 3 if answer != 3 else 8
    page.click(f'.digit-picker__option:has(input[value="{pick}"])')
    wait_for_update(page, root, count)
    assert page.text_content('[data-caption="occlusion"]') == f"hiding parts: digit {pick}"
    assert canvas_digest(page, '[data-heat="occlusion"]')[0] != occlusion_auto
    targets = page.eval_on_selector_all("[data-probabilities] li.is-target",
                                        "items => items.map(i => i.textContent)")
    assert len(targets) == 1 and targets[0].startswith(str(pick))
    assert f"digit {pick}" in page.text_content('[data-facts="saliency"]')
    page.screenshot(path=str(artifacts_dir / "teaching-attention.png"), full_page=True)
    assert page.js_errors == []


def test_lesson_path_model_card_and_data_pages(server, page, artifacts_dir):
    page.goto(server.url + "/learn/")
    from recognizer.teaching.lesson_plans import PLANS

    # One card per lesson in the plans (what the worksheet prints too).
    assert page.locator(".lesson-card").count() == len(PLANS) == 5
    page.screenshot(path=str(artifacts_dir / "teaching-index.png"), full_page=True)
    page.click("[data-next-lesson]")
    assert page.url.endswith("/learn/how-it-works/")

    page.goto(server.url + "/learn/model/")
    version = page.get_attribute("[data-model-card]", "data-version")
    assert version
    rows = page.locator("[data-architecture] tbody tr").count()
    assert rows == 9  # the input and the eight stages of the network
    assert int(page.text_content("[data-total-parameters]")) > 100_000
    if version != "stand-in":
        # The shipped model comes with its training record: its charts are drawn.
        assert page.locator("[data-confusion] svg rect.chart__cell").count() == 100
        assert page.locator("[data-curves] svg polyline").count() >= 2
    page.screenshot(path=str(artifacts_dir / "teaching-model.png"), full_page=True)

    # A good model makes few mistakes: take the first digit it got wrong at all.
    for digit in range(10):
        page.goto(server.url + f"/learn/data/?digit={digit}")
        # The first visit after a new model prepares the numbers and reloads
        # itself until they are there.
        page.wait_for_selector("[data-mistakes-all]", timeout=120_000)
        if page.locator(".mistake").count() > 0:
            break
    else:
        pytest.fail("the data page shows no mistake for any digit")
    sprite = page.locator('img[data-sprite="mnist"]')
    assert sprite.evaluate("img => img.complete && img.naturalWidth") > 500
    guess = page.locator(".mistake__guess").first.get_attribute("data-guess")
    assert guess != str(digit)
    page.screenshot(path=str(artifacts_dir / "teaching-data.png"), full_page=True)

    # A mistake opens in "What the model looks at", which reaches the same wrong answer.
    page.locator(".mistake a").first.click()
    page.wait_for_url("**/learn/attention/?mnist=*")
    wait_for_update(page, "[data-attention]", 0)
    assert page.text_content("[data-guess-digit]") == guess
    assert f"a {digit}" in page.text_content("[data-sample-note]")
    page.screenshot(path=str(artifacts_dir / "teaching-attention-mistake.png"), full_page=True)
    assert page.js_errors == []


def wait_for_answer(page, root_selector, after):
    """Wait until the page has drawn more than `after` answers and is ready; the count."""
    page.wait_for_function(
        "([selector, after]) => Number(document.querySelector(selector).dataset.updates || 0)"
        " > after && document.querySelector(selector).dataset.state === 'ready'",
        arg=[root_selector, after], timeout=30_000,
    )
    return int(page.get_attribute(root_selector, "data-updates"))


def canvas_pixels(page, selector):
    """(width, height, flat RGBA list) of a canvas."""
    data = page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector);
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            return {width: canvas.width, height: canvas.height, data: Array.from(pixels.data)};
        }""",
        selector,
    )
    return data["width"], data["height"], data["data"]


def test_an_mnist_digit_in_lesson_one_is_shown_and_has_no_strokes(server, page, mnist_dir,
                                                                  artifacts_dir):
    from trainer.mnist import load_split

    images, labels = load_split("test", data_dir=mnist_dir, download=False)
    index = 42
    page.goto(server.url + f"/learn/how-it-works/?mnist={index}")
    root = "[data-explorer]"
    wait_for_answer(page, root, 0)
    page.wait_for_selector("[data-sample-image][data-painted]", state="visible")

    # The drawing box shows the scanned digit, pixel for pixel.
    width, height, data = canvas_pixels(page, "[data-sample-image]")
    assert (width, height) == (28, 28)
    shades = np.array(data, dtype=float).reshape(28, 28, 4)[..., 0]
    np.testing.assert_allclose(shades, 255 * (1 - images[index] / 255.0), atol=1.5)

    # Steps 1 to 3 say why they show no strokes.
    notes = page.locator("[data-sample-step-note]")
    assert notes.count() == 3
    for i in range(3):
        note = notes.nth(i)
        assert note.is_visible()
        assert "scanned image" in note.text_content() and "no strokes" in note.text_content()
    assert f"a {labels[index]}" in page.text_content("[data-sample-note]")
    page.screenshot(path=str(artifacts_dir / "teaching-how-it-works-mnist.png"), full_page=True)

    # The learner's own drawing replaces the sample, and the notes go.
    updates = int(page.get_attribute(root, "data-updates"))
    stroke(page, page.locator("canvas[data-pad]"), [(0.5, 0.15), (0.5, 0.85)])
    wait_for_answer(page, root, updates)
    page.wait_for_selector("[data-sample-image]", state="hidden")
    assert all(not notes.nth(i).is_visible() for i in range(3))
    # The first answer may be for the stroke's first point (the page sends the
    # latest drawing while the pen moves): wait for the whole stroke's.
    page.wait_for_function(
        "() => document.querySelectorAll('[data-strokes-svg] circle').length >= 2")
    assert page.js_errors == []


def ask_attention(server, body):
    request = urllib.request.Request(
        server.url + "/learn/api/attention", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def map_cells(page, answer):
    """Each measured occlusion cell of the map on screen: (value, colour intensity).

    The colour is read at the centre of the cell's top-left input pixel, away
    from pixel edges (grid lines, the ink's outline). Intensity: how far from
    white towards the map's red (for a drop) or blue (for a rise).
    """
    width, _, data = canvas_pixels(page, '[data-heat="occlusion"]')
    rgba = np.array(data).reshape(-1, width, 4)
    cells = []
    values = answer["occlusion"]["values"]
    for index, paper in enumerate(answer["occlusion"]["paper"]):
        if paper:
            continue
        i, j = divmod(index, 14)
        r, g, _, _ = rgba[2 * i * 10 + 5, 2 * j * 10 + 5]
        value = values[index]
        cells.append((value, 255 - g if value > 0 else 255 - r if value < 0 else 0))
    return rgba, cells


def show_digit(page, digit, after):
    page.click(f'.digit-picker__option:has(input[value="{digit}"])')
    page.wait_for_function(
        "([digit, after]) => document.querySelector('[data-caption=\"occlusion\"]').textContent"
        " === `hiding parts: digit ${digit}`"
        " && Number(document.querySelector('[data-attention]').dataset.updates) > after"
        " && document.querySelector('[data-attention]').dataset.state === 'ready'",
        arg=[digit, after], timeout=30_000,
    )
    return int(page.get_attribute("[data-attention]", "data-updates"))


def test_attention_maps_outline_the_ink_and_share_one_colour_scale(server, page, artifacts_dir):
    page.goto(server.url + "/learn/attention/")
    root = "[data-attention]"
    sent = []
    page.on("request", lambda r: r.url.endswith("/learn/api/attention") and sent.append(r))
    page.click('[data-example="7"]')
    count = wait_for_answer(page, root, 0)
    drawing = {k: v for k, v in json.loads(sent[0].post_data).items() if k != "target"}

    # Every digit's map for this drawing, asked for as the page does (and cached
    # by the server for the page). Most maps lean one way (hiding parts of a 7
    # raises the other digits' probabilities): of those, the strongest and the
    # weakest.
    answers = {digit: ask_attention(server, {**drawing, "target": digit}) for digit in range(10)}
    extreme = {d: max(a["occlusion"]["values"], key=abs) for d, a in answers.items()}
    sign = 1 if sum(v > 0 for v in extreme.values()) > 5 else -1
    leaning = {d: abs(v) for d, v in extreme.items() if v * sign > 0}
    strong, weak = max(leaning, key=leaning.get), min(leaning, key=leaning.get)
    assert leaning[weak] < leaning[strong] / 2

    seen = {}
    for digit in (strong, weak):
        count = show_digit(page, digit, count)
        seen[digit] = map_cells(page, answers[digit])
    page.screenshot(path=str(artifacts_dir / "teaching-attention-scale.png"), full_page=True)

    ink = np.frombuffer(base64.b64decode(answers[strong]["input"]["data"]),
                        dtype=np.uint8).reshape(28, 28) / 255.0
    for digit, (rgba, _) in seen.items():
        # Ink does not darken the colours: the middle of an inked pixel keeps
        # the map's own colour, which is always bright in one channel.
        for row, col in zip(*np.nonzero(ink >= 0.9), strict=True):
            assert rgba[row * 10 + 5, col * 10 + 5, :3].max() >= 200, (digit, row, col)
        # It is outlined instead: a dark line along the top of every inked
        # pixel under paper.
        tops = [(row, col) for row, col in zip(*np.nonzero(ink >= 0.5), strict=True)
                if row == 0 or ink[row - 1, col] < 0.5]
        dark = [rgba[row * 10, col * 10 + 5, :3].sum() < 250 for row, col in tops]
        assert tops and sum(dark) >= 0.95 * len(tops), digit
        # Cells over paper only are hatched, not left white as if measured.
        paper = answers[digit]["occlusion"]["paper"]
        assert any(paper)
        for index, flag in enumerate(paper):
            if flag:
                i, j = divmod(index, 14)
                block = rgba[20 * i + 2:20 * i + 18, 20 * j + 2:20 * j + 18, :3]
                assert (block.sum(axis=2) < 650).sum() > 10, (digit, i, j)

    # One scale for every map: a bigger change is never paler, whichever map
    # it is on (a map scaled to its own peak paints its weak peak as strongly
    # as the strong map's).
    cells = [(abs(v), i) for _, cells in seen.values() for v, i in cells if v * sign > 0]
    for value_a, colour_a in cells:
        for value_b, colour_b in cells:
            if value_a > value_b + 0.005:
                assert colour_a >= colour_b - 3, (value_a, colour_a, value_b, colour_b)
    strongest = {digit: max(i for _, i in cells) for digit, (_, cells) in seen.items()}
    assert strongest[weak] < strongest[strong] - 20, strongest
    assert "paper over paper" in page.text_content("[data-paper-key]")
    assert "100%" in page.get_attribute("[data-legend]", "aria-label")
    assert page.js_errors == []


def test_a_refused_request_is_said_and_sent_again(server, page):
    # The server's limits (per browser, under a ceiling per school address)
    # answer 429 with Retry-After: the page says why it waits, keeps its
    # pad, and sends the newest drawing again when the wait is over.
    refusing = {"on": True, "refused": 0}

    def refuse_while_on(route):
        if refusing["on"]:
            refusing["refused"] += 1
            route.fulfill(status=429, headers={"Retry-After": "1"},
                          content_type="application/json",
                          body='{"error": "too many requests from this browser", '
                               '"retry_after": 1}')
        else:
            route.continue_()

    page.route("**/learn/api/stages", refuse_while_on)
    page.goto(server.url + "/learn/how-it-works/")
    root = "[data-explorer]"
    stroke(page, page.locator("canvas[data-pad]"), [(0.5, 0.15), (0.5, 0.85)])
    page.wait_for_function(
        "() => document.querySelector('[data-explorer]').dataset.state === 'waiting'",
        timeout=20_000)
    assert "trying again in 1 s" in page.text_content(f"{root} [data-status]")
    refusing["on"] = False
    wait_for_update(page, root, 0)
    assert "trying again" not in page.text_content(f"{root} [data-status]")
    assert refusing["refused"] >= 1
    assert page.js_errors == []
