"""Decoding JSON sent by clients, with bounds Python's json module lacks.

Every endpoint that reads JSON from a client (the recognition API, the
teaching endpoints, the review queue and the game's WebSocket) decodes it here,
because json.loads accepts input that later turns into a 500:

- `[` repeated 100,000 times raises RecursionError, not a decoding error;
- a 5,000-digit number raises ValueError (Python refuses to convert more than
  4,300 digits to an int, a guard against quadratic conversion);
- NaN, Infinity and 1e999 (which overflows to inf) are not JSON numbers and
  break arithmetic and JSON output further on;
- "\\ud800" decodes to a lone surrogate that cannot be encoded as UTF-8, so
  saving or logging it fails far from here.

All of them raise JSONInputError (a ValueError) whose message says what is
wrong, for the caller to show after "not valid JSON: ".

The checks run at C speed on ordinary input. A game drawing of 5,000 points
(48 kB) took 3.5 ms to decode on the server's event loop, with a Python hook
called for every number and the nesting counted bracket by bracket in Python
(regular expressions over the whole text were 0.6-0.7 ms a pass); json.loads
alone takes 0.44 ms. Now one pass of byte translations finds the nesting and
whether any number could break a rule (more than MAX_INT_DIGITS digits, or an
exponent, the only way to overflow a float); only then are the numbers read
with the hooks, which name the one at fault.
"""

import json
import math
import re

import numpy as np

# Deeper than any payload the site takes (a drawing is 3 levels, the teaching
# input 2, a WebSocket message 4), far below the ~1,000 frames where the
# decoder would hit Python's recursion limit.
MAX_DEPTH = 32
# Coordinates, times, ids and digits all fit in 20 digits; 4,300 is where
# Python stops converting.
MAX_INT_DIGITS = 20

# A JSON string literal, or an unterminated one up to the end: what is inside
# is text, not nesting. Possessive, and matching at every opening quote, so the
# scan is linear even for hostile text such as '"\\"\\"\\"...'.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
# Every byte but a bracket, deleted to leave the brackets.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# +1 for an opening bracket, -1 for a closing one, by byte.
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
# Digits and the decimal point read as "0", "E" as "e": a long run of digits,
# or a digit before an exponent, is then a substring search.
_NUMBER_BYTES = bytes.maketrans(b"123456789.E", b"0000000000e")
_LONG_NUMBER = b"0" * (MAX_INT_DIGITS + 1)


class JSONInputError(ValueError):
    """The client sent text that is not JSON this site accepts."""


def _scan(text):
    """(how deeply arrays and objects nest, whether every number is plain) in
    `text`, strings left out; the depth is 0 for a text with too few opening
    brackets to pass MAX_DEPTH. Plain: at most MAX_INT_DIGITS digits and no
    exponent, so json reads it as a bounded int or a finite float."""
    try:
        # UTF-8 never puts a quote or a backslash inside another character.
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a str holding a surrogate itself
        raise _lone_surrogate() from exc
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        # Too few opening brackets to nest past the bound, strings counted:
        # a WebSocket `draw` (150-odd bytes, 2-4 levels) skips the strings'
        # removal and the count of levels: 35 us to decode one before, 9 us
        # now. Its numbers are checked with the strings in: a string that
        # looks like a long number only sends the decoding through the
        # hooks, which then find every number plain.
        numbers = raw.translate(_NUMBER_BYTES)
        return 0, _LONG_NUMBER not in numbers and b"0e" not in numbers
    outside = _STRING.sub(b'""', raw) if b'"' in raw else raw
    brackets = outside.translate(None, _NOT_BRACKETS)
    depth = 0
    if brackets:
        steps = _STEP[np.frombuffer(brackets, dtype=np.uint8)]
        depth = max(0, int(np.cumsum(steps, dtype=np.int32).max()))
    numbers = outside.translate(_NUMBER_BYTES)
    return depth, _LONG_NUMBER not in numbers and b"0e" not in numbers


def _lone_surrogate():
    return JSONInputError("it holds a lone surrogate (\\ud800-\\udfff), which is not text")


def _parse_int(digits):
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONInputError(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _parse_float(literal):
    value = float(literal)
    if not math.isfinite(value):
        raise JSONInputError(f"numbers must be finite: {literal[:20]} is too large")
    return value


def _parse_constant(name):
    raise JSONInputError(f"numbers must be finite: {name} is not a JSON number")


def loads(data):
    """Decode a JSON document (str or UTF-8 bytes); raise JSONInputError."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"it is not UTF-8 ({exc.reason})") from exc
    depth, plain_numbers = _scan(data)
    if depth > MAX_DEPTH:
        raise JSONInputError(f"it nests more than {MAX_DEPTH} levels deep")
    if plain_numbers:
        value = _decode(data)
    else:
        value = _decode(data, parse_int=_parse_int, parse_float=_parse_float)
    if "\\u" in data:
        # An escape may make a lone surrogate, which cannot be encoded: one
        # C-speed pass finds it anywhere in the value.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _lone_surrogate() from exc
    return value


def _decode(data, **number_hooks):
    try:
        return json.loads(data, parse_constant=_parse_constant, **number_hooks)
    except JSONInputError:
        raise
    except RecursionError as exc:  # only if the depth scan above were wrong
        raise JSONInputError(f"it nests more than {MAX_DEPTH} levels deep") from exc
    except ValueError as exc:
        raise JSONInputError(str(exc)) from exc
