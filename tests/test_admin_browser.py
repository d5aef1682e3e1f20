"""The review queue and the stroke replay in headless Chromium against a real Daphne server.

A reviewer logs in, triages a queue of 30 drawings with the keyboard only
(approve, reject, skip, undo, then approve the rest across a refill of the
grid) and the database ends as the keys said; the drawing page replays the
strokes onto its canvas. Screenshots go to artifacts/admin-*.png.
"""

import json
import time

import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.browser

DRAWINGS = 30
PASSWORD = "queue-pass-8731"

SETUP = """
from django.contrib.auth.models import Group, User
from recognizer.models import Drawing
from recognizer.preprocessing import input_to_bytes, strokes_to_input
user = User.objects.create_user("rita", password=%(password)r, is_staff=True)
user.groups.add(Group.objects.get(name="Reviewers"))
rows = []
for n in range(%(count)d):
    # A 1 leaning a little more each time, with the canvas's timings.
    top, bottom = 100 + n, 100 - n
    stroke = [[top + (bottom - top) * i / 20, 30 + 7 * i, 12 * i] for i in range(21)]
    data = {"width": 200, "height": 200, "strokes": [stroke]}
    image = strokes_to_input(data["strokes"], 200, 200)
    # The first one almost certain: its card reads "100%%", as the game shows it.
    probabilities = [0.00004] * 10 if n == 0 else [0.01] * 10
    probabilities[1] = 0.9996 if n == 0 else 0.91
    rows.append(Drawing(label=1, strokes=data, input_image=input_to_bytes(image),
                        prediction=1, probabilities=probabilities, player_id=f"p{n}",
                        player_name=f"player {n}", room_code="QUEUE", game_id=f"g{n}"))
Drawing.objects.bulk_create(rows)
print(list(Drawing.objects.order_by("id").values_list("id", flat=True)))
"""



@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own: the queue walks every pending drawing in the database."""
    live = LiveServer(tmp_path_factory.mktemp("admin"))
    live.start()
    output = live.manage("shell", "-c", SETUP % {"password": PASSWORD, "count": DRAWINGS})
    live.drawing_ids = json.loads(output.stdout.strip().splitlines()[-1])
    yield live
    live.stop()


def ids_with_status(page, status):
    """Drawing ids the admin's own list shows with `status` (read by the reviewer's browser)."""
    return page.evaluate("""async (status) => {
        const url = `/admin/recognizer/drawing/?status__exact=${status}`;
        const html = await (await fetch(url)).text();
        const doc = new DOMParser().parseFromString(html, "text/html");
        return [...doc.querySelectorAll("input.action-select")].map(box => Number(box.value));
    }""", status)


def log_in(page, server, next_path):
    page.goto(f"{server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.url}{next_path}")


def card_ids(page):
    return page.eval_on_selector_all(".rq-card", "cards => cards.map(c => Number(c.dataset.id))")


def wait_until_sent(page, expected_pending, timeout=60):
    """Poll the queue's own endpoint until the server has every decision."""
    deadline = time.monotonic() + timeout
    while True:
        pending = page.evaluate("""async () => {
            const root = document.getElementById("review-queue");
            const body = await (await fetch(root.dataset.batchUrl + "?limit=200")).json();
            return body.drawings.map(d => d.id);
        }""")
        if sorted(pending) == sorted(expected_pending) or time.monotonic() > deadline:
            return pending
        time.sleep(0.1)


def test_keyboard_triage_across_a_refill(page, server, artifacts_dir):
    ids = server.drawing_ids
    log_in(page, server, "/admin/recognizer/drawing/review/")
    page.wait_for_function("() => document.querySelectorAll('.rq-card').length === 24")
    assert card_ids(page) == ids[:24]
    assert page.locator(".rq-card svg.drawing-thumb").count() == 24
    # The site's one percent format (static/js/percent.js).
    confidences = page.locator(".rq-card__confidence")
    assert [confidences.nth(0).inner_text(), confidences.nth(1).inner_text()] == ["100%", "91.0%"]

    page.keyboard.press("a")                 # ids[0] approved, on to ids[1]
    page.keyboard.press("r")                 # ids[1] rejected, on to ids[2]
    page.keyboard.press("ArrowRight")        # skip ids[2]
    page.keyboard.press("a")                 # ids[3] approved
    page.keyboard.press("u")                 # ...and undone: pending again, cursor on it
    assert page.get_attribute(".rq-card--cursor", "data-id") == str(ids[3])
    cards = page.locator(".rq-card")
    assert cards.nth(0).get_attribute("data-status") == "approved"
    assert cards.nth(1).get_attribute("data-status") == "rejected"
    assert cards.nth(3).get_attribute("data-status") == "pending"
    assert page.locator("[data-count=pending]").inner_text() == str(DRAWINGS - 2)
    assert wait_until_sent(page, ids[2:]) == ids[2:]
    page.screenshot(path=str(artifacts_dir / "admin-review-queue.png"), full_page=True)

    # The remaining 22 of this grid (the skipped one last), then the 6 of the next.
    started = time.monotonic()
    for _ in range(22):
        page.keyboard.press("a")
    page.wait_for_function(
        f"() => Number(document.querySelector('.rq-card')?.dataset.id) === {ids[24]}")
    assert card_ids(page) == ids[24:]
    for _ in range(6):
        page.keyboard.press("a")
    page.wait_for_selector(".review-queue__empty:not([hidden])")
    assert wait_until_sent(page, []) == []
    elapsed = time.monotonic() - started
    print(f"28 keyboard decisions reached the server in {elapsed:.2f} s "
          f"({28 / elapsed * 60:.0f} a minute)")

    assert ids_with_status(page, "rejected") == [ids[1]]
    assert sorted(ids_with_status(page, "approved")) == sorted(set(ids) - {ids[1]})
    assert page.locator("[data-count=approved]").inner_text() == str(DRAWINGS - 1)
    assert page.locator("[data-count=pending]").inner_text() == "0"
    assert page.js_errors == []


def test_drawing_page_replays_the_strokes(page, server, artifacts_dir):
    drawing_id = server.drawing_ids[-1]
    log_in(page, server, f"/admin/recognizer/drawing/{drawing_id}/change/")
    page.wait_for_selector("[data-replay][data-replayed=true]", timeout=10_000)
    inked = page.evaluate("""() => {
        const canvas = document.querySelector(".stroke-replay__canvas");
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let dark = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] < 60) dark += 1;
        return dark;
    }""")
    assert inked > 200, "the replayed stroke is not on the canvas"
    assert "1 stroke" in page.inner_text(".stroke-replay__status")
    page.screenshot(path=str(artifacts_dir / "admin-drawing.png"), full_page=True)
    assert page.js_errors == []
