"""Deleting everything of one player from the admin, and the game's tables in
the admin (read-only).

Players' data is made by playing through the game's own functions."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from digitsite.game import guesses, rooms, rounds, seats
from digitsite.game.models import Room, RoundProgress, Seat
from recognizer.collection import review
from recognizer.inference import Prediction
from recognizer.models import Drawing, DrawingLabelChange
from tests.tables import rows_containing

DELETE_URL = "admin:game_seat_delete_player"
DRAWING = {"width": 100.0, "height": 100.0, "strokes": [[[10.0, 10.0, 0.0], [90.0, 90.0, 50.0]]]}
INPUT = bytes(range(256)) * 3 + bytes(16)


def play(title, names):
    """A room made by `title` where `names` play one round; returns their seats."""
    from digitsite.game import seats as game_seats

    room = rooms.create_room(title, rounds=1, seconds=20)
    seats = [game_seats.join(room.code, name=name, channel_name=f"c-{name}-{room.code}").seat
             for name in names]
    rounds.start_game(room.code, seats[0].player_id)
    room.refresh_from_db()
    for seat in seats:
        probabilities = [0.05] * 10
        probabilities[room.target] = 0.55
        guesses.record_guess(room.code, seat.player_id, room.game_id, 1, drawing=DRAWING,
                             input_bytes=INPUT,
                             prediction=Prediction(room.target, probabilities, "v-test"))
    Room.objects.filter(pk=room.pk).update(ends_at=timezone.now() - timedelta(seconds=5))
    rounds.advance(room.code)
    return seats


@pytest.fixture
def players(db, django_user_model):
    """Ada played in two rooms (one she made), with Bob; a different "ada" in a
    third. One of Ada's drawings is approved and was relabelled."""
    first = play("Ada", ["Ada", "Bob"])
    second = play("Bob", ["Bob", "Ada"])
    other = play("ada", ["ada"])
    editor = django_user_model.objects.create_user("editor")
    drawing = Drawing.objects.get(player_id=first[0].player_id)
    review.relabel(Drawing.objects.filter(pk=drawing.pk), str((drawing.label + 1) % 10), editor)
    review.set_status(Drawing.objects.filter(pk=drawing.pk), Drawing.Status.APPROVED, editor)
    return {"ada": [first[0], second[1]], "bob": [first[1], second[0]], "other_ada": other}


def staff(django_user_model, name, *permissions):
    user = django_user_model.objects.create_user(name, password="pw-12345-long", is_staff=True)
    for codename in permissions:
        app, code = codename.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app,
                                                         codename=code))
    return user


@pytest.fixture
def eraser(client, django_user_model):
    client.force_login(staff(django_user_model, "erin", "game.delete_seat",
                             "game.delete_roundprogress", "recognizer.delete_drawing",
                             "game.view_seat"))
    return client


def counts_shown(response):
    html = response.content.decode()
    return {key: int(n) for key, n in re.findall(r'data-count="(\w+)">(\d+)', html)}


def data_of(seats, name):
    ids = [seat.player_id for seat in seats]
    return {
        "seats": list(Seat.objects.filter(player_id__in=ids).values()),
        "progress": list(RoundProgress.objects.filter(seat__player_id__in=ids).values()),
        "drawings": list(Drawing.objects.filter(player_name=name).values()),
    }


