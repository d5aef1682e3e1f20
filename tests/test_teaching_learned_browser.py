"""The lesson "How it learned" in headless Chromium against a real Daphne
server with the shipped model and snapshots: a digit drawn with the mouse,
the snapshot slider moved with the keyboard, and each snapshot's
probabilities read from the page as they change.
"""

import pytest

from tests.live import LiveServer
from tests.test_teaching_browser import canvas_digest, probabilities, stroke

pytestmark = pytest.mark.browser

ROOT = "[data-learning]"
SLIDER = "[data-snapshot-slider]"
SNAPSHOT_BARS = "[data-snapshot-bars] li"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with the shipped models (migrations register v1 and v2, v2 active)."""
    live = LiveServer(tmp_path_factory.mktemp("learned"))
    live.start()
    yield live
    live.stop()


def wait_for_snapshot(page, index):
    """Wait until the bars show snapshot `index` for the newest answer."""
    page.wait_for_function(
        "([root, index]) => document.querySelector(root).dataset.snapshot === String(index)"
        " && document.querySelectorAll('[data-snapshot-bars] li').length === 10",
        arg=[ROOT, index], timeout=20_000)


def test_drawing_then_scrubbing_with_the_keyboard_changes_the_answer(server, page):
    page.goto(f"{server.url}/learn/how-it-learned/")
    count = int(page.get_attribute(SLIDER, "max")) + 1
    assert count >= 6
    canvas = page.locator("[data-pad]")
    # A 7: the top bar, then the long stroke down to the left.
    stroke(page, canvas, [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)], steps=8)
    # Every snapshot's reading lands in the table once the answer for the
    # finished drawing is drawn (answers for the drawing in progress come
    # first, and a loaded machine may draw one of them after pen-up).
    page.wait_for_function(
        "(root) => document.querySelector(root).dataset.state === 'ready'"
        " && document.querySelector(root).dataset.settled === 'yes'"
        " && [...document.querySelectorAll('[data-snapshot-answer]')]"
        ".every(cell => cell.textContent !== '—')", arg=ROOT, timeout=30_000)
    wait_for_snapshot(page, count - 1)
    last = probabilities(page, SNAPSHOT_BARS)
    assert last.index(max(last)) == 7 and last[7] > 0.5
    filters_last, coloured_last, _ = canvas_digest(page, "[data-filters]")
    assert coloured_last > 500

    page.focus(SLIDER)
    page.keyboard.press("Home")
    wait_for_snapshot(page, 0)
    assert page.get_attribute(SLIDER, "aria-valuetext") == "after 0 steps"
    untrained = probabilities(page, SNAPSHOT_BARS)
    assert max(untrained) < 0.5 and untrained != last
    assert canvas_digest(page, "[data-filters]")[0] != filters_last
    assert "random weights" in page.get_attribute("[data-filters]", "aria-label")

    seen = [untrained]
    for index in range(1, count):
        page.keyboard.press("ArrowRight")
        wait_for_snapshot(page, index)
        seen.append(probabilities(page, SNAPSHOT_BARS))
        assert seen[-1] != seen[-2], index
        assert page.get_attribute(SLIDER, "aria-valuetext").startswith("after ")
    assert seen[-1] == last
    # The live region spoke for the keyboard's moves.
    assert "the network reads" in page.text_content("[data-announce]")

    # Version N and N+1 both answer the drawing.
    for role in ("previous", "active"):
        bars = probabilities(page, f'[data-version-bars="{role}"] li')
        assert len(bars) == 10 and abs(sum(bars) - 1) < 1e-3, role
    assert page.text_content("[data-versions-facts]").startswith("Before: ")


def test_on_a_phone_the_lesson_fits_and_the_slider_is_reachable(server, browser):
    from tests.live import open_page
    with open_page(browser, viewport={"width": 360, "height": 740}, device_scale_factor=2,
                   has_touch=True) as page:
        page.goto(f"{server.url}/learn/how-it-learned/")
        page.click('[data-example="7"]')
        page.wait_for_function("(root) => document.querySelector(root).dataset.state === 'ready'",
                               arg=ROOT, timeout=30_000)
        assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0
        slider = page.locator(SLIDER)
        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        assert box["width"] > 200 and box["height"] >= 40
