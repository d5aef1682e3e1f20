"""The teach page and the links to it, through Django's test client: from the
lessons (their nav, the start page, the last lesson), from the game's round
results (the room page carries the address its script links to) and the
class projector's panel with its class's own address. What the page's
scripts do with them is tests/test_teach_browser.py."""

import re

import pytest
from django.urls import reverse

from digitsite.game.models import Room
from tests.test_classroom_pages import open_class
from tests.test_game_pages import named_client

pytestmark = pytest.mark.django_db

TEACH = "/learn/teach/"


def attribute(html, name):
    """The value of the first `name="..."` attribute in `html`."""
    match = re.search(rf'\b{name}="([^"]*)"', html)
    assert match, f"no {name} attribute"
    return match.group(1)


@pytest.mark.parametrize("lesson", ["/learn/", "/learn/how-it-works/", "/learn/attention/",
                                    "/learn/model/", "/learn/data/", "/learn/how-it-learned/"])
def test_every_lesson_links_to_the_teach_page_in_its_nav(client, lesson):
    html = client.get(lesson).content.decode()
    nav = re.search(r'<nav class="lesson-nav".*?</nav>', html, re.S).group(0)
    assert f'class="lesson-nav__teach" data-teach-link href="{TEACH}"' in nav
    # Not marked as the page shown: only the teach page itself is.
    assert 'data-teach-link href="/learn/teach/" aria-current' not in nav


def test_the_start_page_and_the_last_lesson_lead_on_to_teaching(client):
    start = client.get("/learn/").content.decode()
    assert re.search(rf'<h2><a href="{TEACH}" data-teach-link>Then teach it yourself</a></h2>',
                     start)
    # The last lesson's "next" is the teach page; the others still lead to the next lesson.
    last = client.get("/learn/how-it-learned/").content.decode()
    nav = re.search(r'<nav class="lesson-next".*?</nav>', last, re.S).group(0)
    assert f'data-teach-link href="{TEACH}">Now teach it yourself' in nav
    assert "data-next-lesson" not in nav
    model = client.get("/learn/model/").content.decode()
    assert 'rel="next" data-next-lesson href="/learn/data/"' in model
    data = client.get("/learn/data/").content.decode()
    assert 'rel="next" data-next-lesson href="/learn/how-it-learned/"' in data


def test_the_teach_page_carries_the_api_and_the_servers_bounds(client, settings):
    settings.TEACH_MIN_EXAMPLES = 8
    settings.TEACH_MAX_EXAMPLES = 40
    settings.TEACH_MAX_STEPS = 900
    settings.TEACH_DEFAULT_STEPS = 250
    response = client.get(TEACH + "?digit=4&from=game")
    assert response.status_code == 200
    html = response.content.decode()
    teach = re.search(r"<div class=\"teach\" data-teach.*?>", html, re.S).group(0)
    assert attribute(teach, "data-jobs-url") == reverse("teach:api_jobs") == TEACH + "api/jobs"
    assert attribute(teach, "data-predict-url") == TEACH + "api/predict"
    assert (attribute(teach, "data-min-examples"), attribute(teach, "data-max-examples")) == (
        "8", "40")
    steps = re.search(r'<input type="range"[^>]*data-steps[^>]*>', html).group(0)
    assert (attribute(steps, "min"), attribute(steps, "max"), attribute(steps, "value")) == (
        "20", "900", "250")
    # The reminder is on and the opt-out off until the learner says otherwise.
    assert re.search(r'<input type="checkbox" data-replay checked', html)
    assert re.search(r'<input type="checkbox" data-opt-out aria-describedby', html)
    # Ten digits to choose from, each a labelled radio button.
    assert re.findall(r'<input type="radio" name="digit" value="(\d)"', html) == list("0123456789")
    assert '<input type="radio" name="digit" value="7" checked>' in html
    # The canvases say what they are; the lessons' nav marks this page.
    for canvas in re.findall(r"<canvas[^>]*>", html):
        assert 'role="img"' in canvas and "aria-label=" in canvas, canvas
    assert f'data-teach-link href="{TEACH}" aria-current="page"' in html
    assert 'src="/static/js/teach/teach.js"' in html and "teach.css" in html
    # The Content-Security-Policy refuses inline styles and scripts: there are none.
    assert "style=" not in html and "<script>" not in html and " on" + "click=" not in html
    assert "//cdn" not in html and "https://" not in html


def test_the_room_page_gives_its_results_the_teach_address(client):
    named_client(client)
    client.post(reverse("game:create"), {"rounds": "2", "seconds": "20", "max_players": "4"})
    room = Room.objects.get()
    html = client.get(f"/room/{room.code}/").content.decode()
    grid = re.search(r"<div class=\"results-grid\"[^>]*>", html).group(0)
    assert attribute(grid, "data-teach-url") == TEACH


def test_the_projector_offers_to_teach_the_class_copy(client):
    location = open_class(client)["Location"]
    room = Room.objects.get()
    html = client.get(location).content.decode()
    panel = re.search(r"<section class=\"card class-teach\" data-class-teach hidden.*?</section>",
                      html, re.S).group(0)
    assert attribute(panel, "data-class-jobs-url") == f"{TEACH}api/class/{room.code}/jobs"
    assert attribute(panel, "data-jobs-url") == TEACH + "api/jobs"
    assert "Teach the model with our class's drawings</button>" in panel
    assert "teach.css" in html
