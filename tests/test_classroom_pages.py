"""A class's pages through Django's test client: opening a class on the home
page, the teacher's projector with its QR code, the students' room page."""

import json
import re

import pytest
from django.urls import reverse

from digitsite.game import join_qr, rooms, seats
from digitsite.game.models import Room
from tests.qr_svg import dark_modules, matrix_modules, path_of

pytestmark = pytest.mark.django_db


def open_class(client, teacher="Ms Lovelace", rounds=3, seconds=30):
    return client.post(reverse("game:class_create"),
                       {"teacher": teacher, "rounds": rounds, "seconds": seconds})


def projector_config(response):
    match = re.search(r'<script id="class-config" type="application/json">(.*?)</script>',
                      response.content.decode(), re.S)
    assert match, "the projector carries its configuration for class-projector.js"
    return json.loads(match.group(1))


def test_the_home_page_offers_to_open_a_class(client, settings):
    html = client.get("/").content.decode()
    assert "Open a class" in html and 'action="/class/new/"' in html
    assert f"up to {settings.GAME_CLASS_MAX_STUDENTS} students" in html
    for field in ('name="teacher"', 'id="id_class_rounds"', 'id="id_class_seconds"'):
        assert field in html


def test_opening_a_class_leads_to_its_projector_with_the_join_qr_code(client):
    response = open_class(client)
    assert response.status_code == 302
    room = Room.objects.get()
    assert response["Location"] == f"/class/{room.code}/projector/"
    assert (room.classroom, room.private, room.title, room.rounds, room.round_seconds) == (
        True, True, "Ms Lovelace", 3, 30.0)
    assert room.creator_session == seats.hash_session(client.session.session_key)

    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    join_url = f"http://testserver/room/{room.code}/"
    config = projector_config(page)
    assert config["code"] == room.code and config["joinUrl"] == join_url
    assert config["name"] == "Ms Lovelace" and config["wsPath"] == f"/ws/v1/rooms/{room.code}/"
    assert f'data-qr-url="{join_url}"' in html
    # The QR code is segno's SVG of the join link, inline, with no style attribute
    # (the Content-Security-Policy refuses them) and nothing from another site.
    svg = re.search(r'<svg viewBox="[^"]+" class="qr">.*?</svg>', html, re.S).group(0)
    assert svg == join_qr.join_qr_svg(join_url, title=f"Scan to join class {room.code}")
    assert dark_modules(path_of(svg)) == matrix_modules(join_url)
    assert "style=" not in svg and "http" not in svg.replace('"http', "")
    assert "js/class-projector.js" in html


def test_the_projector_is_the_teachers_alone(client, django_user_model):
    from django.test import Client

    open_class(client)
    room = Room.objects.get()
    student = Client()
    page = student.get(f"/class/{room.code}/projector/")
    assert page.status_code == 403
    assert f"/room/{room.code}/" in page.content.decode()
    # The teacher opening the students' page is sent back to the projector.
    assert client.get(f"/room/{room.code}/")["Location"] == f"/class/{room.code}/projector/"
    assert student.get(f"/room/{room.code}/").status_code == 200
    # An ordinary room has no projector.
    other = rooms.create_room("Ada")
    assert client.get(f"/class/{other.code}/projector/").status_code == 404
    assert client.get(f"/class/{room.code.lower()}/projector/")["Location"] == (
        f"/class/{room.code}/projector/")


def test_a_class_needs_a_teacher_name_fit_to_show(client):
    for bad, message in (("", "This field is required"), ("admin", "is kept for the site")):
        response = open_class(client, teacher=bad)
        assert response.status_code == 400
        assert message in response.content.decode()
    assert open_class(client, rounds=0).status_code == 400
    assert not Room.objects.exists()


def test_opening_classes_counts_against_the_rooms_per_client_limit(client, settings):
    settings.GAME_ROOMS_PER_SESSION = 1
    assert open_class(client).status_code == 302
    refused = open_class(client)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "too many rooms" in refused.content.decode()


def test_the_students_page_counts_students_only(client, settings):
    from django.test import Client

    settings.GAME_CLASS_MAX_STUDENTS = 2
    room = rooms.create_room("Ms Lovelace", classroom=True)
    seats.join(room.code, name="Ms Lovelace", channel_name="c-t")
    seats.join(room.code, name="Ada", channel_name="c-a")
    visitor = Client()
    visitor.post(reverse("game:set_name"), {"name": "Bob"})
    page = visitor.get(f"/room/{room.code}/").content.decode()
    assert "data-room-full" not in page  # the teacher's seat is not a student's
    seats.join(room.code, name="Cy", channel_name="c-c")
    page = visitor.get(f"/room/{room.code}/").content.decode()
    assert "data-room-full" in page
    assert "data-class-learn" in page and "/learn/how-it-works/" in page
