"""End to end, real Chromium against a real Daphne server: a seat survives
what players do to their pages.

- A tab closed mid-round and the room's link opened again in a new page of
  the same browser: the same seat, the points kept, one row on the
  leaderboard.
- A reload mid-round: the canvas shows the strokes drawn so far, "Welcome
  back" stays on the page, and the round goes on: the digit is finished and
  scored with the strokes from before the reload and after.
- The room (a solo room) opened in a second tab: the second tab plays, the
  first says the room is open in another tab and stays disconnected until
  the player asks to play there again.
- Seat tokens do not pile up in localStorage: a room page drops entries over
  a day old and keeps the 20 newest.
"""

import json

import pytest

from tests.live import open_page
from tests.support import DIGIT_STROKES, draw_digit, draw_strokes, join_room
from tests.test_game_browser import player_names, target_of

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
LAPTOP = {"width": 1280, "height": 800}
CONNECTED = "[data-room][data-connection-state='connected']"

# The rooms' target confidence is 1.0: a part of a digit never ends the round
# by itself, so the round is still on when the page comes back.

# Ink on the canvas: pixels painted (alpha above zero).
INKED_PIXELS = """() => {
  const canvas = document.querySelector("canvas[data-pad]");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked += 1;
  return inked;
}"""


def start(page, rounds):
    page.select_option("[data-start-rounds]", str(rounds))
    page.click("[data-start]")
    page.wait_for_function(
        "() => window.digitGame.state.round >= 1 && !window.digitGame.state.finished",
        timeout=TIMEOUT_MS)


def halves(digit):
    """The digit's strokes in two parts: its first stroke and the rest, or a
    one-stroke digit cut in the middle of its stroke."""
    strokes = DIGIT_STROKES[digit]
    if len(strokes) > 1:
        return strokes[:1], strokes[1:]
    points = strokes[0]
    middle = len(points) // 2
    return [points[:middle + 1]], [points[middle:]]


def wait_for_scored(page, strokes):
    """The server answered the pad's whole drawing of `strokes` strokes (so it
    holds it): the last drawing sent is answered and none waits to go."""
    page.wait_for_function(
        """(strokes) => {
          const {state, pad, drawings} = window.digitGame;
          return pad.drawing.strokes.length === strokes && state.seq >= 1
            && state.shownSeq === state.seq && !drawings.latest.pending
            && document.querySelectorAll('[data-bars] li').length === 3;
        }""", arg=strokes, timeout=TIMEOUT_MS)


def positions(drawing):
    """A drawing's points without their times (the page's count from its
    first point, the server's from the round's start)."""
    return [[point[:2] for point in stroke] for stroke in drawing["strokes"]]


def my_score(page):
    return page.evaluate(
        "() => window.digitGame.state.room.players.find("
        "(p) => p.id === window.digitGame.state.me.id).score")


def test_a_tab_closed_mid_round_and_opened_again_keeps_seat_and_points(game_server, browser):
    code = game_server.create_room("Cy", rounds=2, seconds=90.0, results_seconds=2.0,
                                   max_players=2, target_confidence=1.0)
    url = f"{game_server.url}/room/{code}/"
    with open_page(browser, viewport=LAPTOP) as page:
        context = page.context
        join_room(page, url, "Cy")
        seat = page.evaluate("window.digitGame.state.me.id")
        start(page, 2)
        # Round 1 scores points.
        draw_digit(page, target_of(page))
        wait_for_scored(page, len(DIGIT_STROKES[target_of(page)]))
        page.click("[data-done]", force=True)
        page.wait_for_function("() => window.digitGame.state.round === 2"
                               " && window.digitGame.state.room.state === 'playing'",
                               timeout=TIMEOUT_MS)
        score = my_score(page)
        # Round 2: a stroke drawn and scored, then the tab is closed.
        target = target_of(page)
        first, rest = halves(target)
        draw_strokes(page, first)
        wait_for_scored(page, 1)
        page.close()

        # The link opened again in a new tab of the same browser.
        again = context.new_page()
        again.goto(url)
        again.wait_for_selector(CONNECTED, timeout=TIMEOUT_MS)
        assert again.evaluate("window.digitGame.state.me.id") == seat
        assert player_names(again) == ["Cy"]
        assert my_score(again) == score
        assert "Welcome back" in again.locator("[data-status]").inner_text()
        # The round goes on where it was left.
        assert again.evaluate("window.digitGame.pad.drawing.strokes.length") == 1
        draw_strokes(again, rest)
        wait_for_scored(again, 1 + len(rest))
        again.click("[data-done]", force=True)
        again.wait_for_selector("[data-final]:not([hidden])", timeout=TIMEOUT_MS)
        rows = again.locator("[data-leaderboard] li")
        assert rows.count() == 1
        assert "Cy" in rows.first.inner_text()
        assert int(rows.first.locator(".score").inner_text()) >= score
        assert again.evaluate("window.digitGame.state.room.players.length") == 1


