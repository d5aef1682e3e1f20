"""Protocol 2: `draw` messages that carry only the points added since an
earlier drawing, beside protocol 1's whole drawings.

The rules of building a drawing (digitsite.game.drawing_deltas) in plain
Python; then a player of each version in one room through the real ASGI
application, and on a real Daphne server, checking that the drawing the
round keeps is exactly the one the client had when it sent the `draw` last
said kept.
"""

import asyncio
import collections
import json
import random

import pytest

from digitsite.game import protocol
from digitsite.game.drawing_deltas import RoundDrawing
from digitsite.game.protocol import MAX_POINTS
from digitsite.game.rules import GameError
from recognizer.payloads import PayloadError, parse_drawing
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


def test_a_delta_on_a_checked_drawing_is_checked_as_the_whole_drawing_would_be():
    """2,000 random sessions of deltas on a checked base: ints and floats,
    points of two and three numbers, empty strokes (in the base too), an
    `extend` onto an empty last stroke, and now and then a point the
    decoder would never pass on (recognizer.json_input), which RoundDrawing
    does not count on: a bool, a point of four numbers or of none, an
    integer too large for a float, a number that is not finite. After every
    `draw`, either the checked drawing the scorer gets is parse_drawing's
    result for the whole drawing built, or there is none and parse_drawing
    refuses the drawing, or the `draw` is refused as before."""
    rng = random.Random(12)

    def point():
        x = rng.choice([rng.randint(-20, 300), rng.uniform(-20, 300)])
        y = rng.choice([rng.randint(-20, 300), rng.uniform(-20, 300)])
        return [x, y] if rng.random() < 0.3 else [x, y, rng.randint(0, 9_000)]

    def odd_point():
        return rng.choice([[True, 3], [1, 2, 3, 4], [], [10 ** 400, 5], [float("inf"), 1],
                           [2, float("nan")], [1, "2"], (1, 2)])

    def points(most):
        made = [point() for _ in range(rng.randint(0, most))]
        if made and rng.random() < 0.02:
            made[rng.randrange(len(made))] = odd_point()
        return made

    outcomes = collections.Counter()
    for _ in range(2_000):
        built = RoundDrawing()
        first = [[point(), *points(3)], *(points(4) for _ in range(rng.randint(0, 2)))]
        base = dict(fields(seq=1, drawing=whole([])), drawing=whole(rng.sample(first, len(first))))
        raw = built.take(base, GAME, 1, incremental=True)
        assert built.checked is None  # a whole drawing is checked when scored
        try:
            whole_checked = parse_drawing(raw, max_points=MAX_POINTS)
        except PayloadError:
            outcomes["base refused"] += 1
            continue
        built.learn(raw, whole_checked)  # as the scorer does
        assert built.checked == whole_checked
        for seq in range(2, rng.randint(3, 9)):
            # The fields as protocol.read gives them, with points the decoder
            # never passes on put in by hand.
            delta = dict(fields(seq=seq, base=seq - 1), extend=points(3),
                         strokes=[points(3) for _ in range(rng.randint(0, 2))])
            try:
                raw = built.take(delta, GAME, 1, incremental=True)
            except GameError as exc:
                assert exc.code == "bad_drawing" and "must be [x, y] or [x, y, t]" in exc.message
                assert built.checked is None
                outcomes["delta refused"] += 1
                break
            if built.checked is None:
                with pytest.raises(PayloadError, match="must be finite"):
                    parse_drawing(raw, max_points=MAX_POINTS)
                outcomes["left to parse_drawing"] += 1
                break
            assert built.checked == parse_drawing(raw, max_points=MAX_POINTS)
            outcomes["the same"] += 1
    assert outcomes["the same"] > 5_000
    assert outcomes["delta refused"] > 20 and outcomes["left to parse_drawing"] > 20
    assert outcomes["base refused"] > 5


def test_only_the_points_a_delta_adds_are_converted(monkeypatch):
    from digitsite.game import drawing_deltas

    converted = []
    convert = drawing_deltas.converted_points
    monkeypatch.setattr(drawing_deltas, "converted_points",
                        lambda points: converted.append(len(points)) or convert(points))
    built = RoundDrawing()
    raw = built.take(fields(seq=1, drawing=whole([stroke(0, 500)])), GAME, 1, incremental=True)
    built.learn(raw, parse_drawing(raw, max_points=MAX_POINTS))
    for seq in range(2, 12):
        raw = built.take(fields(seq=seq, base=seq - 1, extend=stroke(0, 10)), GAME, 1,
                         incremental=True)
    assert built.checked == parse_drawing(raw, max_points=MAX_POINTS)
    assert len(built.checked.strokes[0]) == 600
    assert sum(converted) == 100  # ten deltas of ten points; the base's 500 not again


