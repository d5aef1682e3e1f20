"""Seeing the others draw, live, in an ordinary room: every player's scored
drawings go to every other player as `live_drawing`, with the bounds of a
class's projector (at most 3 a second per player, the newest waiting for its
turn, made small); never to the drawing player, never in a solo room, and
never to a class's students.

First the rules without a server, then over WebSockets through the real ASGI
application, in virtual time (the `manual_clock` fixture): the throttle lets
a player's next drawing go only when the test moves the clock on.
"""

import json
import math

import pytest
from asgiref.sync import sync_to_async

from digitsite.game import classroom, protocol, rules
from digitsite.game.live_feed import LiveFeed
from digitsite.game.rooms import create_room
from tests.test_game_consumers import join, one, seven

# The largest drawing a client may send: 5,000 points, in 2,500 strokes.
HUGE = {"width": 1000.0, "height": 1000.0,
        "strokes": [[[x * 3.7, (x * 7.3) % 1000, x] for x in range(k, k + 2)]
                    for k in range(0, 5000, 2)]}


# -- the rules ------------------------------------------------------------------------


def test_a_live_drawing_is_bounded_and_so_is_what_a_player_receives():
    """However large the drawing, one `live_drawing` is at most 2.3 kB; a
    player of a full room (8) receives the 7 others' at most 3 a second:
    48.3 kB a second."""
    message = protocol.message(
        "live_drawing", round=20, player="f" * 12, drawing=classroom.simplify_drawing(HUGE),
        digit=9, probability=0.123456789, target_probability=0.987654321, reached=False)
    protocol.check(message)
    assert len(protocol.encode(message).encode()) <= classroom.LIVE_MAX_BYTES == 2_300
    assert rules.MAX_PLAYERS == 8
    assert classroom.room_live_bandwidth(rules.MAX_PLAYERS) == 7 * 3 * 2_300 == 48_300
    assert classroom.room_live_bandwidth(1) == 0


@pytest.mark.parametrize("settings, teacher, kind", [
    ({"classroom": False, "solo": False}, False, "live_drawing"),
    ({"classroom": False, "solo": True}, False, None),
    ({"classroom": True, "solo": False}, False, "class_drawing"),
    ({"classroom": True, "solo": False}, True, None),
])
def test_where_a_players_live_drawings_go(settings, teacher, kind):
    feed = LiveFeed(session=None)
    feed.joined({"settings": settings}, teacher=teacher)
    assert feed.kind == kind


def test_a_student_is_never_sent_a_live_drawing():
    live = {"type": "live_drawing", "player": "b"}
    assert classroom.visible_to(live, "a", teacher=False) is None


# -- over the protocol -------------------------------------------------------------------


pytestmark_db = pytest.mark.django_db(transaction=True)
new_room = sync_to_async(create_room)


async def everything_read(client):
    """Every message sent to `client` so far is in its `seen` (a ping's pong comes after)."""
    await client.send("ping")
    await client.expect("pong")
    return client.seen


@pytestmark_db
async def test_the_others_see_a_player_draw_live_throttled(active_model, manual_clock):
    room = await new_room("Ada", rounds=1, seconds=20, results_seconds=3, max_players=3,
                          target_confidence=1.0)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    cy = await join(room.code, "Cy")
    await ada.send("start")
    for client in (ada, bob, cy):
        await client.expect("round_start", round=1)

    # Ada's first drawing reaches Bob and Cy at once, made small...
    await ada.send("draw", round=1, seq=1, drawing=seven(0))
    first_guess = await ada.expect("guess", seq=1)
    for other in (bob, cy):
        live = await other.expect("live_drawing", player=ada.you["id"])
        protocol.check(live)
        assert live["drawing"] == classroom.simplify_drawing(seven(0))
        assert (live["round"], live["digit"]) == (1, first_guess["digit"])
        assert live["target_probability"] == first_guess["target_probability"]
    # ...the next ones wait for the throttle, and only the newest then goes.
    for seq, offset in ((2, 5.0), (3, 10.0), (4, 15.0)):
        await ada.send("draw", round=1, seq=seq, drawing=seven(offset))
        await ada.expect("guess", seq=seq)
    # Each player has a throttle of their own: Bob's first goes at once, to
    # Ada and Cy.
    await bob.send("draw", round=1, seq=1, drawing=one())
    await bob.expect("guess", seq=1)
    for other in (ada, cy):
        bobs = await other.expect("live_drawing", player=bob.you["id"])
        assert bobs["drawing"] == classroom.simplify_drawing(one())
    manual_clock.advance(classroom.LIVE_INTERVAL)
    newest = await bob.expect("live_drawing", player=ada.you["id"])
    assert newest["drawing"] == classroom.simplify_drawing(seven(15.0))
    await cy.expect("live_drawing", player=ada.you["id"])

    # Nobody is sent their own; of Ada's four drawings, two went out.
    for me in (ada, bob, cy):
        seen = await everything_read(me)
        lives = [m for m in seen if m["type"] == "live_drawing"]
        assert me.you["id"] not in {m["player"] for m in lives}
    lives = [m for m in cy.seen if m["type"] == "live_drawing"]
    assert [m["player"] for m in lives].count(ada.you["id"]) == 2
    for client in (ada, bob, cy):
        await client.close()


@pytestmark_db
async def test_a_long_drawing_goes_out_small(active_model, manual_clock):
    room = await new_room("Ada", rounds=1, seconds=20, results_seconds=3, max_players=2,
                          target_confidence=1.0)
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await ada.send("start")
    for client in (ada, bob):
        await client.expect("round_start", round=1)
    # 1,500 points: a circle drawn three times over (well within the ink
    # limit), thinned to at most 150 on the way out.
    circle = {"width": 1000.0, "height": 1000.0,
              "strokes": [[[round(500 + 300 * math.cos(i / 500 * 2 * math.pi), 1),
                            round(500 + 300 * math.sin(i / 500 * 2 * math.pi), 1), i]
                           for i in range(1500)]]}
    await ada.send("draw", round=1, seq=1, drawing=circle)
    await ada.expect("guess", seq=1)
    live = await bob.expect("live_drawing")
    assert sum(len(s) for s in live["drawing"]["strokes"]) <= classroom.LIVE_MAX_POINTS
    assert len(json.dumps(live, separators=(",", ":")).encode()) <= classroom.LIVE_MAX_BYTES
    await ada.close()
    await bob.close()


@pytestmark_db
async def test_a_solo_player_sends_no_live_drawing(active_model, manual_clock):
    room = await new_room("Sol", rounds=1, seconds=20, results_seconds=3, solo=True,
                          target_confidence=1.0)
    sol = await join(room.code, "Sol")
    await sol.send("start")
    await sol.expect("round_start", round=1)
    await sol.send("draw", round=1, seq=1, drawing=seven())
    await sol.expect("guess", seq=1)
    manual_clock.advance(classroom.LIVE_INTERVAL)
    assert "live_drawing" not in {m["type"] for m in await everything_read(sol)}
    await sol.close()
