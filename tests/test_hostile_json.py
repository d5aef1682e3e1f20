"""Hostile JSON never causes a 500: every endpoint that reads JSON answers it
with a clear 4xx error (or, on the WebSocket, an error message) and keeps working.

The hostile inputs: `[` x 100,000 (RecursionError in json.loads), a
5,000-digit number (ValueError past Python's 4,300-digit limit), NaN,
Infinity, -Infinity, 1e999 (overflows to inf), and a lone surrogate "\\ud800"
(decodes, but cannot be encoded as UTF-8 or stored).
"""

import json

import pytest
from django.urls import reverse

from recognizer import json_input
from tests.support import SEVEN
from tests.test_game_consumers import connect, new_room

pytestmark = pytest.mark.django_db(transaction=True)

# A drawing with the hostile value where its first x coordinate belongs.
HOSTILE_BODIES = {
    "nested_100000_brackets": "[" * 100_000 + "]" * 100_000,
    "nested_unclosed_100000": "[" * 100_000,
    "5000_digit_number": '{"width": 100, "height": 100, "strokes": [[[' + "9" * 5000
                         + ", 5], [6, 7]]]}",
    "nan": '{"width": 100, "height": 100, "strokes": [[[NaN, 5], [6, 7]]]}',
    "infinity": '{"width": 100, "height": 100, "strokes": [[[Infinity, 5], [6, 7]]]}',
    "minus_infinity": '{"width": 100, "height": 100, "strokes": [[[-Infinity, 5], [6, 7]]]}',
    "huge_exponent_1e999": '{"width": 1e999, "height": 100, "strokes": [[[1, 5], [6, 7]]]}',
    "lone_surrogate_value": '{"width": 100, "height": 100, "strokes": [[[1, 5], [6, 7]]], '
                            '"note": "\\ud800"}',
    "lone_surrogate_key": '{"\\udfff": 1, "width": 100, "height": 100, '
                          '"strokes": [[[1, 5], [6, 7]]]}',
}

ENDPOINTS = ["/api/recognize", "/learn/api/stages", "/learn/api/attention"]


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_json_gets_a_400_naming_the_problem(client, active_model, url, name,
                                                   monkeypatch):
    from recognizer import clients

    response = client.post(url, data=HOSTILE_BODIES[name], content_type="application/json")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert "not valid JSON" in response.json()["error"]
    # And the endpoint still works afterwards. A 200 kB hostile body spends
    # more than this address's API burst, or this browser's on the lessons
    # (large bodies cost several requests, recognizer/clients.py), so the
    # budgets start anew first.
    monkeypatch.setattr(clients, "_limits", None)
    monkeypatch.setattr(clients, "_teaching_limits", None)
    assert client.post(url, data=json.dumps(SEVEN),
                       content_type="application/json").status_code == 200


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_json_to_the_review_queue_gets_a_400(admin_client, name):
    response = admin_client.post(reverse("admin:recognizer_drawing_review_decide"),
                                 data=HOSTILE_BODIES[name], content_type="application/json")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert "not valid JSON" in response.json()["error"]


async def test_hostile_json_on_the_websocket_gets_bad_json_and_the_socket_stays(active_model):
    """Over the game's socket: 20,000 brackets (100,000 exceed the message size
    limit), a 5,000-digit round number, NaN and 1e999 in a drawing, and a lone
    surrogate as the display name, which would otherwise reach the database."""
    room = await new_room(rounds=1, solo=True)
    client = await connect(room.code)
    hostile = [
        "[" * 20_000 + "]" * 20_000,
        '{"type": "join", "protocol": 1, "name": "Ada", "seq": ' + "9" * 5000 + "}",
        '{"type": "join", "protocol": 1, "name": "Ada", "seq": NaN}',
        '{"type": "join", "protocol": 1, "name": "Ada", "seq": 1e999}',
        '{"type": "join", "protocol": 1, "name": "\\ud800"}',
    ]
    for text in hostile:
        await client.ws.send_to(text_data=text)
        message = await client.error("bad_json")
        assert "not valid JSON" in message["message"]
    await client.send("join", protocol=1, name="Ada")
    assert (await client.expect("welcome"))["you"]["name"] == "Ada"
    await client.close()


def test_ordinary_json_decodes_as_the_standard_library_does():
    text = json.dumps({"width": 280.5, "height": 280, "strokes": [[[1, 2, 3], [-4.5, 5e3, 6]]],
                       "name": "Zoë \U0001F600", "nested": [[[[[[[[1]]]]]]]], "big": 10**19})
    assert json_input.loads(text) == json.loads(text)
    assert json_input.loads(text.encode()) == json.loads(text)
    # Brackets inside strings are text, not nesting.
    assert json_input.loads(json.dumps({"text": "[" * 1000})) == {"text": "[" * 1000}


@pytest.mark.parametrize("text, problem", [
    ('[1, ' + "9" * 21 + "]", "more than 20 digits"),
    ('{"x": -' + "1" * 21 + "}", "more than 20 digits"),
    ('[1e999]', "1e999 is too large"),
    ('[-2.5E+400]', r"-2\.5E\+400 is too large"),
    ('[1, "\\ud800"]', "lone surrogate"),
    ('{"\\uDFFF": 1}', "lone surrogate"),
    ("[1, \"\ud800\"]", "lone surrogate"),  # a str holding the surrogate itself
    ('[' * 33 + ']' * 33, "more than 32 levels"),
])
def test_every_number_rule_holds_whichever_way_the_text_is_read(text, problem):
    """Numbers are read by json itself unless the text could break a rule (a run
    of more than 20 digits, an exponent): then with the hooks that name it."""
    with pytest.raises(json_input.JSONInputError, match=problem):
        json_input.loads(text)


