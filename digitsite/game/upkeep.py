"""A server process's work beside its connections: closing rounds nobody is
left to close, and handing its players over when it stops.

A round is closed by the timers of the connections in its room. When every
process that had such a connection stopped (killed, or stopped while the
round was on), nothing would close it: the room stayed `playing` for ever
and its drawings became training data only if a player came back. So every
server process, on start-up and then every GAME_SWEEP_SECONDS, closes the
rounds whose deadline passed more than SWEEP_MARGIN_SECONDS ago. The margin
leaves the rounds that live connections are about to close to them; when
several processes sweep at once, `rounds.end_round` lets exactly one of them
close each round (the room row is locked and its state checked again), as
when connections race at a deadline. Closing a round finishes every player's
part in it and stores each drawing with its label.

A graceful stop (SIGTERM) writes the drawings in hand, disconnects each
player connected to this process and finishes their round (a socket that
merely closes keeps the round for the player's return, digitsite.game.seats):
the drawing they have is stored, their seat stays theirs for the rejoin
window, and a round whose players have all finished ends at once. The round of a
player who then reconnects through another process is over; nothing they
drew is lost. A stop that takes longer than GAME_STOP_SECONDS leaves the rest
to the sweep of the next process to start; only a drawing whose write the
database still refuses then (it is kept in memory, digitsite.game.database)
goes with the process.

How a process hooks start-up and shutdown: Daphne does not implement the
ASGI lifespan protocol, and AppConfig.ready also runs for `migrate`, `shell`
and the tests. Daphne does run the application on Twisted's asyncio reactor,
which it installs before it imports the application, so `hook_into_daphne`
(called from digitsite/asgi.py, which only servers import) asks that reactor
to start the sweep once it runs and to wait for the graceful stop before it
shuts down (Daphne cancels the connections in the same phase). Servers that
speak lifespan (uvicorn, hypercorn) get the same through `ProcessUpkeep`.
Nothing starts where no server runs: a test that imports the application
never runs the reactor.
"""

import asyncio
import logging
import sys
import weakref
from datetime import timedelta

from channels.layers import get_channel_layer
from django.conf import settings

from digitsite.game import clock, rounds
from digitsite.game.database import db

logger = logging.getLogger(__name__)

# How long past its close a round must be before a sweep takes it: the room's
# own connections act at the close (plus at most 50 ms of jitter), and a
# connection that missed a broadcast catches up within 5 s.
SWEEP_MARGIN_SECONDS = 5.0
# Rounds closed per sweep, so one sweep stays a short piece of work; the next
# sweep takes the rest.
SWEEP_BATCH = 50

# The sessions of this process's open connections (digitsite.game.consumers adds them).
live_sessions = weakref.WeakSet()


def close_overdue_rounds(limit=SWEEP_BATCH):
    """Close rounds still `playing` well past their deadline; returns [(code, messages)]."""
    from digitsite.game.models import Room

    cutoff = clock.now() - rounds.GRACE - timedelta(seconds=SWEEP_MARGIN_SECONDS)
    overdue = list(
        Room.objects.filter(state=Room.State.PLAYING, ends_at__lt=cutoff)
        .order_by("ends_at").values_list("code", "game_id", "round")[:limit]
    )
    closed = []
    for code, game_id, round_number in overdue:
        try:
            messages = rounds.end_round(code, game_id, round_number)
        except Exception:  # one room's failure must not keep the others open
            logger.exception("room %s: closing its overdue round %s failed", code, round_number)
            continue
        if messages:
            logger.info("room %s: closed round %s, left open past its deadline",
                        code, round_number)
            closed.append((code, messages))
    return closed


async def broadcast(code, messages):
    """Send messages to a room's connections, in whichever process they are."""
    from digitsite.game.consumers import room_group

    layer = get_channel_layer()
    for message in messages:
        await layer.group_send(room_group(code), {"type": "game.event", "message": message})


async def sweep():
    """One sweep: close overdue rounds and tell their rooms."""
    for code, messages in await db(close_overdue_rounds)():
        await broadcast(code, messages)


async def sweep_forever(interval):
    """Sweep now, then every `interval` seconds of the game clock.

    Game time, not real time: the sweep closes rounds whose deadlines, read
    from the same clock, have passed, so with a test's ManualClock it runs
    when the test moves time on, as the round timers do, and not on the real
    clock's schedule of a loaded machine.
    """
    while True:
        try:
            await sweep()
        except asyncio.CancelledError:
            raise
        except Exception:  # a database outage: the next sweep tries again
            logger.exception("closing overdue rounds failed")
        await clock.sleep(interval)


async def stop_gracefully(timeout=None):
    """Write the drawings in hand and finish the rounds of this process's players."""
    timeout = settings.GAME_STOP_SECONDS if timeout is None else timeout
    sessions = [s for s in list(live_sessions) if s.player_id is not None and not s.closed]
    if not sessions:
        return
    logger.info("stopping: finishing the rounds of %d connected players", len(sessions))
    tasks = [asyncio.ensure_future(session.closed_by_client(finish_round=True))
             for session in sessions]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    failed = sum(1 for task in done if not task.cancelled() and task.exception() is not None)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            logger.error("stopping: finishing a player's round failed",
                         exc_info=task.exception())
    if pending or failed:
        logger.warning("stopping: %d of %d players' rounds not finished; the next process "
                       "to start closes them", len(pending) + failed, len(sessions))


class Upkeep:
    """The sweep task of one process, started once, stopped once."""

    def __init__(self):
        self.task = None

    def start(self):
        interval = settings.GAME_SWEEP_SECONDS
        if self.task is None and interval > 0:
            self.task = asyncio.get_event_loop().create_task(sweep_forever(interval))

    async def stop(self):
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
        await stop_gracefully()


upkeep = Upkeep()


class ProcessUpkeep:
    """ASGI wrapper: runs the upkeep for servers that speak the lifespan protocol."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.application(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                upkeep.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await upkeep.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def hook_into_daphne():
    """Under Daphne: start the upkeep with the reactor, stop it before shutdown.

    Returns whether a Twisted asyncio reactor (Daphne's) was there to hook into.
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not hasattr(reactor, "_asyncioEventloop"):
        return False
    from twisted.internet import defer

    def stop():
        # Twisted waits for this Deferred before it stops the loop.
        return defer.Deferred.fromFuture(asyncio.ensure_future(upkeep.stop()))

    reactor.callWhenRunning(upkeep.start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    return True
