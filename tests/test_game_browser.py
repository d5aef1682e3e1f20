"""End to end: two Chromium pages play a room on a real Daphne server.

The pages go through the home page and the room link like people would, draw
digits with pointer events along the digit's strokes, watch the live guesses,
finish a two-round game (one round ended by both players, one by the timer)
and see the leaderboard. Screenshots of the game page, desktop and phone
width, go to the artifacts folder.
"""

import re

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.live import open_page
from tests.support import BASE_DIR, draw_digit, draw_stroke

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
# The two-player game's rounds: long enough that a loaded machine's slow
# pointer replay and scoring never run a round out before a test's step that
# expects it still on (12 s did, at times); round 2 ends by this timer.
ROUND_SECONDS = 25


@pytest.fixture
def phone(browser):
    """A second player on a phone-sized, high-DPI, touch screen."""
    with open_page(browser, viewport={"width": 360, "height": 800},
                   device_scale_factor=2, has_touch=True) as page:
        yield page


def target_of(page):
    locator = page.locator("[data-target-digit]")
    page.wait_for_function(
        "() => /^[0-9]$/.test(document.querySelector('[data-target-digit]').textContent.trim())",
        timeout=TIMEOUT_MS)
    return int(locator.inner_text().strip())


def wait_for_guess(page):
    """Three probability bars with percentages, and a guessed digit."""
    page.wait_for_function("() => document.querySelectorAll('[data-bars] li').length === 3",
                           timeout=TIMEOUT_MS)
    assert re.fullmatch(r"[0-9]", page.locator("[data-guess-digit]").inner_text().strip())
    values = page.locator("[data-bars] .bar__value").all_inner_texts()
    percents = [float(v.rstrip("%")) for v in values]
    assert len(percents) == 3 and all(0 <= p <= 100 for p in percents)
    assert percents == sorted(percents, reverse=True)


ADA_SCORE = "[data-players] .player:first-child .player__score"
OVERLAY = "[data-overlay]"


def finish_round(page):
    """Press "I'm done" unless the model already ended the round by recognising the digit."""
    finished = "[data-room][data-finished='true']"
    if page.locator(finished).count() == 0:
        # force: the button may turn disabled at this very moment if a guess reaches
        # the target; a click on a disabled button then does nothing, as it should.
        try:
            page.locator("[data-done]").click(force=True, timeout=TIMEOUT_MS)
        except PlaywrightError:
            # A guess reached the target between the check and the click, and
            # the button went away with the round: the round is over all the same.
            page.wait_for_selector(finished, timeout=TIMEOUT_MS)


def player_names(page):
    return [n.strip() for n in page.locator("[data-players] .player__name > span:first-child")
            .all_inner_texts()]


