"""The protocol's declarations (digitsite/game/protocol.py): what a client
sends is checked against them, what the server sends is built from them, and
a Python client can build its messages with them."""

import json
from datetime import timedelta

import pytest

from digitsite.game import clock, guesses, protocol, rooms, rounds, seats, snapshots
from digitsite.game.models import Room
from digitsite.game.rules import GameError
from recognizer.inference import Prediction

DRAWING = {"width": 100.0, "height": 100.0, "strokes": [[[10.0, 10.0, 0.0], [90.0, 90.0, 5.0]]]}


def test_client_constructors_build_the_messages_the_server_reads():
    assert protocol.join("Ada") == {"type": "join", "protocol": 3, "name": "Ada"}
    assert protocol.join(token="t", opt_out=True, room="K7XQ2M", protocol=1) == {
        "type": "join", "protocol": 1, "token": "t", "opt_out": True, "room": "K7XQ2M"}
    assert protocol.draw(2, DRAWING, seq=7) == {
        "type": "draw", "round": 2, "drawing": DRAWING, "seq": 7}
    assert protocol.draw_more(2, 7, 8, extend=[[1, 2]], pen_up=True) == {
        "type": "draw", "round": 2, "seq": 8, "pen_up": True, "base": 7, "extend": [[1, 2]]}
    assert protocol.start() == {"type": "start"}
    assert protocol.start(3) == {"type": "start", "rounds": 3}
    assert protocol.settings(private=True, seconds=30) == {
        "type": "settings", "private": True, "seconds": 30}
    assert protocol.kick("p1") == {"type": "kick", "player": "p1"}
    assert protocol.done(1) == {"type": "done", "round": 1}
    assert protocol.opt_out(False) == {"type": "opt_out", "value": False}
    assert protocol.leave() == {"type": "leave"}
    assert protocol.ping() == {"type": "ping"}
    for message in (protocol.join("Ada"), protocol.draw(1, DRAWING),
                    protocol.draw_more(1, 1, 2, strokes=[[[3, 4]]]), protocol.settings(rounds=2),
                    protocol.kick("p1"), protocol.done(1), protocol.ping()):
        decoded = protocol.decode(json.dumps(message))
        assert protocol.read(decoded) == {
            field.name: message.get(field.name)
            for field in protocol.CLIENT_MESSAGES[message["type"]]}
    with pytest.raises(TypeError):
        protocol.client_message("draw", drawing=DRAWING)  # no round
    with pytest.raises(TypeError):
        protocol.client_message("ping", colour="red")


@pytest.mark.parametrize("text, code, detail", [
    ("[1]", "bad_json", "a message must be a JSON object with a string 'type'"),
    ('{"type": 5}', "bad_json", "a message must be a JSON object with a string 'type'"),
    ("{", "bad_json", "the message is not valid JSON: "),
    ('{"type": "dance"}', "unknown_type", "unknown message type 'dance'; expected one of join, "
                                          "start, settings, kick, draw, done, correct, opt_out, "
                                          "leave, ping"),
    ('{"type": "draw", "drawing": {}}', "bad_message", "'round' is required"),
    ('{"type": "draw", "round": true, "drawing": {}}', "bad_message",
     "'round' must be a whole number, got bool"),
    ('{"type": "draw", "round": 1, "drawing": []}', "bad_message",
     "'drawing' must be an object, got list"),
    ('{"type": "join", "protocol": 4, "name": 5}', "unsupported_protocol",
     "this server speaks protocols 1, 2 and 3, not 4"),
    ('{"type": "join", "protocol": 1, "token": "' + "x" * 201 + '"}', "bad_message",
     "'token' is too long"),
    ('{"type": "opt_out", "value": "yes"}', "bad_message",
     "'value' must be true or false, got str"),
])
def test_what_a_client_sends_is_refused_with_the_protocols_error(text, code, detail):
    with pytest.raises(GameError) as refused:
        protocol.read(protocol.decode(text))
    assert refused.value.code == code
    assert refused.value.message.startswith(detail)


def test_a_message_naming_another_room_is_refused():
    protocol.check_room({"type": "ping"}, "K7XQ2M")
    protocol.check_room({"type": "ping", "room": "k7x-q2m"}, "K7XQ2M")
    with pytest.raises(GameError) as refused:
        protocol.check_room({"type": "ping", "room": "ABCDEF"}, "K7XQ2M")
    assert refused.value.code == "wrong_room"


def test_a_frame_reads_back_as_its_message_whatever_it_holds():
    """encode: orjson's compact text, and json.dumps' for what orjson refuses.

    Tried: names beyond ASCII (written as themselves), a line separator, a
    small float, integer keys, NaN (not JSON: null), an integer beyond 64
    bits and a lone surrogate (both refused by orjson).
    """
    sent = {"type": "guess", "name": "Zoë 名前\u2028", "round": 2, "probability": 0.00001}
    text = protocol.encode(sent)
    assert text == '{"type":"guess","name":"Zoë 名前\u2028","round":2,"probability":0.00001}'
    assert json.loads(text) == sent
    assert protocol.encode({"counts": {3: 1, 7: 2}}) == '{"counts":{"3":1,"7":2}}'
    assert protocol.encode({"p": float("nan")}) == '{"p":null}'
    # Refused by orjson, written by json.dumps as before.
    assert protocol.encode({"n": 2 ** 70}) == '{"n":1180591620717411303424}'
    assert protocol.encode({"s": "\ud800"}) == '{"s":"\\ud800"}'


def test_server_messages_are_built_in_their_declared_order_and_nothing_else():
    error = protocol.error("not_host", "only the host can start the game", "start")
    assert protocol.encode(error) == ('{"type":"error","code":"not_host","message":'
                                      '"only the host can start the game","for":"start"}')
    protocol.check(error)
    assert list(protocol.message("pong", server_time=5)) == ["type", "server_time"]
    with pytest.raises(TypeError):
        protocol.message("pong")
    with pytest.raises(TypeError):
        protocol.message("pong", server_time=5, extra=1)
    with pytest.raises(TypeError):
        protocol.message("hello")
    with pytest.raises(ValueError):
        protocol.check({"type": "pong", "server_time": "soon"})
    with pytest.raises(ValueError):
        protocol.check({"server_time": 5, "type": "pong", "late": True})


@pytest.mark.django_db
def test_every_message_of_a_game_matches_its_declaration(manual_clock):
    room = rooms.create_room("Ada", rounds=1, seconds=20, target_confidence=0.5)
    ada = seats.join(room.code, name="Ada", channel_name="chan-Ada")
    bob = seats.join(room.code, name="Bob", channel_name="chan-Bob")
    sent = list(ada.events + bob.events)
    sent += rounds.start_game(room.code, ada.seat.player_id)
    playing = Room.objects.get(pk=room.pk)
    probabilities = [0.0] * 10
    probabilities[playing.target] = 1.0
    _, events = guesses.record_guess(
        room.code, ada.seat.player_id, playing.game_id, 1, drawing=DRAWING,
        input_bytes=bytes(784), prediction=Prediction(playing.target, probabilities, "v"),
        target=playing.target, pen_up=True)
    sent += events
    sent += seats.disconnect(bob.seat.player_id, "chan-Bob")
    Room.objects.filter(pk=room.pk).update(ends_at=clock.now() - timedelta(seconds=5))
    sent += rounds.advance(room.code)
    sent += snapshots.catch_up(room.code)
    kinds = [message["type"] for message in sent]
    assert {"room", "round_start", "player_finished", "round_end", "game_over"} <= set(kinds)
    for message in sent:
        protocol.check(message)
