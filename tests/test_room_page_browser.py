"""End to end, real Chromium against a real Daphne server: what the room page
shows a player, on a laptop (1280x800) and a phone (360x740).

- The host's start button and each round's results are on the screen without
  scrolling; the results stay open until the next round starts and can be
  opened again while it is played.
- Words over a finished player's canvas are not selected by a drag across them.
- The final standings place and crown only the players still in the room,
  share a place between equal scores and say who won.
- Digits are named with their article ("an 8"); the site has an icon.
"""


import pytest

from tests.live import open_page
from tests.support import join_room

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

# Where an element is on the screen, and how much of the page is on it.
RECT = """(selector) => {
  const r = document.querySelector(selector).getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, innerHeight, scrollY};
}"""

# Records every change of the results' `hidden` and `open`, with the round the
# page is in; once the results open, where they and their cards are on the
# screen (on the next frame, when they are laid out).
WATCH_RESULTS = """() => {
  const results = document.querySelector("[data-results]");
  const rect = (element) => {
    const r = element.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom};
  };
  window.resultsLog = [];
  new MutationObserver(() => {
    const entry = {hidden: results.hidden, open: results.open,
                   round: window.digitGame.state.round};
    window.resultsLog.push(entry);
    if (!results.hidden && results.open) {
      requestAnimationFrame(() => {
        entry.screen = {section: rect(results), innerHeight, scrollY,
                        cards: [...results.querySelectorAll(".result")].map(rect)};
      });
    }
  }).observe(results, {attributes: true, attributeFilter: ["hidden", "open"]});
}"""


def draw_line(page):
    """One stroke across the canvas."""
    canvas = page.locator("canvas[data-pad]")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.7, steps=6)
    page.mouse.up()


def finish(page):
    """Draw a line and say done (a disabled button does nothing: the line ended
    the player's round)."""
    draw_line(page)
    page.wait_for_function(
        "() => !document.querySelector('[data-done]').disabled"
        " || document.querySelector('[data-room]').dataset.finished === 'true'",
        timeout=TIMEOUT_MS)
    # A click in the page, which scrolls nothing (the results are measured
    # as they open, on a page not scrolled).
    page.evaluate("document.querySelector('[data-done]').click()")


def assert_on_screen(where, what):
    assert where["scrollY"] == 0, what
    assert 0 <= where["top"] and where["bottom"] <= where["innerHeight"], (what, where)


def wait_for_round(page, number):
    page.wait_for_function(f"() => window.digitGame.state.round === {number}",
                           timeout=TIMEOUT_MS)


