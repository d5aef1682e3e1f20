"""The teach page in headless Chromium against a real Daphne server and the
shipped model.

A learner picks "your 7 with a bar", draws eleven examples with the mouse
(undoing one), each read by the site's model; sets 100 steps with the keys
and presses Teach; the page follows the job to its end, shows before and
after on the held-out examples and on MNIST, and both models' ten
probabilities for a new drawing. Leaving the page cancels its job (the
beacon), a second job of the same browser is refused with the server's
words, Cancel stops one. A misread drawing in the game's results links here
with its digit. Screenshots: artifacts/teach-*.png.
"""

import json
import re

import pytest

from tests.live import LiveServer, open_page
from tests.support import wait_until
from tests.test_teaching_browser import stroke

pytestmark = pytest.mark.browser

# Generous: the machine has two cores, shared with other tests and browsers.
TIMEOUT_MS = 120_000

# "7 with a bar" as fractions of the pad, a little different each time.
SEVEN_WITH_A_BAR = [
    [(0.25, 0.18), (0.75, 0.18), (0.45, 0.85)],
    [(0.36, 0.5), (0.7, 0.5)],
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_dir):
    live = LiveServer(tmp_path_factory.mktemp("teach"), env={
        "MNIST_DATA_DIR": str(mnist_dir),
        # Only a beacon (or the Cancel button) may stop a job here: a page
        # that stopped polling is not given up on within these tests.
        "TEACH_ABANDON_SECONDS": "600",
        # 500 MNIST digits replayed and 500 measured, not the site's 3,000
        # and 2,000: the page shows the same, for less CPU.
        "TEACH_REPLAY_DIGITS": "500", "TEACH_TEST_DIGITS": "500",
    })
    live.start()
    yield live
    live.stop()


def draw_seven(page, pad, n):
    shift = (n % 5 - 2) * 0.02
    for points in SEVEN_WITH_A_BAR:
        stroke(page, pad, [(x + shift, y + shift * (n % 2)) for x, y in points], steps=5)


def wait_for_examples(page, count):
    page.wait_for_function(
        "(count) => document.querySelectorAll('[data-examples] li').length === count"
        " && document.querySelectorAll('[data-examples] li[data-reading]').length === count",
        arg=count, timeout=TIMEOUT_MS)


def column_probabilities(page, name):
    return page.eval_on_selector_all(f'[data-compare="{name}"] li',
                                     "items => items.map(i => Number(i.dataset.probability))")


