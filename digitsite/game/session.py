"""One player's connection to a room, as plain asyncio code.

The session checks every message a client sends, scores drawings, keeps the
room's timers and turns what `rooms` returns into messages. It talks to the
outside world only through a transport (the Channels consumer in production):

    transport.channel_name      this connection's address in the channel layer
    transport.user              the Django user, or None / AnonymousUser
    await transport.send_message(dict)     to this client
    await transport.broadcast(dict)        to everyone in the room, this client included
    await transport.subscribe(code)        start receiving the room's broadcasts
    await transport.notify_replaced(channel_name)   tell an older connection it lost its seat
    await transport.notify_kicked(channel_name)     tell a removed player's connection
    transport.session_key       the Django session key of the connection, or None
    await transport.close_socket(code)

Broadcasts come back through `on_event`, so everything a client learns about
the room, from this process or another, goes the same way.
"""

import asyncio
import logging
import random
from collections import deque

from digitsite.game import clock, rooms, rules
from digitsite.game.codes import normalise_code
from digitsite.game.database import db, patiently
from digitsite.game.rules import GameError
from recognizer import json_input

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
MAX_POINTS = 5000
RATE_PER_SECOND = 20
RATE_BURST = 30
# A client that keeps sending after being told it is rate limited is cut off.
FLOOD_DROPS = 100
FLOOD_WINDOW = 5.0
JOIN_TIMEOUT = 30.0
MAX_TOKEN_LENGTH = 200
# A connection whose view of the room is still behind the database this long
# after a deadline missed a broadcast (its sender died, or the channel layer
# dropped it) and catches its client up directly.
CATCH_UP_AFTER = 4.0

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

GRACE_MS = int(rules.ROUND_GRACE_SECONDS * 1000)

CLIENT_TYPES = ("join", "start", "settings", "kick", "draw", "done", "opt_out", "leave",
                "ping")
# The room settings a host may change between games (docs/protocol.md).
SETTINGS_FIELDS = ("private", "rounds", "seconds", "max_players")
# Join refusals that end the connection, and the close code that follows.
JOIN_CLOSES = {"room_full": CLOSE_ROOM_FULL, "room_not_found": CLOSE_NOT_FOUND,
               "room_closed": CLOSE_NOT_FOUND, "kicked": CLOSE_KICKED}


def _field(data, name, kind, *, required=True, default=None):
    """data[name] checked against `kind`; GameError('bad_message') otherwise."""
    if name not in data or data[name] is None:
        if required:
            raise GameError("bad_message", f"'{name}' is required")
        return default
    value = data[name]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        what = "a whole number"
    elif kind is bool:
        ok = isinstance(value, bool)
        what = "true or false"
    elif kind is str:
        ok = isinstance(value, str)
        what = "a string"
    else:
        ok = isinstance(value, dict)
        what = "an object"
    if not ok:
        raise GameError("bad_message", f"'{name}' must be {what}, got {type(value).__name__}")
    return value


def _count_points(drawing):
    strokes = drawing.get("strokes")
    if not isinstance(strokes, list):
        return 0
    return sum(len(stroke) for stroke in strokes if isinstance(stroke, list))


def _prepare(raw):
    """Validate a drawing and render the network's input (CPU work, run in a thread)."""
    from recognizer.payloads import PayloadError, parse_drawing
    from recognizer.preprocessing import DrawingError, InkLimitError, strokes_to_input

    try:
        drawing = parse_drawing(raw, max_points=MAX_POINTS)
        return drawing, strokes_to_input(drawing.strokes, drawing.width, drawing.height)
    except InkLimitError as exc:
        raise GameError("too_much_ink", str(exc)) from exc
    except (PayloadError, DrawingError) as exc:
        raise GameError("bad_drawing", str(exc)) from exc