def test_the_start_button_and_the_results_are_on_screen_and_the_last_round_reopens(
        game_server, browser):
    # Rounds end when both players are done: a target confidence of 1.0 is
    # (almost) never reached, and a minute is never run out.
    code = game_server.create_room("Ada", rounds=2, seconds=60.0, max_players=2,
                                   target_confidence=1.0)
    url = f"{game_server.url}/room/{code}/"
    with open_page(browser, viewport=LAPTOP) as ada, \
            open_page(browser, viewport=PHONE, device_scale_factor=2, has_touch=True) as bob:
        join_room(ada, url, "Ada")
        join_room(bob, url, "Bob")
        ada.wait_for_function(
            "() => document.querySelectorAll('[data-players] .player').length === 2",
            timeout=TIMEOUT_MS)

        # The host's start button, on a laptop and on a phone.
        assert_on_screen(ada.evaluate(RECT, "[data-start]"), "start, 1280x800")
        ada.set_viewport_size(PHONE)
        assert_on_screen(ada.evaluate(RECT, "[data-start]"), "start, 360x740")
        ada.set_viewport_size(LAPTOP)

        for player in (ada, bob):
            player.evaluate(WATCH_RESULTS)
        ada.click("[data-start]")
        for player in (ada, bob):
            wait_for_round(player, 1)
            player.evaluate("scrollTo(0, 0)")
            finish(player)

        # Round 1's results as they open: all of them on the screen, both sizes.
        for player, size in ((ada, "1280x800"), (bob, "360x740")):
            player.wait_for_function(
                "() => resultsLog.some((e) => e.round === 1 && e.screen)", timeout=TIMEOUT_MS)
            screen = player.evaluate(
                "() => resultsLog.find((e) => e.round === 1 && e.screen).screen")
            assert len(screen["cards"]) == 2, screen
            for what, where in [("results", screen["section"]), *(
                    ("a result", card) for card in screen["cards"])]:
                assert_on_screen({**where, "innerHeight": screen["innerHeight"],
                                  "scrollY": screen["scrollY"]}, f"{what}, {size}")

        # Round 2 starts by itself: the results stayed open until then, and
        # now fold into one line above the canvas, which opens them again.
        for player in (ada, bob):
            wait_for_round(player, 2)
            log = player.evaluate("resultsLog")
            opened = next(i for i, e in enumerate(log) if "screen" in e)
            assert all(not e["hidden"] and e["open"] for e in log[opened:] if e["round"] == 1), log
            results = player.locator("[data-results]")
            assert results.is_visible()
            assert player.evaluate("document.querySelector('[data-results]').open") is False
            assert player.locator("[data-results-grid]").is_hidden()
            assert "Round 1 of 2" in player.locator("[data-results-title]").inner_text()
            player.click("[data-results] summary")
            player.wait_for_selector("[data-results-grid] .result >> nth=1", state="visible",
                                     timeout=TIMEOUT_MS)
            assert player.locator("[data-results-grid] .result").count() == 2
            assert player.locator("[data-pad]").is_visible()

        # The target is named with its article, wherever it is.
        target = ada.evaluate("window.digitGame.state.target")
        named = f"{'an' if target == 8 else 'a'} {target}"
        assert ada.locator("[data-target-text]").inner_text() == f"Draw {named}"

        # Bob leaves during round 2; Ada finishes it, and wins whatever the scores.
        bob.click("[data-leave]")
        ada.wait_for_selector("[data-players] .player.is-gone", timeout=TIMEOUT_MS)
        ada.evaluate("scrollTo(0, 0)")
        finish(ada)
        ada.wait_for_selector("[data-final]:not([hidden])", timeout=TIMEOUT_MS)
        assert ada.locator("[data-winner]").inner_text() == "Ada wins!"
        steps = ada.locator("[data-podium] li")
        assert steps.count() == 1
        assert "Ada" in steps.first.inner_text() and "Bob" not in steps.first.inner_text()
        gone = ada.locator("[data-leaderboard] li.is-gone")
        assert gone.count() == 1
        assert "Bob" in gone.inner_text() and "left" in gone.inner_text()
        assert ada.locator("[data-leaderboard] li.is-first").inner_text().startswith("1")
        assert "Ada" in ada.locator("[data-leaderboard] li.is-first").inner_text()
        assert f"draw {named}" in ada.locator("[data-results-title]").inner_text()
        assert ada.js_errors == [] and bob.js_errors == []


def test_a_drag_across_the_words_over_a_finished_canvas_selects_nothing(game_server, browser):
    # Any drawing reaches a target confidence of 0: the first guess says
    # "Recognised!", which stays while Tom, who draws nothing, is still on.
    code = game_server.create_room("Sel", rounds=1, seconds=300.0, max_players=2,
                                   target_confidence=0.0)
    url = f"{game_server.url}/room/{code}/"
    with open_page(browser, viewport=LAPTOP) as page, open_page(browser, viewport=LAPTOP) as tom:
        join_room(page, url, "Sel")
        join_room(tom, url, "Tom")
        page.wait_for_function(
            "() => document.querySelectorAll('[data-players] .player').length === 2",
            timeout=TIMEOUT_MS)
        page.click("[data-start]")
        wait_for_round(page, 1)
        draw_line(page)
        page.wait_for_function(
            "() => document.querySelector('[data-overlay]').textContent.startsWith('Recognised!')",
            timeout=TIMEOUT_MS)
        words = page.evaluate("""() => {
            const range = document.createRange();
            range.selectNodeContents(document.querySelector('[data-overlay]'));
            const r = range.getBoundingClientRect();
            return {left: r.left, right: r.right, y: (r.top + r.bottom) / 2};
        }""")
        page.mouse.move(words["left"] - 20, words["y"])
        page.mouse.down()
        page.mouse.move(words["right"] + 20, words["y"], steps=10)
        page.mouse.up()
        assert page.evaluate("getSelection().toString()") == ""
        page.mouse.dblclick((words["left"] + words["right"]) / 2, words["y"])
        assert page.evaluate("getSelection().toString()") == ""
        assert page.js_errors == []


