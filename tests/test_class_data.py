"""A class's own data for its teacher (/learn/class/<code>/, digitsite/game/class_data.py)
through Django's test client: who may see it, and that what it shows is the
class's stored drawings.

Tried: another browser, a logged-out visit, a script-made class (no browser
opened it), an ordinary room and a code that names no room all get 404;
drawings of another room and drawings kept under the same code before the
class was opened are left out.
"""

import itertools
import re
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client

from digitsite.game import class_data, rooms
from digitsite.game.models import Room
from recognizer.models import Drawing
from tests.test_classroom_pages import open_class

pytestmark = pytest.mark.django_db

STROKES = {"width": 280, "height": 280,
           "strokes": [[[60, 50, 0], [200, 50, 120], [110, 240, 400]]]}


# One drawing a player a round of a game, as the game keeps them.
ROUNDS = itertools.count(1)


def draw(code, label, prediction, p_label, player="p1", game="g1"):
    probabilities = [0.0] * 10
    probabilities[label] = p_label
    if prediction != label:
        probabilities[prediction] = 1.0 - p_label
    else:
        probabilities[(label + 1) % 10] = 1.0 - p_label
    return Drawing.objects.create(
        label=label, prediction=prediction, probabilities=probabilities, strokes=STROKES,
        input_image=bytes([0, 255] * 392), player_id=player, player_name=player,
        room_code=code, game_id=game, round_number=next(ROUNDS))


# (label, prediction, probability of the label): three 7s, one read as 1; a 4 read as
# 9; two 3s; a 1; by three students in two games.
CLASS_DRAWINGS = [
    (7, 7, 0.97, "ada", "g1"), (7, 1, 0.20, "bob", "g1"), (7, 7, 0.64, "cy", "g1"),
    (4, 9, 0.05, "ada", "g1"), (3, 3, 0.99, "bob", "g2"), (3, 3, 0.51, "cy", "g2"),
    (1, 1, 0.90, "ada", "g2"),
]


@pytest.fixture
def teacher_class(client):
    open_class(client)
    room = Room.objects.get()
    for label, prediction, p_label, player, game in CLASS_DRAWINGS:
        draw(room.code, label, prediction, p_label, player, game)
    # Not this class's: another room, and the same code before this class was opened.
    other = rooms.create_room("Ada")
    draw(other.code, 2, 5, 0.01)
    old = draw(room.code, 8, 0, 0.02)
    Drawing.objects.filter(pk=old.pk).update(created=room.created - timedelta(days=400))
    return room


def matrix_counts(html):
    """The confusion table as shown: {(asked, read): count}, every cell."""
    table = re.search(r"<table class=\"confusion-table\".*?</table>", html, re.S).group(0)
    counts = {}
    for row in re.finditer(r'<tr data-row="(\d)">(.*?)</tr>', table, re.S):
        cells = re.findall(r'data-count="(\d+)"', row.group(2))
        assert len(cells) == 10
        for read, count in enumerate(cells):
            counts[(int(row.group(1)), read)] = int(count)
    assert len(counts) == 100
    return counts


def test_the_matrix_counts_are_the_classs_stored_drawings(client, teacher_class):
    response = client.get(f"/learn/class/{teacher_class.code}/")
    assert response.status_code == 200
    html = unescape(response.content.decode())
    stored = Drawing.objects.filter(room_code=teacher_class.code,
                                    created__gte=teacher_class.created)
    expected = {(a, r): 0 for a in range(10) for r in range(10)}
    for label, prediction in stored.values_list("label", "prediction"):
        expected[(label, prediction)] += 1
    assert matrix_counts(html) == expected
    assert sum(expected.values()) == len(CLASS_DRAWINGS) == 7
    assert expected[(7, 1)] == 1 and expected[(4, 9)] == 1 and expected[(7, 7)] == 2
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', html))
    assert counts == {"drawings": "7", "students": "3", "games": "2", "right": "5",
                      "misread": "2"}


def test_the_hardest_drawings_come_first_with_their_explain_links(client, teacher_class):
    html = client.get(f"/learn/class/{teacher_class.code}/").content.decode()
    shown = re.findall(r'data-hard-drawing="\d+" data-label="(\d)" data-probability="([\d.]+)"',
                       html)
    probabilities = [float(p) for _, p in shown]
    assert probabilities == sorted(p_label for _, _, p_label, _, _ in CLASS_DRAWINGS)
    assert [label for label, _ in shown][:2] == ["4", "7"]  # 5% for its 4, 20% for its 7
    # The strokes go to class-data.js, which writes the links with explain-link.js.
    assert '<script id="class-hardest" type="application/json">' in html
    assert "js/class-data.js" in html and html.count("data-explain-slot") == 7


def test_only_the_browser_that_opened_the_class_sees_it(client, teacher_class):
    path = f"/learn/class/{teacher_class.code}/"
    assert client.get(path).status_code == 200
    other = Client()
    other.get("/")  # a session of its own
    for visitor in (other, Client()):
        response = visitor.get(path)
        assert response.status_code == 404
        assert "confusion-table" not in response.content.decode()
    # The code in lower case leads to the page, for the teacher only.
    assert client.get(path.lower())["Location"] == path
    assert other.get(path.lower()).status_code == 404
    # An ordinary room, a class made by a script, a code of no room: 404 for everyone.
    scripted = rooms.create_room("Mr Babbage", classroom=True)
    assert not scripted.creator_session
    for code in (rooms.create_room("Ada").code, scripted.code, "ZZZZZZ", "x" * 300):
        assert client.get(f"/learn/class/{code}/").status_code == 404, code


def test_the_projector_links_its_teacher_to_the_classs_data(client, teacher_class):
    html = client.get(f"/class/{teacher_class.code}/projector/").content.decode()
    link = re.search(r'<a [^>]*data-class-data-link[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', html)
    assert link and link.group(1) == f"/learn/class/{teacher_class.code}/"
    assert unescape(link.group(2)) == "Our class's data"
    # Inside the end-of-game report, which the projector shows at the end.
    summary = html[html.index("data-class-summary"):]
    assert summary.index("data-class-data-link") < summary.index("</section>")


def test_a_class_with_no_drawings_says_so(client):
    open_class(client)
    room = Room.objects.get()
    html = client.get(f"/learn/class/{room.code}/").content.decode()
    assert "No drawings yet" in html and "confusion-table" not in html


def test_the_page_reads_at_most_its_bound(client, teacher_class, monkeypatch):
    monkeypatch.setattr(class_data, "MAX_DRAWINGS", 4)
    html = unescape(client.get(f"/learn/class/{teacher_class.code}/").content.decode())
    assert sum(matrix_counts(html).values()) == 4
    assert "this page shows its first 4" in html
