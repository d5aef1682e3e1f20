"""Seats that survive: a player gets their seat back (same seat, points kept,
their drawing of the round under way) from the same browser, by the seat's
token or the browser session, after closing the tab, a reload, a second tab
or a dropped connection; another browser never gets it by name.

Logic tests call digitsite.game.seats directly; the consumer tests go through
the real ASGI application with a session cookie, as the room page's socket.
"""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore

from digitsite.game import guesses, protocol, rooms, seats
from digitsite.game import rounds as game_rounds
from digitsite.game.models import Room, Seat
from digitsite.game.rules import GameError
from tests.test_game_consumers import connect, join, new_room, one
from tests.test_game_logic import DRAWING, INPUT, prediction


def take_seat(code, name, session, channel=None, **fields):
    return seats.join(code, name=name, session_key=session,
                      channel_name=channel or f"chan-{name}-{session}", **fields)


def refused(code, call, *args, **kwargs):
    with pytest.raises(GameError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value


@pytest.fixture
def room(db, manual_clock):
    return rooms.create_room("Host", rounds=2, seconds=20, max_players=3,
                             target_confidence=0.8, results_seconds=3)


def score_a_round(room, player_id):
    """Start the game and let the player reach the target: points on the seat."""
    game_rounds.start_game(room.code, player_id)
    r = Room.objects.get(pk=room.pk)
    guesses.record_guess(room.code, player_id, r.game_id, 1, drawing=DRAWING,
                         input_bytes=INPUT, prediction=prediction(r.target, 0.95), pen_up=True)
    score = Seat.objects.get(player_id=player_id).score
    assert score > 0
    return score


# -- logic ----------------------------------------------------------------------


def test_the_same_session_gets_its_seat_back_without_a_token(room):
    cy = take_seat(room.code, "Cy", "session-cy", channel="chan-cy-1")
    take_seat(room.code, "Dee", "session-dee")
    score = score_a_round(room, cy.seat.player_id)
    # The tab closes; opened again (no token kept), the browser's session finds the seat.
    seats.disconnect(cy.seat.player_id, "chan-cy-1")
    back = take_seat(room.code, "Cy", "session-cy", channel="chan-cy-2")
    assert back.rejoined and back.seat.pk == cy.seat.pk
    assert back.seat.score == score and back.seat.name == "Cy"
    assert back.replaced_channel == ""
    assert back.token != cy.token
    # One Cy on the leaderboard, not two.
    assert list(Seat.objects.filter(room=room).values_list("name", flat=True)) == ["Cy", "Dee"]


def test_the_same_token_gets_the_seat_back_from_any_session(room):
    cy = take_seat(room.code, "Cy", "session-cy", channel="chan-cy-1")
    seats.disconnect(cy.seat.player_id, "chan-cy-1")
    # The session cookie is gone (cleared, expired), the page's stored token is not.
    back = take_seat(room.code, "Cy", "a-new-session", channel="chan-cy-2", token=cy.token)
    assert back.rejoined and back.seat.pk == cy.seat.pk
    # The seat follows the browser's new session from now on.
    again = take_seat(room.code, "Cy", "a-new-session", channel="chan-cy-3")
    assert again.rejoined and again.seat.pk == cy.seat.pk


def test_a_second_tab_takes_the_seat_and_the_first_is_told(room):
    cy = take_seat(room.code, "Cy", "session-cy", channel="chan-tab-1")
    second = take_seat(room.code, "Cy", "session-cy", channel="chan-tab-2")
    assert second.rejoined and second.seat.pk == cy.seat.pk
    assert second.replaced_channel == "chan-tab-1" and second.replaced_same_browser
    # By the token from another browser session: replaced, but not by a tab of this one.
    third = take_seat(room.code, "Cy", "other-session", channel="chan-tab-3",
                      token=second.token)
    assert third.replaced_channel == "chan-tab-2" and not third.replaced_same_browser
    # The first tab's late close changes nothing.
    assert seats.disconnect(cy.seat.player_id, "chan-tab-1") == []
    assert Seat.objects.get(pk=cy.seat.pk).connected


def test_another_session_with_the_same_name_does_not_get_the_seat(room, settings, manual_clock):
    settings.GAME_REJOIN_SECONDS = 60
    cy = take_seat(room.code, "Cy", "session-cy", channel="chan-cy-1")
    score = score_a_round(room, cy.seat.player_id)
    seats.disconnect(cy.seat.player_id, "chan-cy-1")
    # Another browser, or no session at all, typing "Cy": the seat is not theirs.
    refused("name_taken", take_seat, room.code, "Cy", "session-impostor")
    refused("name_taken", take_seat, room.code, "Cy", None)
    refused("name_taken", take_seat, room.code, "CY", "session-impostor")
    assert Seat.objects.get(pk=cy.seat.pk).connected is False
    # Once the seat is gone the name is free, for a new seat with no points.
    manual_clock.advance(61)
    seats.expire_seats(room.code)
    other = take_seat(room.code, "Cy", "session-impostor")
    assert not other.rejoined and other.seat.pk != cy.seat.pk and other.seat.score == 0
    assert Seat.objects.get(pk=cy.seat.pk).score == score
    # The seat that was given up is not found by its session either.
    late = take_seat(room.code, "Cy again", "session-cy")
    assert not late.rejoined and late.seat.pk not in (cy.seat.pk, other.seat.pk)


def test_the_solo_room_opened_in_a_second_tab(db, manual_clock):
    solo = rooms.create_room("Sol", solo=True)
    first = take_seat(solo.code, "Sol", "session-sol", channel="chan-sol-1")
    assert seats.session_holds_seat(solo, "session-sol")
    second = take_seat(solo.code, "Sol", "session-sol", channel="chan-sol-2")
    assert second.rejoined and second.seat.pk == first.seat.pk
    assert second.replaced_channel == "chan-sol-1" and second.replaced_same_browser
    # Another browser finds the one seat taken.
    refused("room_full", take_seat, solo.code, "Someone", "session-other")


def test_a_returning_player_gets_the_drawing_of_the_round_under_way(room):
    cy = take_seat(room.code, "Cy", "session-cy", channel="chan-cy-1")
    take_seat(room.code, "Dee", "session-dee")
    game_rounds.start_game(room.code, cy.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    guesses.record_guess(room.code, cy.seat.player_id, r.game_id, 1, drawing=DRAWING,
                         input_bytes=INPUT, prediction=prediction(r.target, 0.3))
    seats.disconnect(cy.seat.player_id, "chan-cy-1")
    back = take_seat(room.code, "Cy", "session-cy", channel="chan-cy-2")
    assert back.drawing == DRAWING
    assert back.events[0]["state"] == "playing"
    me = next(p for p in back.events[0]["players"] if p["id"] == cy.seat.player_id)
    assert me["finished"] is False and me["connected"] is True
    # Once the player's part is over there is nothing to put back.
    guesses.finish_player(room.code, cy.seat.player_id, r.game_id, 1, "done")
    assert take_seat(room.code, "Cy", "session-cy", channel="chan-cy-3").drawing is None
    # Nor for one who drew nothing.
    assert take_seat(room.code, "Dee", "session-dee", channel="chan-dee-2").drawing is None


# -- over the socket -------------------------------------------------------------


@sync_to_async
def browser_session(name):
    """A saved Django session, as the room page's cookie would carry it."""
    store = SessionStore()
    store["display_name"] = name
    store.save()
    return f"sessionid={store.session_key}"


@pytest.mark.django_db(transaction=True)
async def test_a_second_tab_closes_the_first_with_its_own_code(active_model, manual_clock):
    room = await new_room(solo=True)
    cookie = await browser_session("Sol")
    first = await join(room.code, "Sol", cookie=cookie)
    await first.send("start")
    await first.expect("round_start")
    await first.send("draw", round=1, drawing=one())
    await first.expect("guess")
    # The room opened in a second tab of the same browser: no token, the session.
    second = await join(room.code, "Sol", cookie=cookie)
    assert second.welcome["rejoined"] is True and second.you["id"] == first.you["id"]
    assert second.welcome["drawing"] == one()
    told = await first.error("replaced")
    assert "another tab" in told["message"]
    assert await first.closed() == protocol.CLOSE_OTHER_TAB == 4011
    await first.close()
    # The round goes on in the new tab.
    await second.send("draw", round=1, drawing=one(3))
    await second.expect("guess")
    await second.send("done", round=1)
    finished = await second.expect("player_finished", player=second.you["id"])
    assert finished["reason"] == "done"
    await second.expect("round_end", round=1)
    await second.close()


@pytest.mark.django_db(transaction=True)
async def test_another_browser_typing_the_name_gets_no_seat(active_model, manual_clock):
    room = await new_room()
    cy = await join(room.code, "Cy", cookie=await browser_session("Cy"))
    await cy.close()
    impostor = await connect(room.code, cookie=await browser_session("Cy"))
    await impostor.send("join", protocol=1, name="Cy")
    await impostor.error("name_taken")
    await impostor.close()
