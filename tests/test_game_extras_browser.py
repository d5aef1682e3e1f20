"""End to end, real Chromium against a real Daphne server: the room page's
sounds, the 3-2-1 before a round, and sharing the room's link.

- Sounds are off on a first visit; turned on, the choice is remembered in
  localStorage across a reload; then a round's start, its last seconds and
  recognising the digit each play their sound (the page logs what it plays:
  headless Chromium has no speakers to listen to).
- Between rounds the canvas counts 3, 2, 1 down to the next round's start,
  then "Go!"; each number pops in by an animation, which a visitor who asked
  for reduced motion does not get.
- "Share" uses the device's share sheet where the browser has one, and
  otherwise copies the link.
"""

import pytest

from tests.live import open_page
from tests.support import join_room
from tests.test_room_page_browser import LAPTOP, TIMEOUT_MS, draw_line

pytestmark = pytest.mark.browser

# Installed before the page's scripts: every text the countdown shows, with
# the animation it runs as it appears.
WATCH_COUNTDOWN = """(() => {
  window.countdownLog = [];
  document.addEventListener("DOMContentLoaded", () => {
    const element = document.querySelector("[data-countdown]");
    new MutationObserver(() => {
      if (element.hidden) return;
      const last = window.countdownLog.at(-1);
      if (last?.text === element.textContent) return;
      window.countdownLog.push({text: element.textContent,
        animation: getComputedStyle(element).animationName,
        round: window.digitGame?.state.round});
    }).observe(element, {attributes: true, childList: true});
  });
})();"""

# A browser with a share sheet: the page's calls to it are recorded.
FAKE_SHARE = """(() => {
  window.shared = [];
  navigator.share = async (data) => { window.shared.push(data); };
})();"""


@pytest.fixture(scope="module")
def game_server(daphne_server):
    """The live server with an active model (an untrained one if none is shipped)."""
    return daphne_server.ensure_model()


def sounds_played(page):
    return page.evaluate("window.digitGame.sounds.log.slice()")


def test_sounds_are_off_at_first_remembered_once_on_and_mark_the_round(game_server, browser):
    """Round 1 (12 s) runs out untouched: its last seconds beep. Between the
    rounds (4 s) the countdown shows 3, 2, 1, then "Go!" as round 2 starts.
    In round 2 a line, pen lifted, reaches the target (confidence 0)."""
    # Rounds of 12 s: the line is drawn as round 2 starts, and its guess
    # must come before the round ends; 6 s was too short on a loaded machine.
    code = game_server.create_room("Pat", rounds=2, seconds=12.0, results_seconds=4.0,
                                   max_players=1, target_confidence=0.0)
    with open_page(browser, WATCH_COUNTDOWN, viewport=LAPTOP) as page:
        join_room(page, f"{game_server.url}/room/{code}/", "Pat")
        sound = page.locator("[data-sound]")
        assert not sound.is_checked()
        assert page.evaluate("localStorage.getItem('digit-game-sound')") is None
        assert page.evaluate("window.digitGame.sounds.enabled") is False
        sound.check()
        assert page.evaluate("localStorage.getItem('digit-game-sound')") == "1"
        page.reload()
        page.wait_for_selector("[data-room][data-connection-state='connected']",
                               timeout=TIMEOUT_MS)
        assert page.locator("[data-sound]").is_checked()
        assert page.evaluate("window.digitGame.sounds.enabled") is True

        page.click("[data-start]")
        page.wait_for_function("() => window.digitGame.state.round === 1", timeout=TIMEOUT_MS)
        page.wait_for_function("() => window.digitGame.state.room.state === 'results'",
                               timeout=TIMEOUT_MS)
        played = sounds_played(page)
        assert played[0] == "start", played
        # One beep a second in the last five, at most (a page that ticks late
        # may miss a second; it never beeps one twice).
        assert 1 <= played.count("hurry") <= 5, played

        page.wait_for_function("() => window.digitGame.state.round === 2", timeout=TIMEOUT_MS)
        log = page.evaluate("countdownLog")
        texts = [entry["text"] for entry in log]
        # "Go!" last, after a count down; a page that ticks late (a loaded
        # machine) may skip a number, as it may skip a beep.
        assert texts[-1] == "Go!", log
        counted = texts[:-1]
        if "Go!" in counted:  # only the count since the last start
            counted = counted[len(counted) - counted[::-1].index("Go!"):]
        assert counted and set(counted) <= {"3", "2", "1"}, log
        assert counted == sorted(counted, reverse=True) and len(set(counted)) == len(counted), log
        assert all(entry["animation"] == "countdown-pop" for entry in log), log
        assert sounds_played(page).count("start") == 2

        draw_line(page)
        page.wait_for_function("() => window.digitGame.sounds.log.includes('success')",
                               timeout=TIMEOUT_MS)
        assert page.js_errors == []


