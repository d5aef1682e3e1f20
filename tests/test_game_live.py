"""Seeing the others draw, live, in an ordinary room: every player's scored
drawings go to the room together, as `live_drawings` (protocol 3), or to a
page of protocol 1 or 2 as one `live_drawing` per other player, with the
bounds of a class's projector (at most 3 a second per player, the newest
waiting for its turn, made small); never in a solo room, and never to a
class's students.

First the rules and the room's board without a server, then over
WebSockets through the real ASGI application, in virtual time (the
`manual_clock` fixture): the board sends the next drawings only when the test
moves the clock on.
"""

import asyncio
import json
import math
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async

from digitsite.game import classroom, live_feed, protocol, rules
from digitsite.game.live_feed import LiveFeed, room_board
from digitsite.game.rooms import create_room
from tests.test_game_consumers import join, one, seven

# The largest drawing a client may send: 5,000 points, in 2,500 strokes.
HUGE = {"width": 1000.0, "height": 1000.0,
        "strokes": [[[x * 3.7, (x * 7.3) % 1000, x] for x in range(k, k + 2)]
                    for k in range(0, 5000, 2)]}


# -- the rules ------------------------------------------------------------------------


def test_a_live_drawing_is_bounded_and_so_is_what_a_player_receives():
    """However large the drawing, one `live_drawing` is at most 2.3 kB, and a
    `live_drawings` of a full room (8) at most 8 of them; a player receives it
    at most 3 times a second per server process the room is on: 55.2 kB a
    second from one."""
    fields = dict(player="f" * 12, drawing=classroom.simplify_drawing(HUGE), digit=9,
                  probability=0.123456789, target_probability=0.987654321, reached=False)
    message = protocol.message("live_drawing", round=20, **fields)
    protocol.check(message)
    assert len(protocol.encode(message).encode()) <= classroom.LIVE_MAX_BYTES == 2_300
    assert rules.MAX_PLAYERS == 8
    together = protocol.message("live_drawings", round=20, drawings=[
        protocol.record("live_entry", **fields) for _ in range(rules.MAX_PLAYERS)])
    protocol.check(together)
    assert len(protocol.encode(together).encode()) <= 8 * classroom.LIVE_MAX_BYTES
    assert classroom.room_live_bandwidth(rules.MAX_PLAYERS) == 3 * 8 * 2_300 == 55_200
    assert classroom.room_live_bandwidth(rules.MAX_PLAYERS, processes=2) == 110_400
    assert classroom.room_live_bandwidth(1) == 0


# -- the room's board ---------------------------------------------------------------


class BoardPlayer:
    """What the board reads of a PlayerSession: its player, whether it is
    closed, the round its connection is in, and a transport recording the
    room's broadcasts."""

    def __init__(self, player_id, sent, round_number=1):
        self.player_id = player_id
        self.closed = False
        self.view = SimpleNamespace(room={"game": "g1", "round": round_number})
        self.transport = SimpleNamespace(broadcast=self._broadcast)
        self._sent = sent

    async def _broadcast(self, message):
        protocol.check(message)
        self._sent.append(message)


def entry(player, x=0.0):
    return protocol.record("live_entry", player=player, drawing=seven(x), digit=7,
                           probability=0.5, target_probability=0.5, reached=False)


async def settled():
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_board_sends_the_rooms_newest_drawings_together_at_most_3_a_second(
        manual_clock):
    """An idle board sends a drawing at once; what comes in the next third of
    a second waits, each player's newest replacing the one before it, and
    goes as one message. A drawing of a round its player has left, or of a
    connection that closed, does not go. When the last connection that drew
    closes, the board is gone from the process."""
    sent = []
    ada, bob, cy = (BoardPlayer(name, sent) for name in ("ada", "bob", "cy"))
    board = room_board("LIVE01")
    board.put(ada, ("g1", 1), entry("ada", 0.0))
    await settled()
    assert [[e["player"] for e in m["drawings"]] for m in sent] == [["ada"]]
    assert sent[0]["drawings"][0]["drawing"] == classroom.simplify_drawing(seven(0.0))

    # Within the interval: Ada twice, Bob once, Cy once, then Cy's connection
    # moves on to round 2 (its drawing of round 1 is over); and a drawing of
    # round 1 of the game before, which the board never sends in this one.
    board.put(ada, ("g1", 1), entry("ada", 5.0))
    board.put(bob, ("g1", 1), entry("bob"))
    board.put(ada, ("g1", 1), entry("ada", 15.0))
    board.put(cy, ("g1", 1), entry("cy"))
    cy.view.room["round"] = 2
    dan = BoardPlayer("dan", sent)
    board.put(dan, ("g0", 1), entry("dan"))
    await settled()
    assert len(sent) == 1
    manual_clock.advance(classroom.LIVE_INTERVAL)
    await settled()
    assert len(sent) == 2
    assert sent[1]["round"] == 1
    assert {e["player"]: e["drawing"] for e in sent[1]["drawings"]} == {
        "ada": classroom.simplify_drawing(seven(15.0)),
        "bob": classroom.simplify_drawing(seven(0.0))}

    # A send that fails is logged, and the board goes on with the next drawings.
    failures = []

    async def failing(message):
        failures.append(message)
        raise ConnectionError("the layer is down")

    ada.transport.broadcast = failing
    board.put(ada, ("g1", 1), entry("ada", 20.0))
    manual_clock.advance(classroom.LIVE_INTERVAL)
    await settled()
    assert len(failures) == 1 and len(sent) == 2
    ada.transport.broadcast = bob.transport.broadcast
    board.put(ada, ("g1", 1), entry("ada", 25.0))
    manual_clock.advance(classroom.LIVE_INTERVAL)
    await settled()
    assert len(sent) == 3
    assert sent[2]["drawings"][0]["drawing"] == classroom.simplify_drawing(seven(25.0))

    # A closed connection's drawing waiting goes no more, and one put after
    # it left (a write that outlived its socket) is not taken.
    board.put(bob, ("g1", 1), entry("bob", 5.0))
    bob.closed = True
    board.leave(bob)
    board.put(bob, ("g1", 1), entry("bob", 10.0))
    assert bob not in board.members and "bob" not in board.pending
    manual_clock.advance(classroom.LIVE_INTERVAL)
    await settled()
    assert len(sent) == 3
    # When the last connection that drew leaves, the board is gone, its task
    # with it, and it holds no session.
    for player in (ada, cy, dan):
        board.leave(player)
    assert "LIVE01" not in live_feed._boards_of_this_loop()
    await settled()
    assert board.task is None or board.task.done()
    assert not board.members and not board.pending


