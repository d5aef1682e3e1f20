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
"""

import json
import math
import re
from itertools import accumulate

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
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONInputError(ValueError):
    """The client sent text that is not JSON this site accepts."""


def _depth(text):
    """How deeply arrays and objects nest in text (brackets in strings ignored)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


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
    if _depth(data) > MAX_DEPTH:
        raise JSONInputError(f"it nests more than {MAX_DEPTH} levels deep")
    try:
        value = json.loads(data, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_parse_constant)
    except JSONInputError:
        raise
    except RecursionError as exc:  # only if the depth scan above were wrong
        raise JSONInputError(f"it nests more than {MAX_DEPTH} levels deep") from exc
    except ValueError as exc:
        raise JSONInputError(str(exc)) from exc
    try:
        # One C-speed pass: a lone surrogate anywhere cannot be encoded.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JSONInputError("it holds a lone surrogate (\\ud800-\\udfff), "
                             "which is not text") from exc
    return value
