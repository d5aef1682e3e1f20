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
import subprocess
import sys

import pytest

from tests.live import open_page
from tests.support import BASE_DIR
from tests.test_game_browser import target_of
from tests.test_room_page_browser import LAPTOP, TIMEOUT_MS, join

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def game_server(daphne_server):
    """The live server with an active model (an untrained one if none is shipped)."""
    return daphne_server.ensure_model()

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
        "import django, json, sys; django.setup()\n"
        "from recognizer.models import Drawing\n"
        f"d = Drawing.objects.get(room_code={code!r})\n"
        "sys.stdout.write(json.dumps({'ending': d.ending, 'strokes': d.strokes}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, env=server.env,
                          check=True, timeout=300, capture_output=True, text=True)
    return json.loads(done.stdout)


def test_a_stroke_ends_the_round_only_once_the_pen_is_lifted(game_server, browser):
    code = game_server.create_room("Pat", rounds=1, seconds=300.0, max_players=2,
                                   target_confidence=0.0)
    with open_page(browser, PEN_LOG, viewport=LAPTOP) as page:
        join(page, f"{game_server.url}/room/{code}/", "Pat")
        page.click("[data-start]")
        target_of(page)
        box = page.locator("canvas[data-pad]").bounding_box()

        def at(x, y):
            return box["x"] + box["width"] * x, box["y"] + box["height"] * y

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