def test_deleting_by_name_shows_the_counts_then_removes_everything_of_that_player(
        players, eraser):
    bob_before = data_of(players["bob"], "Bob")
    other_before = data_of(players["other_ada"], "ada")
    url = reverse(DELETE_URL)
    assert url in eraser.get(reverse("admin:game_seat_changelist")).content.decode()
    page = eraser.get(url, {"by": "name", "value": " Ada "})
    assert page.status_code == 200
    assert counts_shown(page) == {"seats": 2, "round_progress": 2, "drawings": 2,
                                  "label_changes": 1, "room_titles": 1}
    # Not ticked: nothing happens.
    refused = eraser.post(url, {"by": "name", "value": "Ada"})
    assert refused.status_code == 400 and Seat.objects.filter(name="Ada").count() == 2

    done = eraser.post(url, {"by": "name", "value": "Ada", "confirm": "yes"}, follow=True)
    assert done.redirect_chain[-1][0] == url
    assert "2 seats, 2 round progress, 2 drawings, 1 label changes, 1 room titles" in (
        done.content.decode())
    ada_ids = [seat.player_id for seat in players["ada"]]
    # No table holds her ids any more (the room she hosted has a new host),
    # nor her name (searched in the site's own tables: in Django's, a session
    # or a password hash is random text that may contain "Ada").
    assert rows_containing(*ada_ids) == []
    assert rows_containing("Ada", apps_only={"game", "recognizer", "admin"}) == []
    assert DrawingLabelChange.objects.count() == 0
    assert data_of(players["bob"], "Bob") == bob_before
    assert data_of(players["other_ada"], "ada") == other_before
    first_room = players["bob"][0].room
    first_room.refresh_from_db()
    assert first_room.title == "" and first_room.host_player == players["bob"][0].player_id
    assert counts_shown(eraser.get(url, {"by": "name", "value": "Ada"})) == {}


def test_deleting_by_player_id_removes_that_seat_and_its_drawings_only(players, eraser):
    first, second = players["ada"]
    url = reverse(DELETE_URL)
    page = eraser.get(url, {"by": "id", "value": first.player_id})
    assert counts_shown(page) == {"seats": 1, "round_progress": 1, "drawings": 1,
                                  "label_changes": 1, "room_titles": 1}
    assert first.room.code in page.content.decode()
    eraser.post(url, {"by": "id", "value": first.player_id, "confirm": "yes"})
    assert rows_containing(first.player_id) == []
    assert Seat.objects.filter(name="Ada").get().player_id == second.player_id
    assert Drawing.objects.filter(player_name="Ada").get().player_id == second.player_id


@pytest.mark.parametrize("query", [
    {"by": "name", "value": "x" * 65},  # longer than any name or id
    {"by": "email", "value": "Ada"},  # no such way to find a player
])
def test_bad_queries_are_refused_and_delete_nothing(players, eraser, query):
    url = reverse(DELETE_URL)
    assert eraser.get(url, query).status_code == 400
    assert eraser.post(url, {**query, "confirm": "yes"}).status_code == 400
    assert Seat.objects.count() == 5 and Drawing.objects.count() == 5


def test_only_staff_with_the_delete_permissions_may_delete(players, client, django_user_model):
    url = reverse(DELETE_URL)
    post = {"by": "name", "value": "Ada", "confirm": "yes"}
    # Anonymous and a logged-in player who is not staff: sent to the login.
    for user in (None, django_user_model.objects.create_user("pat", password="pw-12345-x")):
        if user is not None:
            client.force_login(user)
        for response in (client.get(url, {"by": "name", "value": "Ada"}),
                         client.post(url, post)):
            assert response.status_code == 302 and "/admin/login/" in response["Location"]
    # Staff who may delete drawings but not seats: refused.
    client.force_login(staff(django_user_model, "rita", "recognizer.delete_drawing",
                             "recognizer.view_drawing", "game.view_seat"))
    assert client.get(url, {"by": "name", "value": "Ada"}).status_code == 403
    assert client.post(url, post).status_code == 403
    assert Seat.objects.filter(name="Ada").count() == 2
    assert Drawing.objects.filter(player_name="Ada").count() == 2
    listing = client.get(reverse("admin:game_seat_changelist")).content.decode()
    assert "Delete a player" not in listing


def test_staff_reach_rooms_seats_and_progress_read_only(players, client, django_user_model):
    client.force_login(staff(django_user_model, "vic", "game.view_room", "game.view_seat",
                             "game.view_roundprogress"))
    seat = players["ada"][0]
    for name in ("room", "seat", "roundprogress"):
        listing = client.get(reverse(f"admin:game_{name}_changelist"))
        assert listing.status_code == 200
        assert client.get(reverse(f"admin:game_{name}_add")).status_code == 403
    found = client.get(reverse("admin:game_seat_changelist"), {"q": seat.player_id})
    assert seat.room.code in found.content.decode()
    page = client.get(reverse("admin:game_seat_change", args=[seat.pk])).content.decode()
    assert "token_hash" not in page and seat.player_id in page
    assert f"{reverse(DELETE_URL)}?by=id&amp;value={seat.player_id}" in page
    assert client.post(reverse("admin:game_seat_change", args=[seat.pk]),
                       {"name": "Eve"}).status_code == 403
    room_page = client.get(reverse("admin:game_room_change", args=[seat.room.pk]))
    assert "Bob" in room_page.content.decode()