class PlayerSession:
    def __init__(self, code_text, transport):
        self.code = normalise_code(code_text)
        self.transport = transport
        self.player_id = None
        self.closed = False
        self.left = False
        self.replaced = False
        # The room as this connection last heard of it (from broadcasts): lets
        # it refuse stale drawings without a database read. The database has
        # the last word on everything that changes the game.
        self.room = None
        self.finished = False
        self.bucket = rules.TokenBucket(RATE_PER_SECOND, RATE_BURST, clock=clock.monotonic)
        self.drops = deque()
        # The first drop is always reported, whatever the clock reads (a test's
        # manual clock starts at 0).
        self.last_rate_error = float("-inf")
        self.pending = None
        self.scorer = None
        self.join_timer = None
        self.deadline_task = None
        self.deadline_ms = None
        self.expiry_task = None
        self.expiry_ms = None
        self.tasks = set()

    # -- connection life -----------------------------------------------------

    async def opened(self):
        if self.code is None or not await db(rooms.room_exists)(self.code):
            await self.error("room_not_found", "there is no such room; check the code")
            await self.close(CLOSE_NOT_FOUND)
            return
        self.join_timer = self._spawn(self._join_timeout())

    async def _join_timeout(self):
        await clock.sleep(JOIN_TIMEOUT)
        if self.player_id is None and not self.closed:
            await self.error("not_joined", f"no join within {JOIN_TIMEOUT:g} seconds")
            await self.close(CLOSE_JOIN_TIMEOUT)

    async def closed_by_client(self):
        """The socket is gone: keep the seat for the rejoin window, store what was drawn."""
        self.closed = True
        for task in list(self.tasks):
            # Scoring goes on: the drawing in hand must still be kept.
            if task is not self.scorer:
                task.cancel()
        if self.player_id is None or self.left:
            return
        await self._drain()
        if self.replaced:
            return
        events = await db(rooms.disconnect)(self.player_id, self.transport.channel_name)
        await self.broadcast_all(events)

    async def replaced_elsewhere(self):
        self.replaced = True
        await self.error("replaced", "this seat was taken over by a newer connection")
        await self.close(CLOSE_REPLACED)

    async def kicked_by_host(self):
        # The seat is already given up: nothing to keep when the socket closes.
        self.left = True
        await self.error("kicked", "the host removed you from this room")
        await self.close(CLOSE_KICKED)

    async def close(self, code):
        if not self.closed:
            await self.transport.close_socket(code)

    # -- sending -------------------------------------------------------------

    async def send(self, message):
        if self.closed:
            return
        try:
            await self.transport.send_message(message)
        except Exception:  # the socket went away under us; closing handles the rest
            logger.debug("send to a closed connection dropped", exc_info=True)

    async def error(self, code, message, for_type=None):
        await self.send({"type": "error", "code": code, "message": message, "for": for_type})

    async def broadcast_all(self, messages):
        for message in messages:
            await self.transport.broadcast(message)

    def _spawn(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- receiving -----------------------------------------------------------

    async def receive(self, text=None, data=None):
        if self.closed:
            return
        if text is None:
            if len(data or b"") > MAX_MESSAGE_BYTES:
                await self._too_large(len(data))
            elif not self._allowed():
                await self._rate_limited()
            else:
                await self.error("bad_json", "send JSON in text frames, not binary ones")
            return
        # At most 4 bytes per character: short texts need no encoding to measure.
        if len(text) * 4 > MAX_MESSAGE_BYTES and (
                size := len(text.encode("utf-8"))) > MAX_MESSAGE_BYTES:
            await self._too_large(size)
            return
        if not self._allowed():
            await self._rate_limited()
            return
        try:
            message = json_input.loads(text)
        except json_input.JSONInputError as exc:
            await self.error("bad_json", f"the message is not valid JSON: {exc}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.error("bad_json", "a message must be a JSON object with a string 'type'")
            return
        kind = message["type"]
        if kind not in CLIENT_TYPES:
            shown = kind[:40]
            await self.error("unknown_type", f"unknown message type '{shown}'; expected one of "
                             + ", ".join(CLIENT_TYPES))
            return
        try:
            if "room" in message and normalise_code(message["room"]) != self.code:
                raise GameError("wrong_room", f"this connection is for room {self.code}, "
                                              "not the one the message names")
            if kind not in ("join", "ping") and self.player_id is None:
                raise GameError("not_joined", "send 'join' first")
            await getattr(self, f"on_{kind}")(message)
        except GameError as exc:
            await self.error(exc.code, exc.message, kind)
        except Exception:
            logger.exception("game message %s in room %s failed", kind, self.code)
            await self.error("internal", "the server failed to handle this message", kind)

    def _allowed(self):
        if self.bucket.take():
            return True
        now = clock.monotonic()
        self.drops.append(now)
        while self.drops and self.drops[0] < now - FLOOD_WINDOW:
            self.drops.popleft()
        return False

    async def _rate_limited(self):
        if len(self.drops) > FLOOD_DROPS:
            await self.error("rate_limited", "too many messages: disconnecting")
            await self.close(CLOSE_FLOOD)
            return
        now = clock.monotonic()
        if now - self.last_rate_error >= 1.0:
            self.last_rate_error = now
            await self.error("rate_limited", f"too many messages: at most about "
                             f"{RATE_PER_SECOND} a second; messages are being dropped")

    async def _too_large(self, size):
        # One line, no traceback: a client's mistake, not the server's.
        logger.warning("room %s: a message of %d bytes is over the %d-byte limit; "
                       "closing the connection with %d", self.code, size, MAX_MESSAGE_BYTES,
                       CLOSE_TOO_LARGE)
        await self.error("too_large", f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
        await self.close(CLOSE_TOO_LARGE)

    # -- client messages -----------------------------------------------------

    async def on_ping(self, message):
        await self.send({"type": "pong", "server_time": rooms.epoch_ms(rooms.now())})

    async def on_join(self, message):
        if self.player_id is not None:
            raise GameError("already_joined", "this connection has already joined")
        protocol = _field(message, "protocol", int)
        if protocol != rules.PROTOCOL_VERSION:
            await self.error("unsupported_protocol", f"this server speaks protocol "
                             f"{rules.PROTOCOL_VERSION}, not {protocol}", "join")
            await self.close(CLOSE_PROTOCOL)
            return
        name = _field(message, "name", str, required=False)
        token = _field(message, "token", str, required=False)
        if token is not None and len(token) > MAX_TOKEN_LENGTH:
            raise GameError("bad_message", "'token' is too long")
        opt_out = _field(message, "opt_out", bool, required=False)
        try:
            # A join is a write: on SQLite it waits for any other writer,
            # and fails after the lock timeout (20 s) while one holds the
            # lock longer. It is tried again for as long as the client is
            # given to join at all.
            result = await patiently(
                rooms.join, self.code, name=name, token=token, user=self.transport.user,
                channel_name=self.transport.channel_name, opt_out=opt_out,
                session_key=getattr(self.transport, "session_key", None),
                what=f"a join in room {self.code}", patience=JOIN_TIMEOUT,
            )
        except GameError as exc:
            if exc.code in JOIN_CLOSES:
                await self.error(exc.code, exc.message, "join")
                await self.close(JOIN_CLOSES[exc.code])
                return
            raise
        if self.closed:
            # The socket closed while the seat was being taken: give it back.
            events = await db(rooms.disconnect)(result.seat.player_id,
                                                self.transport.channel_name)
            await self.broadcast_all(events)
            return
        self.player_id = result.seat.player_id
        if self.join_timer is not None:
            self.join_timer.cancel()
        await self.transport.subscribe(self.code)
        self._spawn(self._heartbeat())
        if result.replaced_channel:
            await self.transport.notify_replaced(result.replaced_channel)
        snapshot = dict(result.events[0])
        snapshot.pop("type")
        await self.send({
            "type": "welcome",
            "protocol": rules.PROTOCOL_VERSION,
            "rejoined": result.rejoined,
            "you": {
                "id": result.seat.player_id,
                "token": result.token,
                "name": result.seat.name,
                "host": snapshot["host"] == result.seat.player_id,
                "opt_out": result.seat.opt_out,
            },
            "room": snapshot,
        })
        self._learn_room(snapshot)
        for message_ in result.catch_up:
            await self.send(message_)
        await self.broadcast_all(result.events)
        # A room nobody was connected to may have missed its deadlines.
        await self.broadcast_all(await db(rooms.advance)(self.code))

    async def on_start(self, message):
        rounds = _field(message, "rounds", int, required=False)
        await self.broadcast_all(await db(rooms.start_game)(self.code, self.player_id, rounds))

    async def on_settings(self, message):
        changes = {name: message[name] for name in SETTINGS_FIELDS
                   if message.get(name) is not None}
        await self.broadcast_all(await db(rooms.change_settings)(self.code, self.player_id,
                                                                 changes))

    async def on_kick(self, message):
        target = _field(message, "player", str)
        result = await db(rooms.kick)(self.code, self.player_id, target[:64])
        if result.channel_name:
            await self.transport.notify_kicked(result.channel_name)
        await self.broadcast_all(result.events)

    def _check_round(self, round_number, at=None):
        room = self.room
        if room is None or room["state"] != "playing":
            raise GameError("not_playing", "no round is being played now")
        if round_number != room["round"]:
            raise GameError("wrong_round", f"round {round_number} is not the current round "
                                           f"({room['round']})")
        at_ms = (clock.time() if at is None else at.timestamp()) * 1000
        if room["ends_at"] is not None and at_ms >= room["ends_at"]:
            raise GameError("not_playing", f"time is up for round {round_number}")
        if self.finished:
            raise GameError("already_finished", "your round is already over")

    async def on_draw(self, message):
        round_number = _field(message, "round", int)
        raw = _field(message, "drawing", dict)
        seq = _field(message, "seq", int, required=False)
        # When the drawing arrived decides whether it counts for the round,
        # however late its write lands (see rooms.record_guess).
        received_at = rooms.now()
        self._check_round(round_number, received_at)
        if _count_points(raw) > MAX_POINTS:
            raise GameError("too_many_points", f"a drawing has at most {MAX_POINTS} points")
        room = self.room
        # Only the newest drawing waiting is scored, and only it is checked in
        # full: a fast sender cannot queue work or make the server parse
        # drawings nobody will look at.
        self.pending = (raw, seq, room["game"], round_number, room["target"], received_at)
        if self.scorer is None or self.scorer.done():
            self.scorer = self._spawn(self._score_pending())

    async def on_done(self, message):
        round_number = _field(message, "round", int)
        self._check_round(round_number)
        game = self.room["game"]
        await self._drain()
        if self.finished:
            return  # the drawing just scored reached the target: already over
        events = await db(rooms.finish_player)(self.code, self.player_id, game, round_number,
                                               "done")
        self.finished = True
        await self.broadcast_all(events)

    async def on_opt_out(self, message):
        value = _field(message, "value", bool)
        await self.broadcast_all(await db(rooms.set_opt_out)(self.player_id, value))

    async def on_leave(self, message):
        await self._drain()
        self.left = True
        await self.broadcast_all(await db(rooms.leave)(self.player_id))
        await self.close(CLOSE_LEAVE)

    # -- scoring -------------------------------------------------------------

    async def _drain(self, timeout=10.0):
        """Wait until the drawing in hand (if any) is scored and written."""
        if self.scorer is not None and not self.scorer.done():
            await asyncio.wait({self.scorer}, timeout=timeout)

    async def _score_pending(self):
        from recognizer.inference import ModelUnavailable

        while self.pending is not None:
            item, self.pending = self.pending, None
            try:
                # Shielded: a drawing being recorded is recorded even if the
                # socket closes meanwhile.
                await asyncio.shield(self._score(*item))
            except GameError as exc:
                await self.error(exc.code, exc.message, "draw")
            except ModelUnavailable as exc:
                await self.error("model_unavailable", f"the recognizer is not ready: {exc}",
                                 "draw")
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scoring a drawing in room %s failed", self.code)
                await self.error("internal", "the server failed to score the drawing", "draw")

    async def _score(self, raw, seq, game, round_number, target, received_at):
        from recognizer.inference import get_service
        from recognizer.preprocessing import input_to_bytes

        if self.finished:
            return
        drawing, image = await asyncio.to_thread(_prepare, raw)
        prediction = await get_service().apredict(image)
        # The drawing is written before its guess goes out, so a guess marked
        # `kept` is a promise: this drawing is the player's for the round.
        # An overloaded server then answers fewer drawings, later, but never
        # loses one it told the player about. A database that refuses the
        # write (locked, restarting) delays the guess: the write is tried
        # again until it lands, and `received_at` still decides whether the
        # drawing counts for the round.
        kept, events = await patiently(
            rooms.record_guess, self.code, self.player_id, game, round_number,
            what=f"a drawing in room {self.code}",
            drawing=drawing.as_json(), input_bytes=input_to_bytes(image),
            prediction=prediction, target=target, received_at=received_at,
        )
        p_target = float(prediction.probabilities[target])
        reached = any(m["type"] == "player_finished" and m["player"] == self.player_id
                      and m["reason"] == "reached" for m in events)
        if reached:
            self.finished = True  # nothing drawn after this counts
        await self.send({
            "type": "guess",
            "round": round_number,
            "seq": seq,
            "digit": prediction.digit,
            "top3": [[d, p] for d, p in prediction.top(3)],
            "probabilities": prediction.probabilities,
            "target_probability": p_target,
            "reached": reached,
            "kept": kept,
            "model": prediction.version,
        })
        await self.broadcast_all(events)

    # -- what the room says --------------------------------------------------

    async def on_event(self, message):
        """A broadcast to the room arrived: note what changed, pass it on."""
        if self.player_id is None or self.closed:
            return
        kind = message.get("type")
        if kind == "room":
            self._learn_room(message)
        elif kind == "round_start" and self.room is not None:
            if (message["game"], message["round"]) != (self.room["game"], self.room["round"]):
                self.finished = False
            self.room.update(state="playing", game=message["game"], round=message["round"],
                             target=message["target"], ends_at=message["ends_at"])
            self._set_deadline(message["ends_at"] + GRACE_MS)
        elif kind == "round_end" and self.room is not None:
            if message["round"] == self.room["round"]:
                self.room["state"] = "finished" if message["final"] else "results"
                self.room["ends_at"] = message["next_round_at"]
                self._set_deadline(message["next_round_at"])
        elif kind == "player_finished" and message.get("player") == self.player_id:
            if self.room is not None and message["round"] == self.room["round"]:
                self.finished = True
        await self.send(message)

    def _learn_room(self, snapshot):
        previous = self.room
        self.room = {key: snapshot[key] for key in
                     ("state", "game", "round", "target", "ends_at", "settings")}
        me = next((p for p in snapshot["players"] if p["id"] == self.player_id), None)
        new_round = previous is None or (previous["game"], previous["round"]) != (
            snapshot["game"], snapshot["round"])
        if me is not None and (new_round or me["finished"]):
            self.finished = me["finished"]
        if snapshot["state"] == "playing":
            self._set_deadline(snapshot["ends_at"] + GRACE_MS)
        elif snapshot["state"] == "results":
            self._set_deadline(snapshot["ends_at"])
        expiries = [p["rejoin_until"] for p in snapshot["players"] if p.get("rejoin_until")]
        if expiries:
            self._set_expiry(min(expiries))

    # -- timers --------------------------------------------------------------
    # Every connection in a room keeps the room's timers; the database lets
    # exactly one of them act at each deadline, and its broadcast moves the
    # others' timers on. A superseded timer is left to notice it, not
    # cancelled: cancelling could cut its broadcast in half.

    def _set_deadline(self, deadline_ms):
        if deadline_ms is None or deadline_ms == self.deadline_ms or self.closed:
            return
        self.deadline_ms = deadline_ms
        self.deadline_task = self._spawn(self._deadline(deadline_ms))

    async def _deadline(self, deadline_ms):
        while not self.closed:
            # A little jitter so the room's connections do not all hit the
            # database in the same millisecond.
            await clock.sleep(max(deadline_ms / 1000 - clock.time(), 0)
                              + random.uniform(0.0, 0.05))
            if deadline_ms != self.deadline_ms:
                return
            await asyncio.shield(self._advance())
            # Whoever moved the room on (this connection or another) broadcast
            # it, and the broadcast replaces this timer. Should none come, look
            # again.
            await clock.sleep(1.0)
            if deadline_ms != self.deadline_ms:
                return
            phase = await db(rooms.phase)(self.code)
            if phase is None:
                return
            if self._behind(phase):
                # A busy server's broadcast may only be late: give it time.
                await clock.sleep(CATCH_UP_AFTER)
                if deadline_ms == self.deadline_ms and not self.closed:
                    phase = await db(rooms.phase)(self.code)
                    if phase is not None and self._behind(phase):
                        await self._catch_up()
                return
            if phase.closes_at is None or phase.state not in ("playing", "results"):
                return
            deadline_ms = rooms.epoch_ms(phase.closes_at)
            self.deadline_ms = deadline_ms

    def _behind(self, phase):
        """This connection's view of the room is older than the database's."""
        room = self.room
        return room is not None and (room["state"], room["game"], room["round"]) != (
            phase.state, phase.game or None, phase.round)

    async def _catch_up(self):
        """Tell this client what the room's lost broadcasts would have told it."""
        logger.warning("room %s: a broadcast did not arrive; catching the client up",
                       self.code)
        for message in await db(rooms.catch_up)(self.code):
            await self.on_event(message)

    async def _advance(self):
        events = await db(rooms.advance)(self.code)
        await self.broadcast_all(events)
        return bool(events)

    async def _heartbeat(self):
        while not self.closed:
            await clock.sleep(rules.SEAT_HEARTBEAT_SECONDS * random.uniform(0.9, 1.1))
            if self.closed:
                return
            try:
                events = await asyncio.shield(db(rooms.heartbeat)(
                    self.code, self.player_id, self.transport.channel_name))
                await self.broadcast_all(events)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: the next beat tries again
                logger.exception("seat heartbeat in room %s failed", self.code)

    def _set_expiry(self, expiry_ms):
        if self.expiry_ms is not None and self.expiry_ms <= expiry_ms and (
                self.expiry_task is not None and not self.expiry_task.done()):
            return
        self.expiry_ms = expiry_ms
        self.expiry_task = self._spawn(self._expire(expiry_ms))

    async def _expire(self, expiry_ms):
        await clock.sleep(max(expiry_ms / 1000 - clock.time(), 0) + random.uniform(0.05, 0.15))
        if expiry_ms != self.expiry_ms:
            return
        self.expiry_ms = None
        await asyncio.shield(self._expire_now())

    async def _expire_now(self):
        await self.broadcast_all(await db(rooms.expire_seats)(self.code))
