"""Protocol 2: `draw` messages that carry only the points added since an
earlier drawing, beside protocol 1's whole drawings.

The rules of building a drawing (digitsite.game.drawing_deltas) in plain
Python; then a player of each version in one room through the real ASGI
application, and on a real Daphne server, checking that the drawing the
round keeps is exactly the one the client had when it sent the `draw` last
said kept.
"""

import asyncio
import json

import pytest

from digitsite.game import protocol
from digitsite.game.drawing_deltas import RoundDrawing
from digitsite.game.protocol import MAX_POINTS
from digitsite.game.rules import GameError
from tests.live import LiveServer
from tests.test_game_consumers import connect, join, new_room, stored_drawings

GAME = "g1"


def fields(**values):
    """A `draw`'s fields as protocol.read gives them."""
    message = protocol.decode(json.dumps({"type": "draw", "round": 1, **values}))
    return protocol.read(message)


def whole(strokes, width=280, height=280):
    return {"width": width, "height": height, "strokes": strokes}


def test_a_drawing_is_built_from_what_each_draw_adds():
    built = RoundDrawing()
    first = built.take(fields(seq=1, drawing=whole([[[1, 1], [2, 2]]])), GAME, 1,
                       incremental=True)
    assert first == whole([[[1, 1], [2, 2]]])
    second = built.take(fields(seq=2, base=1, extend=[[3, 3]], strokes=[[[9, 9]]]), GAME, 1,
                        incremental=True)
    assert second == whole([[[1, 1], [2, 2], [3, 3]], [[9, 9]]])
    third = built.take(fields(seq=3, base=2, strokes=[[[5, 5], [6, 6]]]), GAME, 1,
                       incremental=True)
    assert third == whole([[[1, 1], [2, 2], [3, 3]], [[9, 9]], [[5, 5], [6, 6]]])
    # Drawings handed out earlier (to the scorer) are never changed.
    assert first == whole([[[1, 1], [2, 2]]])
    assert second == whole([[[1, 1], [2, 2], [3, 3]], [[9, 9]]])
    # An empty addition is the same drawing again (the pen lifted, say).
    assert built.take(fields(seq=4, base=3, pen_up=True), GAME, 1, incremental=True) == third


@pytest.mark.parametrize("draw, code, detail", [
    ({"seq": 2, "base": 9, "extend": [[3, 3]]}, "stale_base",
     "the server has the drawing of seq 1, not seq 9: send the whole drawing"),
    ({"seq": 2, "extend": [[3, 3]]}, "bad_message", "'base'"),
    ({"seq": 2, "base": 1, "drawing": whole([]), "extend": [[3, 3]]}, "bad_message",
     "either 'drawing' or 'base'"),
    ({"seq": 2, "base": 1, "strokes": [5]}, "bad_message", "'strokes' must be a list of "
                                                          "strokes"),
    ({"seq": 2, "base": 1, "extend": [[0, 0]] * MAX_POINTS}, "too_many_points",
     f"at most {MAX_POINTS} points"),
    # Empty strokes hold no points, but each is a slot the drawing keeps.
    ({"seq": 2, "base": 1, "strokes": [[]] * MAX_POINTS}, "bad_drawing",
     f"too many strokes: at most {MAX_POINTS}"),
    # A "point" is [x, y] or [x, y, t] of numbers, checked as it arrives.
    ({"seq": 2, "base": 1, "extend": [[0] * 10_000]}, "bad_drawing",
     "point 0 of 'extend' must be [x, y] or [x, y, t]"),
    ({"seq": 2, "base": 1, "extend": [[3, 3], [True, 4]]}, "bad_drawing", "point 1 of 'extend'"),
    ({"seq": 2, "base": 1, "extend": [3]}, "bad_drawing", "point 0 of 'extend'"),
    ({"seq": 2, "base": 1, "strokes": [[[1, 1]], [[1, "2"]]]}, "bad_drawing",
     "point 0 of new stroke 1"),
    ({"seq": 2, "base": 1, "strokes": [[[[0] * 1000, 1]]]}, "bad_drawing",
     "point 0 of new stroke 0"),
])
def test_a_draw_that_cannot_be_built_is_refused_and_the_base_forgotten(draw, code, detail):
    built = RoundDrawing()
    built.take(fields(seq=1, drawing=whole([[[1, 1]]])), GAME, 1, incremental=True)
    with pytest.raises(GameError) as refused:
        built.take(fields(**draw), GAME, 1, incremental=True)
    assert refused.value.code == code and detail in refused.value.message
    # The client sends the whole drawing next; a delta on the old base is stale.
    with pytest.raises(GameError, match="no drawing of this round"):
        built.take(fields(seq=3, base=1, extend=[[2, 2]]), GAME, 1, incremental=True)
    assert built.take(fields(seq=4, drawing=whole([[[7, 7]]])), GAME, 1,
                      incremental=True) == whole([[[7, 7]]])


