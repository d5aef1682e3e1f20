"""When a player's scored drawing is written: at once, or held for up to a second.

Each `draw` used to be written before its guess, about ten writes a second
per player drawing, 30% of a server's CPU under load, while each drawing
only replaces the one before it. Now a scored drawing is written at once
when it is:

- the first of the round on this connection (the round has a drawing of the
  player's from the start);
- one that may reach the target: pen up and the target's probability at the
  room's target confidence (the write decides, with the room locked,
  whether it ends the player's round);
- scored GAME_DRAWING_WRITE_SECONDS (1 s) or more after the last write, or
  in the round's last ROUND_END_MARGIN seconds.

Otherwise it is held in memory as the player's latest and written when due:
GAME_DRAWING_WRITE_SECONDS after the last write or ROUND_END_MARGIN before
the round's end, whichever comes first; or earlier, before `done`, leaving,
or when the socket closes (digitsite.game.scoring). A player drawing for
20 s is so written about 20 times instead of 200, and a drawing is never
more than a second older in the database than in memory.

The promise stays: nothing the client was told is kept gets lost. A held
drawing's guess says `held`, not `kept`; a `kept` message follows its write.
A process killed with SIGKILL loses at most the held drawing, which the
client was never told was kept, and the round keeps the last one it was.
"""

from dataclasses import dataclass, field

from django.conf import settings

# A held drawing is written this long before the round's end at the latest:
# the round closes 0.5 s after its end (rules.ROUND_GRACE_SECONDS), which
# leaves the write 0.75 s to land.
ROUND_END_MARGIN = 0.25


@dataclass(frozen=True)
class Scored:
    """A drawing scored for the player, ready to write."""

    seq: int | None
    game: str
    round: int
    target: int
    received_at: object  # datetime: when the `draw` arrived
    pen_up: bool
    drawing_json: dict
    input_bytes: bytes
    prediction: object  # recognizer.inference.Prediction
    p_target: float
    # The drawing's stages so far (digitsite.game.guess_timing).
    watch: object = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, item, drawing, image, prediction):
        """`item`: the drawing as it waited (digitsite.game.scoring.Waiting)."""
        from recognizer.preprocessing import input_to_bytes

        return cls(item.seq, item.game, item.round, item.target, item.received_at, item.pen_up,
                   drawing.as_json(), input_to_bytes(image), prediction,
                   float(prediction.probabilities[item.target]), item.watch)


def may_reach(scored, room):
    """Whether `scored`'s write may end the player's round: sent with the pen
    up, at the room's target confidence (or the room's is unknown).
    `room`: the connection's view of the room, or None."""
    confidence = ((room or {}).get("settings") or {}).get("target_confidence")
    return scored.pen_up and (confidence is None or scored.p_target >= confidence)


def write_due(scored, room, last_write, now):
    """None: write `scored` now. Otherwise the game clock's time (seconds)
    when it is due, if it is still the player's latest then.

    `room`: the connection's view of the room (digitsite.game.room_view);
    `last_write`: ((game, round), time) of the connection's last write begun,
    or None.
    """
    interval = settings.GAME_DRAWING_WRITE_SECONDS
    if interval <= 0 or last_write is None or last_write[0] != (scored.game, scored.round):
        return None
    room = room or {}
    if may_reach(scored, room):
        return None
    due = last_write[1] + interval
    if room.get("round") == scored.round and room.get("ends_at") is not None:
        due = min(due, room["ends_at"] / 1000 - ROUND_END_MARGIN)
    return None if due <= now else due