def test_a_learner_teaches_a_copy_and_sees_before_and_after(server, browser, artifacts_dir):
    with open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        posted = []
        page.on("request", lambda r: r.method == "POST" and r.url.endswith("/api/jobs")
                and posted.append(json.loads(r.post_data)))
        page.goto(server.url + "/learn/teach/")
        page.wait_for_selector("[data-teach][data-ready]")
        assert page.locator("[data-teach-button]").is_disabled()

        page.click("button:has-text('Your 7 with a bar')")
        assert page.is_checked('input[name=digit][value="7"]')
        assert "bar across the middle" in page.inner_text("[data-hint-text]")
        page.evaluate("""() => {
            window.progressTexts = [];
            const text = document.querySelector('[data-progress-text]');
            new MutationObserver(() => window.progressTexts.push(text.textContent))
                .observe(text, {childList: true, characterData: true, subtree: true});
        }""")

        pad = page.locator("canvas[data-pad]")
        pad.scroll_into_view_if_needed()
        for n in range(11):
            draw_seven(page, pad, n)
            if n == 3:
                # Enter adds the drawing when no control has the focus.
                page.evaluate("() => document.activeElement.blur()")
                page.keyboard.press("Enter")
            else:
                page.click("[data-add]")
            assert page.evaluate("() => window.digitTeach.pad.isEmpty()")
        wait_for_examples(page, 11)
        page.click("[data-undo-example]")
        wait_for_examples(page, 10)
        assert page.inner_text("[data-counter]").startswith("10 of 10–30")
        assert page.locator("[data-needs]").is_hidden()

        # Each example shows what the site's model reads in it.
        labels = page.locator("[data-examples] li canvas").evaluate_all(
            "canvases => canvases.map(c => c.getAttribute('aria-label'))")
        assert all(re.match(r"Example \d+: your 7; the site's model reads it as \d, ", label)
                   for label in labels), labels
        readings = page.locator("[data-examples] li").evaluate_all(
            "items => items.map(i =>"
            " [Number(i.dataset.reading), i.classList.contains('is-misread')])")
        assert all(misread == (digit != 7) for digit, misread in readings)

        # 100 steps with the keys: Home is the least (20), each arrow 10 more.
        page.focus("[data-steps]")
        page.keyboard.press("Home")
        assert page.inner_text("[data-steps-output]") == "20"
        for _ in range(8):
            page.keyboard.press("ArrowRight")
        assert page.inner_text("[data-steps-output]") == "100"

        page.click("[data-teach-button]")
        page.wait_for_selector("[data-results]:not([hidden])", timeout=TIMEOUT_MS)

        # What was sent: the ten examples as the learner labelled them, the settings.
        assert len(posted) == 1
        body = posted[0]
        assert [e["label"] for e in body["examples"]] == [7] * 10
        assert all(len(e["drawing"]["strokes"]) == 2 for e in body["examples"])
        assert (body["replay"], body["steps"], body["store"]) == (True, 100, True)

        # Progress: each text the bar showed is one of a job's states (waiting,
        # steps of 100, done), ending done with a full bar. Whether a step
        # shows at all depends on how fast the machine trains between two
        # polls (a fast one finishes 100 steps in less); the words of every
        # state are tested in test_progress_words_and_milestones.
        texts = page.evaluate("() => window.progressTexts")
        assert texts and all(re.fullmatch(r"Waiting for the trainer: .+|Step \d+ of 100"
                                          r"( · loss \d+\.\d{3})?|Done: 100 steps\.", t)
                             for t in texts), texts
        assert texts[-1] == "Done: 100 steps."
        assert page.inner_text("[data-progress-text]") == "Done: 100 steps."
        assert page.eval_on_selector("[data-progress-bar]", "b => b.value === b.max")
        assert page.inner_text("[data-announce]").startswith("Done. ")

        # Before and after, on the held-out examples and on MNIST.
        rows = page.locator("[data-scores] tr").evaluate_all(
            "rows => rows.map(r => [r.dataset.score, Number(r.dataset.before),"
            " Number(r.dataset.after), r.querySelector('th').textContent])")
        assert [row[0] for row in rows] == ["held_out", "trained_on", "mnist"]
        for _, before, after, _ in rows:
            assert 0 <= before <= 1 and 0 <= after <= 1
        held = int(re.search(r"(\d+) you drew", rows[0][3]).group(1))
        trained = int(re.search(r"(\d+) of yours", rows[1][3]).group(1))
        assert 2 <= held <= 5 and held + trained == 10  # about one in four held out, at least two
        assert re.search(r"[\d,]+ scanned digits", rows[2][3])
        assert re.search(r"held-out drawings", page.inner_text("[data-verdict]"))
        assert "100 steps" in page.inner_text("[data-result-facts]")
        page.screenshot(path=str(artifacts_dir / "teach-after.png"), full_page=True)

        # A new drawing: both models' probabilities side by side.
        compare = page.locator("canvas[data-compare-pad]")
        compare.scroll_into_view_if_needed()
        draw_seven(page, compare, 0)
        # The answer to the whole drawing (those to it half drawn come first).
        page.wait_for_function(
            "() => !window.digitTeach.compare.penDown && window.digitTeach.compare.pointCount"
            " === Number(document.querySelector('[data-compare-root]').dataset.answeredPoints)",
            timeout=TIMEOUT_MS)
        states = page.eval_on_selector_all("[data-compare]", "cs => cs.map(c => c.dataset.state)")
        assert states == ["ready", "ready"]
        production = column_probabilities(page, "production")
        copy = column_probabilities(page, "taught")
        assert len(production) == len(copy) == 10
        assert abs(sum(production) - 1) < 0.01 and abs(sum(copy) - 1) < 0.01
        assert max(abs(a - b) for a, b in zip(production, copy, strict=True)) > 1e-4
        for name, probabilities in (("production", production), ("taught", copy)):
            top = probabilities.index(max(probabilities))
            assert page.inner_text(f'[data-compare="{name}"] [data-compare-guess]') == str(top)
        page.screenshot(path=str(artifacts_dir / "teach-compare.png"))
        # Clearing the pad empties both columns (the lessons' pad reset,
        # shared: teaching/common.js followDrawing).
        page.click('[data-compare-root] [data-pad-action="clear"]')
        states = page.eval_on_selector_all("[data-compare]", "cs => cs.map(c => c.dataset.state)")
        assert states == ["empty", "empty"]
        assert page.inner_text('[data-compare="production"] [data-compare-guess]') == "?"
        assert page.js_errors == [] and page.console_errors == []