async def test_while_the_layer_is_away_the_boards_losses_are_logged_as_one_outage(
        manual_clock, caplog):
    """The channel layer away for two minutes of the clock, a drawing put on
    the board every half second: 240 sends fail. The first is logged with
    its traceback, the rest in a line a minute, and the first send that
    goes again says how many were lost. Tried: a traceback each, 240."""
    sent, failures = [], []
    ada = BoardPlayer("ada", sent)

    async def failing(message):
        failures.append(message)
        raise ConnectionError("the layer is down")

    working, ada.transport.broadcast = ada.transport.broadcast, failing
    board = room_board("LIVE02")
    for step in range(240):
        board.put(ada, ("g1", 1), entry("ada", float(step % 50)))
        await settled()
        assert len(failures) == step + 1
        manual_clock.advance(0.5)  # past the board's pace (a third of a second)
    ada.transport.broadcast = working
    board.put(ada, ("g1", 1), entry("ada", 1.0))
    await settled()
    assert len(sent) == 1
    logged = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records
              if r.name == live_feed.logger.name]
    assert logged[0][0] == "WARNING" and logged[0][2]
    assert logged[0][1].startswith("live drawings are failing (first: room LIVE02)")
    # The minute's line at the 121st failure; the 240th came half a second
    # before the second minute's.
    assert logged[1:] == [
        ("WARNING", "live drawings still failing (latest: room LIVE02): 120 more in the "
                    "last 60 s, 121 in 60 s", False),
        ("WARNING", "live drawings succeed again, after 240 failures in 120 s", False)]
    board.leave(ada)


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
    together = {"type": "live_drawings", "round": 1, "drawings": [{"player": "b"}]}
    assert classroom.visible_to(together, "a", teacher=False) is None


async def test_a_send_under_way_when_the_last_connection_leaves_still_goes(manual_clock):
    """The drawer closes while the board is sending: the room's others still
    get the message (it may hold the drawing that reached the target), and
    the board ends without waiting for its next turn."""
    sent, release = [], asyncio.Event()
    ada = BoardPlayer("ada", sent)

    async def slow_broadcast(message):
        await release.wait()
        sent.append(message)

    ada.transport.broadcast = slow_broadcast
    board = room_board("LIVE03")
    board.put(ada, ("g1", 1), entry("ada"))
    await settled()
    assert board.sending
    ada.closed = True
    board.leave(ada)
    assert "LIVE03" not in live_feed._boards_of_this_loop()
    release.set()
    await settled()
    assert [m["drawings"][0]["player"] for m in sent] == ["ada"]
    assert board.task.done() and not board.task.cancelled()


async def test_a_replaced_connection_puts_nothing_on_the_board():
    """A write of the older connection of a player who opened the room again
    elsewhere lands after the newer one drew: it must not take the newer
    connection's place on the board."""
    sent = []
    newer, older = BoardPlayer("ada", sent), BoardPlayer("ada", sent)
    older.code = newer.code = "LIVE02"
    older.replaced, newer.replaced = True, False
    prediction = SimpleNamespace(digit=7, probabilities=[0.05] * 7 + [0.5] + [0.05] * 2)
    for session, offset in ((newer, 0.0), (older, 30.0)):
        feed = LiveFeed(session)
        feed.joined({"settings": {"classroom": False, "solo": False}}, teacher=False)
        await feed.scored(1, seven(offset), prediction, 0.5, reached=False, kept=True,
                          game="g1")
    await settled()
    assert [m["drawings"][0]["drawing"] for m in sent] == [
        classroom.simplify_drawing(seven(0.0))]
    room_board("LIVE02").leave(newer)