def test_deleting_a_player_removes_their_session_hash_address_and_removals_from_rooms(
        db, eraser, django_user_model):
    """What rooms keep about clients goes too: the session hash and address of
    the room Ada created (her session hash is her seats'), and the token hash,
    session hash and user id a host's removal of her left in a room's kicked
    list. Hostile case: she was removed from a room where her seat is then
    kept as gone, and from one she never had a kept seat in (purged)."""
    ada_user = django_user_model.objects.create_user("Ada")
    ada_session = seats.hash_session("ada-session-key")
    bob_session = seats.hash_session("bob-session-key")
    made = rooms.create_room("Ada", creator_ip="203.0.113.77", creator_session=ada_session)
    seats.join(made.code, user=ada_user, channel_name="c-ada-1", session_key="ada-session-key")
    seats.join(made.code, name="Bob", channel_name="c-bob-1", session_key="bob-session-key")
    bobs = rooms.create_room("Bob", creator_ip="198.51.100.5", creator_session=bob_session)
    bob = seats.join(bobs.code, name="Bob", channel_name="c-bob-2",
                     session_key="bob-session-key").seat
    ada = seats.join(bobs.code, user=ada_user, channel_name="c-ada-2",
                     session_key="ada-session-key").seat
    carl = seats.join(bobs.code, name="Carl", channel_name="c-carl", session_key="carl-key").seat
    seats.kick(bobs.code, bob.player_id, ada.player_id)
    seats.kick(bobs.code, bob.player_id, carl.player_id)
    # A third room removed her seat's token long ago, its seat since purged.
    third = rooms.create_room("Dora")
    Room.objects.filter(pk=third.pk).update(kicked=[
        {"token": ada.token_hash, "session": "", "user": None}])
    ada_tokens = list(Seat.objects.filter(user=ada_user).values_list("token_hash", flat=True))
    assert rows_containing(ada_session, "203.0.113.77", *ada_tokens)  # stored before

    eraser.post(reverse(DELETE_URL), {"by": "name", "value": "Ada", "confirm": "yes"})
    assert rows_containing(ada_session, "203.0.113.77", *ada_tokens) == []
    assert not [room for room in Room.objects.all()
                if any(entry.get("user") == ada_user.pk for entry in room.kicked)]
    # Everyone else's stays: Bob's room, and Carl's removal.
    bobs.refresh_from_db()
    assert (bobs.creator_session, bobs.creator_ip) == (bob_session, "198.51.100.5")
    assert bobs.kicked == [{"token": carl.token_hash, "session": seats.hash_session("carl-key"),
                            "user": None}]
    assert rows_containing(bob_session) != []


def test_the_admin_shows_no_session_hash_address_nor_removals(db, client, django_user_model):
    client.force_login(staff(django_user_model, "vic", "game.view_room", "game.view_seat"))
    session = seats.hash_session("ada-session-key")
    room = rooms.create_room("Ada", creator_ip="203.0.113.77", creator_session=session)
    host = seats.join(room.code, name="Ada", channel_name="c-1", session_key="ada-session-key")
    other = seats.join(room.code, name="Bob", channel_name="c-2", session_key="bob-key").seat
    seats.kick(room.code, host.seat.player_id, other.player_id)
    pages = [client.get(reverse("admin:game_room_change", args=[room.pk])),
             client.get(reverse("admin:game_seat_change", args=[host.seat.pk]))]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        for secret in (session, seats.hash_session("bob-key"), other.token_hash,
                       "203.0.113.77", "session_hash", "creator_session", "creator_ip",
                       "kicked"):
            assert secret not in html, secret
