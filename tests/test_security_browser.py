"""Every page under the Content-Security-Policy in headless Chromium, against a
real Daphne server: no resource, script, style or image is refused, nothing
fails, and what the pages draw still works (the game's WebSocket, the practice
page's guesses and its data: image, the admin's bars and colours, which arrive
as data-* attributes now that style="..." is refused).
"""

import os
import re
from pathlib import Path

import pytest

from tests.live import LiveServer, open_page
from tests.support import BASE_DIR, draw_digit
from tests.test_game_browser import TIMEOUT_MS, wait_for_guess

pytestmark = pytest.mark.browser

PASSWORD = "csp-pass-5512"

SETUP = """
import django; django.setup()
from django.conf import settings
from django.contrib.auth.models import User
from recognizer.models import Drawing, ModelVersion
from recognizer.preprocessing import input_to_bytes, strokes_to_input
from recognizer.versions import active_version
from tests.support import register_random_model
if active_version() is None:
    settings.RECOGNIZER_MODEL_DIR.mkdir(parents=True, exist_ok=True)
    register_random_model(settings.RECOGNIZER_MODEL_DIR, seed=0)
version = active_version()
confusion = [[97 if i == j else 1 for j in range(10)] for i in range(10)]
test_set = {"accuracy": 0.97, "count": 1000, "per_class_accuracy": [0.97] * 10,
            "confusion_matrix": confusion}
version.metrics = {"mnist_test": test_set, "canvas": test_set}
version.save()
User.objects.create_superuser("root", password=%(password)r)
data = {"width": 200, "height": 200, "strokes": [[[100, 30 + 7 * i, 12 * i] for i in range(21)]]}
drawing = Drawing.objects.create(
    label=1, strokes=data, input_image=input_to_bytes(strokes_to_input(data["strokes"], 200, 200)),
    prediction=1, probabilities=[0.01, 0.91] + [0.01] * 8, player_id="p1", player_name="Ada",
    room_code="CSPCSP", game_id="g1", model_version=version)
print(drawing.pk, version.pk)
"""

# Recorded by the page itself, before its own scripts run.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def mnist_env():
    """MNIST for the data page's gallery of digits (data: images), where it is found."""
    candidates = [os.environ.get("MNIST_DATA_DIR"), BASE_DIR.parent / "shared" / "data" / "mnist"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "t10k-labels-idx1-ubyte.gz").exists():
            return {"MNIST_DATA_DIR": str(candidate), "TEACHING_MNIST_LIMIT": "2000"}
    return {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("csp"), env=mnist_env())
    live.start()
    output = live.run_script(SETUP % {"password": PASSWORD})
    live.drawing_pk, live.version_pk = map(int, output.split()[-2:])
    yield live
    live.stop()


@pytest.fixture
def page(browser):
    with open_page(browser, init_script=RECORD_VIOLATIONS,
                   viewport={"width": 1280, "height": 900}) as page:
        yield page


def assert_clean(page, where):
    violations = page.evaluate("window.__cspViolations")
    assert violations == [], (where, violations)
    refused = [e for e in page.console_errors if "Content Security Policy" in e]
    assert refused == [], (where, refused)
    assert page.js_errors == [], (where, page.js_errors)


def visit(page, url):
    response = page.goto(url)
    assert response.status == 200, (url, response.status)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    assert_clean(page, url)


def test_the_public_pages_run_under_the_policy(server, page):
    base = server.url
    for path in ["/", "/learn/", "/learn/how-it-works/", "/learn/attention/", "/learn/model/",
                 "/learn/data/"]:
        visit(page, base + path)

    # Practice: drawing fetches guesses and shows the 28x28 input as a data: image.
    visit(page, base + "/practice/")
    draw_digit(page, 7)
    wait_for_guess(page)
    assert_clean(page, "practice after a guess")

    # A solo room: the game's WebSocket connects under connect-src 'self'.
    visit(page, base + "/")
    page.click("form[action='/rooms/solo/'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/room/[A-Z2-9]{6}/$"))
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    assert_clean(page, page.url)


def test_the_admin_pages_run_under_the_policy(server, page):
    base = server.url
    visit(page, base + "/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(base + "/admin/")
    assert_clean(page, "/admin/")
    for path in ["/admin/recognizer/drawing/", "/admin/recognizer/drawing/review/",
                 f"/admin/recognizer/drawing/{server.drawing_pk}/change/",
                 "/admin/recognizer/modelversion/",
                 f"/admin/recognizer/modelversion/{server.version_pk}/change/"]:
        visit(page, base + path)
        if "modelversion/" in path and "change" in path:
            # The per-digit bars and the matrix colours came through data-* attributes.
            width = page.eval_on_selector(".per-class__bar span", "e => e.style.width")
            assert width == "97%", width
            colour = page.eval_on_selector(".confusion-matrix td.diagonal",
                                           "e => getComputedStyle(e).backgroundColor")
            assert colour.startswith("rgba(30, 64, 175"), colour
        if path.endswith("/change/") and "drawing/" in path:
            width = page.eval_on_selector(".prob-bar--top .prob-bar__fill", "e => e.style.width")
            assert width == "91%", width
