"""A player's drawings shown live to others as they draw: one machinery for
a class's projector and for the small live canvases of an ordinary room.

Each PlayerSession (digitsite.game.session) has a LiveFeed. Once seated:

- in a class room, a student's scored drawings go to the teacher's
  connection alone, as `class_drawing` (the teacher's own channel group);
  the teacher's feed sends nothing;
- in an ordinary room, every player's go to the whole room, together: the
  room's board (RoomBoard) in this process holds each of its players'
  newest drawing and sends them to the room as one `live_drawings` message
  at most LIVE_UPDATES_PER_SECOND (3) times a second. A connection passes it
  on whole (protocol 3), or one `live_drawing` per other player to a page
  of protocol 1 or 2 (`send_one_by_one`);
- in a solo room, nothing goes: there is nobody to see them.

Why together: one message per player per update went to the 7 others of a
full room, 168 frames a second per room, each a hop through the channel
layer, the consumer and a socket write on the event loop. At 128 players in
rooms of 8 (bench/bench_load.py, one process) the live canvases sent that
way took 40% of a server's CPU: 2.71 ms of CPU a guess with them, 337
guesses a second at p50 177 ms, and 1.59 ms, 554 a second at 30 ms, with
them switched off. One message per room and update is 24 frames a second
per room: 1.96 ms a guess and 449 a second at 128 ms, against 2.74 ms and
329 a second at 185 ms for the code before, run side by side (README,
"Live drawings together").

The same bounds hold everywhere (the numbers are classroom.LIVE_*): the
drawings are those the session scores for its own player anyway, so no
model work is added; a player's go at most LIVE_UPDATES_PER_SECOND a second,
a newer drawing replacing one that waits for its turn; each is made small
only when it goes (classroom.simplify_drawing: at most 150 points, at most
LIVE_MAX_BYTES, 2.3 kB, a drawing). A player of a room of rules.MAX_PLAYERS
(8) receives at most 3 messages a second from each server process the room
has players on, holding at most the 7 others' drawings and their own
(which the page ignores): at most 8 x 3 x 2.3 kB = 55.2 kB a second
(classroom.room_live_bandwidth).
"""

import asyncio
import logging
import weakref

from digitsite.game import classroom, clock, protocol
from digitsite.game.outage_log import OutageLog

logger = logging.getLogger(__name__)

# The live drawings of this process that could not go (the channel layer
# away), logged as an outage (digitsite.game.outage_log). Each logged its
# traceback: a class of 40 drawing while Redis was away lost up to 3 a
# student a second, 120 tracebacks a second; 25 rooms' boards, up to 75.
_lost = OutageLog(logger, "live drawings", level=logging.WARNING)


class LiveFeed:
    def __init__(self, session):
        self.session = session
        # The message this connection's drawings go out as; None: they do not.
        self.kind = None
        self.throttle = classroom.LiveThrottle()
        # The newest scored drawing not yet sent, (game, round, live_entry),
        # and the task that sends it when the throttle allows.
        self.pending = None
        self.flush_task = None

    def joined(self, snapshot, *, teacher):
        """The session was seated; `snapshot`: the room as its welcome showed it."""
        settings = snapshot["settings"]
        if settings["classroom"]:
            self.kind = None if teacher else "class_drawing"
        elif settings["solo"]:
            self.kind = None
        else:
            self.kind = "live_drawing"

    def closed(self):
        """The connection is gone: its drawing waiting on the board goes no more."""
        board = _boards_of_this_loop().get(self.session.code)
        if board is not None:
            board.leave(self.session)

    def wanted(self, message):
        """Whether a message heard from the room goes on to this client: not
        the player's own live drawing, which their canvas shows already."""
        me = self.session.player_id
        if message["type"] == "live_drawing":
            return message["player"] != me
        if message["type"] == "live_drawings":
            return any(entry["player"] != me for entry in message["drawings"])
        return True

    async def send_one_by_one(self, message):
        """A `live_drawings` to a page of protocol 1 or 2: as one `live_drawing`
        for each other player (encoded for this connection alone: the cost
        the board saves the pages of protocol 3)."""
        for entry in message["drawings"]:
            if entry["player"] != self.session.player_id:
                await self.session.send(protocol.message(
                    "live_drawing", round=message["round"], **entry))

    async def scored(self, round_number, drawing, prediction, target_probability, *,
                     reached, kept, game=None):
        """A drawing of this player's was scored (and `kept` for the round;
        `game`: the game it was drawn in)."""
        session = self.session
        if self.kind is None or not kept or session.closed or session.replaced:
            # A write that outlived its socket answers no one: a closed or
            # replaced connection sends no live drawing, to the room's board
            # (which it has left already, or where it would take a newer
            # connection's place) or to a class's teacher. (A newer
            # connection of the player in the same process can still lose
            # its place on the board for one update, until the older one
            # hears it was replaced.)
            return
        digit = int(prediction.digit)
        entry = protocol.record(
            "live_entry", player=session.player_id, drawing=drawing, digit=digit,
            probability=float(prediction.probabilities[digit]),
            target_probability=float(target_probability), reached=bool(reached))
        if self.kind == "live_drawing":
            room_board(session.code).put(session, (game, round_number), entry)
            return
        self.pending = (game, round_number, entry)
        wait = self.throttle.wait(clock.monotonic())
        if self.flush_task is not None and not self.flush_task.done():
            return  # the waiting send takes this newer drawing
        if wait <= 0:
            await self._flush()
        else:
            self.flush_task = self.session.spawn(self._flush_after(wait))

    async def _flush_after(self, seconds):
        await clock.sleep(seconds)
        await self._flush()

    async def _flush(self):
        pending, self.pending = self.pending, None
        if pending is None:
            return
        game, round_number, entry = pending
        if _round_over(self.session.view.room, game, round_number):
            return  # the others moved on
        # Simplified only when it goes: drawings replaced meanwhile cost nothing.
        entry["drawing"] = classroom.simplify_drawing(entry["drawing"])
        self.throttle.sent(clock.monotonic())
        try:
            await self.session.transport.send_to_teacher(
                protocol.message(self.kind, round=round_number, **entry))
        except Exception:  # a lost live drawing is replaced by the next one
            _lost.failed(f"room {self.session.code}")
        else:
            _lost.succeeded()


