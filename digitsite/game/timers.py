"""The timers one connection keeps for its room: the phase's deadline (and
catching the client up when a broadcast went missing), the seat's heartbeat
and the end of disconnected players' rejoin windows.

Every connection in a room keeps the room's timers; the database lets
exactly one of them act at each deadline, and its broadcast moves the
others' timers on. A superseded timer is left to notice it, not cancelled:
cancelling could cut its broadcast in half.
"""

import asyncio
import itertools
import logging
import random
import weakref

from digitsite.game import clock, rounds, rules, seats, snapshots
from digitsite.game.database import db
from digitsite.game.outage_log import OutageLog
from digitsite.game.protocol import encode, epoch_ms

logger = logging.getLogger(__name__)

# Every connection's heartbeats, in this process: see OutageLog. (A heartbeat
# whose broadcast fails counts as failed: what it changed went unheard.)
_heartbeats = OutageLog(logger, "seat heartbeats")

# A connection whose view of the room is still behind the database this long
# after a deadline missed a broadcast (its sender died, or the channel layer
# dropped it) and catches its client up directly.
CATCH_UP_AFTER = 4.0

# While the database is away, a room's try at its deadline is made again
# RETRY_FIRST seconds after a failure, then twice as long after each further
# one, RETRY_MOST at most. Every connection of a room tried once a second,
# each logging a warning: with a class of 40 during a minute's outage, 2,400
# reads queued on the database's threads and as many lines in the log. Now
# a room's connections in one process share the tries (below): at most 14 in a
# 5-minute outage, each logged once.
RETRY_FIRST = 1.0
RETRY_MOST = 30.0

# How long after a try at a deadline a connection waits for the broadcast
# that moves its timer on before it looks at the room itself.
BROADCAST_GRACE = 1.0

# The room's deadline being acted on in this process, by (room, deadline):
# the one read (and locked transaction, when it is due) of the connection
# that came first, which the room's other connections here wait for
# instead of each asking the database again. Each connection of a room of 8
# asked at every deadline: 8 reads and up to 8 of the room's locked
# transactions, of which one changed anything. By event loop, as the
# process's other per-loop state (digitsite.game.live_feed's boards).
_advancing = weakref.WeakKeyDictionary()


# What a look at a room that could not be read finds.
_AWAY = object()


def _in_flight(key, start, waiter):
    """The task acting on `key` in this loop, started by `start(waiters)` if
    none is; `waiter` (a RoomTimers) joins the task's `waiters`, a weak set
    the task can ask whether anyone still waits for it."""
    running = _advancing.setdefault(asyncio.get_running_loop(), {})
    task = running.get(key)
    if task is None:
        waiters = weakref.WeakSet()
        task = asyncio.ensure_future(start(waiters))
        task.waiters = waiters
        running[key] = task
        task.add_done_callback(lambda _: running.pop(key, None))
    task.waiters.add(waiter)
    return task


async def _tried(work, what, waiters, still_waits):
    """`await work()`, tried again while it fails: RETRY_FIRST seconds after
    a failure, then twice as long after each further one (RETRY_MOST at
    most), as long as `still_waits(timers)` for one of `waiters` (the
    RoomTimers of a shared task, _in_flight). Each failure is logged once,
    for everyone waiting: the first with its traceback, the rest a line
    each. (done, its result); (False, None) once nobody waits."""
    wait = RETRY_FIRST
    for attempt in itertools.count(1):
        try:
            return True, await work()
        except Exception:
            logger.log(logging.ERROR if attempt == 1 else logging.WARNING,
                       "%s failed (try %d); trying again in %g s", what, attempt, wait,
                       exc_info=attempt == 1)
        await clock.sleep(wait)
        if not any(still_waits(timers) for timers in waiters):
            return False, None
        wait = min(wait * 2, RETRY_MOST)


