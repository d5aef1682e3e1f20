"""The room as one connection last heard of it, from the room's broadcasts.

It lets the connection refuse a stale drawing or `done` without a database
read, set its timers to the room's deadlines and notice when it is behind
(a broadcast it never got). The database has the last word on everything
that changes the game. Plain Python: no I/O.
"""

from digitsite.game import clock, rules
from digitsite.game.rules import GameError

GRACE_MS = int(rules.ROUND_GRACE_SECONDS * 1000)

# The fields of a `room` snapshot the view keeps.
KEPT = ("state", "game", "round", "target", "ends_at", "settings")


class RoomView:
    def __init__(self):
        # The snapshot's KEPT fields, once one arrived.
        self.room = None
        # This player's part in the current round is over.
        self.finished = False
        # The revision of the last snapshot learned (snapshots.room_message).
        self.revision = None
        # The last round's end, (game, round), and game's end passed on.
        self.last_round_end = None
        self.last_game_over = None

    def is_stale(self, message, *, read_now=False):
        """A `room` snapshot no newer than the last one learned: broadcasts of
        different connections and processes arrive in any order, and an older
        snapshot passed on after a newer one would undo it on the screen.

        `read_now`: the snapshot was just read from the database to catch up
        (snapshots.catch_up, not counted): one with the last revision shows
        at least what the last one did, so only an older one is stale. A
        snapshot without a revision (from a process of an older release,
        during an upgrade) is never stale.
        """
        revision = message.get("revision") if message.get("type") == "room" else None
        if revision is None or self.revision is None:
            return False
        return revision < self.revision if read_now else revision <= self.revision

    def is_repeat(self, message):
        """A round's or a game's end already passed on. A joiner's catch-up
        reads the results of a round that ended while it joined, and that
        round's broadcast may still be on its way to the same connection."""
        kind, game = message.get("type"), message.get("game")
        if game is None:  # not an end, or one that names no game: never a repeat
            return False
        if kind == "round_end":
            return (game, message.get("round")) == self.last_round_end
        if kind == "game_over":
            return game == self.last_game_over
        return False

    def passed_on(self, message):
        """A message went to the client: remember the ends (see is_repeat)."""
        kind = message.get("type")
        if kind == "round_end":
            self.last_round_end = (message.get("game"), message.get("round"))
        elif kind == "game_over":
            self.last_game_over = message.get("game")

    def learn(self, snapshot, me):
        """A `room` snapshot arrived (`me`: this connection's player id).

        Returns (deadline_ms, expiry_ms): when the room's current phase ends
        (a round closes a grace after its announced end), and the earliest
        end of a disconnected player's rejoin window; None for either that
        does not apply.
        """
        previous = self.room
        self.room = {key: snapshot[key] for key in KEPT}
        self.revision = snapshot.get("revision", self.revision)
        mine = next((p for p in snapshot["players"] if p["id"] == me), None)
        new_round = previous is None or (previous["game"], previous["round"]) != (
            snapshot["game"], snapshot["round"])
        if mine is not None and (new_round or mine["finished"]):
            self.finished = mine["finished"]
        deadline_ms = None
        if snapshot["state"] == "playing":
            deadline_ms = snapshot["ends_at"] + GRACE_MS
        elif snapshot["state"] == "results":
            deadline_ms = snapshot["ends_at"]
        expiries = [p["rejoin_until"] for p in snapshot["players"] if p.get("rejoin_until")]
        return deadline_ms, (min(expiries) if expiries else None)

    def hear(self, message, me):
        """A broadcast arrived: note what it changes. Returns (deadline_ms,
        expiry_ms) as `learn` does."""
        kind = message.get("type")
        if kind == "room":
            return self.learn(message, me)
        room = self.room
        if kind == "round_start" and room is not None:
            if (message["game"], message["round"]) != (room["game"], room["round"]):
                self.finished = False
            room.update(state="playing", game=message["game"], round=message["round"],
                        target=message["target"], ends_at=message["ends_at"])
            return message["ends_at"] + GRACE_MS, None
        if kind == "round_end" and room is not None:
            if message["round"] == room["round"]:
                room["state"] = "finished" if message["final"] else "results"
                room["ends_at"] = message["next_round_at"]
                return message["next_round_at"], None
        elif kind == "player_finished" and message.get("player") == me:
            if room is not None and message["round"] == room["round"]:
                self.finished = True
        return None, None

    def check_round(self, round_number, at=None):
        """Refuse a drawing or `done` for a round that is not on for this player
        (`at`: when the message arrived, a datetime; the clock's time by default)."""
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

    def behind(self, phase):
        """This view of the room is older than the database's `phase`
        (digitsite.game.rounds.Phase)."""
        room = self.room
        return room is not None and (room["state"], room["game"], room["round"]) != (
            phase.state, phase.game or None, phase.round)
