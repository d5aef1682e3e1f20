"""Several server processes on the real PostgreSQL and Redis.

Two Daphne processes share one fresh PostgreSQL database, one Redis database
and one model folder, as in docs/deployment.md. The tests check what a
deployment relies on: the Redis layer carries messages between processes,
each process reports PostgreSQL, Redis and the model in /healthz, an
activated model version reaches both, two players on different processes
play one game in one room, and a process killed mid-game loses nothing.
"""

import asyncio
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest

from digitsite.game.client import GameClient
from tests import support
from tests.live import LiveServer
from tests.support import BASE_DIR

pytestmark = [pytest.mark.services, pytest.mark.slow]


def get_json(url, timeout=30):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_json(url, payload, timeout=30):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(check, timeout, what):
    """tests.support.wait_until, polling every 0.2 s: these checks ask servers over HTTP."""
    return support.wait_until(check, timeout, what, interval=0.2)


# A round the timer ends (kept short), and one long enough that a loaded
# machine ends it by `done` rather than by the clock.
# 15 s, not 8: two players' draws, their guesses and a `done` crossing
# processes must all land before the timer even on a loaded machine, or the
# round's results record a different reason for Ada's end.
TIMED_ROUND_SECONDS = 15.0
LONG_ROUND_SECONDS = 30.0
ROOMS_AHEAD = (TIMED_ROUND_SECONDS, LONG_ROUND_SECONDS)
# Three rounds each (a game may be started with fewer). A confidence of 1 is
# never reached, so rounds end by `done` or the timer, as a test decides,
# whatever model is active.
CREATE_ROOMS = (
    "from digitsite.game.rooms import create_room\n"
    "def create_rooms(lengths):\n"
    "    return [create_room('Ada', rounds=3, seconds=seconds, results_seconds=1.0,"
    " target_confidence=1.0).code for seconds in lengths]"
)


