"""The game's WebSocket protocol in code: every message both ways, declared once.

docs/protocol.md explains the protocol to people; this module is its single
source in code. It declares each message type with its fields, in the order
they go on the wire, and holds:

- the protocol's limits and close codes;
- `decode` and `read`, which check a client's text frame and the fields of
  its message (the session refuses what they refuse, with the error they
  raise);
- `message` and `record`, which build the server's messages from the
  declarations (a field missing or unknown is a bug and raises), and
  `encode`, which writes one to a text frame;
- small constructors of the client's messages (`join`, `draw`, ...) for
  Python clients: tests, benchmarks, scripts;
- `check`, which holds a server message against its declaration (for tests
  and clients; the server does not pay for it on every message).

Nothing here touches the database or the network. It is one module of
about 400 lines on purpose: the declarations are the protocol, and a reader
checking a message against docs/protocol.md finds every type in one file.
"""

import json
from dataclasses import dataclass

import orjson

from digitsite.game.codes import normalise_code
from digitsite.game.rules import GameError
from recognizer import json_input

# The newest version; the server speaks every one in SUPPORTED_PROTOCOLS.
# Version 2 adds incremental `draw` messages (digitsite.game.drawing_deltas);
# version 3 the others' live drawings together, as `live_drawings`
# (digitsite.game.live_feed).
PROTOCOL_VERSION = 3
SUPPORTED_PROTOCOLS = (1, 2, 3)

# -- limits -------------------------------------------------------------------

MAX_MESSAGE_BYTES = 64 * 1024
MAX_POINTS = 5000
RATE_PER_SECOND = 20
RATE_BURST = 30
# A client that keeps sending after being told it is rate limited is cut off.
FLOOD_DROPS = 100
FLOOD_WINDOW = 5.0
JOIN_TIMEOUT = 30.0
MAX_TOKEN_LENGTH = 200
# The longest player id a `kick` is looked up by (longer ones are cut).
MAX_PLAYER_ID_LENGTH = 64
# The longest game id a `correct` may name (the server's are 32 characters).
MAX_GAME_ID_LENGTH = 64

# -- close codes --------------------------------------------------------------

CLOSE_LEAVE = 1000
# Not 1009 (WebSocket's "message too big"): that code is the WebSocket
# library's own, and Daphne's (autobahn) refuses any code from the
# application but 1000 and 3000-4999, closing with 1011 and logging a
# traceback instead. 4009 keeps the 9 for those who know 1009.
CLOSE_TOO_LARGE = 4009
CLOSE_JOIN_TIMEOUT = 4000
CLOSE_PROTOCOL = 4001
CLOSE_ROOM_FULL = 4003
CLOSE_NOT_FOUND = 4004
CLOSE_KICKED = 4005
CLOSE_FLOOD = 4008
CLOSE_REPLACED = 4010
# The seat was taken by another tab (or a reload) of the same browser session:
# the page says the room is open in another tab and does not reconnect.
CLOSE_OTHER_TAB = 4011
# The client does not read what the server sends (digitsite/websocket_bounds.py,
# which closes with it below the application).
CLOSE_NOT_READING = 4012
# Over the open sockets allowed per address or per browser session
# (digitsite.game.connection_limits); 29 as in HTTP's 429.
CLOSE_TOO_MANY_CONNECTIONS = 4029

# Refusals of a `join` that end the connection, and the close code that follows.
JOIN_CLOSES = {"unsupported_protocol": CLOSE_PROTOCOL, "room_full": CLOSE_ROOM_FULL,
               "room_not_found": CLOSE_NOT_FOUND, "room_closed": CLOSE_NOT_FOUND,
               "kicked": CLOSE_KICKED}

# -- fields -------------------------------------------------------------------