def test_a_reload_mid_round_restores_the_canvas_and_the_round_goes_on(game_server, browser):
    code = game_server.create_room("Rae", rounds=1, seconds=90.0, max_players=2,
                                   target_confidence=1.0)
    url = f"{game_server.url}/room/{code}/"
    with open_page(browser, viewport=LAPTOP) as page:
        join_room(page, url, "Rae")
        seat = page.evaluate("window.digitGame.state.me.id")
        start(page, 1)
        target = target_of(page)
        first, rest = halves(target)
        draw_strokes(page, first)
        wait_for_scored(page, 1)
        before = page.evaluate("window.digitGame.pad.drawing")
        assert page.evaluate(INKED_PIXELS) > 0

        page.reload()
        page.wait_for_selector(CONNECTED, timeout=TIMEOUT_MS)
        assert page.evaluate("window.digitGame.state.me.id") == seat
        # The strokes drawn so far are back on the canvas, and the model's
        # guess for them; the note says so, and is still there with the guess.
        page.wait_for_function("() => window.digitGame.pad.drawing.strokes.length === 1",
                               timeout=TIMEOUT_MS)
        restored = page.evaluate("window.digitGame.pad.drawing")
        assert positions(restored) == positions(before)
        assert page.evaluate(INKED_PIXELS) > 0
        wait_for_scored(page, 1)
        assert "Welcome back" in page.locator("[data-status]").inner_text()
        assert page.locator("[data-overlay]").is_hidden()
        assert page.evaluate("window.digitGame.state.finished") is False
        assert page.locator("[data-done]").is_enabled()

        # The digit is finished and scored, with the strokes of before the reload.
        draw_strokes(page, rest)
        wait_for_scored(page, 1 + len(rest))
        page.click("[data-done]", force=True)
        page.wait_for_function("() => window.digitGame.state.lastRoundEnd !== null",
                               timeout=TIMEOUT_MS)
        [result] = page.evaluate("window.digitGame.state.lastRoundEnd.results")
        assert result["player"] == seat and result["reason"] in ("done", "reached")
        strokes = result["drawing"]["strokes"]
        assert len(strokes) == 1 + len(rest)
        assert positions({"strokes": strokes[:1]}) == positions(before)
        # The new strokes' times go on from the old ones (counted from the round's start).
        assert strokes[1][0][2] >= strokes[0][-1][2]
        assert result["points"] > 0
        # The room's scores come in a message of their own after round_end:
        # wait for mine to count the round.
        page.wait_for_function(
            "(points) => window.digitGame.state.room.players.find("
            "(p) => p.id === window.digitGame.state.me.id).score === points",
            arg=result["points"], timeout=TIMEOUT_MS)
        assert page.js_errors == []


def test_a_second_tab_takes_the_solo_seat_and_the_first_says_so(game_server, browser):
    code = game_server.create_room("Sol", solo=True, seconds=90.0, target_confidence=1.0)
    with open_page(browser, viewport=LAPTOP) as page:
        join_room(page, f"{game_server.url}/room/{code}/", "Sol")
        seat = page.evaluate("window.digitGame.state.me.id")
        start(page, 2)
        draw_strokes(page, halves(target_of(page))[0])
        wait_for_scored(page, 1)

        second = page.context.new_page()
        second.goto(page.url)
        second.wait_for_selector(CONNECTED, timeout=TIMEOUT_MS)
        assert second.evaluate("window.digitGame.state.me.id") == seat
        assert second.evaluate("window.digitGame.pad.drawing.strokes.length") == 1
        # The first tab is told, and does not take the seat back by itself.
        page.wait_for_selector("[data-room][data-connection-state='closed']",
                               timeout=TIMEOUT_MS)
        assert "This room is open in another tab" in page.locator("[data-status]").inner_text()
        assert "This room is open in another tab" in page.locator("[data-overlay]").inner_text()
        assert page.evaluate("window.digitGame.connection.stopped") is True
        assert second.locator(CONNECTED).count() == 1
        assert "full" not in second.locator("[data-status]").inner_text()

        # Asked to, the first tab plays again, and the second is told in turn.
        page.click("text=Play in this tab")
        page.wait_for_selector(CONNECTED, timeout=TIMEOUT_MS)
        second.wait_for_selector("[data-room][data-connection-state='closed']",
                                 timeout=TIMEOUT_MS)
        assert "This room is open in another tab" in second.locator("[data-status]").inner_text()
        assert page.evaluate("window.digitGame.state.me.id") == seat
        assert page.js_errors == []