def test_two_players_play_a_game_to_the_leaderboard(game_server, page, phone, artifacts_dir):
    base = game_server.url

    # Ada creates a room from the home page: two short rounds.
    page.goto(base + "/")
    page.fill("#id_name", "Ada")
    page.click("form[action='/name/'] button[type=submit]")
    page.wait_for_selector("[data-display-name]")
    page.fill("#id_rounds", "2")
    page.fill("#id_seconds", str(ROUND_SECONDS))
    page.fill("#id_max_players", "2")
    page.click("form[action='/rooms/new/'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/room/[A-Z2-9]{6}/$"))
    room_url = page.url
    code = room_url.rstrip("/").rsplit("/", 1)[1]
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)

    # The room is in the lobby list of a visitor, with its player count.
    lobby = page.context.new_page()
    lobby.goto(base + "/")
    assert "1/2 players" in lobby.locator(f"[data-code='{code}']").inner_text()

    # Bob opens the shared link on a phone, picks a name and is seated.
    phone.goto(room_url)
    phone.fill("#id_name", "Bob")
    phone.click("text=Join the room")
    phone.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-players] .player').length === 2",
        timeout=TIMEOUT_MS)
    assert player_names(page) == ["Ada", "Bob"]
    assert player_names(phone) == ["Ada", "Bob"]
    assert page.locator("[data-players] .player.is-me").inner_text().startswith("Ada")
    assert phone.locator("[data-players] .player.is-me").inner_text().startswith("Bob")
    # Full now: the lobby list, which refreshes itself, drops the room.
    lobby.wait_for_selector(f"[data-code='{code}']", state="detached", timeout=TIMEOUT_MS)
    lobby.close()

    # A reload keeps Bob's seat: same two players, not three.
    phone.reload()
    phone.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    assert player_names(phone) == ["Ada", "Bob"]
    assert phone.locator("[data-host-controls]").is_hidden()
    assert "Waiting for Ada" in phone.locator("[data-wait-host]").inner_text()

    # Ada is the host and starts the game.
    page.select_option("[data-start-rounds]", "2")
    page.click("[data-start]")

    # Round 1: both draw the target, see live guesses, and say they are done.
    target = target_of(page)
    assert target_of(phone) == target
    assert page.locator("[data-round-label]").inner_text() == "Round 1 of 2"
    draw_digit(page, target)
    draw_digit(phone, target)
    wait_for_guess(page)
    wait_for_guess(phone)
    page.screenshot(path=str(artifacts_dir / "game.png"), full_page=True)
    phone.screenshot(path=str(artifacts_dir / "game-phone.png"), full_page=True)
    for player in (page, phone):
        finish_round(player)

    # Everyone has finished: the round's results show both drawings and inputs.
    for player in (page, phone):
        player.wait_for_selector("[data-results]:not([hidden])", timeout=TIMEOUT_MS)
        cards = player.locator("[data-results-grid] .result")
        assert cards.count() == 2
        assert cards.locator("canvas[data-result-drawing]").count() == 2
        sources = cards.locator("img.thumb--pixels").evaluate_all("els => els.map(e => e.src)")
        assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
        assert re.search(r"\+\d+", cards.first.inner_text())
    named = f"{'an' if target == 8 else 'a'} {target}"
    assert f"draw {named}" in page.locator("[data-results-title]").inner_text()

    # Round 2 starts by itself; Ada finishes, Bob's drawing runs out of time.
    page.wait_for_function(
        "() => document.querySelector('[data-round-label]').textContent === 'Round 2 of 2'",
        timeout=TIMEOUT_MS)
    second = target_of(page)
    assert second != target
    ada_before = int(phone.locator(ADA_SCORE).inner_text())
    draw_digit(page, second)
    wait_for_guess(page)
    finish_round(page)
    # Bob sees that Ada has finished while he is still drawing.
    phone.wait_for_selector("[data-players] .player:first-child [data-finished-badge]",
                            timeout=TIMEOUT_MS)
    assert "1 of 2 finished" in phone.locator("[data-finished-count]").text_content()
    # ... with her new score, which her `player_finished` alone announced.
    page.wait_for_function(
        f"() => /\\+\\d+ points/.test(document.querySelector('{OVERLAY}').textContent)",
        timeout=TIMEOUT_MS)
    points = int(re.search(r"\+(\d+) points", page.locator(OVERLAY).inner_text()).group(1))
    phone.wait_for_function(
        f"() => document.querySelector('{ADA_SCORE}').textContent === '{ada_before + points}'",
        timeout=TIMEOUT_MS)
    draw_digit(phone, second)
    wait_for_guess(phone)

    # The final leaderboard, the same on both pages; only the host may play again.
    for player in (page, phone):
        player.wait_for_selector("[data-final]:not([hidden])",
                                 timeout=TIMEOUT_MS + ROUND_SECONDS * 1000)
        rows = player.locator("[data-leaderboard] li")
        assert rows.count() == 2
        scores = [int(s) for s in rows.locator(".score").all_inner_texts()]
        ranks = [int(r) for r in rows.locator(".rank").all_inner_texts()]
        assert scores == sorted(scores, reverse=True)
        assert ranks[0] == 1 and ranks[1] == (1 if scores[0] == scores[1] else 2)
    bob = phone.locator("[data-results-grid] .result").nth(1).inner_text()
    assert "Bob" in bob
    assert "out of time" in bob or "recognised in" in bob
    names = sorted(n.split(" (you)")[0] for n in
                   page.locator("[data-leaderboard] .name").all_inner_texts())
    assert names == ["Ada", "Bob"]
    assert page.locator("[data-play-again]").is_visible()
    assert phone.locator("[data-play-again]").is_hidden()
    assert phone.locator("[data-play-again-wait]").is_visible()
    page.screenshot(path=str(artifacts_dir / "game-final.png"), full_page=True)

    assert page.js_errors == []
    assert phone.js_errors == []


