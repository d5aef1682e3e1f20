"""End to end, real Chromium against a real Daphne server: the practice page
says "Recognised!" for what the model makes of the drawing now, only once the
pen is lifted, and takes it back when a later drawing is read as another digit.

The model's answers are the test's own (the page's requests to the
recognition API are answered by the browser), so what the page shows depends
on the drawing's state, not on what a model makes of a test's strokes.
"""

import json

import pytest

from tests.support import stroke_down

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000


def answer_with(digit, probability=0.99):
    probabilities = [(1 - probability) / 9] * 10
    probabilities[digit] = probability
    return json.dumps({"digit": digit, "probabilities": probabilities})


def shown(page):
    return {
        "guess": page.locator("[data-guess-digit]").inner_text().strip(),
        "status": page.locator("[data-practice-status]").inner_text(),
        "tally": page.locator("[data-practice-tally]").inner_text(),
    }


def wait_for_guess(page, digit):
    page.wait_for_function(
        "(digit) => document.querySelector('[data-guess-digit]').textContent === digit",
        arg=str(digit), timeout=TIMEOUT_MS)


def wait_for_recognised(page):
    page.wait_for_function(
        "() => document.querySelector('[data-practice-status]').textContent"
        ".includes('Recognised!')", timeout=TIMEOUT_MS)


def test_recognised_follows_the_current_guess_of_a_finished_drawing(daphne_server, page):
    model = {"digit": None}
    page.route("**/api/recognize", lambda route: route.fulfill(
        status=200, content_type="application/json", body=answer_with(model["digit"])))
    page.goto(daphne_server.url + "/practice/")
    target = int(page.locator("[data-target]").inner_text())
    other = (target + 1) % 10

    # Mid-stroke the model already reads the target: not "Recognised!" yet.
    model["digit"] = target
    stroke_down(page, (0.3, 0.2), (0.5, 0.8))
    wait_for_guess(page, target)
    now = shown(page)
    assert "Recognised" not in now["status"], now
    assert now["tally"] == "0 recognised"
    # The pen is lifted: now it is.
    page.mouse.up()
    wait_for_recognised(page)
    assert shown(page)["tally"] == "1 recognised"

    # More ink, read as another digit: "Recognised!" goes, mid-stroke already.
    model["digit"] = other
    stroke_down(page, (0.6, 0.2), (0.6, 0.8))
    wait_for_guess(page, other)
    assert "Recognised" not in shown(page)["status"]
    page.mouse.up()

    # Undone, the drawing is the target again: recognised, and counted once.
    model["digit"] = target
    page.click("[data-pad-action='undo']")
    wait_for_recognised(page)
    now = shown(page)
    assert now["guess"] == str(target) and now["tally"] == "1 recognised"
    assert f"sure it is {'an' if target == 8 else 'a'} {target}" in page.locator(
        "[data-guess-note]").inner_text()
    assert page.js_errors == []
