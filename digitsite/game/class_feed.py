"""A connection's part in a class room: the teacher's projector feed.

Each PlayerSession (digitsite.game.session) has a ClassFeed; outside a class
room it does nothing. In a class room:

- a student's scored drawings go to the teacher as `class_drawing`
  (digitsite.game.live_feed, which ordinary rooms use for their live
  canvases too);
- the teacher's connection joins a channel group of its own, the only one
  those drawings are sent to, and on hearing a round's end (or the game's)
  reads the class's results from the database and sends them to its client
  (`class_round`, `class_summary`);
- every message to a client passes `visible`, so a student is never sent
  another student's drawing (classroom.visible_to).
"""

import logging

from digitsite.game import class_reports, classroom
from digitsite.game.database import db
from digitsite.game.rules import GameError

logger = logging.getLogger(__name__)


class ClassFeed:
    def __init__(self, session):
        self.session = session
        self.classroom = False
        self.teacher = False

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