def test_a_drawing_grown_by_empty_strokes_stops_at_the_stroke_limit():
    built = RoundDrawing()
    built.take(fields(seq=1, drawing=whole([[[1, 1]]])), GAME, 1, incremental=True)
    # 1 stroke + 4 x 1,000 empty ones + 999 = MAX_POINTS (5,000): allowed.
    for seq in range(2, 6):
        built.take(fields(seq=seq, base=seq - 1, strokes=[[]] * 1000), GAME, 1,
                   incremental=True)
    drawing = built.take(fields(seq=6, base=5, strokes=[[]] * (MAX_POINTS - 4001)), GAME, 1,
                         incremental=True)
    assert len(drawing["strokes"]) == MAX_POINTS
    with pytest.raises(GameError, match="too many strokes") as refused:
        built.take(fields(seq=7, base=6, strokes=[[]]), GAME, 1, incremental=True)
    assert refused.value.code == "bad_drawing"
    assert built.drawing is None  # forgotten: the next delta is stale
    # A whole drawing over the stroke limit cannot become a base either.
    with pytest.raises(GameError, match="too many strokes"):
        built.take(fields(seq=8, drawing=whole([[]] * (MAX_POINTS + 1))), GAME, 1,
                   incremental=True)
    assert built.drawing is None


def test_a_new_round_and_protocol_1_need_the_whole_drawing():
    built = RoundDrawing()
    built.take(fields(seq=1, drawing=whole([[[1, 1]]])), GAME, 1, incremental=True)
    with pytest.raises(GameError, match="no drawing of this round"):
        built.take(fields(seq=2, base=1, extend=[[2, 2]]), GAME, 2, incremental=True)
    built.take(fields(seq=1, drawing=whole([[[1, 1]]])), GAME, 1, incremental=False)
    with pytest.raises(GameError, match="join with protocol 2"):
        built.take(fields(seq=2, base=1, extend=[[2, 2]]), GAME, 1, incremental=False)


def stroke(start, count, t0=0):
    """`count` points of a slanted line from `start`, 10 ms apart."""
    return [[start + 4 * i, 40 + 9 * i, t0 + 10 * i] for i in range(count)]


async def join_v2(code, name):
    client = await connect(code)
    await client.send("join", protocol=2, name=name)
    client.welcome = await client.expect("welcome")
    client.you = client.welcome["you"]
    return client


@pytest.mark.django_db(transaction=True)
async def test_players_of_both_versions_in_one_room(active_model, manual_clock):
    room = await new_room(rounds=1)
    ada = await join_v2(room.code, "Ada")
    bob = await join(room.code, "Bob")  # protocol 1
    assert ada.welcome["protocol"] == 2 and bob.welcome["protocol"] == 1
    await ada.send("start")
    await ada.expect("round_start")
    await bob.expect("round_start")

    # Ada: the first stroke in three messages, then a second stroke.
    await ada.send("draw", round=1, seq=1, drawing=whole([stroke(60, 10)]), pen_up=False)
    assert (await ada.expect("guess", seq=1))["kept"] is True
    await ada.send("draw", round=1, seq=2, base=1, extend=stroke(100, 10, 100), pen_up=False)
    await ada.expect("guess", seq=2)
    await ada.send("draw", round=1, seq=3, base=2, strokes=[stroke(150, 12, 500)],
                   pen_up=True)
    await ada.expect("guess", seq=3)
    # A delta on a drawing the server does not have: refused, and the whole
    # drawing is sent instead.
    await ada.send("draw", round=1, seq=4, base=2, extend=[[1, 1, 900]])
    refused = await ada.error("stale_base")
    assert refused["for"] == "draw"
    ada_drawing = whole([stroke(60, 10) + stroke(100, 10, 100), stroke(150, 12, 500)])
    await ada.send("draw", round=1, seq=5, drawing=ada_drawing, pen_up=True)
    await ada.expect("guess", seq=5)

    # Bob (protocol 1) sends whole drawings, and may not send a delta.
    bob_drawing = whole([stroke(70, 8)])
    await bob.send("draw", round=1, seq=1, drawing=bob_drawing)
    assert (await bob.expect("guess", seq=1))["kept"] is True
    await bob.send("draw", round=1, seq=2, base=1, extend=[[1, 1, 5]])
    assert "protocol 2" in (await bob.error("bad_message"))["message"]

    for player in (ada, bob):
        await player.send("done", round=1)
    end = await ada.expect("round_end")
    results = {r["name"]: r for r in end["results"]}
    assert results["Ada"]["drawing"] == ada_drawing
    assert results["Bob"]["drawing"] == bob_drawing
    stored = {d.player_name: d.strokes for d in await stored_drawings(room_code=room.code)}
    assert stored == {"Ada": ada_drawing, "Bob": bob_drawing}
    await ada.close()
    await bob.close()