async def _tried_and_told(session, work, what, waiters, still_waits):
    """_tried, then the events `work` returned broadcast to the room. A
    broadcast that fails is logged, not tried again: what it told is in the
    database, and each connection, hearing nothing, catches its client up.
    The events; None once nobody waits."""
    done, events = await _tried(work, what, waiters, still_waits)
    if not done:
        return None
    try:
        await session.broadcast_all(events)
    except Exception:
        logger.exception("%s: done, but the broadcast failed; the connections catch "
                         "their clients up", what)
    return events


class RoomTimers:
    """The timers of one PlayerSession (digitsite.game.session), which they act for."""

    def __init__(self, session):
        self.session = session
        self.deadline_task = None
        self.deadline_ms = None
        self.expiry_task = None
        self.expiry_ms = None

    # -- the phase's deadline ------------------------------------------------

    def set_deadline(self, deadline_ms):
        if deadline_ms is None or deadline_ms == self.deadline_ms or self.session.closed:
            return
        self.deadline_ms = deadline_ms
        self.deadline_task = self.session.spawn(self._deadline(deadline_ms))

    def waits_for(self, deadline_ms):
        """Whether this connection's timer still waits on `deadline_ms`."""
        return not self.session.closed and self.deadline_ms == deadline_ms

    async def _deadline(self, deadline_ms):
        session = self.session
        # A little jitter so the room's connections in different processes
        # do not all hit the database in the same millisecond (those of one
        # process share one try), and a millisecond more: the deadline is in
        # whole milliseconds, cut down, and a read a moment early finds
        # nothing due for every connection that shares it.
        jitter = random.uniform(0.0, 0.05)
        while not session.closed:
            await clock.sleep(max(deadline_ms / 1000 - clock.time(), 0) + 0.001 + jitter)
            if deadline_ms != self.deadline_ms:
                return
            await asyncio.shield(self._advance(deadline_ms))
            # Whoever moved the room on (this connection or another) broadcast
            # it, and the broadcast replaces this timer. Should none come, look
            # again.
            await clock.sleep(BROADCAST_GRACE)
            if deadline_ms != self.deadline_ms:
                return
            phase = await asyncio.shield(self._look(deadline_ms))
            if phase is _AWAY:
                # The next try at the deadline waits for the database; the
                # connections that shared the look share it, without jitter.
                jitter = 0.0
                continue
            if phase is None:
                return
            if session.view.behind(phase):
                # A busy server's broadcast may only be late: give it time.
                await clock.sleep(CATCH_UP_AFTER)
                if deadline_ms == self.deadline_ms and not session.closed:
                    await asyncio.shield(self._catch_up(deadline_ms))
                return
            if phase.closes_at is None or phase.state not in ("playing", "results"):
                return
            deadline_ms = epoch_ms(phase.closes_at)
            self.deadline_ms = deadline_ms
            jitter = random.uniform(0.0, 0.05)

    async def _advance(self, deadline_ms):
        """Move the room on, once for this process's connections of the room
        that reach the same deadline while a try is under way; the winner's
        broadcast goes out once. Whether it moved the room on.

        A try the database refuses is made again by the same task,
        RETRY_FIRST seconds later and then less and less often (RETRY_MOST
        at most), each failure logged once for the connections waiting, as
        long as one still waits for this deadline: a broadcast from another
        process that reaches the database moves them on, and ends the task.
        A broadcast that fails is not a reason to try again: the room moved
        on, and each connection, hearing nothing, catches its client up."""
        session = self.session
        code = session.code

        async def advance(waiters):
            return bool(await _tried_and_told(
                session, lambda: db(rounds.advance)(code),
                f"room {code}: moving the room on at its deadline", waiters,
                lambda timers: timers.waits_for(deadline_ms)))

        # Shielded: a connection that closes meanwhile leaves the others' task be.
        return await asyncio.shield(_in_flight((code, deadline_ms), advance, self))

    async def _look(self, deadline_ms):
        """The room's phase a while after a try at its deadline, when no
        broadcast came (None: the room is gone; _AWAY: it could not be
        read), read once for this process's connections of the room that
        look together."""
        code = self.session.code

        async def look(waiters):
            try:
                return await db(rounds.phase)(code)
            except Exception:
                logger.warning("room %s: could not read the room after its deadline; "
                               "trying again", code)
                return _AWAY

        return await asyncio.shield(_in_flight((code, deadline_ms, "look"), look, self))

    async def _catch_up(self, deadline_ms):
        """Tell this client what the room's lost broadcasts would have told
        it. The room is read once for this process's connections of the room
        that catch up together, and read again while the database is away,
        as the tries at the deadline are (a failed catch-up ended the
        connection's timer: its client stayed behind until some broadcast
        came), for as long as one of them still waits."""
        session = self.session
        code = session.code

        def read_room():
            return rounds.phase(code), snapshots.catch_up(code)

        async def read(waiters):
            done, found = await _tried(
                lambda: db(read_room)(), f"room {code}: catching clients up", waiters,
                lambda timers: timers.waits_for(deadline_ms))
            if not done or found[0] is None:
                return None  # nobody waits any more, or the room is gone
            phase, messages = found
            if any(timers.waits_for(deadline_ms) and timers.session.view.behind(phase)
                   for timers in waiters):
                logger.warning("room %s: a broadcast did not arrive; catching up the "
                               "clients here that missed it", code)
            # Encoded once for them all, as a broadcast is.
            return phase, [(message, encode(message)) for message in messages]

        found = await asyncio.shield(_in_flight((code, deadline_ms, "catch up"), read, self))
        if found is None or not self.waits_for(deadline_ms):
            return
        phase, messages = found
        if not session.view.behind(phase):
            return
        # The same messages for every connection that shared the read, as a
        # broadcast's: nothing on the way to a client changes one.
        for message, text in messages:
            await session.on_event(message, text, read_now=True)

    # -- the seat's heartbeat ------------------------------------------------

    def start_heartbeat(self):
        self.session.spawn(self._heartbeat())

    async def _heartbeat(self):
        session = self.session
        while not session.closed:
            await clock.sleep(rules.SEAT_HEARTBEAT_SECONDS * random.uniform(0.9, 1.1))
            if session.closed:
                return
            try:
                events = await asyncio.shield(db(seats.heartbeat)(
                    session.code, session.player_id, session.transport.channel_name))
                await session.broadcast_all(events)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: the next beat tries again
                _heartbeats.failed(f"room {session.code}")
            else:
                _heartbeats.succeeded()

    # -- rejoin windows ------------------------------------------------------

    def set_expiry(self, expiry_ms):
        if self.expiry_ms is not None and self.expiry_ms <= expiry_ms and (
                self.expiry_task is not None and not self.expiry_task.done()):
            return
        self.expiry_ms = expiry_ms
        self.expiry_task = self.session.spawn(self._expire(expiry_ms))

    def waits_to_expire(self, expiry_ms):
        """Whether this connection still waits for the rejoin windows that
        end at `expiry_ms` to be ended (a newer window's timer, which ends
        them as well, takes over)."""
        return not self.session.closed and self.expiry_ms in (None, expiry_ms)

    async def _expire(self, expiry_ms):
        await clock.sleep(max(expiry_ms / 1000 - clock.time(), 0) + random.uniform(0.05, 0.15))
        if expiry_ms != self.expiry_ms:
            return
        self.expiry_ms = None
        await asyncio.shield(self._end_windows(expiry_ms))

    async def _end_windows(self, expiry_ms):
        """End the rejoin windows due at `expiry_ms`, once for this process's
        connections of the room that reach it while a try is under way, and
        tried again while the database is away (an end that failed was not
        made again until a broadcast brought another window, and the seat
        stayed its player's). A broadcast that fails is logged, not tried
        again: the seats are gone in the database."""
        session = self.session
        code = session.code

        async def end(waiters):
            await _tried_and_told(
                session, lambda: db(seats.expire_seats)(code),
                f"room {code}: ending rejoin windows", waiters,
                lambda timers: timers.waits_to_expire(expiry_ms))

        await asyncio.shield(_in_flight((code, expiry_ms, "expire"), end, self))

