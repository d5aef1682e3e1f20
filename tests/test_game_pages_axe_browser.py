"""axe-core on the game's and the class's pages, as on the lessons.

The vendored axe-core (tests/vendor/axe-core; see test_teaching_pages_browser)
finds no serious or critical violation of WCAG 2.1 A/AA on:

- the home page and a room's lobby, on a laptop and on a phone;
- a room with a round under way (the drawing pad, the timer, the guess);
- a class's projector before, during and after a round, and the class's own
  data page (/learn/class/<code>/) once a round has been played.
"""

import asyncio
import re

import pytest

from tests.live import open_page
from tests.support import join_room
from tests.test_classroom_browser import EventLoopThread, draw_and_finish
from tests.test_room_page_browser import wait_for_round
from tests.test_teaching_pages_browser import DESKTOP, PHONE, axe_violations

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000


async def gather(*coroutines):
    return await asyncio.gather(*coroutines)


@pytest.fixture
def student_loop():
    loop = EventLoopThread()
    yield loop
    loop.stop()


@pytest.mark.parametrize(("size", "options"), [("1280x800", DESKTOP), ("360x740", PHONE)])
def test_no_serious_violations_on_the_home_page_and_a_room(game_server, browser, size,
                                                            options):
    found = {}
    code = game_server.create_room("Ada", rounds=1, seconds=120.0, max_players=2,
                                   target_confidence=1.0)
    with open_page(browser, **options) as page:
        page.goto(game_server.url + "/")
        found["home"] = axe_violations(page)
        join_room(page, f"{game_server.url}/room/{code}/", "Ada")
        page.wait_for_selector("[data-start]:not([hidden])", timeout=TIMEOUT_MS)
        found["lobby"] = axe_violations(page)
        page.click("[data-start]")
        wait_for_round(page, 1)
        page.wait_for_selector("canvas[data-pad]", state="visible", timeout=TIMEOUT_MS)
        found["round under way"] = axe_violations(page)
        assert page.js_errors == []
    assert {name: v for name, v in found.items() if v} == {}


def test_no_serious_violations_on_the_projector_and_the_class_data(game_server, browser,
                                                                  student_loop):
    found = {}
    base = game_server.url
    with open_page(browser, **DESKTOP) as page:
        page.goto(base + "/")
        page.fill("#id_class_teacher", "Ms Hopper")
        page.fill("#id_class_rounds", "1")
        page.fill("#id_class_seconds", "90")
        page.click("[data-open-class] button[type=submit]")
        page.wait_for_url(re.compile(r".*/class/[A-Z2-9]{6}/projector/$"))
        code = page.locator("[data-class-code]").inner_text().strip()
        page.wait_for_selector("[data-teacher-controls]:not([hidden])", timeout=TIMEOUT_MS)
        found["projector, waiting"] = axe_violations(page)

        clients = student_loop.run(gather(
            *(game_server.game_client(code, f"Student {n + 1}") for n in range(2))))
        try:
            student_loop.run(gather(*(client.join() for client in clients)))
            page.wait_for_function(
                "() => document.querySelectorAll('[data-class-grid] .class-tile').length === 2",
                timeout=TIMEOUT_MS)
            page.click("[data-class-start]")
            future = asyncio.run_coroutine_threadsafe(draw_and_finish(clients),
                                                      student_loop.loop)
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-class-grid] .class-tile')]"
                ".some(t => t.dataset.live === 'true')", timeout=TIMEOUT_MS)
            found["projector, round under way"] = axe_violations(page)
            future.result(120)
            # The round's results and the game's summary (one round: both).
            page.wait_for_selector("[data-class-results]:not([hidden])", timeout=TIMEOUT_MS)
            page.wait_for_selector("[data-class-summary]:not([hidden])", timeout=TIMEOUT_MS)
            found["projector, results"] = axe_violations(page)
        finally:
            student_loop.run(gather(*(client.close() for client in clients)))

        # The class's own data, for the browser that opened the class only.
        for size, viewport in (("1280x800", DESKTOP["viewport"]), ("360x740", PHONE["viewport"])):
            page.set_viewport_size(viewport)
            page.goto(f"{base}/learn/class/{code}/")
            page.wait_for_selector("[data-confusion-table]", timeout=TIMEOUT_MS)
            found[f"class data, {size}"] = axe_violations(page)
        assert page.js_errors == []
    assert {name: v for name, v in found.items() if v} == {}