@pytest.mark.slow
async def test_protocol_2_end_to_end_on_a_real_server(tmp_path):
    """Two players of each version draw progressively, those of protocol 2
    sending only what they added; each round keeps exactly the drawing last
    said kept (by its `guess` or a `kept` message)."""
    server = LiveServer(tmp_path)
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(server.ensure_model)
    code = await asyncio.to_thread(server.create_room, "Ada", rounds=1, seconds=300,
                                   target_confidence=1.0)
    players = {}
    try:
        for name, version in (("Ada", 2), ("Bob", 1), ("Cy", 2), ("Di", 1)):
            client = await server.game_client(code, name)
            welcome = await client.join(protocol=version)
            assert welcome["protocol"] == version
            players[name] = client
        await players["Ada"].start()
        sent, sizes = {}, {}
        for offset, (name, client) in enumerate(players.items()):
            await client.expect("round_start", timeout=60)
            version = 2 if name in ("Ada", "Cy") else 1
            sent[name], sizes[name] = await _draw_progressively(client, version, 40 * offset)
        for client in players.values():
            await client.done(1)
        ends = {name: await client.expect("round_end", timeout=60)
                for name, client in players.items()}
        for result in ends["Ada"]["results"]:
            name = result["name"]
            assert result["drawing"] == sent[name][last_said_kept(players[name])], name
        # Protocol 2's messages stay small as the drawing grows; protocol 1's grow.
        assert max(sizes["Ada"][1:]) < 300 and max(sizes["Cy"][1:]) < 300
        assert sizes["Bob"][-1] > 3 * sizes["Bob"][0]
    finally:
        for client in players.values():
            await client.close()
        server.stop()


def last_said_kept(client):
    """The seq of the drawing the server last said was kept to `client`."""
    said = [m["seq"] for m in client.messages
            if (m["type"] == "guess" and m["kept"]) or m["type"] == "kept"]
    return said[-1]


async def _draw_progressively(client, version, offset):
    """Six updates of one stroke, then a second stroke, each sent once the
    last one's guess is back. The drawings sent by seq, and the messages' sizes."""
    strokes = [[]]
    sent, sizes = {}, []
    for seq in range(1, 9):
        if seq == 7:
            strokes.append([])
        strokes[-1].extend(stroke(offset + 10 * seq, 3, 30 * seq))
        drawing = whole([list(s) for s in strokes])
        if version == 2 and seq > 1:
            before = sent[seq - 1]["strokes"]
            extend = drawing["strokes"][len(before) - 1][len(before[-1]):]
            new = drawing["strokes"][len(before):]
            message = protocol.draw_more(1, seq - 1, seq, extend=extend or None,
                                         strokes=new or None, pen_up=seq == 8)
        else:
            message = protocol.draw(1, drawing, seq=seq, pen_up=seq == 8)
        text = json.dumps(message)
        sizes.append(len(text))
        await client.send_raw(text)
        sent[seq] = drawing
        await client.expect("guess", lambda m, seq=seq: m["seq"] == seq, timeout=60)
    return sent, sizes