@pytest.mark.parametrize("text", [
    '[1e5, 2.5E-3, -7e+2, 0.5]',                 # exponents, within range
    '[' + "9" * 20 + ", -" + "9" * 20 + "]",        # the longest integers allowed
    '{"name": "' + "1" * 40 + 'e999", "x": 1}',  # digits and "e999" inside a string
    '{"\\u00e9": "\\ud83d\\ude00"}',              # escapes making a pair, not a lone half
    '[' * 32 + ']' * 32,                          # the deepest nesting allowed
    '{"text": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
])
def test_ordinary_numbers_escapes_and_nesting_decode_as_the_standard_library_does(text):
    assert json_input.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", [
    '"' + '\\"' * 200_000,        # an unterminated string full of escaped quotes
    '"' + "a" * 1_000_000,        # an unterminated long string
    "[]" * 500_000,               # a megabyte of shallow brackets
])
def test_the_depth_scan_stays_linear_on_a_megabyte(text):
    """A regex that backtracked on these would take minutes; linear is milliseconds.
    No timing asserted: a quadratic scan would hang the test, not slow it."""
    with pytest.raises(json_input.JSONInputError):
        json_input.loads(text)


def random_texts(count, seed=11):
    """JSON-ish texts built from the pieces the fast path looks at: numbers of every
    form (long, signed, with exponents, at the edges of float), strings holding
    digits, brackets, quotes, backslashes and \\u escapes (whole pairs and lone
    halves), NaN, nesting, and now and then a broken piece."""
    import random

    rng = random.Random(seed)
    numbers = ["0", "-0", "7", "-12", "3.25", "-0.5", "1e5", "2E-3", "-7e+2", "1e308",
               "1.8e308", "1e999", "-1E400", "4.9e-324", "1e-400", "9" * 20, "-" + "9" * 20,
               "9" * 21, "1" * 25, "1." + "0" * 25, "12345678901234567890.5", "NaN",
               "Infinity", "-Infinity", "01", "1.", "--1", "+1"]
    strings = ['"a"', '"[[["', '"]}"', '"\\""', '"\\\\"', '"\\\\u0041"', '"\\u0041"',
               '"\\ud83d\\ude00"', '"\\ud800"', '"\\uDFFF x"', '"123456789012345678901"',
               '"1e999"', '"zo\u00eb"', '"\\"[1e999]\\""']

    def value(depth):
        roll = rng.random()
        if depth < 4 and roll < 0.3:
            return "[" + ", ".join(value(depth + 1) for _ in range(rng.randrange(4))) + "]"
        if depth < 4 and roll < 0.45:
            return "{" + ", ".join(f"{rng.choice(strings)}: {value(depth + 1)}"
                                   for _ in range(rng.randrange(3))) + "}"
        return rng.choice(numbers if roll < 0.8 else strings)

    for _ in range(count):
        text = value(0)
        if rng.random() < 0.05:
            cut = rng.randrange(len(text) + 1)
            text = text[:cut] + rng.choice(["", "]", "[", '"', ",", "\\"]) + text[cut:]
        yield text


def outcome(text):
    try:
        return "ok", json_input.loads(text)
    except json_input.JSONInputError as exc:
        return "refused", type(exc).__name__


def test_the_fast_path_accepts_and_refuses_what_the_careful_one_does(monkeypatch):
    """Every text decoded twice: as the site does, and with every number read
    through the careful hooks (the scan told that no number is plain). Same
    answer, same value, for 3,000 texts, as text and as UTF-8 bytes."""
    texts = list(random_texts(3000))
    fast = [(outcome(text), outcome(text.encode("utf-8", "surrogatepass"))) for text in texts]
    scan = json_input._scan
    monkeypatch.setattr(json_input, "_scan", lambda text: (scan(text)[0], False))
    for text, (as_text, as_bytes) in zip(texts, fast, strict=True):
        careful = outcome(text)
        assert as_text[0] == careful[0], text
        if careful[0] == "ok":
            # repr: -0.0 and 0.0 compare equal, but they are not the same number.
            assert repr(as_text[1]) == repr(careful[1]), text
        assert as_bytes[0] == careful[0] and repr(as_bytes[1]) == repr(as_text[1]), text
    assert {kind for (kind, _), _ in fast} == {"ok", "refused"}


@pytest.mark.parametrize("depth", [1, 31, 32, 33])
@pytest.mark.parametrize("in_strings", [0, 1, 5, 40])
def test_a_text_with_few_brackets_is_judged_as_the_full_scan_judges_it(depth, in_strings):
    """A text with at most MAX_DEPTH opening brackets, strings counted, skips
    the count of levels. Brackets in strings push a text over that count (the
    full scan then leaves the strings out), and never let a deep one through."""
    text = ('{"s": "' + "[" * in_strings + '", "v": ' + "[" * depth + "1" + "]" * depth + "}")
    expected = "refused" if depth + 1 > json_input.MAX_DEPTH else "ok"
    assert outcome(text)[0] == expected
    if expected == "ok":
        assert json_input.loads(text) == json.loads(text)