def add_examples(page, digit=7, count=10):
    """Examples added through the page's own list (what drawing them adds), for
    tests about jobs rather than drawing."""
    page.evaluate("""([digit, count]) => {
        for (let n = 0; n < count; n++) {
            window.digitTeach.examples.add(digit, {width: 300, height: 300, strokes: [
                [[70 + n, 60, 0], [230, 60, 80], [140 + n, 250, 200]],
                [[100, 150, 300], [210, 150, 380]]]});
        }
    }""", [digit, count])
    wait_for_examples(page, count)


def teach_until_accepted(page, tries=20):
    """Press Teach until the server takes the job, waiting out each refusal
    the page shows ("Try again in 5 s") as a learner would."""
    for _ in range(tries):
        page.click("[data-teach-button]")
        page.wait_for_function(
            "() => window.digitTeach.job.active"
            " || !document.querySelector('[data-error]').hidden", timeout=TIMEOUT_MS)
        if page.evaluate("() => window.digitTeach.job.active"):
            assert page.inner_text("[data-error]") == ""
            return
        error = page.inner_text("[data-error]")
        assert "already running or waiting" in error, error
        page.wait_for_timeout(1000 * int(re.search(r"Try again in (\d+) s", error).group(1)))
    raise AssertionError(f"the job was refused {tries} times")


def job_state(page, job, pause_ms=250):
    """The job's state as the page's browser session reads it, after a pause
    (when polled, a few answers a second are plenty)."""
    page.wait_for_timeout(pause_ms)
    return page.evaluate(
        "async (job) => (await (await fetch(`/learn/teach/api/jobs/${job}`)).json()).state", job)


def test_leaving_cancels_the_job_and_one_browser_has_one_job(server, browser):
    with open_page(browser, viewport={"width": 1280, "height": 800}) as first:
        second = first.context.new_page()
        second_errors = []
        second.on("pageerror", lambda exc: second_errors.append(str(exc)))
        for page in (first, second):
            page.goto(server.url + "/learn/teach/")
            page.wait_for_selector("[data-teach][data-ready]")
            add_examples(page)
        # A long job in the first tab: 1000 steps.
        first.focus("[data-steps]")
        first.keyboard.press("End")
        assert first.inner_text("[data-steps-output]") == "1000"
        first.click("[data-teach-button]")
        first.wait_for_function("() => window.digitTeach.job.active", timeout=TIMEOUT_MS)
        job = first.evaluate("() => window.digitTeach.job.id")
        assert first.locator("[data-cancel]").is_visible()

        # The same browser asks for a second: refused, in the server's words.
        second.click("[data-teach-button]")
        error = second.locator("[data-error]")
        error.wait_for(state="visible", timeout=TIMEOUT_MS)
        assert re.fullmatch(r"A training of yours is already running or waiting \(job .+\): "
                            r"wait for it or cancel it\. Try again in \d+ s\.", error.inner_text())
        assert second.locator("[data-teach-button]").is_enabled()

        # The first tab goes elsewhere: its beacon cancels the job (the server
        # would wait 600 s before giving up on a page that stopped asking).
        first.goto(server.url + "/learn/")
        wait_until(lambda: job_state(second, job) == "cancelled", timeout=TIMEOUT_MS / 1000,
                   what="the job of the page that went away cancelled")

        # Now the second tab's job is accepted (once the cancelled one has
        # stopped: until its next step it still holds the session's place);
        # its Cancel button stops it.
        teach_until_accepted(second)
        second_job = second.evaluate("() => window.digitTeach.job.id")
        second.click("[data-cancel]")
        second.wait_for_function(
            "() => document.querySelector('[data-progress]').dataset.state === 'cancelled'",
            timeout=TIMEOUT_MS)
        assert second.inner_text("[data-progress-text]") == "Cancelled."
        assert job_state(second, second_job, pause_ms=0) == "cancelled"
        assert second.locator("[data-cancel]").is_hidden()
        assert second.locator("[data-teach-button]").is_enabled()
        # (The refusals show as console errors: a 429 is a failed request to a browser.)
        assert first.js_errors == [] and second_errors == []


