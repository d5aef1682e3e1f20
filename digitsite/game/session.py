"""One player's connection to a room, as plain asyncio code.

The session checks every message a client sends (against
digitsite.game.protocol), turns each into a move in the database (seats,
rounds, guesses) and sends the messages that come back. It talks to the
outside world only through a transport (digitsite.game.transport; the
Channels consumer in production). Beside it, each with an idea of its own:

- `message_rate`: how fast the client may send;
- `room_view`: the room as this connection last heard of it;
- `scoring`: the client's drawings, recognised and answered with guesses;
- `timers`: the room's deadlines, the seat's heartbeat, rejoin windows, and
  catching the client up when a broadcast went missing;
- `live_feed`: the player's drawings, shown live to the others (a class's
  teacher; in an ordinary room, every other player);
- `class_feed`: in a class room, the teacher's reports, and what a student
  may not be sent;
- `gallery`: after the game, its drawings, and a player's correction of one.

Broadcasts come back through `on_event`, so everything a client learns about
the room, from this process or another, goes the same way.
"""

import asyncio
import logging

from django.conf import settings

from digitsite.game import clock, gallery, guesses, protocol, rooms, rounds, seats, snapshots
from digitsite.game.class_feed import ClassFeed
from digitsite.game.codes import normalise_code
from digitsite.game.database import db, patiently
from digitsite.game.drawing_deltas import RoundDrawing
from digitsite.game.live_feed import LiveFeed
from digitsite.game.message_rate import AddressBytes, MessageRate, Refusal
from digitsite.game.protocol import (
    CLOSE_FLOOD,
    CLOSE_JOIN_TIMEOUT,
    CLOSE_KICKED,
    CLOSE_LEAVE,
    CLOSE_NOT_FOUND,
    CLOSE_OTHER_TAB,
    CLOSE_REPLACED,
    CLOSE_TOO_LARGE,
    JOIN_CLOSES,
    JOIN_TIMEOUT,
    MAX_MESSAGE_BYTES,
    MAX_PLAYER_ID_LENGTH,
    RATE_PER_SECOND,
)
from digitsite.game.room_view import RoomView
from digitsite.game.rules import GameError
from digitsite.game.scoring import DrawingScorer
from digitsite.game.timers import RoomTimers

logger = logging.getLogger(__name__)


# The process's message bytes per client address (message_rate.py).
address_bytes = AddressBytes(clock.monotonic)


