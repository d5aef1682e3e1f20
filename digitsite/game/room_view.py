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

    def learn(self, snapshot, me):
        """A `room` snapshot arrived (`me`: this connection's player id).

        Returns (deadline_ms, expiry_ms): when the room's current phase ends
        (a round closes a grace after its announced end), and the earliest
        end of a disconnected player's rejoin window; None for either that
        does not apply.
        """
        previous = self.room
        self.room = {key: snapshot[key] for key in KEPT}
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
