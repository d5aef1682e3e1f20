"""End to end, real Chromium against a real Daphne server: a stroke that reads
as the target while it is still being drawn does not end the round; lifting
the pen does.

The room's target confidence is 0, so the model reads every drawing as the
target at it, whatever the target and the model: the only thing that can
hold the round open is the pen being down. The test holds the mouse button
down until the server has answered a drawing of the unfinished stroke (a
condition, not a time), so how fast the machine replays the mouse changes
nothing.
"""

import json

import pytest

from tests.live import open_page
from tests.support import canvas_point, join_room
from tests.test_game_browser import target_of
from tests.test_room_page_browser import LAPTOP, TIMEOUT_MS

pytestmark = pytest.mark.browser


# Installed before the page's scripts: logs the draws the page sends (with
# `pen_up`) and the guesses it gets (with `reached`), in order.
PEN_LOG = """(() => {
  const Native = window.WebSocket;
  const log = window.penLog = [];
  const pointsOf = {};
  window.WebSocket = class extends Native {
    send(data) {
      const message = JSON.parse(data);
      if (message.type === "draw") {
        // Protocol 2: a drawing may carry only what it adds to an earlier one.
        const points = message.drawing ? message.drawing.strokes.flat().length
          : pointsOf[message.base] + (message.extend ?? []).length
            + (message.strokes ?? []).flat().length;
        pointsOf[message.seq] = points;
        log.push({way: "out", seq: message.seq, pen_up: message.pen_up, points});
      }
      super.send(data);
    }
    addEventListener(type, listener, options) {
      if (type !== "message") return super.addEventListener(type, listener, options);
      return super.addEventListener(type, (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "guess") {
          log.push({way: "in", seq: message.seq, reached: message.reached});
        }
        listener.call(this, event);
      }, options);
    }
  };
})();"""

# A guess came back for a drawing the page sent with the pen down.
ANSWERED_WITH_PEN_DOWN = """() => {
  const down = new Set(penLog.filter(e => e.way === "out" && e.pen_up === false)
                             .map(e => e.seq));
  return penLog.some(e => e.way === "in" && down.has(e.seq));
}"""


def stored_drawing(server, code):
    """The ending and strokes of the drawing the server stored for room `code`."""
    script = (
        "import json, sys\n"
        "from recognizer.models import Drawing\n"
        f"d = Drawing.objects.get(room_code={code!r})\n"
        "sys.stdout.write(json.dumps({'ending': d.ending, 'strokes': d.strokes}))\n"
    )
    return json.loads(server.run_script(script))


def test_a_stroke_ends_the_round_only_once_the_pen_is_lifted(game_server, browser):
    code = game_server.create_room("Pat", rounds=1, seconds=300.0, max_players=2,
                                   target_confidence=0.0)
    with open_page(browser, PEN_LOG, viewport=LAPTOP) as page:
        join_room(page, f"{game_server.url}/room/{code}/", "Pat")
        page.click("[data-start]")
        target_of(page)
        at = canvas_point(page)

        # Half a stroke, the button held down until the server answered it.
        page.mouse.move(*at(0.5, 0.15))
        page.mouse.down()
        page.mouse.move(*at(0.5, 0.5), steps=6)
        page.wait_for_function(ANSWERED_WITH_PEN_DOWN, timeout=TIMEOUT_MS)
        log = page.evaluate("penLog")
        answers = [e for e in log if e["way"] == "in"]
        assert answers and not any(e["reached"] for e in answers), log
        assert page.locator("[data-room][data-finished='true']").count() == 0
        assert not page.locator("[data-overlay]").inner_text().startswith("Recognised!")

        # More of the stroke, still down; then the pen is lifted.
        page.mouse.move(*at(0.5, 0.85), steps=6)
        page.mouse.up()
        page.wait_for_selector("[data-room][data-finished='true']", timeout=TIMEOUT_MS)
        page.wait_for_function("() => penLog.some(e => e.way === 'in' && e.reached)",
                               timeout=TIMEOUT_MS)
        log = page.evaluate("penLog")
        sent = [e for e in log if e["way"] == "out"]
        reached = [e for e in log if e["way"] == "in" and e["reached"]]
        # One guess reached the target: the answer to the last drawing, sent
        # with the pen up; every drawing before it went with the pen down.
        assert [e["seq"] for e in reached] == [sent[-1]["seq"]], log
        assert sent[-1]["pen_up"] is True
        assert all(e["pen_up"] is False for e in sent[:-1]), log
        final = page.evaluate("window.digitGame.pad.drawing")
        assert sent[-1]["points"] == sum(len(stroke) for stroke in final["strokes"])
        assert page.js_errors == []

    stored = stored_drawing(game_server, code)
    assert stored["ending"] == "reached"
    assert [[p[:2] for p in s] for s in stored["strokes"]["strokes"]] == [
        [p[:2] for p in s] for s in final["strokes"]]