def test_a_visitor_who_asked_for_reduced_motion_gets_the_numbers_without_animation(
        game_server, browser):
    """And a first visit plays no sound at a round's start."""
    code = game_server.create_room("Rue", rounds=1, seconds=60.0, max_players=1,
                                   target_confidence=1.0)
    with open_page(browser, viewport=LAPTOP, reduced_motion="reduce") as page:
        join_room(page, f"{game_server.url}/room/{code}/", "Rue")
        page.click("[data-start]")
        page.wait_for_function("() => window.digitGame.state.round === 1", timeout=TIMEOUT_MS)
        assert sounds_played(page) == []
        # The countdown as it shows 2.5 s before a round.
        shown = page.evaluate("""() => {
          const {countdown} = window.digitGame;
          countdown.update(2500);
          const element = document.querySelector("[data-countdown]");
          return {text: element.textContent, hidden: element.hidden,
                  animation: getComputedStyle(element).animationName};
        }""")
        assert shown == {"text": "3", "hidden": False, "animation": "none"}
        numbers = page.evaluate("""async () => {
          const {countdownNumber} = await import("/static/js/game-countdown.js");
          return [4000, 3000, 2001, 2000, 1, 0, -5, null].map(countdownNumber);
        }""")
        assert numbers == [None, 3, 3, 2, 1, None, None, None]
        assert page.js_errors == []


def test_a_page_that_catches_up_with_a_round_under_way_plays_no_start(game_server, browser):
    """Reloaded in the middle of a round, with sounds on: the page is back in
    the round, without "Go!" and without the start sound (it began without
    this page). Before, both played as if the round had just started."""
    code = game_server.create_room("Kit", rounds=1, seconds=120.0, max_players=1,
                                   target_confidence=1.0)
    with open_page(browser, WATCH_COUNTDOWN, viewport=LAPTOP) as page:
        join_room(page, f"{game_server.url}/room/{code}/", "Kit")
        page.locator("[data-sound]").check()
        page.click("[data-start]")
        page.wait_for_function("() => window.digitGame.sounds.log.includes('start')",
                               timeout=TIMEOUT_MS)
        page.reload()
        page.wait_for_selector("[data-room][data-connection-state='connected']",
                               timeout=TIMEOUT_MS)
        page.wait_for_function("() => window.digitGame.state.round === 1"
                               " && window.digitGame.state.room.state === 'playing'",
                               timeout=TIMEOUT_MS)
        assert page.evaluate("window.digitGame.sounds.enabled") is True
        assert sounds_played(page) == []
        assert "Go!" not in [entry["text"] for entry in page.evaluate("countdownLog")]
        assert page.js_errors == []


def test_a_reach_told_only_by_player_finished_plays_the_success_sound_once(game_server,
                                                                          browser):
    """While the database refuses writes, a drawing's guess goes out `held`
    and says `reached: false`; when its write lands, `player_finished` (reason
    `reached`) is the first news that it reached the target (docs/protocol.md).
    The page plays the success sound then, once, as for a guess that says
    `reached`. Before, it played none. The two messages are handed to the
    page's handler as the server would send them."""
    code = game_server.create_room("Lou", rounds=1, seconds=120.0, max_players=1,
                                   target_confidence=1.0)
    with open_page(browser, viewport=LAPTOP) as page:
        join_room(page, f"{game_server.url}/room/{code}/", "Lou")
        page.locator("[data-sound]").check()
        page.click("[data-start]")
        page.wait_for_function("() => window.digitGame.state.round === 1"
                               " && window.digitGame.state.room.state === 'playing'",
                               timeout=TIMEOUT_MS)
        tell = """(message) => {
          const {connection, state} = window.digitGame;
          connection.onMessage({round: state.round, ...message,
                                ...(message.player === "me" ? {player: state.me.id} : {})});
        }"""
        page.evaluate(tell, {"type": "guess", "seq": 1, "digit": 7, "top3": [[7, 0.9]],
                             "probabilities": [0.01] * 7 + [0.91] + [0.0] * 2,
                             "target_probability": 0.9, "reached": False, "kept": False,
                             "held": True, "model": "m"})
        assert "success" not in sounds_played(page)
        finished = {"type": "player_finished", "player": "me", "reason": "reached",
                    "points": 3, "game": page.evaluate("window.digitGame.state.gameId")}
        page.evaluate(tell, finished)
        assert sounds_played(page).count("success") == 1
        assert page.locator("[data-room]").get_attribute("data-finished") == "true"
        page.evaluate(tell, finished)  # heard again (a catch-up): no second sound
        assert sounds_played(page).count("success") == 1
        assert page.js_errors == []


def test_share_uses_the_share_sheet_where_there_is_one_and_copies_otherwise(game_server,
                                                                          browser):
    code = game_server.create_room("Sam", rounds=1, seconds=60.0, max_players=2)
    url = f"{game_server.url}/room/{code}/"
    with open_page(browser, FAKE_SHARE, viewport=LAPTOP) as page:
        join_room(page, url, "Sam")
        button = page.locator("[data-copy-link]")
        assert button.inner_text() == "Share"
        button.click()
        page.wait_for_function("() => window.shared.length === 1", timeout=TIMEOUT_MS)
        [shared] = page.evaluate("window.shared")
        assert shared["url"] == page.locator("[data-share-url]").input_value()
        assert shared["url"].endswith(f"/room/{code}/") and code in shared["title"]
        assert page.js_errors == []

    with open_page(browser, viewport=LAPTOP) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        join_room(page, url, "Tom")
        assert page.evaluate("typeof navigator.share") == "undefined"
        button = page.locator("[data-copy-link]")
        assert button.inner_text() == "Copy link"
        button.click()
        page.wait_for_function(
            "() => document.querySelector('[data-copy-link]').textContent === 'Copied'",
            timeout=TIMEOUT_MS)
        assert page.evaluate("navigator.clipboard.readText()").endswith(f"/room/{code}/")
        assert page.js_errors == []
