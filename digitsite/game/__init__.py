"""The draw-the-digit game, without any networking.

`rules` holds the pure rules (scoring, targets, names, rate limits), `rooms`
the state transitions in the database, `session` one player's connection as
plain asyncio code. The Channels consumer only carries messages in and out.
Pages use the functions re-exported here.
"""

from digitsite.game.codes import normalise_code
from digitsite.game.rooms import create_room, get_room, open_rooms, room_snapshot
from digitsite.game.rules import (
    MAX_PLAYERS,
    MAX_ROUNDS,
    MAX_SECONDS,
    MIN_ROUNDS,
    MIN_SECONDS,
    PROTOCOL_VERSION,
    SCORING_RULE,
    GameError,
)

__all__ = [
    "MAX_PLAYERS", "MAX_ROUNDS", "MAX_SECONDS", "MIN_ROUNDS", "MIN_SECONDS", "PROTOCOL_VERSION",
    "SCORING_RULE", "GameError", "create_room", "get_room", "normalise_code", "open_rooms",
    "room_snapshot",
]
