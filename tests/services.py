"""Fixtures for the real PostgreSQL and Redis on this machine.

- `postgres_database`: the URL of a fresh, uniquely named database, created on
  the server of $TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust
  auth) for the test session and dropped after it.
- `redis_url`: the URL of a Redis database number that this session claims
  for itself on $TEST_REDIS_URL's server (default 127.0.0.1:6379), flushed
  after. A TEST_REDIS_URL that names a database number (redis://host/7) uses
  exactly that one, so it must be dedicated to tests: it gets flushed.

Missing services skip the test with the reason, or fail it under CI=true.
"""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import require

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
# Claimed databases are searched from the top, away from the db 0 that
# development servers use by default.
REDIS_DATABASES = range(15, 0, -1)
REDIS_CLAIM_KEY = "digitsite:test-session"
# A session that dies without cleaning up frees its database after this.
REDIS_CLAIM_SECONDS = 6 * 3600


def _with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin_connection(url):
    import psycopg

    # The psycopg URL scheme is postgresql://; dj-database-url also takes postgres://.
    conninfo = url.replace("postgres://", "postgresql://", 1)
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgres_database():
    server_url = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    try:
        admin = _admin_connection(server_url)
    except Exception as exc:
        require(False, f"PostgreSQL is not reachable at {urlsplit(server_url).netloc} "
                       f"(set TEST_POSTGRES_URL): {exc}")
    name = f"digitsite_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server_url, name)
    finally:
        with _admin_connection(server_url) as admin:
            # FORCE: a server process killed mid-test may have left sessions open.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url():
    import redis

    given = os.environ.get("TEST_REDIS_URL")
    server_url = given or DEFAULT_REDIS_URL
    probe = redis.Redis.from_url(server_url, socket_connect_timeout=3)
    try:
        probe.ping()
    except Exception as exc:
        require(False, f"Redis is not reachable at {urlsplit(server_url).netloc} "
                       f"(set TEST_REDIS_URL): {exc}")
    finally:
        probe.close()
    token = uuid.uuid4().hex
    explicit_db = urlsplit(server_url).path.strip("/")
    candidates = [int(explicit_db)] if explicit_db else REDIS_DATABASES
    client = None
    for number in candidates:
        url = _with_database(server_url, str(number))
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        # Claiming with SET NX keeps two test sessions on one server apart;
        # a database someone else fills is left alone.
        if explicit_db or (client.dbsize() == 0 and client.set(
                REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_SECONDS)):
            break
        client.close()
        client = None
    if client is None:
        require(False, "no free Redis database number (1-15) to claim for the tests")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