def _round_over(room, game, round_number):
    """Whether a drawing of `game`'s round `round_number` (`game` None: of
    whichever game) is of a round the connection's view of the `room` has
    left (None: the connection has no view yet)."""
    return room is not None and (room["round"] != round_number
                                 or (game is not None and room["game"] != game))


# The boards of this process's ordinary rooms, by room code, one set per event
# loop (a test's loops come and go; a server has one).
_boards = weakref.WeakKeyDictionary()


def _boards_of_this_loop():
    return _boards.setdefault(asyncio.get_running_loop(), {})


def room_board(code):
    """The room's board in this process, made on first use."""
    boards = _boards_of_this_loop()
    board = boards.get(code)
    if board is None:
        board = boards[code] = RoomBoard(code, boards)
    return board


class RoomBoard:
    """The newest live drawing of each of this process's players in one
    ordinary room, sent to the room together as `live_drawings`.

    A drawing put on an idle board goes at once; then the board sends what
    came meanwhile every LIVE_INTERVAL (a third of a second) for as long as
    drawings come, each player's newest replacing the one before it. So each
    player's drawings go at most 3 times a second, as with a pace per
    player, and the room's members get one message per update instead of
    one per drawing player. The board lives while connections that drew on
    it are open in this process (`members`); the last to close takes it away.
    """

    def __init__(self, code, boards):
        self.code = code
        self._boards = boards
        self.members = set()  # the room's PlayerSessions in this process
        self.pending = {}  # player id -> (session, (game, round), entry)
        self.task = None
        self.sending = False

    def put(self, session, game_round, entry):
        """`entry`: the drawing (a `live_entry`) of `game_round`, (game, round)."""
        if session.closed:
            return  # it has left the board, or would never leave it
        self.members.add(session)
        self.pending[session.player_id] = (session, game_round, entry)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._send_while_drawn())

    def leave(self, session):
        self.members.discard(session)
        waiting = self.pending.get(session.player_id)
        if waiting is not None and waiting[0] is session:
            del self.pending[session.player_id]
        if not self.members:
            if self._boards.get(self.code) is self:
                del self._boards[self.code]
            # A send under way finishes (the room's others get it); a board
            # waiting for its next turn has nothing left to send.
            if self.task is not None and not self.sending:
                self.task.cancel()

    async def _send_while_drawn(self):
        while self.pending:
            self.sending = True
            try:
                await self._send()
            except Exception:  # the next drawings go all the same
                _lost.failed(f"room {self.code}")
            else:
                _lost.succeeded()
            finally:
                self.sending = False
            if not self.members:
                return  # the room's last connection here closed meanwhile
            # The pace: the next message no sooner than an interval from now.
            await clock.sleep(classroom.LIVE_INTERVAL)

    async def _send(self):
        waiting, self.pending = self.pending, {}
        by_round = {}
        for session, (game, round_number), entry in waiting.values():
            room = session.view.room
            if session.closed or room is None or _round_over(room, game, round_number):
                continue  # the others moved on
            # Simplified only when it goes: drawings replaced meanwhile cost nothing.
            entry["drawing"] = classroom.simplify_drawing(entry["drawing"])
            by_round.setdefault(round_number, (session, []))[1].append(entry)
        for round_number, (sender, entries) in by_round.items():
            await sender.transport.broadcast(protocol.message(
                "live_drawings", round=round_number, drawings=entries))
