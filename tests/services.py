"""The real PostgreSQL and Redis on this machine, for tests and benchmarks.

Fixtures:

- `postgres_database`: the URL of a fresh, uniquely named database, created on
  the server of $TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust
  auth) for the test session and dropped after it. It is migrated already:
  a copy of one migrated database per test process (`migrated_template`).
- `own_postgres_database`: the URL of a fresh database for one test alone,
  dropped after it, for tests whose races, locks or activations would
  disturb the session's shared database.
- `redis_url`: the URL of a Redis database number that this session claims
  for itself on $TEST_REDIS_URL's server (default 127.0.0.1:6379), flushed
  after. A TEST_REDIS_URL that names a database number (redis://host/7) uses
  exactly that one, so it must be dedicated to tests: it gets flushed.

Missing services skip the test with the reason, or fail it under CI=true.
Databases left by a test process killed before it could drop them are
dropped by the next process of this machine that makes one (drop_orphans).
The context managers behind them (`fresh_postgres_database`,
`claimed_redis_database`) serve the load benchmark too.
"""

import atexit
import contextlib
import hashlib
import os
import re
import socket
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


class ServiceUnavailable(Exception):
    """PostgreSQL or Redis cannot be reached or used; the message says why."""


def _with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin_connection(url):
    import psycopg

    # The psycopg URL scheme is postgresql://; dj-database-url also takes postgres://.
    conninfo = url.replace("postgres://", "postgresql://", 1)
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=3)


def _drop_database(server_url, name):
    with _admin_connection(server_url) as admin:
        # FORCE: a server process killed mid-test may have left sessions open.
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _process_space():
    """This machine and the process ids it sees: the host's name and its pid
    namespace. A container sharing the host's network (and name) has a
    namespace of its own, where the host's process ids mean nothing."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()} {namespace}".encode()).hexdigest()[:6]


# Every database made here is named <prefix>_<machine>_<pid>_<random>, for
# the process that made it: one killed before its exit handlers ran (a CI
# timeout, kill -9) leaves its databases behind, on a PostgreSQL that
# outlives the run, and the next process that makes one drops them.
MACHINE = _process_space()
_MADE_HERE = re.compile(
    r"^digitsite_[a-z]+_(?P<machine>[0-9a-f]{6})_(?P<pid>\d{1,9})_[0-9a-f]{8}$")
_orphans_dropped = set()


def database_name(prefix):
    return f"{prefix}_{MACHINE}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def drop_orphans(admin):
    """Drop the databases made here by processes of this machine that are
    gone; return their names. Another machine's (a shared server) are left
    alone: its process ids mean nothing here. So is a name whose process id
    a living process has taken since."""
    import psycopg.errors

    dropped = []
    for (name,) in admin.execute("SELECT datname FROM pg_database").fetchall():
        made = _MADE_HERE.match(name)
        if made and made["machine"] == MACHINE and not _alive(int(made["pid"])):
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except (psycopg.errors.ObjectInUse, psycopg.errors.InvalidCatalogName):
                continue  # another test process is dropping it at the same time
            dropped.append(name)
    return dropped


def _drop_orphans_once(admin, server_url):
    if server_url not in _orphans_dropped:
        _orphans_dropped.add(server_url)
        drop_orphans(admin)


# One migrated database per test process and PostgreSQL server, the template
# of the fresh databases the tests ask for (see is_migrated): `migrate` in a
# process of its own took 6 s on a quiet machine and more on a busy one, once
# for each server the suite starts on PostgreSQL, where CREATE DATABASE ...
# TEMPLATE copies the migrated one in a tenth of a second.
_templates = {}
_migrated_urls = set()


def migrated_template(server_url):
    """The name of this process's migrated database on `server_url`'s server
    (made and migrated at the first call, dropped when the process exits)."""
    from tests.live import migrate_template

    name = _templates.get(server_url)
    if isinstance(name, Exception):
        raise name  # its migrate failed once: the next tests are told so at once
    if name is not None:
        return name
    name = database_name("digitsite_template")
    with _admin_connection(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    atexit.register(_drop_database, server_url, name)
    try:
        migrate_template(DATABASE_URL=_with_database(server_url, name), REDIS_URL="")
    except RuntimeError as exc:
        _templates[server_url] = exc
        raise
    _templates[server_url] = name
    return name


def is_migrated(url):
    """Whether `url` is a database made migrated by fresh_postgres_database
    (a server on it need not run `migrate`)."""
    return url in _migrated_urls


@contextlib.contextmanager
def fresh_postgres_database(server_url, prefix="digitsite_test", migrated=False):
    """Yield the URL of a new database on `server_url`'s server; drop it
    afterwards. `migrated`: a copy of `migrated_template`, not an empty one."""
    try:
        admin = _admin_connection(server_url)
    except Exception as exc:
        raise ServiceUnavailable(
            f"PostgreSQL is not reachable at {urlsplit(server_url).netloc}: {exc}") from exc
    name = database_name(prefix)
    with admin:
        _drop_orphans_once(admin, server_url)
        template = f' TEMPLATE "{migrated_template(server_url)}"' if migrated else ""
        admin.execute(f'CREATE DATABASE "{name}"{template}')
    url = _with_database(server_url, name)
    if migrated:
        _migrated_urls.add(url)
    try:
        yield url
    finally:
        _migrated_urls.discard(url)
        _drop_database(server_url, name)


@contextlib.contextmanager
def claimed_redis_database(server_url):
    """Yield the URL of a Redis database number used by nobody else; flush it afterwards.

    A URL naming a database number uses that one as it is.
    """
    import redis

    probe = redis.Redis.from_url(server_url, socket_connect_timeout=3)
    try:
        probe.ping()
    except Exception as exc:
        raise ServiceUnavailable(
            f"Redis is not reachable at {urlsplit(server_url).netloc}: {exc}") from exc
    finally:
        probe.close()
    token = uuid.uuid4().hex
    explicit_db = urlsplit(server_url).path.strip("/")
    candidates = [int(explicit_db)] if explicit_db else REDIS_DATABASES
    client = url = None
    for number in candidates:
        url = _with_database(server_url, str(number))
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        # Claiming with SET NX keeps two sessions on one server apart; a
        # database someone else fills is left alone.
        if explicit_db or (client.dbsize() == 0 and client.set(
                REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_SECONDS)):
            break
        client.close()
        client = None
    if client is None:
        raise ServiceUnavailable("no free Redis database number (1-15) to claim")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def _unavailable(exc, variable):
    require(False, f"{exc} (set {variable})")


@contextlib.contextmanager
def _postgres_or_skip(prefix="digitsite_test"):
    """A fresh database's URL; a missing server skips (fails under CI=true)."""
    server_url = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(fresh_postgres_database(server_url, prefix=prefix,
                                                              migrated=True))
        except ServiceUnavailable as exc:
            _unavailable(exc, "TEST_POSTGRES_URL")
        yield url


@pytest.fixture(scope="session")
def postgres_database():
    with _postgres_or_skip() as url:
        yield url


@pytest.fixture
def own_postgres_database():
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(_postgres_or_skip(prefix="digitsite_own"))
        yield url


@pytest.fixture(scope="session")
def redis_url():
    server_url = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(claimed_redis_database(server_url))
        except ServiceUnavailable as exc:
            _unavailable(exc, "TEST_REDIS_URL")
        yield url