# The final standings of game-standings.js for a leaderboard of `game_over`.
STANDINGS = """async (leaderboard) => {
  const {showStandings} = await import("/static/js/game-standings.js");
  const part = (tag) => document.body.appendChild(document.createElement(tag));
  const card = {winner: part("p"), podium: part("ol"), list: part("ol")};
  showStandings(card, leaderboard, "me");
  const names = (li) => li.querySelector(".podium__names").textContent;
  return {
    winner: card.winner.textContent,
    podium: [...card.podium.children].map((li) => [li.dataset.place, names(li)]),
    list: [...card.list.children].map((li) => [li.querySelector(".rank").textContent,
      li.querySelector(".name").textContent, li.classList.contains("is-first")]),
  };
}"""


def row(player, name, score, gone=False, rank=1):
    return {"player": player, "name": name, "score": score, "gone": gone, "rank": rank}


@pytest.mark.parametrize("leaderboard, winner, podium, list_", [
    # The best score left the room: not placed, not crowned.
    ([row("b", "Bo", 300, gone=True), row("me", "Ada", 200, rank=2), row("c", "Cy", 100, rank=3)],
     "Ada wins!", [["1", "Ada"], ["2", "Cy"]],
     [["1", "Ada (you)", True], ["2", "Cy", False], ["–", "Bo left", False]]),
    # Equal scores share a place, and the next place is skipped.
    ([row("me", "Ada", 150), row("b", "Bo", 150), row("c", "Cy", 90, rank=3),
      row("d", "Di", 40, rank=4)],
     "Ada and Bo share first place", [["1", "Ada, Bo"], ["3", "Cy"]],
     [["1", "Ada (you)", True], ["1", "Bo", True], ["3", "Cy", False], ["4", "Di", False]]),
    ([row("a", "Ada", 0), row("b", "Bo", 0), row("me", "Cy", 0)],
     "Ada, Bo and Cy share first place", [["1", "Ada, Bo, Cy"]],
     [["1", "Ada", True], ["1", "Bo", True], ["1", "Cy (you)", True]]),
    # A solo game: no one to beat.
    ([row("me", "Ada", 120)], "Ada scored 120 points.", [["1", "Ada"]],
     [["1", "Ada (you)", True]]),
])
def test_the_final_standings_place_only_players_still_here(game_server, page, leaderboard,
                                                            winner, podium, list_):
    page.goto(game_server.url + "/practice/")
    shown = page.evaluate(STANDINGS, leaderboard)
    assert shown == {"winner": winner, "podium": podium, "list": list_}
    assert page.js_errors == []


def test_numbers_are_named_with_their_article_and_the_site_has_an_icon(game_server, page):
    page.goto(game_server.url + "/practice/")
    named = page.evaluate("""async () => {
        const {withArticle} = await import("/static/js/article.js");
        return [0, 1, 7, 8, 11, 18, 80, 89, 100, 800, 1800, 8000, 11000, 18500, 110000]
          .map(withArticle);
    }""")
    assert named == ["a 0", "a 1", "a 7", "an 8", "an 11", "an 18", "an 80", "an 89", "a 100",
                     "an 800", "a 1800", "an 8000", "an 11000", "an 18500", "a 110000"]
    icon = page.request.get(game_server.url + "/favicon.ico")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")
    assert page.locator("link[rel=icon]").get_attribute("href") == "/static/favicon.svg"
    assert not [e for e in page.console_errors if "404" in e]
    assert page.js_errors == []
