"""Throttling failed logins, per account and per client address.

Without it the admin login took 100 wrong passwords and then the right one,
so a password could be guessed at the speed of the server. Failures are
counted in the cache (Redis when REDIS_URL is set, so every process sees the
same counts; the local memory of the one process otherwise) in fixed windows
of LOGIN_LOCKOUT_SECONDS:

- LOGIN_FAILURES_PER_ACCOUNT failures for one user name lock that name,
- LOGIN_FAILURES_PER_IP failures from one address lock that address (higher:
  a class or an office shares one address, and one guesser can try many
  names),

each for LOGIN_LOCKOUT_SECONDS after the failure that locked it. While locked,
even the right password is refused, with a message saying for how long; the
name is locked whether or not such an account exists, so the message tells
nothing about which accounts exist. A successful login clears its account's
count.

The address is REMOTE_ADDR, which digitsite/proxies.py sets to the client
behind a trusted proxy.
"""

import functools
import hashlib
import logging
import math
import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Replaced in tests to move time forward without waiting.
clock = time.time


# What a cache that is down or unreachable raises: redis-py's own errors
# (its ConnectionError is not the builtin one) and socket errors. Anything else
# is a bug or a bad setting and must not be logged as an outage while
# throttling quietly stays off.
CACHE_ERRORS = (RedisError, OSError)


def _cache_may_fail(default):
    """With the cache (Redis) down, logins go unthrottled rather than fail with a
    500: the admin stays usable to deal with the outage. Logged each time."""
    def wrap(function):
        @functools.wraps(function)
        def guarded(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except CACHE_ERRORS:
                logger.warning("login throttling is off: the cache failed", exc_info=True)
                return default
        return guarded
    return wrap

PREFIX = "login-throttle"


def _key(kind, value):
    # Hashed: user names and addresses may hold characters a cache key cannot.
    digest = hashlib.sha256(str(value).casefold().encode("utf-8", "replace")).hexdigest()[:32]
    return f"{PREFIX}:{kind}:{digest}"


def _subjects(request, username):
    subjects = []
    if username:
        subjects.append(("account", username, settings.LOGIN_FAILURES_PER_ACCOUNT))
    address = request.META.get("REMOTE_ADDR") if request is not None else None
    if address:
        subjects.append(("ip", address, settings.LOGIN_FAILURES_PER_IP))
    return subjects


@_cache_may_fail(0)
def locked_seconds(request, username):
    """Seconds until this login may be tried again; 0 when it may be tried now."""
    now = clock()
    until = max((cache.get(_key(f"{kind}-lock", value)) or 0
                 for kind, value, _ in _subjects(request, username)), default=0)
    return max(0, math.ceil(until - now))


@_cache_may_fail(None)
def record_failure(request, username):
    now = clock()
    lockout = settings.LOGIN_LOCKOUT_SECONDS
    window = int(now // lockout)
    for kind, value, limit in _subjects(request, username):
        lock_key = _key(f"{kind}-lock", value)
        if (cache.get(lock_key) or 0) > now:
            continue  # already locked: tries while locked do not extend it
        count_key = f"{_key(kind, value)}:{window}"
        # add() then incr(): atomic in Redis, so parallel guesses are all counted.
        cache.add(count_key, 0, timeout=lockout * 2)
        try:
            count = cache.incr(count_key)
        except ValueError:  # expired between the two calls
            cache.add(count_key, 1, timeout=lockout * 2)
            count = 1
        if count >= limit:
            cache.set(lock_key, now + lockout, timeout=lockout + 60)
            cache.delete(count_key)


@_cache_may_fail(None)
def clear_account(username):
    now = clock()
    window = int(now // settings.LOGIN_LOCKOUT_SECONDS)
    cache.delete(f"{_key('account', username)}:{window}")


@receiver(user_login_failed)
def _on_failure(sender, credentials, request=None, **kwargs):
    record_failure(request, credentials.get("username"))


@receiver(user_logged_in)
def _on_success(sender, request, user, **kwargs):
    clear_account(user.get_username())


def lockout_message(seconds):
    minutes = max(1, math.ceil(seconds / 60))
    return (f"Too many failed logins for this account or from this address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.")


def throttled_form(base):
    """`base` (an AuthenticationForm) refusing to check a password while locked."""
    from django.core.exceptions import ValidationError

    class ThrottledForm(base):
        def clean(self):
            seconds = locked_seconds(self.request, self.cleaned_data.get("username"))
            if seconds:
                raise ValidationError(lockout_message(seconds), code="locked")
            return super().clean()

    ThrottledForm.__name__ = f"Throttled{base.__name__}"
    return ThrottledForm
