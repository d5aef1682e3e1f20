"""A class teaches its own copy, end to end: the teacher's projector in
Chromium, four students as protocol clients on a real Daphne server with the
shipped model.

After a two-round game the projector offers "Teach the model with our
class's drawings"; pressing it shows the job's progress, then before and
after on the class's held-out drawings and on MNIST. The teacher's "leave
out of teaching" marks on misread drawings travel with the request.
"""

import asyncio
import re

import pytest

from tests.live import LiveServer, open_page
from tests.test_classroom_browser import EventLoopThread, draw_and_finish

pytestmark = pytest.mark.browser

TIMEOUT_MS = 120_000
STUDENTS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_dir):
    # Fewer MNIST digits to replay and to measure on than the site's 3,000
    # and 2,000, and fewer steps than its 300: the page shows the same
    # panel (its scores are other numbers), for less CPU.
    live = LiveServer(tmp_path_factory.mktemp("teach-class"),
                      env={"MNIST_DATA_DIR": str(mnist_dir), "TEACH_REPLAY_DIGITS": "500",
                           "TEACH_TEST_DIGITS": "500", "TEACH_DEFAULT_STEPS": "60"})
    live.start()
    yield live
    live.stop()


@pytest.fixture
def student_loop():
    loop = EventLoopThread()
    yield loop
    loop.stop()


async def join_and_sit(server, code):
    clients = await asyncio.gather(*(server.game_client(code, f"Student {n + 1}")
                                     for n in range(STUDENTS)))
    await asyncio.gather(*(client.join() for client in clients))
    return clients


async def close_all(clients):
    await asyncio.gather(*(client.close() for client in clients))


def test_the_teacher_teaches_the_class_copy_after_a_game(server, browser, student_loop,
                                                         artifacts_dir):
    with open_page(browser, viewport={"width": 1600, "height": 1000}) as page:
        posted = []
        page.on("request", lambda r: r.method == "POST" and "/learn/teach/api/class/" in r.url
                and posted.append(r.post_data))
        page.goto(server.url + "/")
        page.fill("#id_class_teacher", "Ms Lovelace")
        page.fill("#id_class_rounds", "2")
        page.fill("#id_class_seconds", "90")
        page.click("[data-open-class] button[type=submit]")
        page.wait_for_url(re.compile(r".*/class/[A-Z2-9]{6}/projector/$"))
        code = page.locator("[data-class-code]").inner_text().strip()
        page.wait_for_selector("[data-teacher-controls]:not([hidden])", timeout=TIMEOUT_MS)
        # Nothing to teach before a game.
        assert page.locator("[data-class-teach]").is_hidden()

        clients = student_loop.run(join_and_sit(server, code))
        try:
            page.wait_for_function(
                f"() => document.querySelectorAll('[data-class-grid] .class-tile').length"
                f" === {STUDENTS}", timeout=TIMEOUT_MS)
            page.click("[data-class-start]")
            for round_number in (1, 2):
                student_loop.run(draw_and_finish(clients, round_number), timeout=180)
            page.wait_for_selector("[data-class-summary]:not([hidden])", timeout=TIMEOUT_MS)
            panel = page.locator("[data-class-teach]")
            panel.wait_for(state="visible", timeout=TIMEOUT_MS)

            page.click("[data-class-teach-start]")
            page.wait_for_selector("[data-class-teach-result]:not([hidden])", timeout=TIMEOUT_MS)
            assert posted == ["{}"]  # nothing left out
            assert panel.locator("[data-progress-text]").inner_text().startswith("Done")
            rows = panel.locator("[data-scores] tr").evaluate_all(
                "rows => rows.map(r => [r.dataset.score, Number(r.dataset.before),"
                " Number(r.dataset.after), r.querySelector('th').textContent])")
            assert [row[0] for row in rows] == ["held_out", "trained_on", "mnist"]
            for _, before, after, _ in rows:
                assert 0 <= before <= 1 and 0 <= after <= 1
            # Eight drawings (four students, two rounds): at least two held out.
            held = int(re.search(r"(\d+) drawings the copy never trained on", rows[0][3]).group(1))
            trained = int(re.search(r"(\d+) of the class's", rows[1][3]).group(1))
            assert 2 <= held <= 4 and held + trained == 2 * STUDENTS
            assert "held-out drawings" in panel.locator("[data-verdict]").inner_text()
            assert panel.locator("[data-class-teach-start]").is_enabled()
            page.screenshot(path=str(artifacts_dir / "teach-class.png"), full_page=True)
        finally:
            student_loop.run(close_all(clients))
        assert page.js_errors == [] and page.console_errors == []


def test_drawings_left_out_go_with_the_request(server, page):
    """The round's misread drawings each carry a "leave out" toggle; the marks
    are the class job's "exclude" ({player, round})."""
    page.goto(server.url + "/learn/")
    result = page.evaluate("""async () => {
        const {showRound} = await import('/static/js/class-report.js');
        const {Exclusions} = await import('/static/js/teach/class-teach.js');
        const counts = [];
        const root = document.createElement('div');
        root.innerHTML = '<ul data-wrong></ul><p data-no-wrong></p><table><tbody></tbody></table>';
        document.body.append(root);
        const ui = {results: root, resultsTitle: root, counts: root.querySelector('p'),
            wrong: root.querySelector('[data-wrong]'),
            noWrong: root.querySelector('[data-no-wrong]'),
            matrix: root.querySelector('table'), matrixRounds: document.createElement('span'),
            exclusions: new Exclusions((n) => counts.push(n))};
        const drawing = {width: 100, height: 100, strokes: [[[10, 10, 0], [90, 90, 50]]]};
        const matrix = Array.from({length: 10}, () => Array(10).fill(0));
        showRound(ui, {round: 2, target: 4, correct: 1, drawn: 3, recognised: 1, students: 3,
            matrix, matrix_rounds: 2, wrong: [
                {player: 'p1', name: 'A', digit: 9, probability: 0.8, drawing},
                {player: 'p2', name: 'B', digit: 1, probability: null, drawing: null}]});
        await new Promise(requestAnimationFrame);
        const buttons = [...ui.wrong.querySelectorAll('button[data-leave-out]')];
        buttons[0].click();
        const pressed = buttons[0].getAttribute('aria-pressed');
        const tile = buttons[0].closest('li').classList.contains('is-left-out');
        const listed = ui.exclusions.list();
        buttons[0].click();
        const after = ui.exclusions.list();
        return {count: buttons.length, pressed, tile, listed, after, counts,
                text: buttons[0].textContent};
    }""")
    # Only a kept drawing can be left out (an opted-out student's was not kept).
    assert result["count"] == 1
    assert result["pressed"] == "true" and result["tile"] is True
    assert result["listed"] == [{"player": "p1", "round": 2}]
    assert result["after"] == [] and result["counts"] == [1, 0]
    assert result["text"] == "Leave out of teaching"
