"""The lessons on a phone and from the keyboard, in headless Chromium against
a real Daphne server serving the shipped model.

On a 360x740 touch screen the drawing pad scrolls away with the page: a chip
with the drawing and the guess floats at the foot of the screen and a tap
brings the pad back; the 14x14 and 7x7 maps are laid out in fewer columns so
that each map is at least 30 CSS pixels across. On a desktop the map grids
and the dense layer take the focus, the arrow keys choose a map and Enter
opens its arithmetic.

Every lesson, the home page and a game room are shot full-page at 1280x800
and 360x740 into SCREENSHOTS_DIR (a temporary folder unless set; see
docs/teaching.md), each checked to be no wider than its screen.

axe-core (vendored in tests/vendor/axe-core, version and licence in
tests/vendor/README.md) is injected into every lesson, at both sizes, and
must find no "serious" or "critical" violation of its WCAG 2 A/AA rules.

The worksheet, printed (print media emulated through the DevTools protocol,
with a dark colour scheme asked for too): no header, menus or controls, black
text on white, and every lesson forced onto a new page.
"""

import os
import re
from pathlib import Path

import pytest

from recognizer.teaching import share
from tests.live import LiveServer, open_page
from tests.support import SEVEN
from tests.test_teaching_browser import wait_for_answer
from tests.test_teaching_lab_browser import wait_for_neuron

pytestmark = pytest.mark.browser

VENDOR = Path(__file__).parent / "vendor"
AXE_VERSION = "4.14.1"
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
SEVEN_CODE = share.encode(SEVEN)
# Each page, and what shows it is ready: lessons 1, 2 and 5 with a drawing
# (their answer drawn), the others once loaded.
LESSONS = [
    ("learn", "/learn/", None),
    ("how-it-works", f"/learn/how-it-works/?d={SEVEN_CODE}", "[data-explorer]"),
    ("attention", f"/learn/attention/?d={SEVEN_CODE}", "[data-attention]"),
    ("model", "/learn/model/", None),
    ("data", "/learn/data/?digit=4", "[data-mistakes-all]"),
    ("how-it-learned", f"/learn/how-it-learned/?d={SEVEN_CODE}", "[data-learning]"),
    ("worksheet", "/learn/worksheet/", None),
]


@pytest.fixture(scope="module")
def screenshots_dir(tmp_path_factory):
    """SCREENSHOTS_DIR if set (made if need be), else a folder removed with pytest's
    temporary ones."""
    chosen = os.environ.get("SCREENSHOTS_DIR")
    if not chosen:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path


def show(page, url, ready):
    page.goto(url)
    if ready in ("[data-explorer]", "[data-attention]"):
        wait_for_answer(page, ready, 0)
    elif ready:
        # The data page prepares its numbers on a first visit and reloads
        # itself until they are there.
        page.wait_for_selector(ready, timeout=120_000)
    page.wait_for_load_state("networkidle")


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_dir):
    """A server with MNIST and the shipped model (migrations register it)."""
    live = LiveServer(tmp_path_factory.mktemp("teaching-pages"), env={
        "MNIST_DATA_DIR": str(mnist_dir),
        "TEACHING_MNIST_LIMIT": "2000",
    })
    live.start()
    yield live
    live.stop()


@pytest.fixture
def phone(browser):
    with open_page(browser, **PHONE) as page:
        yield page


