"""How fast one connection may send: a token bucket, and a cut-off for floods.

A connection may send RATE_PER_SECOND messages a second on average, in
bursts of up to RATE_BURST (digitsite.game.protocol). Messages over it are
dropped; the client is told so at most once a second, and one that keeps
sending after that (over FLOOD_DROPS dropped in FLOOD_WINDOW seconds) is
cut off. Time is the game clock's, so tests can flood in virtual time.
"""

from collections import deque
from enum import Enum

from digitsite.game.protocol import FLOOD_DROPS, FLOOD_WINDOW, RATE_BURST, RATE_PER_SECOND
from recognizer.ratelimit import TokenBucket


class Refusal(Enum):
    """What the session does about a dropped message (besides dropping it)."""

    WARN = "warn"  # tell the client it is rate limited
    CUT_OFF = "cut_off"  # tell it, and close the connection


class MessageRate:
    def __init__(self, clock):
        self.clock = clock
        self.bucket = TokenBucket(RATE_PER_SECOND, RATE_BURST, clock=clock)
        self.drops = deque()
        # The first drop is always reported, whatever the clock reads (a test's
        # manual clock starts at 0).
        self.last_warning = float("-inf")

    def allowed(self):
        """Take a message's token; False (the message is dropped) when none is left."""
        if self.bucket.take():
            return True
        now = self.clock()
        self.drops.append(now)
        while self.drops and self.drops[0] < now - FLOOD_WINDOW:
            self.drops.popleft()
        return False

    def refusal(self):
        """After a dropped message: a Refusal to act on, or None to drop it quietly."""
        if len(self.drops) > FLOOD_DROPS:
            return Refusal.CUT_OFF
        now = self.clock()
        if now - self.last_warning >= 1.0:
            self.last_warning = now
            return Refusal.WARN
        return None
