"""End to end, real Chromium against a real Daphne server: in an ordinary
room each player sees the others draw, live, on small canvases with the
model's current guess.

Ada and Bob play a round whose target confidence is 1.0 (no drawing ends it
by itself). Bob draws; Ada's tile for Bob fills with ink and shows a guess,
and changes again when he draws more. Ada has no tile of her own; Bob's tile
of Ada stays blank, as she has not drawn.
"""

import pytest

from tests.live import open_page
from tests.support import draw_stroke, join_room
from tests.test_room_page_browser import LAPTOP, TIMEOUT_MS

pytestmark = pytest.mark.browser

# Ink on a player's live tile: painted pixels (alpha above zero).
TILE_INK = """(player) => {
  const canvas = document.querySelector(`[data-live-grid] [data-player="${player}"] canvas`);
  if (!canvas || !canvas.width) return 0;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked += 1;
  return inked;
}"""


@pytest.fixture(scope="module")
def game_server(daphne_server):
    """The live server with an active model (an untrained one if none is shipped)."""
    return daphne_server.ensure_model()


def test_a_player_sees_the_others_tile_update_as_they_draw(game_server, browser):
    code = game_server.create_room("Ada", rounds=1, seconds=300.0, max_players=2,
                                   target_confidence=1.0)
    url = f"{game_server.url}/room/{code}/"
    with open_page(browser, viewport=LAPTOP) as ada, open_page(browser, viewport=LAPTOP) as bob:
        join_room(ada, url, "Ada")
        join_room(bob, url, "Bob")
        ada.wait_for_function(
            "() => document.querySelectorAll('[data-live-grid] .class-tile').length === 1",
            timeout=TIMEOUT_MS)
        ada_id = ada.evaluate("window.digitGame.state.me.id")
        bob_id = bob.evaluate("window.digitGame.state.me.id")
        tiles = ada.evaluate("""() => [...document.querySelectorAll('[data-live-grid] .class-tile')]
            .map((t) => [t.dataset.player, t.textContent])""")
        assert [player for player, _ in tiles] == [bob_id] and "Bob" in tiles[0][1]
        assert ada.locator("[data-live-others]").is_visible()

        ada.click("[data-start]")
        for page in (ada, bob):
            page.wait_for_function("() => window.digitGame.state.round === 1",
                                   timeout=TIMEOUT_MS)
        assert ada.evaluate(TILE_INK, bob_id) == 0

        draw_stroke(bob, [(0.2, 0.2), (0.8, 0.2), (0.4, 0.9)])
        tile = f"[data-live-grid] [data-player='{bob_id}']"
        ada.wait_for_selector(f"{tile}[data-live='true']", timeout=TIMEOUT_MS)
        ada.wait_for_function(f"(p) => ({TILE_INK})(p) > 0", arg=bob_id, timeout=TIMEOUT_MS)
        first_ink = ada.evaluate(TILE_INK, bob_id)
        guess = ada.locator(f"{tile} [data-guess]").inner_text()
        assert guess and guess.split(" · ")[0].isdigit(), guess

        # More ink on Bob's canvas: more on Ada's tile of him.
        draw_stroke(bob, [(0.1, 0.6), (0.9, 0.6)])
        ada.wait_for_function(f"(p) => ({TILE_INK})(p) > {first_ink}", arg=bob_id,
                              timeout=TIMEOUT_MS)
        # Bob's tile of Ada: she has not drawn, nothing came.
        assert bob.locator(f"[data-live-grid] [data-player='{ada_id}']").get_attribute(
            "data-live") == "false"
        assert bob.evaluate(TILE_INK, ada_id) == 0
        assert ada.js_errors == [] and bob.js_errors == []
