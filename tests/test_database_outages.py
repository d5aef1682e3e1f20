"""A database that refuses writes for a while, on a real Daphne server over SQLite.

This test process holds SQLite's write lock on the server's database file
(BEGIN IMMEDIATE on a connection of its own), as a long admin action, a
backup or a second program writing would. The server waits SERVER_BUSY_TIMEOUT
seconds for a lock before a write fails.
"""

import asyncio
import contextlib
import json
import sqlite3
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.live import LiveServer
from tests.test_scaleout import Player, get_json, sketch, wait_until

pytestmark = pytest.mark.slow

SERVER_BUSY_TIMEOUT = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("outage"), env={
        "DATABASE_LOCK_TIMEOUT": str(SERVER_BUSY_TIMEOUT),
        # The game's database module says at DEBUG when a write attempt starts.
        "LOG_LEVEL": "DEBUG",
    })
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def write_lock(server):
    """Hold the write lock of the server's SQLite database, as another writer would."""
    connection = sqlite3.connect(server.workdir / "db.sqlite3", timeout=120,
                                 isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def query(server, sql, params=()):
    with contextlib.closing(sqlite3.connect(server.workdir / "db.sqlite3", timeout=60)) as c:
        return c.execute(sql, params).fetchall()


def new_room(server, **options):
    options = {"rounds": 1, "seconds": 300, "target_confidence": 1.0, **options}
    arguments = ", ".join(f"{key}={value!r}" for key, value in options.items())
    result = server.manage("shell", "-c", "from digitsite.game.rooms import create_room\n"
                                          f"print(create_room('Ada', {arguments}).code)")
    return result.stdout.strip().splitlines()[-1]


def log_since(server, offset):
    return server.log_path.read_text(errors="replace")[offset:]


async def wait_for_log(server, offset, text, timeout=60):
    deadline = time.monotonic() + timeout
    while text not in log_since(server, offset):
        if time.monotonic() > deadline:
            pytest.fail(f"the server never logged {text!r}:\n{log_since(server, offset)[-3000:]}")
        await asyncio.sleep(0.1)


async def a_read_is_answered_while_the_write_waits(server, offset, what):
    """A socket to a room that does not exist (a read) is answered before the
    drawing's write, still waiting for the lock, gives up its first try."""
    async with await server.game_client("ZZZZZZ", open_timeout=30) as stranger:
        answer = await stranger.receive(60)
    assert answer["code"] == "room_not_found"
    assert f"{what}: the database refused it" not in log_since(server, offset), (
        "the other room's read waited for the drawing's write")


def test_a_locked_database_fails_healthz_within_its_bound(server):
    """Hostile condition: another writer holds the lock longer than the server's busy timeout.

    Reads still work (the write-ahead log lets them), so a read-only probe
    said ok while every move of the game waited for the lock.
    """
    wait_until(lambda: get_json(server.url + "/healthz")[0] == 200, 60, "a healthy server")
    with write_lock(server):
        start = time.monotonic()
        status, body = get_json(server.url + "/healthz", timeout=SERVER_BUSY_TIMEOUT * 4)
        elapsed = time.monotonic() - start
    assert status == 503, body
    assert body["status"] == "failing"
    assert body["checks"]["database"]["ok"] is False
    assert "locked" in json.dumps(body["checks"]["database"])
    # The probe gives up within its own bound, not after the server's busy timeout.
    assert elapsed < SERVER_BUSY_TIMEOUT, f"/healthz took {elapsed:.1f} s"
    # The lock released, the probe passes again.
    wait_until(lambda: get_json(server.url + "/healthz")[0] == 200, 60, "healthy again")


async def test_a_drawing_outlasts_a_lock_longer_than_the_busy_timeout(server):
    """Hostile condition: the lock is held while a drawing is being written, for
    longer than the server's busy timeout, so the write fails at least once.

    The drawing's guess comes at its write's first refusal, `held`; it is
    written when the lock goes, `kept` follows, and the round stores it.
    While the write waits, other rooms'
    database work goes on: a connection to a room that does not exist is told
    so before the waiting write gives up. A player joining another room
    meanwhile (a write, which SQLite makes wait for the lock too) gets a seat
    once the lock goes, not an error.
    """
    code = await asyncio.to_thread(new_room, server)
    other_room = await asyncio.to_thread(new_room, server)
    ada = Player("Ada")

    async def join_other_room():
        async with await server.game_client(other_room, open_timeout=30) as bob:
            await bob.join("Bob", wait=False)
            return await bob.receive(SERVER_BUSY_TIMEOUT * 8)

    try:
        await ada.join_room(server, code)
        await ada.start()
        start = await ada.expect("round_start")
        offset = len(server.log_path.read_text(errors="replace"))
        what = f"a drawing in room {code}"
        with write_lock(server):
            await ada.draw(1, sketch(7), seq=1)
            await wait_for_log(server, offset, f"{what}: attempt 1")
            await a_read_is_answered_while_the_write_waits(server, offset, what)
            joining = asyncio.ensure_future(join_other_room())
            # Held until both writes failed once: they are then tried again.
            await wait_for_log(server, offset, f"{what}: the database refused it",
                               timeout=SERVER_BUSY_TIMEOUT * 4)
            await wait_for_log(server, offset,
                               f"a join in room {other_room}: the database refused it",
                               timeout=SERVER_BUSY_TIMEOUT * 4)
            guess = await ada.expect("guess", lambda m: m["seq"] == 1, timeout=60)
            assert (guess["held"], guess["kept"]) == (True, False), guess
        welcome = await joining
        assert welcome["type"] == "welcome", welcome
        assert welcome["you"]["name"] == "Bob"
        await ada.expect("kept", lambda m: m["seq"] == 1, timeout=60)
        assert not [m for m in ada.messages if m["type"] == "error"]
        # Both writes were refused (their tries' own lines are at DEBUG), and
        # the process said so once, then once that they succeed again.
        await wait_for_log(server, offset, "game writes succeed again")
        log = log_since(server, offset)
        assert log.count("game writes are failing") == 1, log[-3000:]
        # Whichever try the lock refused first opens the outage. The drawing's
        # began first, but the join's began moments later, and SQLite's busy
        # timeout counts the sleeps it asked for, not the time they took: on
        # a loaded machine the join's try was refused first (seen once).
        firsts = [f"game writes are failing (first: {refused}: database is locked)"
                  for refused in (what, f"a join in room {other_room}")]
        assert any(first in log for first in firsts), log[-3000:]
        assert log.count("game writes succeed again") == 1, log[-3000:]
        await ada.done(1)
        await ada.expect("round_end")
    finally:
        await ada.close()
    rows = await asyncio.to_thread(
        query, server, "SELECT label, strokes FROM recognizer_drawing WHERE game_id = ?",
        (start["game"],))
    assert len(rows) == 1
    label, strokes = rows[0]
    assert label == start["target"]
    assert json.loads(strokes)["strokes"] == sketch(7)["strokes"]


async def start_playing(server, ada):
    """Once the server is healthy: a new room, `ada` in it, its round
    started. (The room's code, the `round_start`.)"""
    await asyncio.to_thread(wait_until, lambda: get_json(server.url + "/healthz")[0] == 200,
                            60, "a healthy server")
    code = await asyncio.to_thread(new_room, server)
    await ada.join_room(server, code)
    await ada.start()
    return code, await ada.expect("round_start")


def stored_on_postgresql(url, game):
    """The (label, strokes) of the drawings stored for `game`."""
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as connection:
        return connection.execute(
            "SELECT label, strokes FROM recognizer_drawing WHERE game_id = %s",
            (game,)).fetchall()


@contextlib.contextmanager
def postgres_lock(url, *tables):
    """Hold EXCLUSIVE locks on PostgreSQL tables: others may read them, not write."""
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as connection:
        connection.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.rollback()


@pytest.mark.services
async def test_on_postgresql_locked_tables_fail_healthz_and_a_drawing_outlasts_them(
        own_postgres_database, tmp_path):
    """Hostile condition: another session holds the round-progress and health
    tables locked against writes for longer than the server's lock timeout,
    as a long admin transaction would. PostgreSQL would let the writes wait
    for ever; the lock timeout makes them fail, and a drawing is written
    again once the lock goes."""

    postgres_database = own_postgres_database
    lock_timeout = 5
    server = LiveServer(tmp_path, env={
        "DATABASE_URL": postgres_database, "REDIS_URL": "",
        "DATABASE_LOCK_TIMEOUT": str(lock_timeout), "LOG_LEVEL": "DEBUG",
    })
    await asyncio.to_thread(server.start)
    ada = Player("Ada")
    try:
        code, start = await start_playing(server, ada)
        offset = len(server.log_path.read_text(errors="replace"))
        what = f"a drawing in room {code}"
        with postgres_lock(postgres_database, "game_roundprogress", "game_healthprobe"):
            status, body = await asyncio.to_thread(get_json, server.url + "/healthz",
                                                   lock_timeout * 4)
            assert status == 503, body
            assert body["checks"]["database"]["ok"] is False
            assert "lock" in json.dumps(body["checks"]["database"])

            await ada.draw(1, sketch(8), seq=1)
            await wait_for_log(server, offset, f"{what}: attempt 1")
            await a_read_is_answered_while_the_write_waits(server, offset, what)
            await wait_for_log(server, offset, f"{what}: the database refused it",
                               timeout=lock_timeout * 8)
            guess = await ada.expect("guess", lambda m: m["seq"] == 1, timeout=60)
            assert (guess["held"], guess["kept"]) == (True, False), guess
        await ada.expect("kept", lambda m: m["seq"] == 1, timeout=60)
        await ada.done(1)
        await ada.expect("round_end")
        await asyncio.to_thread(wait_until, lambda: get_json(server.url + "/healthz")[0] == 200,
                                60, "healthy again")
    finally:
        await ada.close()
        server.stop()

    rows = stored_on_postgresql(postgres_database, start["game"])
    assert len(rows) == 1
    assert rows[0][0] == start["target"]
    assert rows[0][1]["strokes"] == sketch(8)["strokes"]


@contextlib.contextmanager
def postgres_away(url):
    """The server's database drops the connections it has and refuses new
    ones, as a PostgreSQL restart or a cut network does, until the block ends."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.strip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1),
                         autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        try:
            yield
        finally:
            connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.mark.services
async def test_with_postgresql_away_the_model_still_reads_and_the_outage_is_logged_once(
        own_postgres_database, tmp_path):
    """Hostile condition: PostgreSQL drops the server's connections and
    refuses new ones while a player draws. The model the process has loaded
    still reads the drawing (its check of the active version, here at every
    batch, cannot read it), and its guess comes at once, held; its write
    waits for the database, and `kept` follows once it is back. The log tells each outage once,
    for the writes and for the recognizer's check, and once that each works
    again. Tried: the recognizer's check failed the drawing with an error,
    and each refused try of the write logged a warning."""
    url = own_postgres_database
    server = LiveServer(tmp_path, env={
        "DATABASE_URL": url, "REDIS_URL": "", "RECOGNIZER_RELOAD_SECONDS": "0"})
    await asyncio.to_thread(server.start)
    ada = Player("Ada")
    try:
        _, start = await start_playing(server, ada)
        first = await ada.draw_and_guess(1, sketch(7), 1, start["game"])
        offset = len(server.log_path.read_text(errors="replace"))
        with postgres_away(url):
            # Read at once, while the database is away: held, its write due
            # a second after the last one.
            await ada.draw(1, sketch(8), seq=2)
            guess = await ada.expect("guess", lambda m: m["seq"] == 2, timeout=60)
            assert (guess["held"], guess["kept"]) == (True, False), guess
            assert guess["model"] == first["model"]
            await wait_for_log(server, offset, "the active model version could not be read")
            await wait_for_log(server, offset, "game writes are failing")
        # Written once the database is back.
        await ada.expect("kept", lambda m: m["seq"] == 2, timeout=60)
        await ada.draw_and_guess(1, sketch(9), 3, start["game"])
        await wait_for_log(server, offset, "game writes succeed again")
        await wait_for_log(server, offset, "the active model version can be read again")
        assert not [m for m in ada.messages if m["type"] == "error"]
        log = log_since(server, offset)
        assert log.count("game writes are failing") == 1, log[-3000:]
        assert log.count("the active model version could not be read") == 1, log[-3000:]
        assert "inference failed" not in log and "failed to score" not in log
        await ada.done(1)
        await ada.expect("round_end")
    finally:
        await ada.close()
        server.stop()

    rows = stored_on_postgresql(url, start["game"])
    assert [strokes["strokes"] for _, strokes in rows] == [sketch(9)["strokes"]]