def test_a_dropped_connection_rejoins_the_same_seat(game_server, page):
    page.goto(game_server.url + "/")
    page.fill("#id_name", "Eve")
    page.click("form[action='/name/'] button[type=submit]")
    page.click("form[action='/rooms/solo/'] button[type=submit]")
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    first_id = page.evaluate("window.digitGame.state.me.id")

    # The socket closes without a `leave`, as when the network drops: the page
    # reconnects by itself with the seat token.
    page.evaluate("window.digitGame.connection.ws.close(4500)")
    page.wait_for_function(
        "() => document.querySelector('[data-room]').dataset.connectionState !== 'connected'",
        timeout=TIMEOUT_MS)
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    assert page.evaluate("window.digitGame.state.me.id") == first_id
    assert "Reconnected to your seat" in page.locator("[data-status]").inner_text()
    assert player_names(page) == ["Eve"]

    # The opt-out is sent to the server and remembered in localStorage.
    page.click("label.switch")
    page.wait_for_function("() => window.digitGame.state.me && window.digitGame.state.me.opt_out",
                           timeout=TIMEOUT_MS)
    assert page.evaluate("localStorage.getItem('digit-game-opt-out')") == "1"
    page.reload()
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    assert page.locator("[data-opt-out]").is_checked()
    assert page.evaluate("window.digitGame.state.me.opt_out") is True
    assert page.evaluate("window.digitGame.state.me.id") == first_id
    code = page.evaluate("window.digitGame.connection.code")
    assert page.evaluate(f"localStorage.getItem('digit-game-seat:{code}')")

    # Leaving gives the seat up for good and goes back to the lobby.
    page.click("[data-leave]")
    page.wait_for_url(game_server.url + "/")
    assert page.evaluate(f"localStorage.getItem('digit-game-seat:{code}')") is None
    assert page.js_errors == []


def test_an_opted_out_players_results_say_the_drawing_was_not_kept(game_server, page):
    """Opal opts out, plays a one-round game and says she is done: her result
    card shows her points and "not kept" where the drawing and the model's
    input were, since the server deleted them when the round ended."""
    page.goto(game_server.url + "/")
    page.fill("#id_name", "Opal")
    page.click("form[action='/name/'] button[type=submit]")
    page.wait_for_selector("[data-display-name]")
    page.fill("#id_rounds", "1")
    page.fill("#id_seconds", "60")
    page.click("form[action='/rooms/new/'] button[type=submit]")
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    if not page.locator("[data-opt-out]").is_checked():
        page.click("label.switch")
    page.wait_for_function("() => window.digitGame.state.me && window.digitGame.state.me.opt_out",
                           timeout=TIMEOUT_MS)
    page.select_option("[data-start-rounds]", "1")
    page.click("[data-start]")
    draw_digit(page, target_of(page))
    wait_for_guess(page)
    finish_round(page)

    page.wait_for_selector("[data-final]:not([hidden])", timeout=TIMEOUT_MS)
    card = page.locator("[data-results-grid] .result")
    assert card.count() == 1
    assert card.locator(".thumb--deleted").all_inner_texts() == ["not kept", "not kept"]
    assert card.locator("canvas[data-result-drawing], img.thumb--pixels").count() == 0
    assert re.search(r"\+\d+", card.inner_text())
    assert re.search(r"Guess: \d\n", card.inner_text() + "\n")
    assert page.js_errors == []