def overflow(page):
    """How far the page is wider than the screen (CSS pixels; 0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - innerWidth")


def shown_tile_width(page, name):
    """CSS pixels across one map of stage `name` as the canvas is shown."""
    return page.eval_on_selector(f'[data-maps="{name}"]', """c => {
        const tile = Number(c.dataset.tile.split('x')[0]);
        return c.getBoundingClientRect().width * tile / c.width; }""")


def test_on_a_phone_the_guess_follows_the_layers_and_the_maps_are_readable(server, phone):
    page = phone
    page.goto(f"{server.url}/learn/how-it-works/?d={share.encode(SEVEN)}")
    root = "[data-explorer]"
    wait_for_answer(page, root, 0)
    guess = page.text_content("[data-guess-digit]")
    chip = page.locator("[data-guess-chip]")
    assert chip.is_hidden()  # the pad is on screen

    for name in ("pool1", "conv3", "conv4", "pool2"):
        page.locator(f'[data-step="{name}"]').scroll_into_view_if_needed()
        page.wait_for_function(
            "(name) => document.querySelector(`[data-maps=\"${name}\"]`).dataset.tile", arg=name,
            timeout=30_000)
        # 16 columns made a 14x14 map 19 CSS pixels across here, a 7x7 one 18.
        assert shown_tile_width(page, name) >= 30, name
        assert int(page.get_attribute(f'[data-maps="{name}"]', "data-columns")) <= 8
    assert overflow(page) <= 0
    chip.wait_for(state="visible")
    assert page.text_content("[data-chip-digit]") == guess
    assert guess in chip.get_attribute("aria-label")
    # The chip shows the drawing too: its canvas has ink.
    assert chip.locator("canvas").evaluate("""c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""") > 20
    box = chip.bounding_box()
    assert box["y"] + box["height"] <= 740 and box["x"] + box["width"] <= 360

    # A tap goes back to the pad, which takes the focus; the chip goes.
    chip.tap()
    page.wait_for_function("""() => { const r = document.querySelector('.pad-frame')
        .getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }""",
                           timeout=10_000)
    chip.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.matches('.explorer__pad')")
    assert page.js_errors == []


def test_the_map_grids_answer_the_keyboard(server, page):
    page.goto(f"{server.url}/learn/how-it-works/?d={share.encode(SEVEN)}")
    wait_for_answer(page, "[data-explorer]", 0)
    page.locator('[data-step="conv3"]').scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('[data-maps=\"conv3\"]').dataset.tile",
                           timeout=30_000)
    assert page.get_attribute('[data-maps="conv3"]', "data-columns") == "16"
    assert page.get_attribute('[data-maps="conv3"]', "tabindex") == "0"
    page.focus('[data-maps="conv3"]')
    for key in ("ArrowRight", "ArrowRight", "ArrowDown", "ArrowUp", "ArrowDown", "ArrowLeft"):
        page.keyboard.press(key)
    # Right, right, down, up, down, left: map 17 (index 16 + 2 - 1).
    assert "Map 18 of 64 chosen" in page.text_content('[data-facts="conv3"]')
    assert "Map 18 of 64 chosen" in page.get_attribute('[data-maps="conv3"]', "aria-label")
    page.keyboard.press("Enter")
    answers = wait_for_neuron(page, 0)
    panel = page.locator("[data-neuron]")
    place = [panel.get_attribute(f"data-{key}") for key in ("layer", "map", "y", "x")]
    assert place == ["conv3", "17", "7", "7"]
    # The focus is on the enlarged map, whose arrows move the position.
    assert page.evaluate("document.activeElement.matches('[data-neuron-map]')")
    page.keyboard.press("ArrowLeft")
    wait_for_neuron(page, answers)
    assert panel.get_attribute("data-x") == "6"

    # The dense layer likewise: a neuron chosen with the arrows, Enter for its sum.
    page.locator('[data-step="dense"]').scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('[data-dense]').dataset.drawing",
                           timeout=30_000)
    page.focus("[data-dense]")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    assert "Neuron 18 of 128 chosen" in page.text_content('[data-facts="dense"]')
    answers = int(panel.get_attribute("data-answers"))
    page.keyboard.press(" ")
    wait_for_neuron(page, answers)
    assert (panel.get_attribute("data-layer"), panel.get_attribute("data-map")) == ("dense", "17")
    assert page.js_errors == []


@pytest.mark.parametrize(("size", "options"), [("1280x800", DESKTOP), ("360x740", PHONE)])
def test_every_page_fits_its_screen_is_shot_and_has_no_serious_accessibility_violations(
        server, browser, screenshots_dir, size, options):
    """One visit to each page checks all three (lesson 1 is visited once more,
    for axe-core with its arithmetic open). Two tests, one shooting and one
    running axe-core, loaded each page once each."""
    code = server.create_room("Host")
    violations, overflows = {}, {}
    with open_page(browser, **options) as page:
        page.goto(server.url + "/")
        overflows["home"] = overflow(page)
        page.screenshot(path=str(screenshots_dir / f"home-{size}.png"), full_page=True)
        for name, path, ready in LESSONS:
            show(page, server.url + path, ready)
            # scrollWidth - innerWidth: what a reader would have to scroll sideways.
            overflows[name] = overflow(page)
            page.screenshot(path=str(screenshots_dir / f"{name}-{size}.png"), full_page=True)
            violations[name] = axe_violations(page)
        # Lesson 1 with the arithmetic panel open, from the keyboard.
        show(page, server.url + LESSONS[1][1], LESSONS[1][2])
        page.locator('[data-step="conv1"]').scroll_into_view_if_needed()
        page.wait_for_function(
            "() => document.querySelector('[data-maps=\"conv1\"]').dataset.tile", timeout=30_000)
        page.focus('[data-maps="conv1"]')
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('[data-neuron]').dataset.state"
                               " === 'ready'", timeout=30_000)
        violations["how-it-works, arithmetic open"] = axe_violations(page)
        # The game room, seated under a name as a player would be.
        page.goto(server.url + "/")
        page.fill("#id_name", "Grace")
        page.click("form[action='/name/'] button[type=submit]")
        page.wait_for_selector("[data-display-name]")
        page.goto(f"{server.url}/room/{code}/")
        page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=30_000)
        overflows["room"] = overflow(page)
        page.screenshot(path=str(screenshots_dir / f"room-{size}.png"), full_page=True)
        assert page.js_errors == [] and page.console_errors == []
    assert {name: pixels for name, pixels in overflows.items() if pixels > 0} == {}
    assert {name: found for name, found in violations.items() if found} == {}
    files = sorted(p.name for p in screenshots_dir.glob(f"*-{size}.png"))
    assert len(files) == len(LESSONS) + 2
    assert all(re.fullmatch(rf"[a-z-]+-{size}\.png", f) for f in files)


def axe_violations(page):
    """axe-core's serious and critical violations on the page as it stands:
    [(rule, impact, [targets...]), ...]."""
    if not page.evaluate("typeof window.axe === 'object'"):
        # Added as a script element's text, which the Content-Security-Policy
        # would refuse; evaluated instead, as the browser's console would.
        page.evaluate((VENDOR / "axe-core" / "axe.min.js").read_text())
    assert page.evaluate("axe.version") == AXE_VERSION
    result = page.evaluate("""() => axe.run(document, {
        runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
        resultTypes: ['violations'],
    })""")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize(("example", "pair"), [("1or7", (1, 7)), ("4or9", (4, 9)),
                                               ("3or5", (3, 5))])
def test_the_hard_cases_are_read_two_ways(server, page, example, pair):
    """Each hard case on lesson 1: its two digits are the model's first two,
    the second with at least 15% (they were drawn at 65/35, 65/28 and 54/45)."""
    page.goto(server.url + "/learn/how-it-works/")
    page.click(f'[data-example="{example}"]')
    wait_for_answer(page, "[data-explorer]", 0)
    page.wait_for_function("() => location.search.includes('d=')")
    shown = [float(v) for v in page.eval_on_selector_all(
        '[data-step="probabilities"] [data-probabilities] li',
        "items => items.map(item => item.dataset.probability)")]
    ranked = sorted(range(10), key=lambda d: -shown[d])
    assert set(ranked[:2]) == set(pair)
    assert shown[ranked[1]] >= 0.15
    assert page.text_content("[data-guess-digit]") == str(ranked[0])
    assert page.js_errors == []


def print_media(page, scheme="dark", session=None):
    """Emulate printing, as Chromium's print preview lays the page out; `scheme`
    asks for that colour scheme too, which print must not follow. Returns the
    DevTools session, which keeps the emulation until told otherwise."""
    session = session or page.context.new_cdp_session(page)
    session.send("Emulation.setEmulatedMedia", {
        "media": "print", "features": [{"name": "prefers-color-scheme", "value": scheme}]})
    return session


def test_the_worksheet_prints_a_lesson_a_page_black_on_white(server, page):
    page.goto(server.url + "/learn/worksheet/")
    # On screen: the menu, the print button (shown by the script) and the tick box.
    assert page.locator(".site-nav").is_visible() and page.locator(".lesson-nav").is_visible()
    assert page.locator("[data-print]").is_visible()
    lessons = page.locator("[data-worksheet-lesson]")
    assert lessons.count() == 5
    assert page.evaluate("matchMedia('print').matches") is False

    session = print_media(page)
    page.wait_for_function("matchMedia('print').matches", timeout=10_000)
    for hidden in (".site-header", ".site-nav", ".site-footer", ".lesson-nav",
                   "[data-print-controls]", "[data-print]", "[data-hide-notes]"):
        assert page.locator(hidden).first.is_hidden(), hidden
    styles = page.eval_on_selector_all("[data-worksheet-lesson]", """sections => sections.map(s => {
        const css = getComputedStyle(s);
        return {breakBefore: css.breakBefore, color: css.color, shadow: css.boxShadow}; })""")
    assert [s["breakBefore"] for s in styles] == ["page"] * 5
    assert {s["color"] for s in styles} == {"rgb(0, 0, 0)"}
    assert {s["shadow"] for s in styles} == {"none"}
    # No text of any colour but black, on nothing but white or transparent.
    colours = page.evaluate("""() => {
        const seen = {text: new Set(), back: new Set()};
        for (const el of document.querySelectorAll('body, body *')) {
            const css = getComputedStyle(el);
            if (css.display === 'none' || !el.closest('[data-worksheet-lesson]')) continue;
            seen.text.add(css.color); seen.back.add(css.backgroundColor);
        }
        seen.body = getComputedStyle(document.body).backgroundColor;
        return {text: [...seen.text], back: [...seen.back], body: seen.body}; }""")
    assert colours["text"] == ["rgb(0, 0, 0)"]
    assert set(colours["back"]) <= {"rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"}
    assert colours["body"] == "rgb(255, 255, 255)"
    # The teacher notes print unless left out.
    assert page.locator("[data-worksheet-notes]").first.is_visible()

    # Back on screen, tick "leave out the teacher notes", print again.
    session.send("Emulation.setEmulatedMedia", {"media": "screen"})
    page.wait_for_function("!matchMedia('print').matches", timeout=10_000)
    page.check("[data-hide-notes]")
    print_media(page, session=session)
    page.wait_for_function("matchMedia('print').matches", timeout=10_000)
    assert page.locator("[data-worksheet-notes]").count() == 5
    assert all(page.locator("[data-worksheet-notes]").nth(i).is_hidden() for i in range(5))
    assert page.js_errors == [] and page.console_errors == []