DAY_MS = 24 * 60 * 60 * 1000

# seat-tokens.js driven by hand in a page of the site, on a clock the test
# gives: localStorage seeded with entries of known ages, then pruned.
PRUNE = """async ({now, entries, keep}) => {
  const tokens = await import("/static/js/seat-tokens.js");
  localStorage.clear();
  localStorage.setItem("digit-game-opt-out", "1");  // not a seat: never touched
  for (const [code, value] of Object.entries(entries)) {
    localStorage.setItem(tokens.KEY_PREFIX + code, value);
  }
  const dropped = tokens.pruneTokens({now, keep});
  const left = {};
  for (let i = 0; i < localStorage.length; i += 1) {
    const key = localStorage.key(i);
    left[key] = localStorage.getItem(key);
  }
  return {dropped: dropped.sort(), left, legacy: tokens.readToken("LEGACY")};
}"""


def entry(token, at):
    return json.dumps({"token": token, "at": at})


def test_seat_tokens_older_than_a_day_or_beyond_the_20_newest_are_dropped(game_server,
                                                                        browser):
    """30 rooms' tokens: 3 over a day old, 25 of different ages within the
    day, one stored by an older page as a bare token (no time), and the page's
    own room, older than a day. Left: the own room (however old), the bare
    token (stamped now, so it goes a day later) and the 18 newest others: 20
    in all. The opt-out preference is left alone."""
    now = 1_900_000_000_000
    entries = {f"OLD{i}": entry(f"old{i}", now - DAY_MS - 1 - i) for i in range(3)}
    entries |= {f"NEW{i:02}": entry(f"new{i}", now - i * 60_000) for i in range(25)}
    entries["LEGACY"] = "bare-token"
    entries["MINE"] = entry("mine", now - 3 * DAY_MS)
    with open_page(browser, viewport=LAPTOP) as page:
        page.goto(game_server.url + "/practice/")
        result = page.evaluate(PRUNE, {"now": now, "entries": entries, "keep": "MINE"})
        assert result["legacy"] == "bare-token"  # read as before once stamped
        # A day later the bare token is as old as the rest: it goes.
        later = page.evaluate(PRUNE, {"now": now + DAY_MS + 1,
                                      "entries": {"LEGACY": entry("bare-token", now),
                                                  "FRESH": entry("f", now + DAY_MS)},
                                      "keep": None})
        assert page.js_errors == []
    left = {key.removeprefix("digit-game-seat:"): value for key, value in result["left"].items()}
    assert left.pop("digit-game-opt-out") == "1"
    assert set(left) == {"MINE", "LEGACY"} | {f"NEW{i:02}" for i in range(18)}
    assert json.loads(left["LEGACY"]) == {"token": "bare-token", "at": now}
    assert left["MINE"] == entries["MINE"]
    assert result["dropped"] == sorted([f"OLD{i}" for i in range(3)]
                                       + [f"NEW{i:02}" for i in range(18, 25)])
    assert later["dropped"] == ["LEGACY"]
    assert set(later["left"]) == {"digit-game-opt-out", "digit-game-seat:FRESH"}


def test_a_room_page_prunes_old_seat_tokens_and_stamps_its_own(game_server, browser):
    """Before the room page opens, the browser holds 21 tokens of other rooms
    stored within the day and one two days old. Once seated: the old one and
    the oldest fresh one are gone, the room's own token is stored with the
    time, and 20 entries are left."""
    code = game_server.create_room("Uma", rounds=1, seconds=60.0, max_players=2)
    with open_page(browser, viewport=LAPTOP) as page:
        page.goto(game_server.url + "/practice/")
        seeded = page.evaluate("""() => {
          const now = Date.now();
          localStorage.setItem("digit-game-seat:STALE",
                               JSON.stringify({token: "s", at: now - 2 * 86400000}));
          for (let i = 0; i < 21; i += 1) {
            localStorage.setItem(`digit-game-seat:R${String(i).padStart(2, "0")}`,
                                 JSON.stringify({token: `t${i}`, at: now - 1000 * (i + 1)}));
          }
          return now;
        }""")
        join_room(page, f"{game_server.url}/room/{code}/", "Uma")
        stored = page.evaluate("""() => Object.fromEntries(Object.keys(localStorage)
            .filter((key) => key.startsWith("digit-game-seat:"))
            .map((key) => [key.slice(16), JSON.parse(localStorage.getItem(key))]))""")
        assert page.js_errors == []
    assert len(stored) == 20, sorted(stored)
    assert "STALE" not in stored and "R20" not in stored and "R19" not in stored
    assert stored[code]["token"] and stored[code]["at"] >= seeded