# Installed before the page's scripts: logs the draws the page sends and the
# guesses it is handed (with the page's clock), and holds guesses back while
# `holdGuesses` is set, as a busy server would, until `releaseGuesses()`.
# Holding them until the test says so, rather than for a fixed delay, makes
# what the page sees independent of how fast the machine replays the mouse.
HELD_GUESSES = """(() => {
  const Native = window.WebSocket;
  const log = window.socketLog = [];
  const held = window.heldGuesses = [];
  const pointsOf = {};
  window.holdGuesses = false;
  window.releaseGuesses = () => {
    window.holdGuesses = false;
    while (held.length) held.shift()();
  };
  window.WebSocket = class extends Native {
    send(data) {
      const message = JSON.parse(data);
      if (message.type === "draw" || message.type === "done") {
        // A protocol 2 drawing may carry only what it adds to an earlier one.
        const points = message.drawing ? message.drawing.strokes.flat().length
          : message.type === "draw" ? pointsOf[message.base] + (message.extend ?? []).length
            + (message.strokes ?? []).flat().length : 0;
        if (message.type === "draw") pointsOf[message.seq] = points;
        log.push({way: "out", type: message.type, seq: message.seq ?? null, points,
                  whole: Boolean(message.drawing), at: performance.now()});
      }
      super.send(data);
    }
    addEventListener(type, listener, options) {
      if (type !== "message") return super.addEventListener(type, listener, options);
      return super.addEventListener(type, (event) => {
        const message = JSON.parse(event.data);
        if (message.type !== "guess") return listener.call(this, event);
        const deliver = () => {
          log.push({way: "in", type: "guess", seq: message.seq, kept: message.kept,
                    held: message.held, at: performance.now()});
          listener.call(this, event);
        };
        if (window.holdGuesses) held.push(deliver); else deliver();
      }, options);
    }
  };
})();"""

# The page gives up waiting for a guess after this long and sends the newest
# drawing anyway (a lost guess must not stall the player for good).
ANSWER_TIMEOUT_MS = int(re.search(r"const ANSWER_TIMEOUT_MS = (\d+);",
                                  (BASE_DIR / "static/js/game.js").read_text()).group(1))


def most_waiting(log):
    """The most drawings the page had out at once without their guess, a drawing
    whose guess is ANSWER_TIMEOUT_MS overdue counting as answered (lost)."""
    waiting, most = {}, 0
    for entry in log:
        if entry["type"] == "done":
            continue
        if entry["way"] == "out":
            waiting = {seq: at for seq, at in waiting.items()
                       if entry["at"] - at < ANSWER_TIMEOUT_MS}
            waiting[entry["seq"]] = entry["at"]
        else:
            waiting.pop(entry["seq"], None)
        most = max(most, len(waiting))
    return most


def test_the_page_keeps_one_drawing_waiting_for_its_guess(game_server, browser):
    """While a guess is held back (a busy server), the page sends no further
    drawing, however many strokes end meanwhile (each stroke's end pushes the
    drawing out at once); when the guess comes, the newest drawing goes out;
    and `done` sends the finished drawing even while an older one waits.

    Deterministic: the room's target confidence is 1.0 and the round lasts
    5 minutes, so no guess ends the round; guesses are held until the test
    releases them, not for a time, so the machine's speed changes nothing."""
    code = game_server.create_room("Flo", rounds=1, seconds=300.0, max_players=2,
                                   target_confidence=1.0)
    with open_page(browser, HELD_GUESSES, viewport={"width": 1280, "height": 900}) as page:
        page.goto(f"{game_server.url}/room/{code}/")
        page.fill("#id_name", "Flo")
        page.click("text=Join the room")
        page.wait_for_selector("[data-room][data-connection-state='connected']",
                               timeout=TIMEOUT_MS)
        page.click("[data-start]")
        target_of(page)
        page.evaluate("window.holdGuesses = true")
        # The first stroke's first move sends a drawing; its guess is held.
        draw_stroke(page, [(0.2, 0.2), (0.8, 0.2)])
        page.wait_for_function("() => heldGuesses.length === 1", timeout=TIMEOUT_MS)
        # Two more strokes end while it waits: nothing more goes out.
        draw_stroke(page, [(0.2, 0.5), (0.8, 0.5)])
        draw_stroke(page, [(0.2, 0.8), (0.8, 0.8)])
        log = page.evaluate("socketLog")
        assert most_waiting(log) == 1, log
        # The guess comes back: the whole drawing goes out at once, and its
        # guess is held in turn.
        page.evaluate("releaseGuesses(); window.holdGuesses = true")
        page.wait_for_function(
            "() => { const last = socketLog.filter(e => e.way === 'out').at(-1);"
            " const points = window.digitGame.pad.drawing.strokes.flat().length;"
            " return last.points === points && heldGuesses.length === 1; }",
            timeout=TIMEOUT_MS)
        log = page.evaluate("socketLog")
        sent = [e for e in log if e["way"] == "out"]
        assert most_waiting(log) == 1, log
        assert sent[0]["points"] < sent[-1]["points"], sent

        # More ink while that drawing waits, then done at once: the newest
        # drawing goes out before `done` without waiting for the guess.
        draw_stroke(page, [(0.5, 0.1), (0.5, 0.9)])
        page.locator("[data-done]").click()
        page.evaluate("releaseGuesses()")
        page.wait_for_selector("[data-room][data-finished='true']", timeout=TIMEOUT_MS)
        log = page.evaluate("socketLog")
        tail = [e for e in log if e["way"] == "out"][len(sent):]
        assert [e["type"] for e in tail[-2:]] == ["draw", "done"], tail
        assert tail[0]["points"] == page.evaluate(
            "window.digitGame.pad.drawing.strokes.flat().length")
        assert most_waiting(log) <= 2  # the forced drawing may join one waiting
        assert most_waiting([e for e in log if e not in tail]) == 1, log
        # Each kept, or held to be written within a second (none was refused).
        assert all(e["kept"] or e["held"] for e in log if e["way"] == "in")
        # Protocol 2: after the first, drawings that only grew went as what they added.
        draws = [e for e in log if e["way"] == "out" and e["type"] == "draw"]
        assert draws[0]["whole"] and not all(e["whole"] for e in draws), draws
        assert page.js_errors == []


