"""End to end: a class of ten students on a real Daphne server, with the
teacher's projector in Chromium.

The teacher opens a class from the home page and lands on the projector,
whose QR code is checked module by module against segno's encoding of the
class's join link. Ten students join as protocol clients
(digitsite.game.client.GameClient), draw and finish; the projector shows
ten live tiles with the model's guesses, then the round's results and the
class's confusion matrix, then what the class taught the model.
"""

import asyncio
import re
import threading

import pytest

from tests.live import open_page
from tests.qr_svg import dark_modules, matrix_modules
from tests.support import DIGIT_STROKES

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000
STUDENTS = 10


class EventLoopThread:
    """An event loop in a thread of its own, for the students' clients:
    Playwright's sync API keeps its own loop running in the test's thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout=120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def student_loop():
    loop = EventLoopThread()
    yield loop
    loop.stop()


def drawing_of(digit, wobble):
    """`digit` on a 280x280 canvas as a student would draw it, a little different each time."""
    size, margin = 280.0, 28.0
    return {"width": size, "height": size, "strokes": [
        [[margin + (size - 2 * margin) * x + wobble, margin + (size - 2 * margin) * y,
          40.0 * index] for index, (x, y) in enumerate(stroke)]
        for stroke in DIGIT_STROKES[digit]]}


async def join_all(server, code):
    return await asyncio.gather(*(server.game_client(code, f"Student {n + 1}")
                                  for n in range(STUDENTS)))


async def seat_all(clients):
    await asyncio.gather(*(client.join() for client in clients))


async def draw_and_finish(clients, round_number=1):
    """Each student draws the round's target twice (the second drawing a
    little further on) and says done, unless the model recognised the
    first; their own results."""
    start = await clients[0].expect("round_start", timeout=60)
    await asyncio.gather(*(c.expect("round_start", timeout=60) for c in clients[1:]))
    target = start["target"]

    async def play(index, client):
        for seq in (1, 2):
            await client.draw(round_number, drawing_of(target, index + 3 * seq), seq=seq)
            guess = await client.expect("guess", where=lambda m, s=seq: m["seq"] == s,
                                        timeout=60)
            if guess["reached"]:
                break  # recognised: the student's round is over
        else:
            await client.done(round_number)
        return await client.expect("round_end", timeout=60)

    ends = await asyncio.gather(*(play(i, c) for i, c in enumerate(clients)))
    return target, ends


async def close_all(clients):
    await asyncio.gather(*(client.close() for client in clients))


def test_a_class_of_ten_plays_a_round_on_the_projector(game_server, browser, student_loop,
                                                        artifacts_dir):
    base = game_server.url
    with open_page(browser, viewport={"width": 1600, "height": 1000}) as page:
        # The teacher opens a class from the home page: one round.
        page.goto(base + "/")
        page.fill("#id_class_teacher", "Ms Lovelace")
        page.fill("#id_class_rounds", "1")
        page.fill("#id_class_seconds", "90")
        page.click("[data-open-class] button[type=submit]")
        page.wait_for_url(re.compile(r".*/class/[A-Z2-9]{6}/projector/$"))
        code = page.locator("[data-class-code]").inner_text().strip()
        join_url = f"{base}/room/{code}/"
        assert page.locator("[data-join-url]").inner_text().strip() == join_url
        page.wait_for_selector("[data-teacher-controls]:not([hidden])", timeout=TIMEOUT_MS)

        # The QR code: an SVG element whose modules are segno's encoding of the join link.
        svg = page.locator("[data-qr] svg.qr")
        assert svg.evaluate("e => e.namespaceURI") == "http://www.w3.org/2000/svg"
        assert svg.bounding_box()["width"] >= 150
        path = svg.locator("path.qr__modules").get_attribute("d")
        assert dark_modules(path) == matrix_modules(join_url)

        # Ten students join from their "phones".
        clients = student_loop.run(join_all(game_server, code))
        try:
            student_loop.run(seat_all(clients))
            page.wait_for_function(
                f"() => document.querySelectorAll('[data-class-grid] .class-tile').length"
                f" === {STUDENTS}", timeout=TIMEOUT_MS)
            assert page.locator("[data-student-count]").inner_text().startswith(
                f"{STUDENTS} of 40")

            # The teacher starts; every student draws; the grid shows them live.
            page.click("[data-class-start]")
            future = asyncio.run_coroutine_threadsafe(draw_and_finish(clients),
                                                      student_loop.loop)
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-class-grid] .class-tile')]"
                ".filter(t => t.dataset.live === 'true'"
                " && /^[0-9]/.test(t.querySelector('[data-guess]').textContent)).length"
                f" === {STUDENTS}", timeout=TIMEOUT_MS)
            inked = page.evaluate(
                """() => [...document.querySelectorAll('[data-class-grid] canvas')].filter(c => {
                  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
                  return false;
                }).length""")
            assert inked == STUDENTS
            target, ends = future.result(120)

            # After the round: the class's results, wrong drawings and confusion matrix.
            page.wait_for_selector("[data-class-results]:not([hidden])", timeout=TIMEOUT_MS)
            guesses = [end["results"][0]["digit"] for end in ends]
            wrong = sum(1 for digit in guesses if digit != target)
            counts = page.locator("[data-class-counts]").inner_text()
            assert f"{STUDENTS - wrong} of {STUDENTS} drawings read right" in counts
            assert page.locator("[data-class-wrong] .class-tile").count() == wrong
            cells = page.locator("[data-class-matrix] tbody td")
            assert cells.count() == 100
            by_cell = cells.evaluate_all("cells => cells.map(c => Number(c.dataset.count))")
            assert sum(by_cell) == STUDENTS
            for digit in set(guesses):
                assert by_cell[10 * target + digit] == guesses.count(digit)
            assert f"draw {'an' if target == 8 else 'a'} {target}" in page.locator(
                "[data-class-results-title]").inner_text()

            # The end: the scores, and what the class taught the model.
            page.wait_for_selector("[data-class-summary]:not([hidden])", timeout=TIMEOUT_MS)
            summary = page.locator("[data-summary-count]").inner_text()
            assert f"gave the model {STUDENTS} labelled drawings" in summary
            assert page.locator("[data-summary-samples] canvas").count() == STUDENTS
            assert page.locator("[data-learn-link]").get_attribute("href") == (
                "/learn/how-it-works/")
            assert page.locator("[data-review-link]").is_hidden()  # not staff
            assert page.locator("[data-class-final] [data-leaderboard] li").count() == STUDENTS
            page.screenshot(path=str(artifacts_dir / "class-projector.png"), full_page=True)

            # A student saw only their own result, and nothing of the projector's.
            for client, end in zip(clients, ends, strict=True):
                assert [r["player"] for r in end["results"]] == [client.you["id"]]
                assert not [m for m in client.messages if m["type"].startswith("class_")]
        finally:
            student_loop.run(close_all(clients))
        assert page.js_errors == [] and page.console_errors == []