class Cluster:
    """Two Daphne processes sharing PostgreSQL, Redis and the model folder."""

    def __init__(self, root, env):
        self.root = root
        self.env = env
        self.servers = [LiveServer(root / name, env=env) for name in ("a", "b")]

    def start(self):
        self.servers[0].start()  # the shared database (migrated already on PostgreSQL)
        # One Django start-up makes sure of a model and makes the tests' rooms.
        codes = self.shell(
            "from django.conf import settings\n"
            "from recognizer.versions import active_version\n"
            "from tests.support import register_random_model\n"
            "active_version() or register_random_model(settings.RECOGNIZER_MODEL_DIR, seed=0)\n"
            f"{CREATE_ROOMS}\n"
            f"print(' '.join(create_rooms({list(ROOMS_AHEAD)})))\n"
        ).split()
        self.rooms = dict(zip(ROOMS_AHEAD, ([code] for code in codes), strict=True))
        for server in self.servers[1:]:
            server.migrate = False
            server.start()

    def new_room(self, seconds):
        if self.rooms.get(seconds):
            return self.rooms[seconds].pop()
        return self.shell(f"{CREATE_ROOMS}\nprint(create_rooms([{seconds}])[0])\n")

    def ensure_running(self):
        """Restart a process an earlier test killed, on its old port."""
        for server in self.servers:
            if server.process is None or server.process.poll() is not None:
                server.migrate = False
                server.start()

    def stop(self):
        for server in self.servers:
            server.stop()

    def shell(self, code):
        """Run Python in a Django shell with the cluster's settings; return its last line."""
        result = self.servers[0].manage("shell", "-c", code, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        lines = result.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def sql(self, query, params=()):
        import psycopg

        conninfo = self.env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            return connection.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def cluster(postgres_database, redis_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    model_dir = root / "models"
    model_dir.mkdir()
    env = {
        "DATABASE_URL": postgres_database,
        "REDIS_URL": redis_url,
        # One folder and one key for all processes, as a deployment must have.
        "RECOGNIZER_MODEL_DIR": str(model_dir),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_CONN_MAX_AGE": "60",
        "RECOGNIZER_RELOAD_SECONDS": "0.5",
        "RECOGNIZER_TORCH_THREADS": "1",
    }
    cluster = Cluster(root, env)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def running(cluster):
    cluster.ensure_running()
    return cluster


# -- the Redis channel layer ------------------------------------------------


async def test_the_redis_layer_carries_messages_and_groups_between_processes(redis_url):
    from channels_redis.core import RedisChannelLayer

    # Two layer objects with their own connections stand for two processes.
    one, two = RedisChannelLayer(hosts=[redis_url]), RedisChannelLayer(hosts=[redis_url])
    try:
        channel = await two.new_channel()
        await one.send(channel, {"type": "direct", "n": 1})
        assert await asyncio.wait_for(two.receive(channel), 5) == {"type": "direct", "n": 1}

        group = f"room-{uuid.uuid4().hex}"
        on_one, on_two = await one.new_channel(), await two.new_channel()
        await one.group_add(group, on_one)
        await two.group_add(group, on_two)
        await two.group_send(group, {"type": "room.update", "round": 2})
        assert await asyncio.wait_for(one.receive(on_one), 5) == {"type": "room.update", "round": 2}
        assert await asyncio.wait_for(two.receive(on_two), 5) == {"type": "room.update", "round": 2}

        await two.group_discard(group, on_two)
        await one.group_send(group, {"type": "room.update", "round": 3})
        assert (await asyncio.wait_for(one.receive(on_one), 5))["round"] == 3
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(two.receive(on_two), 0.5)
    finally:
        await one.close_pools()
        await two.close_pools()


async def test_the_configured_redis_layer_keeps_a_burst_of_room_messages(redis_url):
    """channels_redis counts its capacity per process, not per connection: 25
    rooms ending a round together send one process hundreds of group messages
    before it reads any. With the library's default capacity (100) most would
    be dropped; the site's setting keeps them all, in order."""
    from channels_redis.core import RedisChannelLayer
    from django.conf import settings

    config = {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "hosts": [redis_url]}
    sender, receiver = RedisChannelLayer(**config), RedisChannelLayer(**config)
    burst = 25 * 3 * 8  # rooms x messages at a round's end x players, to spare
    try:
        channels = [await receiver.new_channel() for _ in range(8)]
        for room in range(25):
            await sender.group_add(f"room-{room}", channels[room % 8])
        for n in range(burst):
            await sender.group_send(f"room-{n % 25}", {"type": "game.event", "n": n})
        received = []
        for channel in channels:
            while True:
                try:
                    message = await asyncio.wait_for(receiver.receive(channel), 0.5)
                except TimeoutError:
                    break
                received.append(message["n"])
        assert sorted(received) == list(range(burst))
        default = RedisChannelLayer(hosts=[redis_url])
        assert default.capacity < burst <= config["capacity"]
    finally:
        await sender.close_pools()
        await receiver.close_pools()


# -- health and model versions across processes ----------------------------


def test_each_process_reports_postgresql_redis_and_the_model(running):
    pids = set()
    for server in running.servers:
        status, body = get_json(server.url + "/healthz")
        assert status == 200, body
        checks = body["checks"]
        assert checks["database"]["vendor"] == "postgresql"
        assert checks["channel_layer"]["backend"] == "RedisChannelLayer"
        assert checks["model"]["active"] == checks["model"]["loaded"]
        assert body["pid"] == server.process.pid
        pids.add(body["pid"])
    assert len(pids) == 2


def test_activating_a_version_reaches_both_processes(running):
    seed = int.from_bytes(os.urandom(2), "big") + 10
    version = running.shell(
        "from django.conf import settings\n"
        "from tests.support import register_random_model\n"
        f"print(register_random_model(settings.RECOGNIZER_MODEL_DIR, seed={seed}).version)\n"
    )
    assert version == f"random-{seed}"

    def loaded_everywhere():
        bodies = [get_json(server.url + "/healthz")[1] for server in running.servers]
        return all(b["checks"]["model"]["loaded"] == version for b in bodies) and bodies

    for body in wait_until(loaded_everywhere, 60, f"version {version} on both processes"):
        assert body["status"] == "ok"
        assert body["checks"]["model"]["active"] == version
        assert body["checks"]["model"]["checksum_ok"] is True
    # The API answers with the new version on both ports too.
    drawing = {"width": 100, "height": 100, "strokes": [[[20, 20], [80, 20], [50, 90]]]}
    for server in running.servers:
        status, body = post_json(server.url + "/api/recognize", drawing)
        assert status == 200, body
        assert body["model"] == version
    # PostgreSQL keeps exactly one version active, and refuses a second.
    assert running.sql("SELECT version FROM recognizer_modelversion WHERE is_active") == [
        (version,)
    ]
    import psycopg

    with pytest.raises(psycopg.errors.UniqueViolation):
        running.sql("UPDATE recognizer_modelversion SET is_active = true")


# -- one game across two processes ------------------------------------------


class Player(GameClient):
    """A game client that also keeps the drawings it sent."""

    def __init__(self, name):
        super().__init__(name)
        self.sent_drawings = {}  # (game, round) -> the last drawing sent

    async def join_room(self, server, code, token=None):
        await self.connect(server.ws_url, code, origin=server.url, open_timeout=20)
        return await self.join(token=token)

    async def draw_and_guess(self, room_round, drawing, seq, game):
        self.sent_drawings[(game, room_round)] = drawing
        await self.draw(room_round, drawing, seq=seq)
        guess = await self.expect("guess", lambda m: m["seq"] == seq)
        assert guess["round"] == room_round
        return guess


def sketch(seed):
    """A two-stroke drawing on a 280x280 canvas, different for every seed."""
    import random

    rng = random.Random(seed)
    strokes, t = [], 0.0
    for _ in range(2):
        x, y = rng.uniform(60, 220), rng.uniform(40, 120)
        stroke = []
        for _ in range(12):
            stroke.append([round(x, 1), round(y, 1), t])
            x = min(max(x + rng.uniform(-25, 25), 10), 270)
            y = min(max(y + rng.uniform(5, 20), 10), 270)
            t += 16.0
        strokes.append(stroke)
    return {"width": 280.0, "height": 280.0, "strokes": strokes}


def stored_drawings(cluster, game):
    rows = cluster.sql(
        "SELECT round_number, player_id, label, strokes, room_code, status "
        "FROM recognizer_drawing WHERE game_id = %s ORDER BY round_number, player_id", (game,)
    )
    return {(r[0], r[1]): {"label": r[2], "strokes": r[3], "room": r[4], "status": r[5]}
            for r in rows}


def assert_stored_as_sent(stored, players, game, targets):
    submitted = {(rnd, p.you["id"]): drawing for p in players
                 for (g, rnd), drawing in p.sent_drawings.items() if g == game}
    assert set(stored) == set(submitted), "stored drawings differ from the submitted ones"
    for (rnd, player_id), drawing in submitted.items():
        row = stored[(rnd, player_id)]
        assert row["strokes"]["strokes"] == drawing["strokes"]
        assert row["label"] == targets[rnd]
        assert row["status"] == "pending"


async def test_two_players_on_two_processes_play_one_game(running):
    server_a, server_b = running.servers
    code = running.new_room(TIMED_ROUND_SECONDS)
    ada, bob = Player("Ada"), Player("Bob")
    try:
        await ada.join_room(server_a, code)
        welcome = await bob.join_room(server_b, code)
        assert [p["name"] for p in welcome["room"]["players"]] == ["Ada", "Bob"]
        # Ada's process hears of Bob, who joined on the other one.
        await ada.expect("room", lambda m: len(m["players"]) == 2)
        assert ada.you["host"] and not bob.you["host"]

        await ada.start(rounds=2)
        starts = [await p.expect("round_start") for p in (ada, bob)]
        assert starts[0] == starts[1]  # one broadcast, the same for both processes
        game = starts[0]["game"]
        targets = {1: starts[0]["target"]}

        # Round 1: Ada says done on process A, Bob hears it on B; the timer ends Bob's round.
        await ada.draw_and_guess(1, sketch(1), seq=1, game=game)
        await bob.draw_and_guess(1, sketch(2), seq=1, game=game)
        await ada.done(1)
        finished = await bob.expect("player_finished")
        assert finished["player"] == ada.you["id"] and finished["reason"] == "done"
        # Ada now waits several seconds with nothing to receive: longer than
        # redis-py's default socket read timeout, which must not drop her.
        ends = [await p.expect("round_end", timeout=TIMED_ROUND_SECONDS + 30)
                for p in (ada, bob)]
        # One timer: the round ended once, for both, when its one deadline passed.
        assert ends[0] == ends[1]
        assert ends[0]["server_time"] >= starts[0]["ends_at"]
        reasons = {r["player"]: r["reason"] for r in ends[0]["results"]}
        assert reasons == {ada.you["id"]: "done", bob.you["id"]: "time"}

        # Round 2 starts by itself after the pause; both say done.
        second = [await p.expect("round_start") for p in (ada, bob)]
        assert second[0]["round"] == second[1]["round"] == 2
        assert second[0]["ends_at"] == second[1]["ends_at"]
        targets[2] = second[0]["target"]
        await bob.draw_and_guess(2, sketch(3), seq=2, game=game)
        await ada.draw_and_guess(2, sketch(4), seq=2, game=game)
        # The live canvases cross processes too (through Redis): each sees
        # the other's drawing, in the `live_drawings` of the drawer's process.
        for viewer, drawer in ((ada, bob), (bob, ada)):
            def drawn(m, drawer=drawer):
                return m["round"] == 2 and any(d["player"] == drawer.you["id"]
                                               for d in m["drawings"])

            if not any(drawn(m) for m in viewer.all_of("live_drawings")):
                await viewer.expect("live_drawings", drawn)
            lives = [d for m in viewer.all_of("live_drawings") if drawn(m)
                     for d in m["drawings"] if d["player"] == drawer.you["id"]]
            assert lives and all(d["drawing"]["strokes"] for d in lives)
        for player in (ada, bob):
            await player.done(2)
        final = [await p.expect("round_end", lambda m: m["round"] == 2) for p in (ada, bob)]
        assert final[0] == final[1] and final[0]["final"] is True
        overs = [await p.expect("game_over") for p in (ada, bob)]
        # One scoreboard: the same leaderboard on both processes, the sum of the rounds.
        assert overs[0] == overs[1]
        totals = {}
        for end in (ends[0], final[0]):
            for result in end["results"]:
                totals[result["player"]] = totals.get(result["player"], 0) + result["points"]
        assert {row["player"]: row["score"] for row in overs[0]["leaderboard"]} == totals
        for player in (ada, bob):
            assert len(player.all_of("round_end")) == 2
            assert len(player.all_of("game_over")) == 1
    finally:
        await ada.close()
        await bob.close()

    stored = await asyncio.to_thread(stored_drawings, running, game)
    assert_stored_as_sent(stored, [ada, bob], game, targets)
    assert all(row["room"] == code for row in stored.values())


async def test_a_killed_process_loses_no_drawing_and_its_player_carries_on(running):
    server_a, server_b = running.servers
    code = running.new_room(LONG_ROUND_SECONDS)
    ada, bob = Player("Ada"), Player("Bob")
    try:
        await ada.join_room(server_a, code)
        await bob.join_room(server_b, code)
        await ada.expect("room", lambda m: len(m["players"]) == 2)
        await ada.start()
        # Each player draws once its own page shows the round, as a person
        # does: a drawing sent before then is refused (not_playing).
        starts = [await p.expect("round_start") for p in (ada, bob)]
        assert starts[0] == starts[1]
        game, targets = starts[0]["game"], {1: starts[0]["target"]}
        # Round 1, to have scores to keep.
        await ada.draw_and_guess(1, sketch(11), seq=1, game=game)
        await bob.draw_and_guess(1, sketch(12), seq=1, game=game)
        for player in (ada, bob):
            await player.done(1)
        end = await bob.expect("round_end")
        bob_score = next(r["score"] for r in end["results"] if r["player"] == bob.you["id"])

        # Round 2: Bob draws on process B, which then dies.
        start = await bob.expect("round_start")
        targets[2] = start["target"]
        await bob.draw_and_guess(2, sketch(13), seq=2, game=game)

        def bob_recorded():
            return running.sql(
                "SELECT p.drawing FROM game_roundprogress p JOIN game_seat s ON s.id = p.seat_id "
                "WHERE s.player_id = %s AND p.game_id = %s AND p.round_number = 2",
                (bob.you["id"], game))

        # The guess goes out just before the write: wait for the write, as a
        # player who drew for a moment longer would have.
        await asyncio.to_thread(wait_until, bob_recorded, 60, "Bob's drawing recorded")
        server_b.process.kill()  # SIGKILL: no disconnect handler, no goodbye
        server_b.process.wait(timeout=10)
        await bob.closed(timeout=10)  # else Bob's socket stayed open after its server died

        # Bob's page reconnects, with its seat token, through the other process.
        old_id = bob.you["id"]
        welcome = await bob.join_room(server_a, code, token=bob.you["token"])
        assert welcome["rejoined"] is True
        assert bob.you["id"] == old_id
        me = next(p for p in welcome["room"]["players"] if p["id"] == old_id)
        assert me["score"] == bob_score and me["connected"] is True
        assert welcome["room"]["state"] == "playing" and welcome["room"]["round"] == 2

        # Bob ends the round without drawing again: the drawing sent to the dead
        # process is the one that counts and is stored.
        await ada.expect("round_start", lambda m: m["round"] == 2)
        await ada.draw_and_guess(2, sketch(14), seq=2, game=game)
        for player in (bob, ada):
            await player.done(2)
        end = await bob.expect("round_end", lambda m: m["round"] == 2)
        bob_result = next(r for r in end["results"] if r["player"] == old_id)
        assert bob_result["drawing"]["strokes"] == sketch(13)["strokes"]
        assert bob_result["reason"] == "done"

        # And carries on: round 3 on the surviving process.
        start = await bob.expect("round_start", lambda m: m["round"] == 3)
        targets[3] = start["target"]
        await bob.draw_and_guess(3, sketch(15), seq=3, game=game)
        await ada.expect("round_start", lambda m: m["round"] == 3)
        await ada.draw_and_guess(3, sketch(16), seq=3, game=game)
        for player in (ada, bob):
            await player.done(3)
        overs = [await p.expect("game_over") for p in (ada, bob)]
        assert overs[0] == overs[1]
        assert {row["player"] for row in overs[0]["leaderboard"]} == {ada.you["id"], old_id}
    finally:
        await ada.close()
        await bob.close()

    stored = await asyncio.to_thread(stored_drawings, running, game)
    assert len(stored) == 6
    assert_stored_as_sent(stored, [ada, bob], game, targets)


# -- seats of a dead process ---------------------------------------------------
# A process killed with SIGKILL runs no disconnect handler: its players' seats
# stay marked connected. The live connections of the room release them once
# their heartbeats stop (digitsite.game.seats.heartbeat). These run on the
# suite's database; the PostgreSQL subset above runs the game logic on both.


def _join(code, name):
    from digitsite.game import seats

    joined = seats.join(code, name=name, channel_name=f"channel-{name}")
    joined.seat.token = joined.token
    return joined.seat


def _age_seat(seat, seconds):
    from datetime import timedelta

    from digitsite.game import clock
    from digitsite.game.models import Seat

    Seat.objects.filter(pk=seat.pk).update(last_seen=clock.now() - timedelta(seconds=seconds))


@pytest.mark.django_db(transaction=True)
def test_a_seat_whose_process_died_is_released_and_the_host_moves_on():
    from digitsite.game import rooms, rules, seats, snapshots
    from digitsite.game.models import Seat

    room = rooms.create_room("Ada", rounds=2, seconds=20)
    ada, bob = _join(room.code, "Ada"), _join(room.code, "Bob")
    assert snapshots.room_snapshot(rooms.get_room(room.code))["host"] == ada.player_id
    # Both alive: a heartbeat changes nothing visible.
    assert seats.heartbeat(room.code, bob.player_id, "channel-Bob") == []

    _age_seat(ada, rules.SEAT_STALE_SECONDS + 5)  # Ada's process stopped beating
    events = seats.heartbeat(room.code, bob.player_id, "channel-Bob")
    snapshot = events[-1]
    assert snapshot["type"] == "room"
    assert snapshot["host"] == bob.player_id
    ada_now = next(p for p in snapshot["players"] if p["id"] == ada.player_id)
    assert ada_now["connected"] is False and ada_now["gone"] is False
    # Her rejoin window counts from her last sign of life.
    released = Seat.objects.get(pk=ada.pk)
    assert released.disconnected_at == released.last_seen
    assert ada_now["rejoin_until"] is not None
    # Her page reconnects through a live process into the same seat.
    back = seats.join(room.code, token=ada.token, channel_name="channel-Ada-again")
    assert back.rejoined and back.seat.player_id == ada.player_id
    assert back.replaced_channel == ""  # nothing left to close on the dead process


@pytest.mark.django_db(transaction=True)
def test_a_dead_process_players_drawing_is_stored_when_the_seat_is_released():
    from digitsite.game import guesses, rooms, rounds, rules, seats
    from digitsite.game.models import Room
    from recognizer.inference import Prediction
    from recognizer.models import Drawing

    room = rooms.create_room("Ada", rounds=2, seconds=60, target_confidence=1.0)
    ada, bob = _join(room.code, "Ada"), _join(room.code, "Bob")
    rounds.start_game(room.code, ada.player_id)
    playing = Room.objects.get(pk=room.pk)
    drawing = {"width": 100.0, "height": 100.0, "strokes": [[[10.0, 10.0, 0.0], [90.0, 90.0, 5.0]]]}
    probabilities = [0.1] * 10
    accepted, _ = guesses.record_guess(
        room.code, ada.player_id, playing.game_id, 1, drawing=drawing, input_bytes=bytes(784),
        prediction=Prediction(0, probabilities, "v"), target=playing.target)
    assert accepted

    _age_seat(ada, rules.SEAT_STALE_SECONDS + 5)
    events = seats.heartbeat(room.code, bob.player_id, "channel-Bob")
    finished = next(e for e in events if e["type"] == "player_finished")
    assert finished["player"] == ada.player_id and finished["reason"] == "disconnected"
    stored = Drawing.objects.get(game_id=playing.game_id, round_number=1,
                                 player_id=ada.player_id)
    assert stored.strokes == drawing
    # Bob is the only one still drawing; the round waits for him, not for Ada.
    assert Room.objects.get(pk=room.pk).state == Room.State.PLAYING


@pytest.mark.django_db(transaction=True)
def test_a_stalled_but_living_connection_takes_its_seat_back():
    from digitsite.game import rooms, rules, seats
    from digitsite.game.models import Seat

    room = rooms.create_room("Ada", rounds=2, seconds=20)
    ada, bob = _join(room.code, "Ada"), _join(room.code, "Bob")
    _age_seat(ada, rules.SEAT_STALE_SECONDS + 5)
    seats.heartbeat(room.code, bob.player_id, "channel-Bob")
    assert Seat.objects.get(pk=ada.pk).connected is False
    # Ada's process was only slow: its next heartbeat reclaims the seat.
    events = seats.heartbeat(room.code, ada.player_id, "channel-Ada")
    assert events[-1]["type"] == "room"
    back = Seat.objects.get(pk=ada.pk)
    assert back.connected is True and back.channel_name == "channel-Ada"
    assert back.disconnected_at is None


# -- Django's own tests on PostgreSQL ----------------------------------------


def test_persistence_tests_pass_on_postgresql(postgres_database, tmp_path):
    """The model-version and game-storage tests, run again with PostgreSQL as the database.

    Games through the consumers on PostgreSQL are covered by the two-process
    tests above.
    """
    missing = [path for path in PERSISTENCE_TESTS if not (BASE_DIR / path).exists()]
    assert not missing, f"persistence tests not found: {missing}"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update({"DATABASE_URL": postgres_database, "DIGITSITE_VAR_DIR": str(tmp_path / "var")})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
         *PERSISTENCE_TESTS],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    assert " passed" in output and " failed" not in output, output


PERSISTENCE_TESTS = [
    "tests/test_model_versions.py",  # registering and activating versions
    "tests/test_game_logic.py",  # rooms, seats, rounds and stored drawings
    "tests/test_guess_update.py",  # a guess's write: the game's SQL against the ORM's
    "tests/test_store_drawing.py",  # a round's drawing stored once, a second attempt skipped
]
