"""The token bucket that the site's rate limits are made of.

A bucket holds up to `capacity` tokens and refills at `rate` tokens a second;
it starts full. Each request (a game message, an API call) spends tokens, and
one that finds too few is refused. The game limits each connection's
messages with one (digitsite/game/message_rate.py), the recognition API
each client's requests (recognizer/clients.py).

Plain Python with an injectable clock: no Django, no I/O. Not thread-safe
by itself; a caller that shares a bucket between threads holds a lock
around it.
"""

import time


class TokenBucket:
    """`rate` tokens a second, bursts up to `capacity`."""

    def __init__(self, rate, capacity, clock=time.monotonic, now=None):
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.clock = clock
        self.tokens = float(capacity)
        self.stamp = clock() if now is None else now

    def level(self, now=None):
        """The tokens the bucket holds at `now` (the clock's time by default); changes nothing."""
        now = self.clock() if now is None else now
        return min(self.capacity, self.tokens + (now - self.stamp) * self.rate)

    def refill(self, now=None):
        """Add what has flowed in since the last refill; returns the tokens held."""
        now = self.clock() if now is None else now
        self.tokens = self.level(now)
        self.stamp = now
        return self.tokens

    def take(self, cost=1.0, now=None):
        """Spend `cost` tokens if the bucket holds them; True when it did."""
        if self.refill(now) >= cost:
            self.tokens -= cost
            return True
        return False

    def refilled_whole_by(self, now):
        """True when a whole bucket's worth has flowed in between the last
        refill and `now`: the bucket is full, as good as a new one."""
        return now - self.stamp >= self.capacity / self.rate