def test_a_checked_drawing_is_known_only_for_the_newest_and_never_for_a_doubtful_point():
    built = RoundDrawing()
    first = built.take(fields(seq=1, drawing=whole([stroke(0, 3)])), GAME, 1, incremental=True)
    second = built.take(fields(seq=2, base=1, extend=stroke(20, 2)), GAME, 1, incremental=True)
    # The scorer checked the first drawing after the second came: not the base.
    built.learn(first, parse_drawing(first, max_points=MAX_POINTS))
    assert built.checked is None
    built.learn(second, parse_drawing(second, max_points=MAX_POINTS))
    assert built.checked == parse_drawing(second, max_points=MAX_POINTS)
    # A number that is not finite (the decoder refuses it, recognizer.json_input;
    # this does not count on that): the whole drawing goes to parse_drawing,
    # which names it, and the next delta has no checked base.
    doubtful = dict(fields(seq=3, base=2, extend=[[1, 1]]), extend=[[1, float("nan")]])
    built.take(doubtful, GAME, 1, incremental=True)
    assert built.checked is None
    with pytest.raises(PayloadError, match="must be finite"):
        parse_drawing(built.drawing, max_points=MAX_POINTS)
    # Protocol 1 sends no delta: nothing is kept for one.
    protocol_1 = RoundDrawing()
    raw = protocol_1.take(fields(seq=1, drawing=whole([stroke(0, 3)])), GAME, 1,
                          incremental=False)
    protocol_1.learn(raw, parse_drawing(raw, max_points=MAX_POINTS))
    assert protocol_1.checked is None
    # A whole drawing (a new round's too) and a refusal (forget) each drop it.
    for forgetting in (
        lambda: built.take(fields(seq=5, drawing=whole([stroke(0, 3)])), GAME, 1,
                           incremental=True),
        lambda: built.forget(),
    ):
        built.take(fields(seq=1, drawing=whole([stroke(0, 3)])), GAME, 1, incremental=True)
        built.learn(built.drawing, parse_drawing(built.drawing, max_points=MAX_POINTS))
        assert built.checked is not None
        forgetting()
        assert built.checked is None


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


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("on_loop", [400, 0], ids=["rendered on the loop", "in a thread"])
async def test_a_drawing_grown_by_deltas_is_checked_whole_once(active_model, manual_clock,
                                                               monkeypatch, settings, on_loop):
    from recognizer import payloads

    settings.GAME_RENDER_ON_LOOP_POINTS = on_loop

    checked_whole = []
    parse = payloads.parse_drawing

    def counted(data, *args, **kwargs):
        checked_whole.append(data)
        return parse(data, *args, **kwargs)

    monkeypatch.setattr(payloads, "parse_drawing", counted)
    room = await new_room(rounds=1)
    ada = await join_v2(room.code, "Ada")
    await ada.send("start")
    await ada.expect("round_start")
    drawing = whole([stroke(60, 10)])
    await ada.send("draw", round=1, seq=1, drawing=drawing, pen_up=False)
    first = await ada.expect("guess", seq=1)
    guesses = [first]
    for seq in range(2, 7):
        added = stroke(60 + 40 * seq, 5, 100 * seq)
        drawing = whole([drawing["strokes"][0] + added])
        await ada.send("draw", round=1, seq=seq, base=seq - 1, extend=added, pen_up=seq == 6)
        guesses.append(await ada.expect("guess", seq=seq))
    assert len(checked_whole) == 1  # the whole drawing; each delta's points alone after it
    await ada.send("done", round=1)
    end = await ada.expect("round_end")
    assert end["results"][0]["drawing"] == drawing
    stored = [d.strokes for d in await stored_drawings(room_code=room.code)]
    assert stored == [drawing]
    # Each guess is the one for the drawing it answers: the last, for the
    # drawing kept, is the model's answer for that drawing checked whole.
    from recognizer.inference import get_service
    from recognizer.preprocessing import strokes_to_input

    whole_checked = parse(drawing)
    expected = get_service().predict(
        strokes_to_input(whole_checked.strokes, whole_checked.width, whole_checked.height))
    assert guesses[-1]["probabilities"] == pytest.approx(expected.probabilities, abs=1e-9)
    await ada.close()


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