def test_practice_page_guesses_while_drawing(game_server, page):
    page.goto(game_server.url + "/practice/")
    target = int(page.locator("[data-target]").inner_text())
    draw_digit(page, target)
    wait_for_guess(page)
    page.click("[data-pad-action='clear']")
    page.wait_for_function("() => document.querySelector('[data-guess-digit]').textContent === '?'")
    assert page.js_errors == []


def test_practice_page_retries_a_drawing_refused_for_the_rate(game_server, page):
    """The API's per-client rate answers 429: the page sends the latest drawing again
    after Retry-After instead of showing an error (a long drawing costs more tokens).

    Every drawing is refused the first time it is sent and answered the second
    time: only a page that retries ever shows a guess.
    """
    seen = set()

    def refuse_each_drawing_once(route):
        body = route.request.post_data
        if body in seen:
            route.continue_()
        else:
            seen.add(body)
            route.fulfill(status=429, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"error": "too many requests from your address"}')

    page.route("**/api/recognize", refuse_each_drawing_once)
    page.goto(game_server.url + "/practice/")
    target = int(page.locator("[data-target]").inner_text())
    draw_digit(page, target)
    wait_for_guess(page)
    assert "too many" not in page.locator("body").inner_text()
    assert page.js_errors == []


PAD_SETUP = """async () => {
  const {DrawingPad, throttle} = await import("/static/js/drawing-pad.js");
  const {backoffDelay} = await import("/static/js/game-connection.js");
  const canvas = document.createElement("canvas");
  canvas.style.cssText = "position:fixed;left:20px;top:30px;width:200px;height:200px;"
    + "border:2px solid red;box-sizing:content-box;z-index:1000;background:#fff;color:#000";
  document.body.append(canvas);
  const reasons = [];
  const pad = new DrawingPad(canvas, {onChange: (drawing, reason) => reasons.push(reason)});
  const calls = [];
  const throttled = throttle((n) => calls.push(n), 100);
  window.padTest = {pad, canvas, reasons, calls, throttled, backoffDelay};
}"""