def test_the_opt_out_is_remembered_and_sent(server, browser):
    with open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        posted = []
        page.on("request", lambda r: r.method == "POST" and r.url.endswith("/api/jobs")
                and posted.append(json.loads(r.post_data)))
        page.goto(server.url + "/learn/teach/")
        page.wait_for_selector("[data-teach][data-ready]")
        assert not page.is_checked("[data-opt-out]")
        page.click("label:has-text(\"Don't keep my drawings for the public model\")")
        page.click("label:has-text('Keep reminding it of MNIST')")
        page.reload()
        page.wait_for_selector("[data-teach][data-ready]")
        # Remembered in this browser; the reminder is on again, as every visit starts.
        assert page.is_checked("[data-opt-out]") and page.is_checked("[data-replay]")
        add_examples(page, digit=0)
        page.click("[data-teach-button]")
        page.wait_for_function("() => window.digitTeach.job.active", timeout=TIMEOUT_MS)
        page.click("[data-cancel]")
        assert posted and posted[0]["store"] is False
        assert {e["label"] for e in posted[0]["examples"]} == {0}


def test_a_misread_drawing_in_the_results_leads_here_with_its_digit(server, page):
    """The game's round results (game-results.js): my misread drawing links to
    the teach page for the round's digit, in a new tab, which opens on it."""
    page.goto(server.url + "/learn/teach/")
    page.wait_for_selector("[data-teach][data-ready]")
    links = page.evaluate("""async () => {
        const {showResults} = await import('/static/js/game-results.js');
        const grid = document.createElement('div');
        grid.dataset.teachUrl = '/learn/teach/';
        document.body.append(grid);
        const result = (player, digit) => ({player, name: player, digit, points: 0, score: 0,
            probabilities: null, target_probability: 0.1, reason: 'time', drawing: null});
        const show = (results) => {
            showResults(grid, {target: 4, results}, 'me');
            return [...grid.querySelectorAll('a[data-teach-link]')].map(a =>
                [a.closest('[data-player]').dataset.player, a.getAttribute('href'), a.target]);
        };
        // The misread one last: its link stays on the page to follow.
        return {
            right: show([result('me', 4), result('other', 1)]),
            nothing: show([result('me', null)]),
            misread: show([result('me', 9), result('other', 1), result('third', 4)]),
        };
    }""")
    assert links["misread"] == [["me", "/learn/teach/?digit=4&from=game", "_blank"]]
    assert links["right"] == [] and links["nothing"] == []

    with page.expect_popup() as popup_info:
        page.click("a.result__teach")
    popup = popup_info.value
    popup.wait_for_selector("[data-teach][data-ready]")
    assert popup.is_checked('input[name=digit][value="4"]')
    suggestion = popup.locator("[data-suggest-game]")
    assert suggestion.is_visible() and suggestion.inner_text() == "The 4 it got wrong in your game"
    assert suggestion.get_attribute("aria-pressed") == "true"
    assert "the one the model got wrong in your game" in popup.inner_text("[data-hint-text]")
    assert popup.inner_text("[data-digit-name]") == "4"
    # Another digit chosen: the suggestion keeps its own digit.
    popup.click('label:has(input[name=digit][value="2"])')
    assert popup.inner_text("[data-digit-name]") == "2"
    assert suggestion.inner_text() == "The 4 it got wrong in your game"
    assert suggestion.get_attribute("aria-pressed") == "false"


