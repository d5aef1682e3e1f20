"""The teacher kit: a drawing in a link, carried from lesson to lesson, and each
lesson's objectives, time and notes.

The code a link carries is checked both ways (share.encode / share.decode,
the format share.js writes), with its bounds: every malformed code tried
below is refused with its reason, on its own and as a page's ?d=. A valid
link opens the drawing on lessons 1 and 2, whose answers are then those of
the drawing itself on the shipped model.
"""

import base64
import json
import re
from html import unescape

import numpy as np
import pytest

from recognizer.payloads import parse_drawing
from recognizer.teaching import share
from tests.support import SEVEN
from tests.teaching_models import OPEN_FOUR, register_shipped

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))


def text(html):
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def whole(drawing):
    """The drawing as a link keeps it: whole pixels, repeats dropped, no times."""
    return [[list(p) for p in share.whole_points(s, drawing["width"], drawing["height"])]
            for s in drawing["strokes"]]


def spiral(points, width=300, height=300):
    angles = np.linspace(0, 6 * np.pi, points)
    return {"width": width, "height": height, "strokes": [
        [[150 + 6 * a * np.cos(a), 150 + 6 * a * np.sin(a)] for a in angles]]}


@pytest.mark.parametrize("drawing", [
    SEVEN, OPEN_FOUR, spiral(150),
    # Steps of 150 and -299 pixels (several bytes each), a one-point stroke.
    {"width": 640, "height": 480, "strokes": [[[0, 0], [150, 0], [150, 479], [1, 180.5]],
                                              [[320.4, 240.6]]]},
])
def test_a_code_gives_back_the_drawing_in_whole_pixels(drawing):
    code = share.encode(drawing)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", code)
    decoded = share.decode(code)
    assert (decoded["width"], decoded["height"]) == (round(drawing["width"]),
                                                     round(drawing["height"]))
    assert [[p[:2] for p in s] for s in decoded["strokes"]] == whole(drawing)
    # Times follow the order of the points, as the pad's do.
    times = [p[2] for s in decoded["strokes"] for p in s]
    assert times == sorted(times) and len(set(times)) == len(times)
    parse_drawing(decoded)  # a drawing the API accepts


def test_a_digit_is_a_short_link():
    # share.py says: a typical digit (two strokes, 60-150 points) is 170-420 characters.
    assert len(share.encode(SEVEN)) < 40
    two_strokes = {"width": 300, "height": 300, "strokes": [
        spiral(75)["strokes"][0], spiral(75)["strokes"][0][::-1]]}
    assert len(share.encode(two_strokes)) <= 420
    assert len(share.encode(OPEN_FOUR)) <= 200


def packed(*numbers):
    """Bytes of varints (no zigzag), as a code."""
    out = bytearray()
    for n in numbers:
        out += share._varint(n)
    return base64.urlsafe_b64encode(bytes(out)).decode().rstrip("=")


def raw(code, *extra):
    """`code` with bytes added at its end."""
    data = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)) + bytes(extra)
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(("code", "reason"), [
    ("", "the code is empty"),
    ("A" * 2401, "longer than 2400 characters"),
    ("abc+/=", "only letters, digits, '-' and '_'"),
    ("a", "not base64url"),
    (packed(2, 300, 300, 1), "format is not 1"),
    (packed(1, 0, 300, 1), "1 to 10000 pixels a side"),
    (packed(1, 300, 20_000, 1), "1 to 10000 pixels a side"),
    (packed(1, 300, 300, 0), "1 to 200 strokes"),
    (packed(1, 300, 300, 201), "1 to 200 strokes"),
    (packed(1, 300, 300, 1, 50, 10, 10), "claims more points than the code holds"),
    (raw(packed(1, 300, 300, 1, 2, 10, 10), 0x84, 0x84), "ends in the middle of a step"),
    (packed(1, 300, 300, 1, 1, 10, 10, 7), "goes on after its last stroke"),
    (packed(1, 300, 300, 1, 1, 301, 10), "outside the canvas"),
    (packed(1, 300, 300, 1, 2, 10, 10, 21, 0), "outside the canvas"),  # a step to x = -1
    (base64.urlsafe_b64encode(bytes([1] + [0xFF] * 8)).decode().rstrip("="), "too large"),
])
def test_bad_codes_are_refused_with_the_reason(code, reason):
    with pytest.raises(share.ShareError, match=re.escape(reason)):
        share.decode(code)


def test_a_link_opens_the_drawing_on_both_drawing_lessons(client, model_dir):
    register_shipped()
    code = share.encode(OPEN_FOUR)
    for path in ("/learn/how-it-works/", "/learn/attention/"):
        html = client.get(f"{path}?d={code}").content.decode()
        shown = json.loads(re.search(r'<script id="shared-drawing" type="application/json">'
                                     r"(.*?)</script>", html, re.S).group(1))
        assert shown == share.decode(code)
        assert "Link to this drawing" in html
    # What the lessons then ask about it is the drawing's own answer: a 4.
    answer = client.post("/learn/api/attention", data=json.dumps({**shown, "target": 9}),
                         content_type="application/json").json()
    assert answer["digit"] == 4


@pytest.mark.parametrize(("query", "reason"), [
    ("?d=" + "A" * 2401, "“d” is not a drawing this page can open: the code is longer than"),
    ("?d=abc%2B", "only letters, digits"),
    ("?d=" + packed(1, 300, 300, 1, 1, 301, 10), "a point lies outside the canvas"),
    ("?d=" + packed(1, 300, 300, 1, 1, 10, 10) + "&mnist=3", "either a drawing"),
])
def test_a_bad_link_gets_the_sites_404_with_the_reason(client, settings, mnist_dir, query,
                                                       reason):
    settings.DEBUG = False
    settings.MNIST_DATA_DIR = mnist_dir
    for path in ("/learn/how-it-works/", "/learn/attention/"):
        response = client.get(path + query)
        assert response.status_code == 404
        html = unescape(response.content.decode())
        assert 'data-error-page="404"' in html and reason in html


def test_links_to_the_drawing_lessons_carry_the_drawing(client, db):
    for path in ("/learn/", "/learn/how-it-works/", "/learn/attention/", "/learn/model/",
                 "/learn/data/", "/learn/how-it-learned/"):
        html = client.get(path).content.decode()
        carried = set(re.findall(r'<a [^>]*href="([^"]+)"[^>]*data-carry', html))
        assert carried and carried <= {"/learn/how-it-works/", "/learn/attention/",
                                       "/learn/how-it-learned/"}, path
        assert not re.search(r'href="/learn/(model|data)/"[^>]*data-carry', html), path
        assert "js/teaching/" in html


def test_each_lesson_has_objectives_time_and_notes_adding_up_to_the_start_page(client, db):
    minutes = 0
    for path in ("/learn/how-it-works/", "/learn/attention/", "/learn/model/", "/learn/data/",
                 "/learn/how-it-learned/"):
        html = client.get(path).content.decode()
        notes = re.search(r"<details class=\"teacher-notes\" data-teacher-notes>(.*?)</details>",
                          html, re.S).group(1)
        words = text(notes)
        assert "Objectives Learners can" in words and "Notes" in words, path
        assert len(re.findall(r"<li>", notes)) >= 3, path
        minutes += int(re.search(r"<span data-lesson-minutes>(\d+)</span>", notes).group(1))
    total = re.search(r"<span data-total-minutes>(\d+)</span>",
                      client.get("/learn/").content.decode()).group(1)
    assert minutes == int(total) == 95