def test_drawing_pad_records_strokes_in_css_pixels(game_server, browser):
    with open_page(browser, viewport={"width": 800, "height": 600},
                   device_scale_factor=2) as page:
        page.goto(game_server.url + "/practice/")
        page.evaluate(PAD_SETUP)
        # The surface starts inside the 2 px border: (22, 32) on the page is (0, 0).
        assert page.evaluate("[padTest.canvas.width, padTest.canvas.height]") == [400, 400]
        page.mouse.move(22 + 10, 32 + 10)
        page.mouse.down()
        page.mouse.move(22 + 150, 32 + 120, steps=20)
        page.mouse.up()
        drawing = page.evaluate("padTest.pad.drawing")
        assert (drawing["width"], drawing["height"]) == (200, 200)
        [stroke] = drawing["strokes"]
        assert len(stroke) >= 10
        assert stroke[0][:2] == pytest.approx([10, 10], abs=1)
        assert stroke[-1][:2] == pytest.approx([150, 120], abs=1)
        times = [point[2] for point in stroke]
        assert times[0] == 0 and times == sorted(times)
        reasons = page.evaluate("padTest.reasons")
        assert reasons[0] == "start" and "move" in reasons and reasons[-1] == "end"
        # Ink where the line ran, none far from it (device pixels: twice the CSS ones).
        ink = page.evaluate("""([x, y]) => padTest.canvas.getContext('2d')
            .getImageData(x, y, 1, 1).data[3]""", [160, 130])
        assert ink > 0
        assert page.evaluate(
            "padTest.canvas.getContext('2d').getImageData(380, 20, 1, 1).data[3]") == 0

        # A second stroke, then undo and clear.
        page.mouse.move(22 + 100, 32 + 20)
        page.mouse.down()
        page.mouse.move(22 + 100, 32 + 180, steps=10)
        page.mouse.up()
        assert len(page.evaluate("padTest.pad.drawing.strokes")) == 2
        page.evaluate("padTest.pad.undo()")
        assert len(page.evaluate("padTest.pad.drawing.strokes")) == 1
        page.evaluate("padTest.pad.clear()")
        assert page.evaluate("padTest.pad.isEmpty()") is True
        assert page.evaluate("padTest.reasons.slice(-2)") == ["undo", "clear"]

        # A disabled pad ignores the pointer.
        page.evaluate("padTest.pad.setEnabled(false)")
        page.mouse.move(22 + 50, 32 + 50)
        page.mouse.down()
        page.mouse.move(22 + 90, 32 + 90, steps=5)
        page.mouse.up()
        assert page.evaluate("padTest.pad.isEmpty()") is True

        # throttle: the first call runs at once, a burst collapses into one trailing call.
        # Read in the same evaluate as the burst: a loaded machine may run
        # the trailing call (100 ms on) before a second evaluate.
        assert page.evaluate(
            "for (let i = 0; i < 10; i++) padTest.throttled(i); padTest.calls.slice()") == [0]
        page.wait_for_function("() => padTest.calls.length >= 2", timeout=TIMEOUT_MS)
        # No timer is left to add a third call: flush() runs one only if pending.
        assert page.evaluate("padTest.throttled.flush(); padTest.calls") == [0, 9]

        # Reconnection backoff: grows exponentially, jittered, capped.
        delays = page.evaluate("""[0, 1, 2, 3, 10].map((n) => [
            padTest.backoffDelay(n, 500, 15000, () => 0),
            padTest.backoffDelay(n, 500, 15000, () => 0.999)])""")
        ceilings = [500, 1000, 2000, 4000, 15000]
        assert [low for low, _ in delays] == [c // 2 for c in ceilings]
        assert all(0.99 * c <= high <= c for (_, high), c in zip(delays, ceilings, strict=True))
    assert page.js_errors == []


def test_finishes_heard_are_laid_over_older_snapshots_of_their_round(game_server, browser):
    """No snapshot follows a finish, and one read before it may arrive after
    it (from another connection or process): the page keeps the round's
    `player_finished` and marks them over every snapshot of that round, never
    lowering a score, and lets a new round's snapshots be."""
    with open_page(browser) as page:
        page.goto(game_server.url + "/practice/")
        seen = page.evaluate("""async () => {
          const {RoundFinishes} = await import("/static/js/round-finishes.js");
          const finishes = new RoundFinishes();
          const room = (round, ada, bo) => ({game: "g1", round, players: [
            {id: "ada", finished: false, score: ada}, {id: "bo", finished: false, score: bo}]});
          const row = (snapshot) => snapshot.players.map((p) => [p.finished, p.score]);
          const untouched = finishes.over(room(1, 0, 0));
          finishes.heard("g1", {round: 1, player: "ada", score: 90});
          return {
            before: row(untouched),
            older: row(finishes.over(room(1, 0, 0))),
            newer: row(finishes.over(room(1, 120, 0))),
            next: row(finishes.over(room(2, 90, 0))),
            otherGame: row(finishes.over({...room(1, 0, 0), game: "g2"})),
          };
        }""")
        assert seen["before"] == [[False, 0], [False, 0]]
        assert seen["older"] == [[True, 90], [False, 0]]
        assert seen["newer"] == [[True, 120], [False, 0]]
        assert seen["next"] == [[False, 90], [False, 0]]
        assert seen["otherGame"] == [[False, 0], [False, 0]]
        assert page.js_errors == []
