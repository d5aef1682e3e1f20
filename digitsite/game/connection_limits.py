"""Open game sockets per client address and per browser session.

A client may hold GAME_WS_CONNECTIONS_PER_ADDRESS sockets from one address
and GAME_WS_CONNECTIONS_PER_SESSION from one browser session (the page's
session cookie; a client without one is counted by its address alone). The
socket past either bound is accepted, told `too_many_connections` and closed
with 4029 (docs/protocol.md), rather than refused in the handshake, which a
browser reports as a failed connection with no reason.

With one process the counts live in its memory (ConnectionCounts). With
several, behind one REDIS_URL, they live in Redis (SharedConnectionCounts),
so the bounds hold for the site and not N times over: each socket is a
member of a sorted set per address and per session, scored with the time it
stops counting unless its process renews it. A process renews its sockets
every GAME_WS_COUNT_SECONDS / 3; one killed with its sockets open stops
renewing, and its sockets stop counting GAME_WS_COUNT_SECONDS (30) later,
so its clients are not shut out for longer. A Redis that cannot be reached
does not keep players out: the socket is counted in the process instead.
"""

import asyncio
import logging
import secrets
from collections import Counter

from django.conf import settings


class ConnectionCounts:
    """Sockets open per address and per session key. Used from the event loop only."""

    def __init__(self):
        self.by_address = Counter()
        self.by_session = Counter()

    def admit(self, address, session_key):
        """Count a new socket, or return why it is refused (and count nothing)."""
        per_address = settings.GAME_WS_CONNECTIONS_PER_ADDRESS
        per_session = settings.GAME_WS_CONNECTIONS_PER_SESSION
        if per_address > 0 and self.by_address[address] >= per_address:
            return (f"too many connections from your address: at most {per_address} "
                    f"at a time; close another tab or device first")
        if session_key and per_session > 0 and self.by_session[session_key] >= per_session:
            return (f"too many connections from this browser: at most {per_session} "
                    f"at a time; close another tab first")
        self.by_address[address] += 1
        if session_key:
            self.by_session[session_key] += 1
        return None

    def release(self, address, session_key):
        for counter, key in ((self.by_address, address), (self.by_session, session_key)):
            if key and counter[key] > 0:
                counter[key] -= 1
                if not counter[key]:
                    del counter[key]


# The process's sockets when they are counted here (no Redis, or Redis failed).
open_sockets = ConnectionCounts()

logger = logging.getLogger(__name__)

# Counts a socket against each of KEYS (its address's set, and its session's)
# unless one is full. Expired members are dropped first; times are Redis's
# own, so processes on different machines agree. ARGV: the socket's id, the
# seconds it counts for, then each key's bound (0: none). Returns 0, or the
# number of the key that is full.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local bound = tonumber(ARGV[2 + i])
  if bound > 0 and redis.call('ZCARD', key) >= bound then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""
# Renews sockets still open: KEYS[i] holds ARGV[i + 1]; ARGV[1] the seconds.
# Added again if missing: a Redis that was restarted, or away longer than the
# seconds, forgot them while they stayed open. (A socket closing while a
# renewal is under way may count for up to the seconds after it closed.)
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""


class SharedConnectionCounts:
    """The counts in Redis, for every process of the site. Used from one event loop."""

    def __init__(self, url, seconds, prefix="game:sockets"):
        from redis.asyncio import Redis

        self.redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                    max_connections=settings.REDIS_MAX_CONNECTIONS)
        self.seconds = seconds
        self.prefix = prefix
        self.admit_script = self.redis.register_script(_ADMIT)
        self.renew_script = self.redis.register_script(_RENEW)
        self.open = {}  # socket id -> its keys
        self.renewer = None

    def keys(self, address, session_key):
        keys = [f"{self.prefix}:address:{address}"]
        if session_key:
            keys.append(f"{self.prefix}:session:{session_key}")
        return keys

    async def admit(self, address, session_key):
        """(socket id, None) for a socket counted, or (None, why it is refused).

        Raises redis' errors (the caller counts the socket in the process)."""
        per_address = settings.GAME_WS_CONNECTIONS_PER_ADDRESS
        per_session = settings.GAME_WS_CONNECTIONS_PER_SESSION
        keys = self.keys(address, session_key)
        socket_id = secrets.token_hex(8)
        full = await self.admit_script(keys=keys, args=[
            socket_id, self.seconds, max(per_address, 0), max(per_session, 0)][:2 + len(keys)])
        if full == 1:
            return None, (f"too many connections from your address: at most {per_address} "
                          f"at a time; close another tab or device first")
        if full == 2:
            return None, (f"too many connections from this browser: at most {per_session} "
                          f"at a time; close another tab first")
        self.open[socket_id] = keys
        if self.renewer is None or self.renewer.done():
            self.renewer = asyncio.ensure_future(self._renew_forever())
        return socket_id, None

    async def release(self, socket_id):
        keys = self.open.pop(socket_id, None)
        if keys:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zrem(key, socket_id)
                await pipe.execute()

    async def renew(self):
        """Renew every open socket of this process (one round trip)."""
        pairs = [(key, socket_id) for socket_id, keys in list(self.open.items())
                 for key in keys]
        if pairs:
            await self.renew_script(keys=[key for key, _ in pairs],
                                    args=[self.seconds] + [socket_id for _, socket_id in pairs])

    async def _renew_forever(self):
        while self.open:
            await asyncio.sleep(self.seconds / 3)
            try:
                await self.renew()
            except Exception as exc:  # Redis away for a while: try again next time
                logger.warning("renewing the game sockets' counts in Redis failed: %s", exc)


_shared = {}  # event loop -> its SharedConnectionCounts


def shared_counts():
    """The Redis counts for this event loop, or None when the site has no Redis."""
    if not settings.REDIS_URL or settings.GAME_WS_COUNT_SECONDS <= 0:
        return None
    loop = asyncio.get_running_loop()
    counts = _shared.get(loop)
    if counts is None:
        for old in [old for old in _shared if old.is_closed()]:
            del _shared[old]
        counts = _shared[loop] = SharedConnectionCounts(settings.REDIS_URL,
                                                        settings.GAME_WS_COUNT_SECONDS)
    return counts


async def admit(address, session_key):
    """Count a new socket: (its ticket, None), or (None, why it is refused)."""
    shared = shared_counts()
    if shared is not None:
        try:
            socket_id, refusal = await shared.admit(address, session_key)
            return (("shared", socket_id) if socket_id else None), refusal
        except Exception as exc:
            logger.warning("counting a game socket in Redis failed (%s); counted in this "
                           "process", exc)
    refusal = open_sockets.admit(address, session_key)
    return (None if refusal else ("local", address, session_key)), refusal


async def release(ticket):
    """The socket `ticket` (from admit) closed."""
    if ticket[0] == "local":
        open_sockets.release(ticket[1], ticket[2])
        return
    try:
        await shared_counts().release(ticket[1])
    except Exception as exc:  # it stops counting when its time runs out
        logger.warning("releasing a game socket in Redis failed: %s", exc)
