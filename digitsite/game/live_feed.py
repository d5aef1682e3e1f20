"""A player's drawings shown live to others as they draw: one machinery for
a class's projector and for the small live canvases of an ordinary room.

Each PlayerSession (digitsite.game.session) has a LiveFeed. Once seated:

- in a class room, a student's scored drawings go to the teacher's
  connection alone, as `class_drawing` (the teacher's own channel group);
  the teacher's feed sends nothing;
- in an ordinary room, every player's go to the whole room, as
  `live_drawing`; each connection passes on those of the others (`wanted`);
- in a solo room, nothing goes: there is nobody to see them.

The same bounds hold everywhere (the numbers are classroom.LIVE_*): the
drawings are those the session scores for its own player anyway, so no
model work is added; a player's go at most LIVE_UPDATES_PER_SECOND (3) a
second, a newer drawing replacing one that waits for its turn; each is made
small only when it goes (classroom.simplify_drawing: at most 150 points, at
most LIVE_MAX_BYTES, 2.3 kB, a message). A room of rules.MAX_PLAYERS (8)
sends each player at most 7 x 3 x 2.3 kB = 48.3 kB a second
(classroom.room_live_bandwidth).
"""

import logging

from digitsite.game import classroom, clock, protocol

logger = logging.getLogger(__name__)


class LiveFeed:
    def __init__(self, session):
        self.session = session
        # The message this connection's drawings go out as; None: they do not.
        self.kind = None
        self.throttle = classroom.LiveThrottle()
        # The newest scored drawing not yet sent, and the task that sends it
        # when the throttle allows.
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

    def wanted(self, message):
        """Whether a message heard from the room goes on to this client: not
        the player's own live drawing, which their canvas shows already."""
        return not (message["type"] == "live_drawing"
                    and message["player"] == self.session.player_id)

    async def scored(self, round_number, drawing, prediction, target_probability, *,
                     reached, kept):
        """A drawing of this player's was scored (and `kept` for the round)."""
        if self.kind is None or not kept:
            return
        digit = int(prediction.digit)
        self.pending = protocol.message(
            self.kind, round=round_number, player=self.session.player_id,
            drawing=drawing, digit=digit, probability=float(prediction.probabilities[digit]),
            target_probability=float(target_probability), reached=bool(reached))
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
        message, self.pending = self.pending, None
        if message is None:
            return
        room = self.session.view.room
        if room is not None and room["round"] != message["round"]:
            return  # a drawing of a round that is over: the others moved on
        # Simplified only when it goes: drawings replaced meanwhile cost nothing.
        message["drawing"] = classroom.simplify_drawing(message["drawing"])
        self.throttle.sent(clock.monotonic())
        transport = self.session.transport
        try:
            if message["type"] == "class_drawing":
                await transport.send_to_teacher(message)
            else:
                await transport.broadcast(message)
        except Exception:  # a lost live drawing is replaced by the next one
            logger.warning("room %s: a live drawing was lost", self.session.code,
                           exc_info=True)