# What a field may hold: a test, and how an error names it.
KINDS = {
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "string": (lambda v: isinstance(v, str), "a string"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "any": (lambda v: True, "anything"),
}


@dataclass(frozen=True)
class Field:
    """One field of a message.

    `required`: a client message without it (or with null) is refused; a
    server message always has every field. `null`: a server field that may
    be null. `shape`: an object (or, for a list, each item) with fields of
    its own, declared in SHAPES. `max_length`: of a client's string.
    `check`: a further test of a client's value that raises GameError.
    """

    name: str
    kind: str
    required: bool = True
    null: bool = False
    shape: str = ""
    max_length: int | None = None
    check: object = None


def _speaks_our_protocol(version):
    if version not in SUPPORTED_PROTOCOLS:
        *first, last = (str(v) for v in SUPPORTED_PROTOCOLS)
        spoken = f"{', '.join(first)} and {last}" if first else last
        raise GameError("unsupported_protocol", f"this server speaks protocols {spoken}, "
                                                f"not {version}")


def _a_digit(value):
    if not 0 <= value <= 9:
        raise GameError("bad_message", f"'digit' must be a digit from 0 to 9, got {value}")


def _optional(name, kind, **options):
    return Field(name, kind, required=False, **options)


# -- client to server ---------------------------------------------------------

# Every client message may also name its room ("room": "<CODE>"); see check_room.
# In the order the `unknown_type` error lists them.
CLIENT_MESSAGES = {
    "join": (Field("protocol", "integer", check=_speaks_our_protocol),
             _optional("name", "string"),
             _optional("token", "string", max_length=MAX_TOKEN_LENGTH),
             _optional("opt_out", "boolean")),
    "start": (_optional("rounds", "integer"),),
    # The room settings a host may change between games, each checked by the
    # room's own rules (digitsite.game.rules) as on creation.
    "settings": (_optional("private", "any"), _optional("rounds", "any"),
                 _optional("seconds", "any"), _optional("max_players", "any")),
    "kick": (Field("player", "string"),),
    # `pen_up`: the drawing ends with the pen lifted (its last stroke is
    # complete). Only such a drawing can reach the target: a stroke still
    # being drawn often reads as another digit for a moment (a 6 begins as
    # a 1, a 7 as a "¬"). Left out (older pages), the drawing counts as
    # drawn with the pen down.
    # `drawing`: the whole drawing; or, in protocol 2, `base` (the seq of the
    # drawing this one adds to) with `extend` (points added to its last
    # stroke) and `strokes` (new strokes): digitsite.game.drawing_deltas.
    "draw": (Field("round", "integer"), _optional("drawing", "object"),
             _optional("seq", "integer"), _optional("pen_up", "boolean"),
             _optional("base", "integer"), _optional("extend", "list"),
             _optional("strokes", "list")),
    "done": (Field("round", "integer"),),
    # After a round: "this was wrong, it was a `digit`" about the player's own
    # kept drawing of that round of that game (once per drawing).
    "correct": (Field("game", "string", max_length=MAX_GAME_ID_LENGTH), Field("round", "integer"),
                Field("digit", "integer", check=_a_digit)),
    "opt_out": (Field("value", "boolean"),),
    "leave": (),
    "ping": (),
}
CLIENT_TYPES = tuple(CLIENT_MESSAGES)

# -- server to client ---------------------------------------------------------

# Objects inside server messages.
SHAPES = {
    "you": (Field("id", "string"), Field("token", "string"), Field("name", "string"),
            Field("host", "boolean"), Field("opt_out", "boolean")),
    # The `room` message's fields: the room as everyone sees it.
    "room": (Field("code", "string"), Field("state", "string"),
             Field("game", "string", null=True), Field("round", "integer"),
             Field("rounds", "integer"), Field("target", "integer", null=True),
             Field("ends_at", "integer", null=True), Field("server_time", "integer"),
             Field("revision", "integer"), Field("host", "string", null=True),
             Field("rule", "string"),
             Field("settings", "object", shape="settings"),
             Field("players", "list", shape="player")),
    "settings": (Field("rounds", "integer"), Field("seconds", "number"),
                 Field("results_seconds", "number"), Field("max_players", "integer"),
                 Field("target_confidence", "number"), Field("solo", "boolean"),
                 Field("private", "boolean"), Field("classroom", "boolean")),
    "player": (Field("id", "string"), Field("name", "string"), Field("score", "integer"),
               Field("connected", "boolean"), Field("gone", "boolean"),
               Field("host", "boolean"), Field("finished", "boolean"),
               Field("opt_out", "boolean"), Field("rejoin_until", "integer", null=True)),
    "result": (Field("player", "string"), Field("name", "string"),
               Field("drawing", "object", null=True), Field("input", "string", null=True),
               Field("drawing_deleted", "boolean"), Field("digit", "integer", null=True),
               Field("probabilities", "list", null=True),
               Field("target_probability", "number"),
               Field("best_target_probability", "number"),
               Field("reached", "boolean"), Field("points", "integer"),
               Field("score", "integer"), Field("seconds", "number", null=True),
               Field("reason", "string")),
    # `rank` is null for a player who left (`gone`): only those still in the
    # room are ranked.
    "rank": (Field("rank", "integer", null=True), Field("player", "string"),
             Field("name", "string"), Field("score", "integer"), Field("gone", "boolean")),
    # A class's drawing the model got wrong, as the projector shows it.
    "class_wrong": (Field("player", "string"), Field("name", "string"),
                    Field("digit", "integer"), Field("probability", "number", null=True),
                    Field("drawing", "object", null=True)),
    # One drawing of the end-of-game gallery: what the model saw (`input`,
    # null when nothing is kept of it), its reading, and the player's own
    # correction of it (`correction`, null until they make one).
    "gallery_drawing": (Field("player", "string"), Field("name", "string"),
                        Field("round", "integer"), Field("target", "integer"),
                        Field("input", "string", null=True), Field("digit", "integer", null=True),
                        Field("probability", "number", null=True),
                        Field("target_probability", "number"),
                        Field("drawing_deleted", "boolean"), Field("kept", "boolean"),
                        Field("correction", "integer", null=True)),
    # One of a class's kept drawings, in "what your class taught the model".
    "class_sample": (Field("label", "integer"), Field("prediction", "integer"),
                     Field("drawing", "object")),
    # One player's drawing in `live_drawings`: the fields of `live_drawing`
    # but the round, which the message gives once.
    "live_entry": (Field("player", "string"), Field("drawing", "object"),
                   Field("digit", "integer"), Field("probability", "number"),
                   Field("target_probability", "number"), Field("reached", "boolean")),
}

SERVER_MESSAGES = {
    # `drawing`: a returning player's drawing of the round under way, or null.
    "welcome": (Field("protocol", "integer"), Field("rejoined", "boolean"),
                Field("you", "object", shape="you"), Field("room", "object", shape="room"),
                Field("drawing", "object", null=True)),
    "room": SHAPES["room"],
    "round_start": (Field("game", "string"), Field("round", "integer"),
                    Field("rounds", "integer"), Field("target", "integer"),
                    Field("seconds", "number"), Field("ends_at", "integer"),
                    Field("server_time", "integer")),
    "guess": (Field("round", "integer"), Field("seq", "integer", null=True),
              Field("digit", "integer"), Field("top3", "list"),
              Field("probabilities", "list"), Field("target_probability", "number"),
              Field("reached", "boolean"), Field("kept", "boolean"),
              Field("held", "boolean"), Field("model", "string", null=True)),
    # A drawing answered `held` was written: it is now the player's drawing
    # for the round (digitsite.game.drawing_writes).
    "kept": (Field("round", "integer"), Field("seq", "integer", null=True)),
    "player_finished": (Field("round", "integer"), Field("player", "string"),
                        Field("name", "string"), Field("reason", "string"),
                        Field("points", "integer"), Field("score", "integer"),
                        Field("seconds", "number", null=True),
                        Field("target_probability", "number")),
    "round_end": (Field("game", "string"), Field("round", "integer"),
                  Field("rounds", "integer"), Field("target", "integer"),
                  Field("final", "boolean"), Field("next_round_at", "integer", null=True),
                  Field("server_time", "integer"), Field("results", "list", shape="result")),
    "game_over": (Field("game", "string"), Field("rounds", "integer"), Field("rule", "string"),
                  Field("leaderboard", "list", shape="rank")),
    # After `game_over`: every drawing of the game (a class's student: their own).
    "gallery": (Field("game", "string"), Field("rounds", "integer"),
                Field("drawings", "list", shape="gallery_drawing")),
    # The answer to `correct`: the correction is recorded for the reviewers.
    "corrected": (Field("game", "string"), Field("round", "integer"), Field("digit", "integer")),
    "pong": (Field("server_time", "integer"),),
    # To a class's teacher only (digitsite.game.classroom): a student's
    # drawing as they draw, with the model's guess of it...
    "class_drawing": (Field("round", "integer"), Field("player", "string"),
                      Field("drawing", "object"), Field("digit", "integer"),
                      Field("probability", "number"), Field("target_probability", "number"),
                      Field("reached", "boolean")),
    # In an ordinary room, to every other player: a player's drawing as they
    # draw, with the model's guess of it (the same fields, bounds and pace).
    "live_drawing": (Field("round", "integer"), Field("player", "string"),
                     Field("drawing", "object"), Field("digit", "integer"),
                     Field("probability", "number"), Field("target_probability", "number"),
                     Field("reached", "boolean")),
    # Protocol 3, in place of `live_drawing`: the newest drawings of the
    # room's players, together, at most 3 times a second (the receiver's own
    # among them, which its page already shows).
    "live_drawings": (Field("round", "integer"),
                      Field("drawings", "list", shape="live_entry")),
    # ...the class's results after each round, with the confusion matrix of
    # the game so far...
    "class_round": (Field("game", "string"), Field("round", "integer"),
                    Field("target", "integer"), Field("students", "integer"),
                    Field("drawn", "integer"), Field("recognised", "integer"),
                    Field("correct", "integer"), Field("wrong", "list", shape="class_wrong"),
                    Field("matrix", "list"), Field("matrix_rounds", "integer")),
    # ...and after the game, what the class's drawings gave the model.
    "class_summary": (Field("game", "string"), Field("drawings", "integer"),
                      Field("by_digit", "list"), Field("misread", "integer"),
                      Field("samples", "list", shape="class_sample"),
                      Field("review_url", "string", null=True), Field("learn_url", "string")),
    # `for`: the type of the message refused (null when it could not be read).
    "error": (Field("code", "string"), Field("message", "string"),
              Field("for", "string", null=True)),
}

# -- times --------------------------------------------------------------------


def epoch_ms(moment):
    """A datetime as the protocol sends times: whole milliseconds since the epoch."""
    return None if moment is None else int(moment.timestamp() * 1000)


# -- reading what a client sends ----------------------------------------------


def decode(text):
    """The message in a client's text frame, of a known type; GameError otherwise
    (`bad_json` or `unknown_type`, for no message type: the error's `for` is null)."""
    try:
        message = json_input.loads(text)
    except json_input.JSONInputError as exc:
        raise GameError("bad_json", f"the message is not valid JSON: {exc}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise GameError("bad_json", "a message must be a JSON object with a string 'type'")
    kind = message["type"]
    if kind not in CLIENT_MESSAGES:
        shown = kind[:40]
        raise GameError("unknown_type", f"unknown message type '{shown}'; expected one of "
                        + ", ".join(CLIENT_TYPES))
    return message


def check_room(message, code):
    """Refuse a message that names another room than the connection's (`wrong_room`)."""
    if "room" in message and normalise_code(message["room"]) != code:
        raise GameError("wrong_room", f"this connection is for room {code}, "
                                      "not the one the message names")


def read(message):
    """The declared fields of a decoded client message, checked in their order:
    {name: value}, None for an optional field left out. GameError otherwise."""
    return {field.name: _read_field(message, field)
            for field in CLIENT_MESSAGES[message["type"]]}


def _read_field(data, field):
    name = field.name
    if name not in data or data[name] is None:
        if field.required:
            raise GameError("bad_message", f"'{name}' is required")
        return None
    value = data[name]
    test, what = KINDS[field.kind]
    if not test(value):
        raise GameError("bad_message", f"'{name}' must be {what}, got {type(value).__name__}")
    if field.max_length is not None and len(value) > field.max_length:
        raise GameError("bad_message", f"'{name}' is too long")
    if field.check is not None:
        field.check(value)
    return value


# -- building what the server sends -------------------------------------------


def record(shape, **values):
    """An object of a declared shape (SHAPES, or a server message's fields),
    its fields in their declared order."""
    fields = SHAPES[shape] if shape in SHAPES else SERVER_MESSAGES[shape]
    if len(values) == len(fields):
        try:
            return {field.name: values[field.name] for field in fields}
        except KeyError:
            pass
    names = {field.name for field in fields}
    raise TypeError(f"{shape}: unknown fields {sorted(set(values) - names)}, "
                    f"missing {sorted(names - set(values))}")


def message(kind, **values):
    """A server message of type `kind` with its declared fields."""
    if kind not in SERVER_MESSAGES:
        raise TypeError(f"no server message '{kind}'")
    return {"type": kind, **record(kind, **values)}


def error(code, text, for_type=None):
    """The `error` message: `code` from docs/protocol.md, a readable `text`."""
    return message("error", **{"code": code, "message": text, "for": for_type})


def encode(outgoing):
    """A server message as its text frame: compact JSON, fields in their order.

    orjson writes it: a room's `live_drawings` (8 drawings of 150 points)
    took 0.67 ms with json.dumps and 0.035 ms with orjson, a `guess` 6.3 us
    and 0.6 us, on the event loop, which sends every message a room gets.
    Its text differs from json.dumps' in spelling only: characters beyond
    ASCII as themselves, not escaped; 1e-05 as 0.00001; NaN and the
    infinities, which are not JSON (JSON.parse refuses them), as null. What
    orjson refuses (an integer beyond 64 bits, text that is not UTF-8, a key
    that is not a string, number or None, a numpy number) goes through
    json.dumps as before. orjson also writes dates, UUIDs and dataclasses,
    which no message holds: `message` builds them from declared fields.
    """
    try:
        return orjson.dumps(outgoing, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(outgoing, separators=(",", ":"))


def check(incoming):
    """Hold a server message against its declaration; ValueError says what is off."""
    kind = incoming.get("type") if isinstance(incoming, dict) else None
    if kind not in SERVER_MESSAGES:
        raise ValueError(f"not a server message type: {kind!r}")
    fields = {name: value for name, value in incoming.items() if name != "type"}
    _check_fields(kind, SERVER_MESSAGES[kind], fields)


def _check_fields(where, fields, values):
    names = [field.name for field in fields]
    if list(values) != names:
        raise ValueError(f"{where}: fields {list(values)}, declared {names}")
    for field in fields:
        value = values[field.name]
        if value is None and field.null:
            continue
        test, what = KINDS[field.kind]
        if not test(value):
            raise ValueError(f"{where}.{field.name} must be {what}, not {value!r}")
        if field.shape:
            items = value if field.kind == "list" else [value]
            for item in items:
                if not isinstance(item, dict):
                    raise ValueError(f"{where}.{field.name}: {item!r} is not an object")
                _check_fields(f"{where}.{field.name}", SHAPES[field.shape], item)


# -- the client's messages, for Python clients --------------------------------


def client_message(kind, **values):
    """A client message of type `kind`: its declared fields that are not None,
    in their order; `room` (any message may name its room) goes last."""
    fields = CLIENT_MESSAGES[kind]
    known = {field.name for field in fields} | {"room"}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"{kind}: unknown fields {sorted(unknown)}")
    built = {"type": kind}
    for field in fields:
        value = values.get(field.name)
        if value is None and field.required:
            raise TypeError(f"{kind}: '{field.name}' is required")
        if value is not None:
            built[field.name] = value
    if values.get("room") is not None:
        built["room"] = values["room"]
    return built


def join(name=None, *, token=None, opt_out=None, protocol=PROTOCOL_VERSION, room=None):
    return client_message("join", protocol=protocol, name=name, token=token,
                          opt_out=opt_out, room=room)


def start(rounds=None, *, room=None):
    return client_message("start", rounds=rounds, room=room)


def settings(*, private=None, rounds=None, seconds=None, max_players=None, room=None):
    return client_message("settings", private=private, rounds=rounds, seconds=seconds,
                          max_players=max_players, room=room)


def kick(player, *, room=None):
    return client_message("kick", player=player, room=room)


def draw(round_number, drawing, seq=None, *, pen_up=None, room=None):
    return client_message("draw", round=round_number, drawing=drawing, seq=seq,
                          pen_up=pen_up, room=room)


def draw_more(round_number, base, seq, *, extend=None, strokes=None, pen_up=None, room=None):
    """Protocol 2: the points added since the drawing of `base` (a seq)."""
    return client_message("draw", round=round_number, base=base, seq=seq, extend=extend,
                          strokes=strokes, pen_up=pen_up, room=room)


def done(round_number, *, room=None):
    return client_message("done", round=round_number, room=room)


def correct(game, round_number, digit, *, room=None):
    return client_message("correct", game=game, round=round_number, digit=digit, room=room)


def opt_out(value, *, room=None):
    return client_message("opt_out", value=value, room=room)


def leave(*, room=None):
    return client_message("leave", room=room)


def ping(*, room=None):
    return client_message("ping", room=room)
