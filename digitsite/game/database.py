"""Where the game's database work runs, and how a drawing's write outlasts a busy database.

The game's database calls run in a small pool of threads of their own
(GAME_DB_THREADS), not in the one thread that Django and Channels give
`thread_sensitive` work. With that one thread a single slow call held up
every room of the process: while another program held SQLite's write lock
for 25 s, a `draw` waited 20 s for the lock and every join, deadline and
heartbeat of every other room queued behind it. With a pool the others go on:
reads at once (SQLite's write-ahead log lets readers run beside a writer),
and on PostgreSQL, which locks rooms row by row, other rooms' writes too.
The pool is bounded so that a stalled database ties up a few threads and
connections, not one per player; each thread keeps its own connection, so a
process holds up to GAME_DB_THREADS game connections. Measured with another
session holding a lock for 25 s while a drawing's write waited for it: on
PostgreSQL a join in another room took 19.3 s with one thread and 0.09 s
with four; on SQLite a join is a write and waited for the lock either way.
Four threads did not cost SQLite throughput under load either (load
benchmark, one process, 96 players in 12 rooms for 30 s on a busy 2-core
machine: 27 guesses/s and p50 1.3 s with one thread, 49/s and 0.9 s with
four; no errors, every drawing stored in both).

A drawing that reached the server is written with `patiently`: when the
database refuses (locked, busy, connection lost) the write is tried again
with growing pauses, for up to GAME_WRITE_PATIENCE_SECONDS, while the thread
is free for other work. A guess marked `kept`, or a `kept` message, goes
out only once the drawing is written, so it still means the drawing is
stored; meanwhile its guess says `held` (digitsite.game.scoring). A `join` is tried
again the same way, for as long as a client is given to join.
"""

import asyncio
import logging
import threading
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError

from digitsite.game.outage_log import OutageLog
from recognizer.thread_names import thread_pool

logger = logging.getLogger(__name__)

# The refused tries of every write of the process, logged as an outage: the
# first with the database's error, then a line a minute with their count,
# then the recovery (digitsite.game.outage_log). Each try's own line is at
# DEBUG. The error's text says what the traceback would (locked, a lost
# connection), and a refused try is expected: none is logged with one.
# Real time, as the tries' pauses (see patiently).
_refusals = OutageLog(logger, "game writes", level=logging.WARNING, traceback=False,
                      now=time.monotonic)

# Pauses between attempts at a refused write: short at first (a lock held for
# a moment), then at most this long, so a recovered database is used within
# seconds without a waiting drawing hammering a locked one.
FIRST_PAUSE_SECONDS = 0.2
LONGEST_PAUSE_SECONDS = 5.0

_executor = None
_executor_lock = threading.Lock()
# The pool's threads are POOL_NAME_0, POOL_NAME_1, ... (in `top -H` too).
POOL_NAME = "game-db"


def _threads():
    from django.db import connections

    database = connections["default"]
    if database.vendor == "sqlite" and database.is_in_memory_db():
        # A shared in-memory SQLite database (Django's default test database;
        # this project's tests use a file, tests/conftest.py) answers a lock
        # held by another connection with "database table is locked" at once
        # instead of waiting the busy timeout: one thread.
        return 1
    return max(1, settings.GAME_DB_THREADS)


def executor():
    """The process's pool for game database work, made on first use."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = thread_pool(_threads(), POOL_NAME)
        return _executor


def db(function):
    """Run a synchronous database function in the game's pool, off the event loop.

    Channels' database_sync_to_async, which closes stale and broken
    connections before and after the call, as for any database work of a
    consumer; but not `thread_sensitive` (the default), which would run it in
    the one thread Django and Channels share: the game's own pool, so that a
    call stalled on a lock holds up one thread and not every room of the
    process (the opening of this module says what that cost).
    """
    return database_sync_to_async(function, thread_sensitive=False, executor=executor())


def refusing():
    """Whether this process's writes are being refused now: one was, and none
    has landed since (`_refusals`)."""
    return _refusals.under_way


async def patiently(function, *args, what="a write", patience=None, on_refused=None,
                    **kwargs):
    """`await db(function)(*args, **kwargs)`, tried again while the database
    refuses (logged as an outage, `_refusals`; a write that gives up, each).

    Only errors that say the database could not do it now (OperationalError:
    locked, busy, a lock or statement timeout, a lost connection;
    InterfaceError: a closed connection) are retried; the function must be
    safe to run again after one of them, which holds for one that does its
    writes in a single transaction (a refused one changed nothing).

    `on_refused`, when given, is awaited after each refused try, before the
    pause (the game answers a drawing whose write waits: scoring.py).

    The patience and the pauses between tries are real time (time.monotonic,
    asyncio.sleep), not the game clock's: a database outage, and the lock and
    statement timeouts that end each try, pass in real time whatever a test's
    ManualClock says, and a write waiting on virtual time would stand still
    until a test happened to advance it.
    """
    patience = settings.GAME_WRITE_PATIENCE_SECONDS if patience is None else patience
    give_up_at = time.monotonic() + patience
    pause = FIRST_PAUSE_SECONDS
    attempt = 0
    while True:
        attempt += 1
        logger.debug("%s: attempt %d", what, attempt)
        try:
            result = await db(function)(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            _refusals.failed(f"{what}: {exc}")
            if time.monotonic() + pause > give_up_at:
                logger.error("%s: the database refused it for %g s; giving up: %s",
                             what, patience, exc)
                raise
            logger.debug("%s: the database refused it (%s); trying again in %.1f s",
                         what, exc, pause)
            if on_refused is not None:
                try:
                    await on_refused()
                except Exception:  # the write goes on whatever its caller's answer did
                    logger.exception("%s: answering while the database refuses it failed",
                                     what)
        else:
            _refusals.succeeded()
            return result
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
