"""Logging a kind of work that every connection repeats, while it keeps failing.

A seat's heartbeat runs every 10 s on each connection. While the database
is away, each of them failed and logged its traceback: a class of 40 wrote
4 tracebacks a second, for as long as the outage lasted, and the first one,
which says what went wrong, scrolled away. Each player's drawing writes,
tried again at most 5 s apart (digitsite.game.database), added 8 lines a
second more. An OutageLog keeps the process's log of such work readable:
the first failure of an outage (with its traceback, where that says more
than the error's text), then one line a minute at most with how many failed
since, and one line when the work succeeds again, with how long the outage
lasted and how many failed in all. An outage here is the time from a
failure to the next success, of any connection of the process.

It reads the game's clock (digitsite.game.clock) unless given another, so a
test moves its minute on. Every connection of a process runs on one event
loop: no lock.
"""


import logging
import weakref

from digitsite.game import clock

# At most one line about the failures of an outage in this long, after the
# first; the log of a 5-minute outage in a class of 40 holds 6 lines, not 1,200.
SUMMARY_EVERY = 60.0

# Every OutageLog of the process (see reset_all).
_logs = weakref.WeakSet()


class OutageLog:
    """One kind of work's failures in this process, logged as outages.

    - The first failure of an outage: at `level`, with its traceback if
      `traceback`, and what failed (`where`).
    - Then at most a line every `every` seconds: how many failed since the
      last line, and the latest `where`.
    - A success ends the outage, with a line: how many failed, in how long.
    - A failure after `every` seconds with neither a failure nor a success
      (everyone who tried went away) ends the outage with a line saying
      so, and begins a new one: its cause may be another.
    - An outage that begins within `every` seconds of the end of the one
      before (a lock timing out in one busy room while the others' work
      goes on) is logged in one line without its traceback: such flapping
      costs two short lines a failure, and the first one's traceback says
      what they are.
    """

    def __init__(self, logger, work, every=SUMMARY_EVERY, level=logging.ERROR, traceback=True,
                 now=clock.monotonic):
        self.logger = logger
        self.work = work  # what fails, as the log names it: "seat heartbeats"
        self.every = every
        # The first failure's level, and whether it is logged with its traceback.
        self.level = level
        self.traceback = traceback
        self.now = now  # the clock, in seconds
        self.reset()
        _logs.add(self)

    def reset(self):
        """No outage under way (and none just over)."""
        self.began = None  # when the outage's first failure came
        self.last_failure = None
        self.failures = 0  # in this outage, in all
        self.unreported = 0  # since the last line
        self.reported_at = None
        self.ended = None  # when the last outage ended

    @property
    def under_way(self):
        """Whether an outage is under way: a failure, and no success since."""
        return self.began is not None

    def failed(self, where):
        """A try failed; `where` says which ("room ABCD"). Call it in the
        `except` block: the first failure's traceback is the exception being
        handled."""
        now = self.now()
        if self.began is not None and now - self.last_failure > self.every:
            self.logger.warning("%s: %d failures in %.0f s, then none for %.0f s and no "
                                "success heard; counted as over", self.work, self.failures,
                                self.last_failure - self.began, now - self.last_failure)
            self._end(self.last_failure)
        self.last_failure = now
        self.failures += 1
        if self.began is None:
            self.began = self.reported_at = now
            if self.ended is not None and now - self.ended < self.every:
                self.logger.warning("%s are failing again (first: %s)", self.work, where)
            else:
                self.logger.log(
                    self.level, "%s are failing (first: %s); further failures are counted, "
                    "and logged at most every %g s until one succeeds",
                    self.work, where, self.every, exc_info=self.traceback)
            return
        self.unreported += 1
        if now - self.reported_at >= self.every:
            self.logger.warning("%s still failing (latest: %s): %d more in the last %.0f s, "
                                "%d in %.0f s", self.work, where, self.unreported,
                                now - self.reported_at, self.failures, now - self.began)
            self.unreported = 0
            self.reported_at = now

    def succeeded(self):
        """A try succeeded: an outage under way is over."""
        if self.began is None:
            return
        now = self.now()
        self.logger.warning("%s succeed again, after %d failures in %.0f s",
                            self.work, self.failures, now - self.began)
        self._end(now)

    def _end(self, now):
        self.reset()
        self.ended = now


def reset_all():
    """Every OutageLog of the process without an outage (tests: one test's
    failures are not the next one's outage)."""
    for log in list(_logs):
        log.reset()