class PlayerSession:
    def __init__(self, code_text, transport):
        self.code = normalise_code(code_text)
        self.transport = transport
        self.player_id = None
        self.closed = False
        self.left = False
        self.replaced = False
        self.view = RoomView()
        self.rate = MessageRate(clock.monotonic)
        self.scorer = DrawingScorer(self)
        # The round's drawing as this connection's `draw` messages built it.
        self.round_drawing = RoundDrawing()
        self.protocol = None  # the version the client joined with
        self.timers = RoomTimers(self)
        self.feed = ClassFeed(self)
        self.live = LiveFeed(self)
        self.join_timer = None
        self.tasks = set()

    # -- connection life -----------------------------------------------------

    async def opened(self):
        if self.code is None or not await db(rooms.room_exists)(self.code):
            await self.error("room_not_found", "there is no such room; check the code")
            await self.close(CLOSE_NOT_FOUND)
            return
        self.join_timer = self.spawn(self._join_timeout())

    async def _join_timeout(self):
        await clock.sleep(JOIN_TIMEOUT)
        if self.player_id is None and not self.closed:
            await self.error("not_joined", f"no join within {JOIN_TIMEOUT:g} seconds")
            await self.close(CLOSE_JOIN_TIMEOUT)

    async def closed_by_client(self, finish_round=False):
        """The socket is gone: keep the seat for the rejoin window, and the
        player's round for their return (`finish_round`: end it now)."""
        self.closed = True
        self.live.closed()
        for task in list(self.tasks):
            # A stopping server (`finish_round`) still scores the drawing in
            # hand; for a client that went away it is dropped below.
            if not (finish_round and task is self.scorer.task):
                task.cancel()
        if finish_round:
            await self.scorer.drain(report=False)
        else:
            # Nobody will see its guess: not computed. A write under way lands.
            await self.scorer.drop_unscored()
        if self.player_id is None or self.left:
            return
        if self.replaced:
            return
        events = await db(seats.disconnect)(self.player_id, self.transport.channel_name,
                                            finish_round=finish_round)
        await self.broadcast_all(events)

    async def replaced_elsewhere(self, same_browser=False):
        """A newer connection took the seat: from another tab of the same
        browser (`same_browser`), or from elsewhere with the token or account."""
        self.replaced = True
        if same_browser:
            await self.error("replaced", "this room is open in another tab")
            await self.close(CLOSE_OTHER_TAB)
            return
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

    async def send(self, message, text=None):
        """Send `message` to this client; `text`, when given, is the message
        already encoded (a broadcast encoded once for the room)."""
        if self.closed:
            return
        shown = self.feed.visible(message)
        if shown is None:
            return
        try:
            if text is not None and shown is message:
                await self.transport.send_message(shown, text=text)
            else:
                await self.transport.send_message(shown)
        except Exception:  # the socket went away under us; closing handles the rest
            logger.debug("send to a closed connection dropped", exc_info=True)

    async def error(self, code, message, for_type=None):
        await self.send(protocol.error(code, message, for_type))

    async def broadcast_all(self, messages):
        for message in messages:
            await self.transport.broadcast(message)

    def spawn(self, coroutine):
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
            elif not self.rate.allowed():
                await self._rate_limited()
            else:
                await self.error("bad_json", "send JSON in text frames, not binary ones")
            return
        # At most 4 bytes per character: short texts need no encoding to measure.
        if len(text) * 4 > MAX_MESSAGE_BYTES and (
                size := len(text.encode("utf-8"))) > MAX_MESSAGE_BYTES:
            await self._too_large(size)
            return
        if not self.rate.allowed():
            await self._rate_limited()
            return
        address = getattr(self.transport, "client_address", None) or "unknown"
        if not address_bytes.allowed(address, len(text)):
            self.rate.drop()
            await self._rate_limited(too_many_bytes=True)
            return
        try:
            message = protocol.decode(text)
        except GameError as exc:
            await self.error(exc.code, exc.message)
            return
        await self._handle(message)

    async def _handle(self, message):
        """Check a decoded message's room, timing and fields; then act on it."""
        kind = message["type"]
        try:
            protocol.check_room(message, self.code)
            if kind == "join" and self.player_id is not None:
                raise GameError("already_joined", "this connection has already joined")
            if kind not in ("join", "ping") and self.player_id is None:
                raise GameError("not_joined", "send 'join' first")
            fields = protocol.read(message)
        except GameError as exc:
            await self._refuse(exc, kind)
            return
        try:
            await getattr(self, f"on_{kind}")(fields)
        except GameError as exc:
            await self.error(exc.code, exc.message, kind)
        except Exception:
            logger.exception("game message %s in room %s failed", kind, self.code)
            await self.error("internal", "the server failed to handle this message", kind)

    async def _refuse(self, exc, kind):
        """Answer a refused message; a refused `join` may end the connection."""
        await self.error(exc.code, exc.message, kind)
        if kind == "join" and exc.code in JOIN_CLOSES:
            await self.close(JOIN_CLOSES[exc.code])

    async def _rate_limited(self, too_many_bytes=False):
        refusal = self.rate.refusal()
        if refusal is Refusal.CUT_OFF:
            await self.error("rate_limited", "too many messages: disconnecting")
            await self.close(CLOSE_FLOOD)
        elif refusal is Refusal.WARN and too_many_bytes:
            await self.error("rate_limited", "too many bytes from your address: at most "
                             f"{settings.GAME_WS_BYTES_PER_SECOND_PER_ADDRESS // 1000} kB "
                             "a second; messages are being dropped")
        elif refusal is Refusal.WARN:
            await self.error("rate_limited", f"too many messages: at most about "
                             f"{RATE_PER_SECOND} a second; messages are being dropped")

    async def _too_large(self, size):
        # One line, no traceback: a client's mistake, not the server's.
        logger.warning("room %s: a message of %d bytes is over the %d-byte limit; "
                       "closing the connection with %d", self.code, size, MAX_MESSAGE_BYTES,
                       CLOSE_TOO_LARGE)
        await self.error("too_large", f"messages are limited to {MAX_MESSAGE_BYTES} bytes")
        await self.close(CLOSE_TOO_LARGE)

    # -- client messages (their fields checked by protocol.read) -------------

    async def on_ping(self, fields):
        await self.send(protocol.message("pong", server_time=protocol.epoch_ms(clock.now())))

    async def on_join(self, fields):
        try:
            # A join is a write: on SQLite it waits for any other writer,
            # and fails after the lock timeout (20 s) while one holds the
            # lock longer. It is tried again for as long as the client is
            # given to join at all.
            result = await patiently(
                seats.join, self.code, name=fields["name"], token=fields["token"],
                user=self.transport.user, channel_name=self.transport.channel_name,
                opt_out=fields["opt_out"],
                session_key=getattr(self.transport, "session_key", None),
                what=f"a join in room {self.code}", patience=JOIN_TIMEOUT,
            )
        except GameError as exc:
            if exc.code in JOIN_CLOSES:
                await self._refuse(exc, "join")
                return
            raise
        if self.closed:
            # The socket closed while the seat was being taken: give it back.
            events = await db(seats.disconnect)(result.seat.player_id,
                                                self.transport.channel_name)
            await self.broadcast_all(events)
            return
        self.player_id = result.seat.player_id
        self.protocol = fields["protocol"]
        # Before any broadcast can reach this client: what it may be sent.
        await self.feed.joined(self.player_id, result.events[0])
        self.live.joined(result.events[0], teacher=self.feed.teacher)
        if self.join_timer is not None:
            self.join_timer.cancel()
        await self.transport.subscribe(self.code)
        self.timers.start_heartbeat()
        if result.replaced_channel:
            await self.transport.notify_replaced(
                result.replaced_channel, same_browser=result.replaced_same_browser)
        await self._welcome(result)
        await self.broadcast_all(result.events)
        await self._catch_up_after_joining()
        # A room nobody was connected to may have missed its deadlines.
        await self.broadcast_all(await db(rounds.advance)(self.code))

    async def _catch_up_after_joining(self):
        """What the room announced between this join's snapshot and the
        subscription went to the others only. If the room counted a change
        this connection did not hear since, read the room again and pass it
        on, with the results it shows (on_event drops those the welcome
        brought already: RoomView.is_repeat)."""
        for message in await db(snapshots.catch_up_after)(self.code, self.view.revision):
            await self.on_event(message, read_now=True)

    async def _welcome(self, result):
        """Tell the new player who they are and what the room is, then catch them up."""
        snapshot = dict(result.events[0])
        snapshot.pop("type")
        await self.send(protocol.message(
            "welcome",
            protocol=self.protocol,
            rejoined=result.rejoined,
            you=protocol.record(
                "you",
                id=result.seat.player_id,
                token=result.token,
                name=result.seat.name,
                host=snapshot["host"] == result.seat.player_id,
                opt_out=result.seat.opt_out,
            ),
            room=snapshot,
            drawing=result.drawing,
        ))
        self._learn_room(snapshot)
        for message in result.catch_up:
            self.view.passed_on(message)
            await self.send(message)
            await self._heard(message)

    async def on_start(self, fields):
        await self.broadcast_all(await db(rounds.start_game)(self.code, self.player_id,
                                                             fields["rounds"]))

    async def on_settings(self, fields):
        changes = {name: value for name, value in fields.items() if value is not None}
        await self.broadcast_all(await db(rooms.change_settings)(self.code, self.player_id,
                                                                 changes))

    async def on_kick(self, fields):
        target = fields["player"][:MAX_PLAYER_ID_LENGTH]
        result = await db(seats.kick)(self.code, self.player_id, target)
        if result.channel_name:
            await self.transport.notify_kicked(result.channel_name)
        await self.broadcast_all(result.events)

    async def on_draw(self, fields):
        try:
            await self._draw(fields)
        except GameError:
            # Any refusal: the client sends the whole drawing next (protocol 2).
            self.round_drawing.forget()
            raise

    async def _draw(self, fields):
        round_number = fields["round"]
        # When the drawing arrived decides whether it counts for the round,
        # however late its write lands (see guesses.record_guess).
        received_at = clock.now()
        self.feed.check_draws()
        self.view.check_round(round_number, received_at)
        room = self.view.room
        raw = self.round_drawing.take(fields, room["game"], round_number,
                                      incremental=self.protocol >= 2)
        # Without `pen_up` (older pages) a drawing is taken as still being
        # drawn: it may end the round by `done` or the timer, never by
        # reaching the target mid-stroke.
        self.scorer.submit(raw, fields["seq"], room["game"], round_number, room["target"],
                           received_at, pen_up=fields["pen_up"] is True,
                           checked=self.round_drawing.checked)

    async def on_done(self, fields):
        round_number = fields["round"]
        self.feed.check_draws()
        self.view.check_round(round_number)
        game = self.view.room["game"]
        await self.scorer.drain()
        if self.view.finished:
            return  # the drawing just scored reached the target: already over
        events = await db(guesses.finish_player)(self.code, self.player_id, game,
                                                 round_number, "done")
        self.view.finished = True
        await self.broadcast_all(events)

    async def on_correct(self, fields):
        await self.send(await db(gallery.correct)(self.code, self.player_id, fields["game"],
                                                  fields["round"], fields["digit"]))

    async def on_opt_out(self, fields):
        await self.broadcast_all(await db(seats.set_opt_out)(self.player_id, fields["value"]))

    async def on_leave(self, fields):
        await self.scorer.drain()
        self.left = True
        await self.broadcast_all(await db(seats.leave)(self.player_id))
        await self.close(CLOSE_LEAVE)

    # -- what the room says --------------------------------------------------

    async def on_event(self, message, text=None, *, read_now=False):
        """A broadcast to the room arrived: note what changed, pass it on
        (`text`: the message as the sender encoded it, if it did; `read_now`:
        read from the database to catch up, see RoomView.is_stale)."""
        if (self.player_id is None or self.closed
                or self.view.is_stale(message, read_now=read_now)
                or self.view.is_repeat(message)):
            return
        self._set_timers(*self.view.hear(message, self.player_id))
        if not self.live.wanted(message):
            return
        if message["type"] == "live_drawings" and self.protocol < 3:
            await self.live.send_one_by_one(message)
            return
        self.view.passed_on(message)
        await self.send(message, text=text)
        await self._heard(message)

    async def _heard(self, message):
        """A message went to the client: what follows it for this connection
        alone (a class's reports; after the game, its gallery)."""
        await self.feed.heard(message)
        if message["type"] == "game_over":
            # Read per connection: in a class a student sees only their own.
            self.spawn(self._send_gallery(message["game"]))

    async def _send_gallery(self, game_id):
        try:
            found = await gallery.gallery_for(self.code, game_id, self.player_id)
        except Exception:  # the game is over either way; the gallery is an extra
            logger.exception("room %s: the game's gallery could not be read", self.code)
            return
        if found is not None:
            await self.send(found)

    def _learn_room(self, snapshot):
        self._set_timers(*self.view.learn(snapshot, self.player_id))

    def _set_timers(self, deadline_ms, expiry_ms):
        self.timers.set_deadline(deadline_ms)
        if expiry_ms is not None:
            self.timers.set_expiry(expiry_ms)