# Installed before the page's scripts: logs the draws the page sends (with
# `pen_up` and their points) and the guesses it is handed (with `reached`),
# and holds guesses back while `holdGuesses` is set, as a busy server would,
# until `releaseGuesses()`: held until the test says so, not for a time.
HELD_PEN_LOG = """(() => {
  const Native = window.WebSocket;
  const log = window.penLog = [];
  const held = window.heldGuesses = [];
  const built = {};  // seq -> its drawing's stroke lengths
  window.holdGuesses = false;
  window.releaseGuesses = () => {
    window.holdGuesses = false;
    while (held.length) held.shift()();
  };
  window.WebSocket = class extends Native {
    send(data) {
      const message = JSON.parse(data);
      if (message.type === "draw") {
        // Each stroke's length in the drawing the message stands for: whole,
        // or (protocol 2) its base's with the points and strokes added.
        let strokes;
        if (message.drawing) {
          strokes = message.drawing.strokes.map((s) => s.length);
        } else {
          strokes = (built[message.base] || []).slice();
          if (message.extend) strokes[strokes.length - 1] += message.extend.length;
          for (const s of message.strokes || []) strokes.push(s.length);
        }
        built[message.seq] = strokes;
        log.push({way: "out", seq: message.seq, pen_up: message.pen_up, strokes});
      }
      super.send(data);
    }
    addEventListener(type, listener, options) {
      if (type !== "message") return super.addEventListener(type, listener, options);
      return super.addEventListener(type, (event) => {
        const message = JSON.parse(event.data);
        if (message.type !== "guess") return listener.call(this, event);
        const deliver = () => {
          log.push({way: "in", seq: message.seq, reached: message.reached});
          listener.call(this, event);
        };
        if (window.holdGuesses) held.push(deliver); else deliver();
      }, options);
    }
  };
})();"""


def test_a_pen_lifted_while_a_guess_is_on_its_way_is_scored_with_the_pen_up(game_server,
                                                                            browser):
    """The first stroke's drawing goes out and its guess is held (a busy
    server); the pen is lifted, and put down again for a second stroke before
    the guess comes back. When it comes, the drawing as it was when the pen
    was lifted goes out next, with `pen_up: true`, and (target confidence 0)
    ends the round with the second stroke still under the pen. Before, the
    page sent the drawing as it was then, pen down, and the moment the pen
    was lifted was never scored."""
    code = game_server.create_room("Lin", rounds=1, seconds=300.0, max_players=2,
                                   target_confidence=0.0)
    with open_page(browser, HELD_PEN_LOG, viewport=LAPTOP) as page:
        join_room(page, f"{game_server.url}/room/{code}/", "Lin")
        page.click("[data-start]")
        target_of(page)
        at = canvas_point(page)

        page.evaluate("window.holdGuesses = true")
        page.mouse.move(*at(0.5, 0.15))
        page.mouse.down()
        page.mouse.move(*at(0.5, 0.85), steps=6)
        page.wait_for_function("() => heldGuesses.length === 1", timeout=TIMEOUT_MS)
        page.mouse.up()
        first_stroke = page.evaluate("window.digitGame.pad.drawing.strokes[0].length")
        # The second stroke begins; the pen stays down from here on.
        page.mouse.move(*at(0.3, 0.3))
        page.mouse.down()
        page.mouse.move(*at(0.7, 0.3), steps=6)
        assert page.evaluate("window.digitGame.pad.penDown") is True
        sent_before = len([e for e in page.evaluate("penLog") if e["way"] == "out"])
        assert sent_before == 1, page.evaluate("penLog")

        page.evaluate("releaseGuesses()")
        page.wait_for_function(
            f"() => penLog.filter(e => e.way === 'out').length > {sent_before}",
            timeout=TIMEOUT_MS)
        after = [e for e in page.evaluate("penLog") if e["way"] == "out"][sent_before]
        assert after["pen_up"] is True and after["strokes"] == [first_stroke], after
        page.wait_for_selector("[data-room][data-finished='true']", timeout=TIMEOUT_MS)
        log = page.evaluate("penLog")
        assert [e["seq"] for e in log if e["way"] == "in" and e["reached"]] == [after["seq"]], log
        page.mouse.up()
        assert page.js_errors == []

    stored = stored_drawing(game_server, code)
    assert stored["ending"] == "reached"
    assert [len(s) for s in stored["strokes"]["strokes"]] == [first_stroke]