def test_progress_words_and_milestones(server, page):
    """What the bar says for each state a job passes through, and which
    changes the live region announces (not every poll)."""
    page.goto(server.url + "/learn/teach/")
    page.wait_for_selector("[data-teach][data-ready]")
    said = page.evaluate("""async () => {
        const {progressOf, milestone} = await import('/static/js/teach/job.js');
        const {change} = await import('/static/js/teach/before-after.js');
        const statuses = [
            {state: 'queued', position: 2}, {state: 'queued', position: 1},
            {state: 'queued', position: 0}, {state: 'running', step: 0, steps: 200, loss: null},
            {state: 'running', step: 40, steps: 200, loss: 1.23456},
            {state: 'running', step: 60, steps: 200, loss: 0.5},
            {state: 'running', step: 120, steps: 200, loss: 0.25},
            {state: 'done', step: 200, steps: 200},
        ];
        let before = null;
        const out = [];
        for (const status of statuses) {
            out.push([progressOf(status).text, milestone(before, status)]);
            before = status;
        }
        out.push([progressOf({state: 'failed', error: 'it used 30 s of CPU'}).text, null]);
        out.push([change(0.25, 1), change(0.9967, 0.62), change(0.5, 0.5)]);
        return out;
    }""")
    assert said == [
        ["Waiting for the trainer: 2 jobs are ahead of yours.",
         "Waiting for the trainer: 2 jobs are ahead of yours."],
        ["Waiting for the trainer: 1 job is ahead of yours.", None],
        ["Waiting for the trainer: yours is next.", None],
        ["Step 0 of 200", "Training started."],
        ["Step 40 of 200 · loss 1.235", None],
        ["Step 60 of 200 · loss 0.500", "25% of the steps done."],
        ["Step 120 of 200 · loss 0.250", "50% of the steps done."],
        ["Done: 200 steps.", "Done: 200 steps."],
        ["It failed. It used 30 s of CPU.", None],
        ["+75.0 points", "−37.7 points", "no change"],
    ]


@pytest.mark.parametrize("width, height", [(360, 740), (1280, 800)])
def test_the_page_fits_phones_and_laptops(server, browser, artifacts_dir, width, height):
    with open_page(browser, viewport={"width": width, "height": height}) as page:
        page.goto(server.url + "/learn/teach/?digit=0")
        page.wait_for_selector("[data-teach][data-ready]")
        assert page.is_checked('input[name=digit][value="0"]')
        add_examples(page, digit=0, count=12)
        # No sideways scrolling; the pad with its buttons fits the screen.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        page.locator("[data-add]").scroll_into_view_if_needed()
        pad = page.locator("canvas[data-pad]").bounding_box()
        add = page.locator("[data-add]").bounding_box()
        assert pad["width"] >= 220 and pad["height"] == pytest.approx(pad["width"], abs=2)
        assert add["y"] + add["height"] - pad["y"] <= height
        # Every control can be reached with Tab and says what it is.
        names = page.evaluate("""() => [...document.querySelectorAll(
            '[data-teach] button:not([hidden]), [data-teach] input')]
            .filter(e => !e.closest('[hidden]'))
            .map(e => e.labels?.[0]?.textContent.trim() || e.textContent.trim()
                 || e.getAttribute('aria-label'))""")
        assert all(names), names
        page.screenshot(path=str(artifacts_dir / f"teach-{width}.png"), full_page=True)
        assert page.js_errors == [] and page.console_errors == []
