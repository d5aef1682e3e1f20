"""Rooms on the pages, against abuse: a limit on rooms per visitor with a clear
429, private rooms, the shortest round, reserved names, and rooms that are
full, closed or closed to a removed player saying so instead of offering a join."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from digitsite.game import rooms, seats
from digitsite.game.models import Room
from tests.test_game_pages import named_client

pytestmark = pytest.mark.django_db

ROOM = {"rounds": "2", "seconds": "20", "max_players": "4"}


def test_a_visitor_who_creates_rooms_in_a_burst_gets_a_429_with_the_wait(client, settings):
    """Hostile input: a loop of room creations from one browser (1,000 seen in 20 s)."""
    settings.GAME_ROOMS_PER_SESSION = 3
    named_client(client)
    for _ in range(3):
        assert client.post(reverse("game:create"), ROOM).status_code == 302
    response = client.post(reverse("game:create"), ROOM)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    html = response.content.decode()
    assert "too many rooms" in html and "try again in" in html
    # Solo rooms are rooms too; the page says why none was made.
    response = client.post(reverse("game:solo"))
    assert response.status_code == 429 and "data-solo-error" in response.content.decode()
    assert Room.objects.count() == 3


def test_dropping_the_cookie_does_not_escape_the_address_limit(settings):
    """Hostile input: a fresh client (no cookie) for every room, from one address."""
    settings.GAME_ROOMS_PER_SESSION = 5
    settings.GAME_ROOMS_PER_IP = 4
    statuses = []
    for n in range(6):
        fresh = Client(REMOTE_ADDR="192.0.2.50")
        statuses.append(fresh.post(reverse("game:create"), {**ROOM, "name": f"P{n}"})
                        .status_code)
    assert statuses == [302] * 4 + [429] * 2


def test_a_private_room_is_created_from_the_form_and_left_out_of_the_lobby(client):
    named_client(client)
    response = client.post(reverse("game:create"), {**ROOM, "private": "on"})
    room = Room.objects.get()
    assert room.private is True and response.status_code == 302
    assert room.code not in client.get(reverse("game:lobby")).content.decode()
    page = client.get(response["Location"]).content.decode()
    assert "data-private-badge" in page and "data-room-settings" in page


@pytest.mark.parametrize("seconds", ["1", "9"])
def test_rounds_shorter_than_ten_seconds_are_refused_on_the_form(client, seconds):
    """Hostile input: the 1-second round once accepted."""
    named_client(client)
    response = client.post(reverse("game:create"), {**ROOM, "seconds": seconds})
    assert response.status_code == 400
    assert "greater than or equal to 10" in response.content.decode()
    assert not Room.objects.exists()


@pytest.mark.parametrize("name", ["admin", "ＡＤＭＩＮ", "Mod\u200berator", "\u200b\u200b",
                                  "Ada\u202e"])
def test_reserved_and_invisible_names_are_refused_on_the_name_form(client, name):
    response = client.post(reverse("game:set_name"), {"name": name})
    assert response.status_code == 400
    assert "display_name" not in client.session
    assert "errorlist" in response.content.decode()


def test_a_full_room_says_so_instead_of_offering_to_join(client):
    room = rooms.create_room("Ada", max_players=2)
    seats.join(room.code, name="Ada", channel_name="a")
    seats.join(room.code, name="Bob", channel_name="b")
    html = client.get(reverse("game:room", args=[room.code])).content.decode()
    assert "The room is full" in html and "data-room-full" in html
    assert "Join the room" not in html and "js/game.js" not in html
    named_client(client, "Cy")
    html = client.get(reverse("game:room", args=[room.code])).content.decode()
    assert "The room is full" in html and "js/game.js" not in html


def test_a_seated_player_reloading_a_full_room_plays_on(client):
    room = rooms.create_room("Ada", max_players=1)
    named_client(client, "Ada")
    seats.join(room.code, name="Ada", channel_name="a", session_key=client.session.session_key)
    html = client.get(reverse("game:room", args=[room.code])).content.decode()
    assert "The room is full" not in html and "js/game.js" in html


def test_a_closed_room_and_a_removed_player_get_a_page_that_says_so(client, settings):
    settings.GAME_EMPTY_ROOM_MINUTES = 10
    old = rooms.create_room("Old")
    Room.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(minutes=30))
    response = client.get(reverse("game:room", args=[old.code]))
    assert response.status_code == 410 and "is closed" in response.content.decode()

    room = rooms.create_room("Ada")
    host = seats.join(room.code, name="Ada", channel_name="a")
    named_client(client, "Bob")
    bob = seats.join(room.code, name="Bob", channel_name="b",
                     session_key=client.session.session_key)
    seats.kick(room.code, host.seat.player_id, bob.seat.player_id)
    response = client.get(reverse("game:room", args=[room.code]))
    assert response.status_code == 403
    assert "removed you" in response.content.decode()
