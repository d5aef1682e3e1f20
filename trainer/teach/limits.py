"""Bounds on how often one address may ask for teach jobs, and on how many
teach drawings one browser session leaves for review.

The one-job-per-owner slot (trainer/teach/status.py) bounds what runs at
once, not how often: a loop of "POST jobs, POST cancel" frees the slot each
time, and each job stores up to TEACH_MAX_EXAMPLES drawings for review. So
each address gets a bucket of TEACH_JOBS_PER_MINUTE_PER_ADDRESS jobs
(recognizer/ratelimit.py; in this process, as the recognition API's limits
are), and each session TEACH_STORED_PER_SESSION_PER_HOUR stored drawings: past
that its jobs still run, and their drawings are not kept.
"""

import math
import threading
import time

from django.core.cache import cache as default_cache

from recognizer.ratelimit import TokenBucket


class JobRate:
    """`per_minute` jobs a minute per address, in bursts of as many. Thread-safe."""

    def __init__(self, per_minute, clock=time.monotonic):
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.clock = clock
        self._buckets = {}
        self._lock = threading.Lock()
        self._prune_at = 1024

    def retry_after(self, address):
        """Spend one job of `address`'s: None, or the whole seconds until it may ask again."""
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(address)
            if bucket is None:
                bucket = self._buckets[address] = TokenBucket(
                    self.per_minute / 60.0, self.per_minute, clock=self.clock, now=now)
                if len(self._buckets) >= self._prune_at:
                    # Forget addresses whose bucket is full again (as good as new):
                    # the table stays within twice the addresses of the last minute.
                    self._buckets = {key: kept for key, kept in self._buckets.items()
                                     if key == address or not kept.refilled_whole_by(now)}
                    self._prune_at = max(1024, 2 * len(self._buckets))
            if bucket.take(1.0, now):
                return None
            return max(1, math.ceil((1.0 - bucket.level(now)) / bucket.rate))


_job_rate = None
_job_rate_lock = threading.Lock()


def job_rate():
    """This process's JobRate (from the settings, on first use)."""
    global _job_rate
    if _job_rate is None:
        from django.conf import settings

        with _job_rate_lock:
            if _job_rate is None:
                _job_rate = JobRate(settings.TEACH_JOBS_PER_MINUTE_PER_ADDRESS)
    return _job_rate


# The window the stored drawings are counted in: a fixed clock hour, one
# cache key each (a sliding window would keep a list per session for the
# same bound, give or take one hour's worth at the window's edge).
HOUR_SECONDS = 3600


def storable(owner, count, per_hour, cache=None, clock=time.time):
    """How many of `count` drawings the session `owner` may still store this hour
    (0 to count); counts them as stored. In the cache, so every process agrees
    when the cache is Redis."""
    cache = cache or default_cache
    key = f"teach:stored:{owner}:{int(clock() // HOUR_SECONDS)}"
    cache.add(key, 0, HOUR_SECONDS + 60)
    try:
        after = cache.incr(key, count)
    except ValueError:  # expired between add and incr: a new hour's count
        cache.add(key, count, HOUR_SECONDS + 60)
        after = count
    before = after - count
    return max(0, min(count, per_hour - before))
