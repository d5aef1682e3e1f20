"""How fast one connection may send: a token bucket, and a cut-off for floods.

A connection may send RATE_PER_SECOND messages a second on average, in
bursts of up to RATE_BURST (digitsite.game.protocol). Messages over it are
dropped; the client is told so at most once a second, and one that keeps
sending after that (over FLOOD_DROPS dropped in FLOOD_WINDOW seconds) is
cut off. Time is the game clock's, so tests can flood in virtual time.

Each client address also has a budget of message bytes a second, shared by
its sockets in the process (AddressBytes): a message past it is dropped in
the same way, before it is decoded. The message rate bounds one socket's
messages, not their size nor an address's sockets: 20 sockets of one
address sending the largest valid drawings (48 kB each) back to back had
the server decode and check about 25 a second on its event loop and in its
rendering threads, and another room's player's guess p95 rose about 50-fold
(bench/bench_abuse.py). The page sends a few hundred bytes a drawing
(protocol 2), a few kB a second while drawing, so a class of 40 behind one
school address sends about 120 kB a second: the default budget is twice
that. The burst (512 kB) bounds what arrives at once: the class's pages
rejoining together with their drawings (about 390 kB), but not 20 of a
flooder's largest drawings held until its budget refilled (1 MB let them
all in together, and another player's p95 rose 1.4-5.5x, against 1.1-1.5x
with 512 kB: bench/bench_abuse.py --ws-bursts).
"""

from collections import deque
from enum import Enum

from django.conf import settings

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
        self.drop()
        return False

    def drop(self):
        """Count a message dropped (here, or by the address's byte budget)."""
        now = self.clock()
        self.drops.append(now)
        while self.drops and self.drops[0] < now - FLOOD_WINDOW:
            self.drops.popleft()

    def refusal(self):
        """After a dropped message: a Refusal to act on, or None to drop it quietly."""
        if len(self.drops) > FLOOD_DROPS:
            return Refusal.CUT_OFF
        now = self.clock()
        if now - self.last_warning >= 1.0:
            self.last_warning = now
            return Refusal.WARN
        return None


class AddressBytes:
    """Message bytes a second per client address, in bursts: a token bucket per
    address (GAME_WS_BYTES_PER_SECOND_PER_ADDRESS, GAME_WS_BYTES_BURST_PER_ADDRESS).
    Used from the event loop only."""

    def __init__(self, clock):
        self.clock = clock
        self.buckets = {}
        self.prune_at = 1024

    def allowed(self, address, size):
        """Spend `size` bytes of `address`'s budget; False (drop the message) when short."""
        rate = settings.GAME_WS_BYTES_PER_SECOND_PER_ADDRESS
        if rate <= 0:
            return True
        now = self.clock()
        bucket = self.buckets.get(address)
        if bucket is None:
            burst = max(settings.GAME_WS_BYTES_BURST_PER_ADDRESS, rate)
            bucket = self.buckets[address] = TokenBucket(rate, burst, clock=self.clock, now=now)
            if len(self.buckets) >= self.prune_at:
                # Forget addresses whose bucket is full again (as good as new).
                self.buckets = {key: kept for key, kept in self.buckets.items()
                                if key == address or not kept.refilled_whole_by(now)}
                self.prune_at = max(1024, 2 * len(self.buckets))
        return bucket.take(size, now)
