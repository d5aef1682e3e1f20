"""A process's Redis channel layer under a burst: 300 broadcasts at once.

redis-py 8 gives a pool at most 100 connections and raises "Too many
connections" past them, at once. 200 players of one process sending at the
same time made broadcasts fail that way (internal errors, a socket closed
with 1011), so the site sizes the pool (REDIS_MAX_CONNECTIONS). Needs Redis
(skips without it, fails under CI=true).
"""

import asyncio

import pytest
from channels_redis.core import RedisChannelLayer

from digitsite import settings as site_settings

pytestmark = pytest.mark.services

BURST = 300


def layer_as_the_site_configures_it(redis_url, **host_changes):
    """The site's own channel layer settings, pointed at the test's Redis."""
    host = {**site_settings.redis_layer_host(redis_url), **host_changes}
    return RedisChannelLayer(hosts=[host], capacity=10_000)


async def burst(layer):
    channels = [await layer.new_channel() for _ in range(8)]
    for name in channels:
        await layer.group_add("room.BURST", name)
    results = await asyncio.gather(
        *(layer.group_send("room.BURST", {"type": "game.event", "n": n}) for n in range(BURST)),
        return_exceptions=True)
    await layer.flush()
    return [r for r in results if isinstance(r, Exception)]


def test_a_burst_of_broadcasts_needs_more_than_redis_py_default_pool(redis_url):
    # redis-py's default pool: the burst fails, which is what players saw. The
    # event loop starts all 300 sends, each taking a connection, before any
    # reply is read, so this does not depend on how fast Redis answers.
    failures = asyncio.run(burst(layer_as_the_site_configures_it(redis_url,
                                                                  max_connections=100)))
    assert failures and "Too many connections" in str(failures[0])


def test_the_sites_pool_carries_the_burst(redis_url):
    failures = asyncio.run(burst(layer_as_the_site_configures_it(redis_url)))
    assert failures == []
