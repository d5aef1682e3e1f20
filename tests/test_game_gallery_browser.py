"""End to end, real Chromium against a real Daphne server: the end-of-game
gallery, and a player telling the reviewers that the model got their
drawing wrong.

Ada and Bob play one round in a room whose target confidence is 1.0 (no
drawing ends a round by itself): each draws a line and says done. Both
pages then show the gallery with both drawings; only Ada's own card offers
Ada a correction. She sends one; the server stores it on her drawing, her
card says so, and it still says so after a reload.
"""

import json

import pytest

from tests.live import open_page
from tests.support import join_room
from tests.test_room_page_browser import LAPTOP, PHONE, TIMEOUT_MS, finish

pytestmark = pytest.mark.browser

GALLERY_CARDS = "[data-gallery]:not([hidden]) .gallery__card"


@pytest.fixture(scope="module")
def game_server(daphne_server):
    """The live server with an active model (an untrained one if none is shipped)."""
    return daphne_server.ensure_model()


def player_labels(server, code):
    """{player name: the digit they said} for room `code`'s stored drawings."""
    script = (
        "import json, sys\n"
        "from recognizer.models import Drawing\n"
        f"rows = Drawing.objects.filter(room_code={code!r})\n"
        "sys.stdout.write(json.dumps({d.player_name: d.player_label for d in rows}))\n"
    )
    return json.loads(server.run_script(script))


def cards(page):
    """What each gallery card shows: name, round, whether it offers a correction."""
    return page.evaluate("""() => [...document.querySelectorAll(".gallery__card")].map((card) => ({
        name: card.querySelector(".gallery__name").textContent,
        round: card.dataset.round,
        mine: card.dataset.mine !== undefined,
        offers: card.querySelector("[data-correct]") !== null,
        said: card.querySelector(".gallery__said")?.textContent ?? null,
        input: card.querySelector("img")?.naturalWidth ?? 0,
      }))""")


def test_the_gallery_shows_every_drawing_and_takes_a_correction_of_ones_own(game_server,
                                                                            browser):
    code = game_server.create_room("Ada", rounds=1, seconds=60.0, max_players=2,
                                   target_confidence=1.0)
    url = f"{game_server.url}/room/{code}/"
    with open_page(browser, viewport=LAPTOP) as ada, \
            open_page(browser, viewport=PHONE, has_touch=True) as bob:
        join_room(ada, url, "Ada")
        join_room(bob, url, "Bob")
        ada.wait_for_function(
            "() => document.querySelectorAll('[data-players] .player').length === 2",
            timeout=TIMEOUT_MS)
        ada.click("[data-start]")
        for page in (ada, bob):
            page.wait_for_function("() => window.digitGame.state.round === 1",
                                   timeout=TIMEOUT_MS)
        finish(ada)
        finish(bob)
        for page in (ada, bob):
            page.wait_for_function(
                f"() => document.querySelectorAll('{GALLERY_CARDS}').length === 2",
                timeout=TIMEOUT_MS)

        shown = {card["name"]: card for card in cards(ada)}
        assert set(shown) == {"Ada (you)", "Bob"}
        assert shown["Ada (you)"]["offers"] and not shown["Bob"]["offers"]
        assert all(card["input"] == 28 for card in shown.values())  # the 28x28 input
        bobs_view = {card["name"]: card for card in cards(bob)}
        assert bobs_view["Bob (you)"]["offers"] and not bobs_view["Ada"]["offers"]
        assert "Round 1: draw" in ada.locator("[data-gallery]").inner_text()

        # "This was wrong…", then the digit: the model's own reading is not offered.
        mine = ada.locator(".gallery__card[data-mine]")
        read_as = int(ada.evaluate(
            "window.digitGame.state.lastRoundEnd.results.find("
            "(r) => r.player === window.digitGame.state.me.id).digit"))
        mine.locator("[data-correct]").click()
        offered = [int(d) for d in mine.locator("[data-digit]").evaluate_all(
            "(buttons) => buttons.map((b) => b.dataset.digit)")]
        assert offered == [d for d in range(10) if d != read_as]
        said = offered[0]
        mine.locator(f"[data-digit='{said}']").click()
        ada.wait_for_selector(".gallery__card[data-mine] .gallery__said", timeout=TIMEOUT_MS)
        assert f"You said it was a{'n' if said == 8 else ''} {said}." in mine.inner_text()
        assert player_labels(game_server, code) == {"Ada": said, "Bob": None}

        # After a reload the gallery comes back with her word in it, and no button.
        ada.reload()
        ada.wait_for_function(
            f"() => document.querySelectorAll('{GALLERY_CARDS}').length === 2",
            timeout=TIMEOUT_MS)
        again = {card["name"]: card for card in cards(ada)}
        assert not again["Ada (you)"]["offers"] and str(said) in again["Ada (you)"]["said"]
        assert ada.js_errors == [] and bob.js_errors == []
