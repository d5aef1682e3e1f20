"""The game's pages through Django's test client: home, lobby, rooms, practice."""

import json
import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from digitsite.game import protocol, rooms, rules, seats
from digitsite.game.models import Room

pytestmark = pytest.mark.django_db


def room_config(response):
    match = re.search(
        r'<script id="room-config" type="application/json">(.*?)</script>',
        response.content.decode(), re.S,
    )
    assert match, "the room page carries its configuration for game.js"
    return json.loads(match.group(1))


def named_client(client, name="Ada"):
    response = client.post(reverse("game:set_name"), {"name": name})
    assert response.status_code == 302
    return client


# -- home and names ------------------------------------------------------------


def test_home_shows_the_forms_and_the_data_notice(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Create a room" in html
    assert "Join a room" in html
    assert 'action="/rooms/new/"' in html
    assert "kept to train the model" in html
    assert "No open rooms right now" in html
    # The shared layout: nav to play, practice and the teaching pages.
    assert 'href="/practice/"' in html and 'href="/learn/"' in html
    assert 'href="/admin/"' not in html


def test_the_site_icon_is_linked_and_served_for_favicon_ico(client):
    html = client.get("/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    # Browsers ask /favicon.ico of any page, with or without the link.
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/favicon.svg"
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content if icon.streaming else [icon.content])


def test_staff_see_the_admin_link(client):
    User.objects.create_user("boss", password="pw-long-enough-1", is_staff=True)
    client.login(username="boss", password="pw-long-enough-1")
    assert 'href="/admin/"' in client.get("/").content.decode()


def test_picking_a_name_keeps_it_in_the_session(client):
    named_client(client, "  Ada   Lovelace ")
    assert client.session["display_name"] == "Ada Lovelace"
    html = client.get("/").content.decode()
    assert "Playing as <strong data-display-name>Ada Lovelace</strong>" in html


@pytest.mark.parametrize("name, message", [
    ("", "This field is required."),
    ("   ", "This field is required."),
    ("x" * 25, "at most 24 characters"),
    ("bad\u0007name", "cannot be shown"),
])
def test_a_bad_name_is_refused_with_a_reason(client, name, message):
    response = client.post(reverse("game:set_name"), {"name": name})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "display_name" not in client.session


def test_a_logged_in_user_keeps_the_account_name(client):
    User.objects.create_user("grace", password="pw-long-enough-1")
    client.login(username="grace", password="pw-long-enough-1")
    html = client.get("/").content.decode()
    assert "Playing as <strong data-display-name>grace</strong>" in html
    assert 'action="/name/"' not in html
    client.post(reverse("game:set_name"), {"name": "Someone else"})
    assert "display_name" not in client.session


def test_names_are_escaped(client):
    named_client(client, "<b>Bo</b>")
    html = client.get("/").content.decode()
    assert "<b>Bo</b>" not in html
    assert "&lt;b&gt;Bo&lt;/b&gt;" in html


def test_set_name_goes_back_to_a_safe_next_page_only(client):
    room = rooms.create_room("Ada")
    response = client.post(reverse("game:set_name"), {"name": "Bob", "next": f"/room/{room.code}/"})
    assert response["Location"] == f"/room/{room.code}/"
    response = client.post(reverse("game:set_name"), {"name": "Bob", "next": "https://evil.example/"})
    assert response["Location"] == "/"


# -- creating rooms ---------------------------------------------------------------


def test_creating_a_room_stores_its_settings_and_opens_it(client):
    named_client(client)
    response = client.post(reverse("game:create"),
                           {"rounds": "3", "seconds": "15", "max_players": "4"})
    assert response.status_code == 302
    room = Room.objects.get()
    assert response["Location"] == f"/room/{room.code}/"
    assert (room.rounds, room.round_seconds, room.max_players) == (3, 15.0, 4)
    assert room.title == "Ada"
    assert not room.solo


def test_creating_a_room_without_a_name_asks_for_one(client):
    html = client.get("/").content.decode()
    assert 'id="id_create_name"' in html
    response = client.post(reverse("game:create"),
                           {"rounds": "2", "seconds": "20", "max_players": "2"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Room.objects.exists()
    response = client.post(reverse("game:create"),
                           {"name": "Cy", "rounds": "2", "seconds": "20", "max_players": "2"})
    assert response.status_code == 302
    assert client.session["display_name"] == "Cy"


@pytest.mark.parametrize("field, value, message", [
    ("rounds", "0", "greater than or equal to 1"),
    ("rounds", "21", "less than or equal to 20"),
    ("seconds", "9999", "less than or equal to 300"),
    ("max_players", "9", "less than or equal to 8"),
    ("rounds", "three", "Enter a whole number."),
])
def test_bad_room_settings_are_refused_with_a_reason(client, field, value, message):
    named_client(client)
    data = {"rounds": "5", "seconds": "20", "max_players": "4", field: value}
    response = client.post(reverse("game:create"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Room.objects.exists()


def test_a_solo_game_is_a_one_seat_room_kept_out_of_the_lobby(client):
    named_client(client)
    response = client.post(reverse("game:solo"))
    room = Room.objects.get()
    assert response["Location"] == f"/room/{room.code}/"
    assert room.solo and room.max_players == 1
    assert client.get(reverse("game:lobby")).json() == {"rooms": []}


def test_get_is_not_allowed_on_forms_that_change_things(client):
    assert client.get(reverse("game:create")).status_code == 405
    assert client.get(reverse("game:set_name")).status_code == 405


# -- joining -------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["{code}", "{lower}", " {lower} ", "http://testserver/room/{code}/"])
def test_joining_by_code_or_link_opens_the_room(client, typed):
    room = rooms.create_room("Ada")
    text = typed.format(code=room.code, lower=room.code.lower())
    response = client.get(reverse("game:join"), {"code": text})
    assert response.status_code == 302
    assert response["Location"] == f"/room/{room.code}/"


def test_joining_with_a_malformed_code_says_what_a_code_looks_like(client):
    response = client.get(reverse("game:join"), {"code": "hello!"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "is not a room code" in html
    assert "6 letters and digits" in html


def test_joining_an_unknown_room_says_so(client):
    response = client.get(reverse("game:join"), {"code": "ZZZZ22"})
    assert response.status_code == 404
    assert "There is no room ZZZZ22" in response.content.decode()


def test_joining_with_nothing_typed_asks_for_a_code(client):
    response = client.get(reverse("game:join"), {"code": " "})
    assert response.status_code == 400
    assert "Type the room code" in response.content.decode()


# -- the room page -------------------------------------------------------------------


def test_room_page_shows_code_players_rule_and_opt_out(client):
    named_client(client, "Bob")
    room = rooms.create_room("Ada", rounds=2, seconds=10, max_players=3)
    seats.join(room.code, name="Ada", channel_name="test-ada")
    seats.join(room.code, name="Cleo", channel_name="test-cleo")
    response = client.get(f"/room/{room.code}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<span class="code" data-room-code>{room.code}</span>' in html
    assert ">Ada<" in html and ">Cleo<" in html
    assert rules.SCORING_RULE in html
    assert f"Points = {rules.ACCURACY_POINTS} × probability" in html
    assert "kept to train the model" in html
    assert "Don&#x27;t keep my drawings" in html or "Don't keep my drawings" in html
    assert "2 rounds of 10 s" in html
    assert "js/game.js" in html
    config = room_config(response)
    assert config["code"] == room.code
    assert config["wsPath"] == f"/ws/v1/rooms/{room.code}/"
    assert config["name"] == "Bob"
    assert config["protocol"] == protocol.PROTOCOL_VERSION
    assert [p["name"] for p in config["snapshot"]["players"]] == ["Ada", "Cleo"]


def test_a_player_who_left_is_shown_as_gone(client):
    named_client(client)
    room = rooms.create_room("Ada")
    joined = seats.join(room.code, name="Dan", channel_name="test-dan")
    seats.leave(joined.seat.player_id)
    html = client.get(f"/room/{room.code}/").content.decode()
    item = re.search(r'<li class="player is-gone" data-player="[^"]+">(.*?)</li>', html, re.S)
    assert item and "Dan" in item.group(1) and ">left<" in item.group(1)


def test_room_page_without_a_name_asks_for_one_first(client):
    room = rooms.create_room("Ada")
    response = client.get(f"/room/{room.code}/")
    html = response.content.decode()
    assert "Pick a name to join" in html
    assert f'name="next" value="/room/{room.code}/"' in html
    assert "js/game.js" not in html  # no connection before there is a name
    response = client.post(reverse("game:set_name"), {"name": "", "next": f"/room/{room.code}/"})
    assert response.status_code == 400
    assert "Pick a name to join" in response.content.decode()


def test_room_codes_in_another_case_redirect_to_the_room(client):
    room = rooms.create_room("Ada")
    response = client.get(f"/room/{room.code.lower()}/")
    assert response.status_code == 302
    assert response["Location"] == f"/room/{room.code}/"


@pytest.mark.parametrize("code", ["ZZZZ22", "nope", "<script>x"])
def test_an_unknown_room_gets_a_clear_404(client, code):
    response = client.get(f"/room/{code}/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "No room" in html
    assert "<script>x" not in html
    assert "Back to the lobby" in html


# -- the lobby endpoint ----------------------------------------------------------------


def test_lobby_lists_open_rooms_with_player_counts(client):
    room = rooms.create_room("Ada", max_players=3)
    seats.join(room.code, name="Ada", channel_name="test-ada")
    seats.join(room.code, name="Bob", channel_name="test-bob")
    full = rooms.create_room("Full", max_players=1)
    seats.join(full.code, name="Full", channel_name="test-full")
    data = client.get(reverse("game:lobby")).json()
    assert data["rooms"] == [{
        "code": room.code, "title": "Ada", "players": 2, "max_players": 3,
        "state": "lobby", "url": f"/room/{room.code}/",
    }]
    html = client.get("/").content.decode()
    assert f'data-code="{room.code}"' in html
    assert "2/3 players" in html
    assert f'data-code="{full.code}"' not in html


# -- practice -----------------------------------------------------------------------------


def test_practice_page_has_a_canvas_a_target_and_the_recognizer_url(client):
    html = client.get(reverse("game:practice")).content.decode()
    assert "<canvas data-pad" in html
    assert re.search(r'data-target aria-live="polite">[0-9]</span>', html)
    assert 'data-recognize-url="/api/recognize"' in html
    assert "js/game-practice.js" in html