# -- over the protocol -------------------------------------------------------------------


pytestmark_db = pytest.mark.django_db(transaction=True)
new_room = sync_to_async(create_room)


async def everything_read(client):
    """Every message sent to `client` so far is in its `seen` (a ping's pong comes after)."""
    await client.send("ping")
    await client.expect("pong")
    return client.seen


async def three_playing(protocols):
    """Ada, Bob and Cy, joined with these protocols, in a round of a room of 3."""
    room = await new_room("Ada", rounds=1, seconds=20, results_seconds=3, max_players=3,
                          target_confidence=1.0)
    clients = [await join(room.code, name, protocol=version)
               for name, version in zip(("Ada", "Bob", "Cy"), protocols, strict=True)]
    await clients[0].send("start")
    for client in clients:
        await client.expect("round_start", round=1)
    return clients


async def ada_draws_on_then_bob_draws(ada, bob):
    """Within the third of a second after Ada's first drawing went: her three
    next drawings, and Bob's first."""
    for seq, offset in ((2, 5.0), (3, 10.0), (4, 15.0)):
        await ada.send("draw", round=1, seq=seq, drawing=seven(offset))
        await ada.expect("guess", seq=seq)
    await bob.send("draw", round=1, seq=1, drawing=one())
    await bob.expect("guess", seq=1)


@pytestmark_db
async def test_the_others_see_the_rooms_drawings_live_together(active_model, manual_clock):
    """Protocol 3: one `live_drawings` per update, holding each player's newest."""
    ada, bob, cy = await three_playing((3, 3, 3))

    # Ada's first drawing reaches Bob and Cy at once, made small (Ada is not
    # sent a message holding only her own)...
    await ada.send("draw", round=1, seq=1, drawing=seven(0))
    first_guess = await ada.expect("guess", seq=1)
    for other in (bob, cy):
        live = await other.expect("live_drawings")
        protocol.check(live)
        (drawing,) = live["drawings"]
        assert drawing["player"] == ada.you["id"]
        assert drawing["drawing"] == classroom.simplify_drawing(seven(0))
        assert (live["round"], drawing["digit"]) == (1, first_guess["digit"])
        assert drawing["target_probability"] == first_guess["target_probability"]
    # ...what follows within a third of a second waits.
    await ada_draws_on_then_bob_draws(ada, bob)
    assert [m["type"] for m in await everything_read(cy)].count("live_drawings") == 1
    # Then one message holds Ada's newest and Bob's, for everyone.
    manual_clock.advance(classroom.LIVE_INTERVAL)
    for client in (ada, bob, cy):
        together = await client.expect("live_drawings")
        assert {d["player"]: d["drawing"] for d in together["drawings"]} == {
            ada.you["id"]: classroom.simplify_drawing(seven(15.0)),
            bob.you["id"]: classroom.simplify_drawing(one())}
    assert "live_drawing" not in {m["type"] for m in await everything_read(cy)}
    assert [m["type"] for m in cy.seen].count("live_drawings") == 2
    for client in (ada, bob, cy):
        await client.close()


@pytestmark_db
async def test_older_pages_get_the_others_drawings_one_by_one(active_model, manual_clock):
    """Protocol 1 and 2: one `live_drawing` per other player, never their own."""
    ada, bob, cy = await three_playing((3, 2, 1))

    # Ada's first drawing reaches Bob and Cy at once, made small...
    await ada.send("draw", round=1, seq=1, drawing=seven(0))
    first_guess = await ada.expect("guess", seq=1)
    for other in (bob, cy):
        live = await other.expect("live_drawing", player=ada.you["id"])
        protocol.check(live)
        assert live["drawing"] == classroom.simplify_drawing(seven(0))
        assert (live["round"], live["digit"]) == (1, first_guess["digit"])
        assert live["target_probability"] == first_guess["target_probability"]
    # ...the next ones wait for the room's next update, Bob's first too;
    # then Ada's newest and Bob's go.
    await ada_draws_on_then_bob_draws(ada, bob)
    manual_clock.advance(classroom.LIVE_INTERVAL)
    newest = await bob.expect("live_drawing", player=ada.you["id"])
    assert newest["drawing"] == classroom.simplify_drawing(seven(15.0))
    await cy.expect("live_drawing", player=ada.you["id"])
    bobs = await cy.expect("live_drawing", player=bob.you["id"])
    assert bobs["drawing"] == classroom.simplify_drawing(one())
    # Ada's page, of protocol 3, gets them together (her own among them).
    together = await ada.expect("live_drawings")
    assert [d["player"] for d in together["drawings"]] == [ada.you["id"], bob.you["id"]]

    # Nobody is sent their own; of Ada's four drawings, two went out.
    for me in (bob, cy):
        seen = await everything_read(me)
        assert "live_drawings" not in {m["type"] for m in seen}
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
    assert not {"live_drawing", "live_drawings"} & {m["type"] for m in await everything_read(sol)}
    await sol.close()
