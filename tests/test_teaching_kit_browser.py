"""The teacher kit in headless Chromium against a real Daphne server.

"Explain my drawing" on a game's round results, and "Explain this drawing"
on a class projector's tiles and misread drawings: each link carries the
drawing itself (the lessons' ?d= code, written in the browser) and opens
lesson 1 in a new tab showing that drawing, read as the game read it.
"""

import asyncio
import re
import urllib.parse

import pytest

from digitsite.game.classroom import simplify_drawing
from recognizer.teaching import share
from tests.live import open_page
from tests.support import draw_digit
from tests.test_classroom_browser import EventLoopThread, drawing_of
from tests.test_game_browser import finish_round, target_of, wait_for_guess
from tests.test_teaching_browser import wait_for_answer

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000


def code_of(href):
    return urllib.parse.parse_qs(urllib.parse.urlparse(href).query)["d"][0]


def whole(drawing):
    """A drawing as its link keeps it: whole pixels, repeats dropped, no times."""
    width, height = round(drawing["width"]), round(drawing["height"])
    return [[list(p) for p in share.whole_points(s, width, height)] for s in drawing["strokes"]]


def inked_pixels(page):
    return page.eval_on_selector("canvas[data-pad]", """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")


def open_explained(page, link):
    """Click `link` (it opens a new tab) and wait for lesson 1's answer there."""
    with page.context.expect_page() as opened:
        link.click()
    lesson = opened.value
    errors = []
    lesson.on("pageerror", lambda exc: errors.append(str(exc)))
    lesson.wait_for_load_state()
    assert urllib.parse.urlparse(lesson.url).path == "/learn/how-it-works/"
    wait_for_answer(lesson, "[data-explorer]", 0)
    return lesson, errors


# Installed before the room's scripts: keeps the round_end messages the page receives.
KEEP_ROUND_ENDS = """(() => {
  const Native = window.WebSocket;
  const ends = window.roundEnds = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "round_end") ends.push(message);
      });
    }
  };
})();"""


@pytest.fixture
def page(browser):
    with open_page(browser, init_script=KEEP_ROUND_ENDS,
                   viewport={"width": 1280, "height": 900}) as page:
        yield page


def test_explain_my_drawing_opens_lesson_one_with_the_rounds_drawing(game_server, page):
    page.goto(game_server.url + "/")
    page.fill("#id_name", "Ada")
    page.click("form[action='/name/'] button[type=submit]")
    page.wait_for_selector("[data-display-name]")
    page.fill("#id_rounds", "1")
    page.fill("#id_seconds", "60")
    page.click("form[action='/rooms/new/'] button[type=submit]")
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    page.select_option("[data-start-rounds]", "1")
    page.click("[data-start]")
    draw_digit(page, target_of(page))
    wait_for_guess(page)
    finish_round(page)
    page.wait_for_selector("[data-results-grid] .result", timeout=TIMEOUT_MS)

    card = page.locator("[data-results-grid] .result")
    assert card.count() == 1
    guess = re.search(r"Guess: (\d)", card.inner_text()).group(1)
    link = card.locator("a[data-explain]")
    assert link.inner_text().startswith("Explain my drawing")
    assert link.get_attribute("target") == "_blank"
    href = link.get_attribute("href")
    assert href.startswith("/learn/how-it-works/?d=")
    # The code is the drawing the round kept (as the server sent it in round_end).
    mine = page.evaluate("() => window.roundEnds.at(-1).results")[0]
    assert [[p[:2] for p in s] for s in share.decode(code_of(href))["strokes"]] == whole(
        mine["drawing"])

    lesson, errors = open_explained(page, link)
    try:
        assert inked_pixels(lesson) > 100
        assert lesson.text_content("[data-guess-digit]") == guess
        assert code_of(lesson.url) == code_of(href)
        assert errors == []
    finally:
        lesson.close()
    assert page.js_errors == []


@pytest.fixture
def student_loop():
    loop = EventLoopThread()
    yield loop
    loop.stop()


async def gather(*coroutines):
    return await asyncio.gather(*coroutines)


async def two_students_draw(clients):
    """The first student draws the target, the second a 7 (a 1 when the
    target is 7), so that the round has a drawing read wrong; both say done."""
    starts = await asyncio.gather(*(c.expect("round_start", timeout=60) for c in clients))
    target = starts[0]["target"]
    other = 1 if target == 7 else 7
    drawings = [drawing_of(target, 3), drawing_of(other, 5)]

    async def play(client, drawing):
        await client.draw(1, drawing, seq=1)
        guess = await client.expect("guess", timeout=60)
        if not guess["reached"]:
            await client.done(1)
        return await client.expect("round_end", timeout=60)

    ends = await asyncio.gather(*(play(c, d) for c, d in zip(clients, drawings, strict=True)))
    return target, drawings, ends


def test_explain_this_drawing_on_the_projectors_tiles(game_server, browser, student_loop):
    base = game_server.url
    with open_page(browser, viewport={"width": 1600, "height": 1000}) as page:
        page.goto(base + "/")
        page.fill("#id_class_teacher", "Mr Turing")
        page.fill("#id_class_rounds", "1")
        page.fill("#id_class_seconds", "90")
        page.click("[data-open-class] button[type=submit]")
        page.wait_for_url(re.compile(r".*/class/[A-Z2-9]{6}/projector/$"))
        code = page.locator("[data-class-code]").inner_text().strip()
        page.wait_for_selector("[data-teacher-controls]:not([hidden])", timeout=TIMEOUT_MS)
        clients = student_loop.run(gather(
            *(game_server.game_client(code, f"Student {n}") for n in (1, 2))))
        try:
            student_loop.run(gather(*(c.join() for c in clients)))
            page.wait_for_function(
                "() => document.querySelectorAll('[data-class-grid] .class-tile').length === 2",
                timeout=TIMEOUT_MS)
            # No drawing yet: nothing to explain.
            assert page.locator("[data-class-grid] a[data-explain]:visible").count() == 0
            page.click("[data-class-start]")
            target, drawings, ends = student_loop.run(two_students_draw(clients), timeout=180)
            page.wait_for_selector("[data-class-results]:not([hidden])", timeout=TIMEOUT_MS)
            digits = [end["results"][0]["digit"] for end in ends]
            assert digits[1] != target  # the second student's drawing was read wrong

            # Each student's tile links to their own drawing, as the tile shows
            # it: on the live feed's 100-unit grid (classroom.simplify_drawing).
            for client, drawing in zip(clients, drawings, strict=True):
                href = page.get_attribute(
                    f'[data-class-grid] [data-player="{client.you["id"]}"] a[data-explain]', "href")
                strokes = share.decode(code_of(href))["strokes"]
                assert [[p[:2] for p in s] for s in strokes] == whole(simplify_drawing(drawing))
            # The misread drawing, among the round's mistakes, carries the drawing
            # as the projector shows it (simplified too) and opens in lesson 1.
            wrong = page.locator("[data-class-wrong] .class-tile")
            assert wrong.count() == 1
            link = wrong.locator("a[data-explain]")
            strokes = share.decode(code_of(link.get_attribute("href")))["strokes"]
            assert [[p[:2] for p in s] for s in strokes] == whole(simplify_drawing(drawings[1]))
            lesson, errors = open_explained(page, link)
            try:
                assert inked_pixels(lesson) > 100
                assert lesson.text_content("[data-guess-digit]") == str(digits[1])
                assert errors == []
            finally:
                lesson.close()
            # The class's drawings at the end link there too.
            page.wait_for_selector("[data-class-summary]:not([hidden])", timeout=TIMEOUT_MS)
            assert page.locator("[data-summary-samples] a[data-explain] canvas").count() == 2
        finally:
            student_loop.run(gather(*(c.close() for c in clients)))
        assert page.js_errors == [] and page.console_errors == []
