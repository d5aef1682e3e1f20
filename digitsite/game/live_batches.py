"""The live drawings of a room leave a process in batches: one channel-layer
message carries those of every player of the room on this process that fell
due within BATCH_SECONDS, instead of one message each.

Why: every message to a room's group is queued for, received by and
dispatched to each of the room's connections (8 in a full room) on the event
loop. With live canvases a room of 8 players drawing hears up to 24 live
drawings a second (digitsite.game.live_feed: 3 a second each), so the
channel layer carried 192 deliveries a second per room for them alone, and
in a profile of one process serving 32 players they were about a fifth of
its CPU (the same load with live drawings off: 5.8 against 7.3 ms of server
CPU a guess). Batched, a room's connections get at most 1 / BATCH_SECONDS
deliveries a second from each process, whatever the number of drawers.

What the clients see does not change: each drawing still goes to each other
player as its own `live_drawing` frame, encoded once by the sender (its
`text`), and nobody is sent their own. A drawing waits at most BATCH_SECONDS
on top of its player's throttle; the first drawing of a quiet room goes at
once. The window is real time, not the game's clock (digitsite.game.clock):
it is a detail of the transport, and tests that stop the game's clock must
still see drawings go.
"""

import asyncio
import logging
import weakref

logger = logging.getLogger(__name__)

# 0.1 s: 2-3 drawings a batch in a room of 8 all drawing, for a delay a
# player cannot tell from the 3-a-second preview's own steps.
BATCH_SECONDS = 0.1
# A process keeps a room's entry (its last send) between drawings; past this
# many rooms, those idle are dropped.
SWEEP_AT = 256


class _RoomBatch:
    """The drawings of one room's group waiting to leave this process."""

    def __init__(self):
        # player id -> (header, text): a player's newer drawing replaces the waiting one.
        self.items = {}
        self.task = None
        self.last_sent = None


# Per event loop (a test runs several loops in one process): group -> _RoomBatch.
_batches = weakref.WeakKeyDictionary()


def add(layer, group, message, text):
    """Queue a `live_drawing` `message` (encoded as `text`) for `group`."""
    loop = asyncio.get_running_loop()
    rooms = _batches.setdefault(loop, {})
    batch = rooms.get(group)
    if batch is None:
        if len(rooms) >= SWEEP_AT:
            _forget_idle(rooms, loop.time())
        batch = rooms[group] = _RoomBatch()
    # What the receivers read of the message (session.on_event: who drew it,
    # for which round); the frame itself is `text`. Not the drawing: the
    # in-memory layer copies a broadcast once and Redis serialises it.
    header = {"type": message["type"], "player": message["player"], "round": message["round"]}
    batch.items[message["player"]] = (header, text)
    if batch.task is None:
        delay = 0.0 if batch.last_sent is None else max(
            0.0, batch.last_sent + BATCH_SECONDS - loop.time())
        batch.task = loop.create_task(_send_after(layer, group, batch, delay))


def _forget_idle(rooms, now):
    """Drop the rooms with nothing waiting whose window is over: a room that
    ended leaves nothing behind for long, and one still playing only starts
    a new window."""
    for group, batch in list(rooms.items()):
        if batch.task is None and (batch.last_sent is None
                                   or now - batch.last_sent >= BATCH_SECONDS):
            del rooms[group]


def waiting(group):
    """How many drawings wait for `group` on this loop (for tests)."""
    rooms = _batches.get(asyncio.get_running_loop(), {})
    batch = rooms.get(group)
    return 0 if batch is None else len(batch.items)


async def _send_after(layer, group, batch, delay):
    # Even with no delay, yield once: drawings scored in the same turn of
    # the loop go together.
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    items, batch.items = list(batch.items.values()), {}
    batch.task = None
    batch.last_sent = loop.time()
    if not items:
        return
    try:
        await layer.group_send(group, {"type": "game.live", "items": items})
    except Exception:  # lost live drawings are replaced by the next ones
        logger.warning("%s: %d live drawings were lost", group, len(items), exc_info=True)