# The page's policy for drawings on their way (latest-only.js), driven by hand:
# what goes out, in order, as drawings are held, sent and answered.
LATEST_ONLY_STEPS = """async () => {
  const {LatestOnly} = await import("/static/js/latest-only.js");
  const out = [];
  let id = 0;
  const latest = new LatestOnly((name) => { out.push(name); id += 1; return id; });
  const steps = [];
  const step = (what) => steps.push([what, out.slice()]);
  latest.hold("a: pen down"); latest.send(); step("a sent");
  latest.holdComplete("b: pen lifted"); latest.send(); step("b held, a waits");
  latest.hold("c: pen down again"); latest.send(); step("c held after b");
  latest.answered(1); step("a answered");
  latest.answered(2); step("b answered");
  latest.hold("d"); latest.holdComplete("e: lifted"); latest.hold("f");
  latest.holdComplete("g: lifted again"); step("d-g held, c waits");
  latest.answered(3); step("c answered");
  latest.hold("h"); latest.holdComplete("i"); latest.drop(); latest.answered(4);
  step("h, i dropped");
  latest.hold("j"); latest.holdComplete("k"); latest.send({force: true}); step("k forced");
  // A stroke ends while k waits, then is undone: only the drawing after the undo goes.
  latest.holdComplete("l: stroke ended"); latest.forgetComplete(); latest.hold("m: undone");
  latest.answered(5); step("l undone");
  return {steps, pending: latest.pending};
}"""


def test_a_complete_drawing_held_is_not_superseded_by_newer_ones(game_server, browser):
    """LatestOnly in the browser: a complete drawing (the pen lifted) held
    while one waits for its answer goes before the newest held after it; a
    newer complete one replaces it and everything held before; an undo
    forgets it; still only one is on its way at a time."""
    with open_page(browser, viewport=LAPTOP) as page:
        page.goto(game_server.url + "/practice/")
        result = page.evaluate(LATEST_ONLY_STEPS)
        assert page.js_errors == []
    steps = dict(result["steps"])
    assert steps["a sent"] == ["a: pen down"]
    assert steps["b held, a waits"] == ["a: pen down"]
    assert steps["c held after b"] == ["a: pen down"]
    assert steps["a answered"] == ["a: pen down", "b: pen lifted"]
    assert steps["b answered"] == ["a: pen down", "b: pen lifted", "c: pen down again"]
    assert steps["d-g held, c waits"] == steps["b answered"]
    assert steps["c answered"][3:] == ["g: lifted again"]
    assert steps["h, i dropped"] == steps["c answered"]
    assert steps["k forced"][4:] == ["k"]
    assert steps["l undone"][5:] == ["m: undone"]  # never "l", whose stroke was erased
    assert result["pending"] is False  # "j" was held before "k": "k" has it
