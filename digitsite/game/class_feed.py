"""A connection's part in a class room: the teacher's projector feed.

Each PlayerSession (digitsite.game.session) has a ClassFeed; outside a class
room it does nothing. In a class room:

- a student's scored drawings go to the teacher as `class_drawing`, at most
  classroom.LIVE_UPDATES_PER_SECOND a second, the newest waiting for its
  turn; they are drawn from the guesses the session computes anyway, so the
  projector costs no model work;
- the teacher's connection joins a channel group of its own, the only one
  those drawings are sent to, and on hearing a round's end (or the game's)
  reads the class's results from the database and sends them to its client
  (`class_round`, `class_summary`);
- every message to a client passes `visible`, so a student is never sent
  another student's drawing (classroom.visible_to).
"""

import logging

from digitsite.game import class_reports, classroom, clock, protocol
from digitsite.game.database import db
from digitsite.game.rules import GameError

logger = logging.getLogger(__name__)


class ClassFeed:
    def __init__(self, session):
        self.session = session
        self.classroom = False
        self.teacher = False
        self.throttle = classroom.LiveThrottle()
        # The newest scored drawing not yet sent to the teacher, and the task
        # that sends it when the throttle allows.
        self.pending = None
        self.flush_task = None

    # -- joining -------------------------------------------------------------

    async def joined(self, player_id, snapshot):
        """The session was seated; `snapshot`: the room as its welcome showed it."""
        self.classroom = bool(snapshot["settings"]["classroom"])
        self.teacher = classroom.receives_live_drawings(self.classroom, snapshot["host"],
                                                        player_id)
        if self.teacher:
            await self.session.transport.subscribe_teacher(self.session.code)

    # -- what the client may see and do ---------------------------------------

    def visible(self, message):
        """The message as this connection's client may see it (None: not at all)."""
        if not self.classroom:
            return message
        return classroom.visible_to(message, self.session.player_id, teacher=self.teacher)

    def check_draws(self):
        """Refuse a `draw` or `done` from a class's teacher."""
        if self.teacher:
            raise GameError("not_drawing", "the teacher of a class does not draw; "
                                           "students draw on their own devices")

    # -- a student's live drawings ------------------------------------------------

    async def scored(self, round_number, drawing, prediction, target_probability, *,
                     reached, kept):
        """A drawing of this student's was scored (and `kept` for the round)."""
        if not self.classroom or self.teacher or not kept:
            return
        digit = int(prediction.digit)
        self.pending = protocol.message(
            "class_drawing", round=round_number, player=self.session.player_id,
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
            return  # a drawing of a round that is over: the projector moved on
        # Simplified only when it goes: drawings replaced meanwhile cost nothing.
        message["drawing"] = classroom.simplify_drawing(message["drawing"])
        self.throttle.sent(clock.monotonic())
        try:
            await self.session.transport.send_to_teacher(message)
        except Exception:  # a lost live drawing is replaced by the next one
            logger.warning("room %s: a live drawing for the teacher was lost",
                           self.session.code, exc_info=True)

    # -- the teacher's reports ------------------------------------------------

    async def from_student(self, message):
        """A student's live drawing arrived through the teacher's group."""
        if self.teacher:
            await self.session.send(message)

    async def heard(self, message):
        """A message went to this client: after a round's end, or the game's,
        the teacher's client also gets the class's results."""
        if not self.teacher:
            return
        code = self.session.code
        try:
            if message["type"] == "round_end":
                await self.session.send(await db(class_reports.round_message)(code, message))
            elif message["type"] == "game_over":
                user = self.session.transport.user
                await self.session.send(await db(class_reports.summary_message)(
                    code, message["game"], staff=bool(getattr(user, "is_staff", False))))
        except Exception:
            logger.exception("room %s: the class's results could not be read", code)
