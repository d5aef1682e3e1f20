"""What simulated play (digitsite/game/simulation.py) reports when a player is
left waiting: which player, where in the game, and what it last heard, for
every player stuck, not only the first. Clients that script the server's
side: no server, no clock."""

import asyncio
import types

import pytest

from digitsite.game.simulation import Silence, play_room


class ScriptedClient:
    """A protocol client whose server says `script`'s messages, then nothing:
    its next receive times out at once, or once `after` (an event) is set;
    `exhausted` is set when the script runs out."""

    def __init__(self, script, after=None):
        self.script = list(script)
        self.after = after
        self.exhausted = asyncio.Event()
        self.sent = []
        self.closed = False

    async def join(self, name, wait=True):
        self.sent.append(("join", name))

    async def start(self, rounds=None):
        self.sent.append(("start", rounds))

    async def draw(self, round_, drawing, seq=None):
        self.sent.append(("draw", round_))

    async def done(self, round_):
        self.sent.append(("done", round_))

    async def leave(self):
        self.sent.append(("leave",))

    async def receive(self, timeout):
        if self.script:
            return self.script.pop(0)
        self.exhausted.set()
        if self.after is not None:
            await self.after.wait()
        raise TimeoutError(f"no message within {timeout} s")

    async def close(self):
        self.closed = True


class Player:
    def __init__(self, name):
        self.name = name
        self.id = self.host = None
        self.rounds = {}
        self.errors = []
        self.games_finished = 0

    def drawing_for(self, label):
        return {"width": 10, "height": 10, "strokes": [[[1, 1], [8, 8]]]}


def room(players, host):
    return {"host": host, "players": [{"id": p, "connected": True, "gone": False}
                                      for p in players]}


def welcome(me, players, host):
    return {"type": "welcome", "you": {"id": me, "host": me == host},
            "room": room(players, host)}


ROUND_START = {"type": "round_start", "game": "g1", "round": 1, "target": 3}
GUESS = {"type": "guess", "round": 1, "seq": 1, "reached": False, "kept": True,
         "held": False}


def test_a_player_left_waiting_says_where_it_was_and_what_it_last_heard():
    """The host is welcomed, starts, draws, hears its guess and says done;
    then the server says nothing more (as in a round that never ends)."""
    host = Player("ann")
    client = ScriptedClient([welcome("p1", ["p1"], "p1"), ROUND_START, GUESS])
    with pytest.raises(Silence) as raised:
        asyncio.run(play_room([host], lambda: _opened(client), games=1, rounds=1,
                              timeout=0.5))
    message = str(raised.value)
    assert message.startswith("ann heard nothing for 0.5 s in game g1 round 1 "
                              "(games finished: 0)"), message
    assert ("last heard, oldest first: ['welcome', 'round_start round=1', "
            "'guess round=1 seq=1 kept=True held=False']") in message, message
    assert client.sent == [("join", "ann"), ("start", 1), ("draw", 1), ("done", 1)]
    assert client.closed


def test_every_stuck_player_is_reported():
    """Two players: the host hears the game start; the other is welcomed and
    then hears nothing. Both are named, each with what it heard."""
    ann, bob = Player("ann"), Player("bob")

    async def play():
        bobs = ScriptedClient([welcome("p2", ["p1", "p2"], "p1")])
        # The host's wait ends after bob's began (a host that fails before
        # the others are seated is reported alone).
        anns = ScriptedClient([welcome("p1", ["p1", "p2"], "p1"), ROUND_START],
                              after=bobs.exhausted)
        clients = iter([anns, bobs])
        await play_room([ann, bob], lambda: _opened(next(clients)), games=1, rounds=1,
                        timeout=0.5)

    with pytest.raises(AssertionError) as raised:
        asyncio.run(play())
    message = str(raised.value)
    ann_said, bob_said = message.split("; bob: ")
    assert ann_said == ("ann: Silence: ann heard nothing for 0.5 s in game g1 round 1 "
                        "(games finished: 0); last heard, oldest first: "
                        "['welcome', 'round_start round=1']"), message
    assert bob_said == ("Silence: bob heard nothing for 0.5 s in game None round None "
                        "(games finished: 0); last heard, oldest first: ['welcome']"), message
    assert isinstance(raised.value.__cause__, Silence)


async def _opened(client):
    return client


# Channels closes stale database connections before each message a consumer
# handles, and a thread of the process may hold an earlier test's connection:
# a consumer test may touch the database, whatever its handlers do.
CONSUMER_TEST = pytest.mark.django_db(transaction=True)


@CONSUMER_TEST
async def test_closing_a_client_whose_application_ended_raises_nothing():
    """A receive that times out makes asgiref cancel the application; closing
    the client then raised that CancelledError, which no `except Exception`
    catches: it hid the timeout's report. A client never connected closes
    without starting the application."""
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.testing import WebsocketCommunicator

    from digitsite.game.client import CommunicatorClient

    class Silent(AsyncWebsocketConsumer):
        async def connect(self):
            await self.accept()

    communicator = WebsocketCommunicator(Silent.as_asgi(), "/ws/")
    connected, _ = await communicator.connect()
    assert connected
    client = CommunicatorClient(communicator)
    with pytest.raises(TimeoutError):
        await client.receive(timeout=0.1)
    assert communicator.future.cancelled()
    await client.close()

    never = WebsocketCommunicator(Silent.as_asgi(), "/ws/")
    await CommunicatorClient(never).close()
    assert never._future is None


@CONSUMER_TEST
async def test_a_receive_that_times_out_says_where_the_application_waited():
    """The server's side of a silent connection, caught before asgiref's
    cancel erases it: the consumer's handler stuck in a database call (a
    function blocked in the game's database pool) is named, with the pool's
    thread and the line it is blocked on. Before, a timeout said only that
    nothing came. An application waiting for its next message is named as
    idle in Channels' dispatch."""
    import threading

    from asgiref.sync import sync_to_async
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.testing import WebsocketCommunicator

    from digitsite.game import database
    from digitsite.game.client import CommunicatorClient
    from recognizer.thread_names import thread_pool

    entered, release = threading.Event(), threading.Event()
    # A pool of its own under the game's pool's name: the process's game-db
    # pool may be busy with, or hold the connections of, earlier tests.
    pool = thread_pool(1, f"{database.POOL_NAME}-stuck")
    named = database.executor().submit(lambda: threading.current_thread().name).result(60)
    assert named.startswith(database.POOL_NAME)  # the name the report looks for

    def finish_slowly():
        entered.set()
        release.wait(60)

    class Stuck(AsyncWebsocketConsumer):
        async def connect(self):
            await self.accept()

        async def receive(self, text_data=None, bytes_data=None):
            await sync_to_async(finish_slowly, thread_sensitive=False, executor=pool)()

    communicator = WebsocketCommunicator(Stuck.as_asgi(), "/ws/")
    assert (await communicator.connect())[0]
    client = CommunicatorClient(communicator)
    await client.send_raw('{"type": "done"}')
    try:
        # The handler is in the pool (or the application failed on the way).
        in_pool = asyncio.ensure_future(asyncio.to_thread(entered.wait, 60))
        await asyncio.wait({in_pool, communicator.future}, return_when=asyncio.FIRST_COMPLETED)
        if communicator.future.done():
            pytest.fail(f"the application ended: {communicator.future.result()!r}")
        assert await in_pool
        with pytest.raises(TimeoutError):
            await client.receive(timeout=0.05)
        blocked = [job for job in client.busy_db_threads if "finish_slowly" in job]
    finally:
        release.set()
        entered.set()  # frees the thread that waits for it, whatever happened
        pool.shutdown(wait=False)
    assert any(step.startswith("receive (") for step in client.waited_in), client.waited_in
    assert len(blocked) == 1, client.busy_db_threads
    assert blocked[0].startswith("game-db")
    assert "finish_slowly (tests/test_game_simulation.py:" in blocked[0]
    assert communicator.future.cancelled()  # then cancelled, as asgiref's receive does

    idle = WebsocketCommunicator(Stuck.as_asgi(), "/ws/")
    assert (await idle.connect())[0]
    idle_client = CommunicatorClient(idle)
    with pytest.raises(TimeoutError):
        await idle_client.receive(timeout=0.05)
    assert any("await_many_dispatch" in step for step in idle_client.waited_in)
    assert not any(step.startswith("receive (") for step in idle_client.waited_in)

    seat = types.SimpleNamespace(game=1, number=2, player=types.SimpleNamespace(games_finished=0))
    report = str(Silence("sim000", 60, seat, ["guess round=2 kept=True"],
                         client.waited_in, blocked))
    assert "its connection's application was waiting in: app (" in report
    assert "database threads then busy (any connection's jobs): game-db" in report


async def test_a_receive_tells_an_application_that_failed_or_returned_from_a_silent_one():
    """What asgiref's receive does, kept: an application that raised raises
    its error at the receive; one that returned without closing says so at
    once (not a timeout, which would blame the server's silence); a message
    it sent as it ended is still received first."""
    from channels.testing import ApplicationCommunicator

    from digitsite.game.client import CommunicatorClient, GameClosed

    class Broken(Exception):
        pass

    async def failing(scope, receive, send):
        raise Broken("the handler failed")

    async def returning(scope, receive, send):
        await send({"type": "websocket.send", "text": '{"type": "bye"}'})

    client = CommunicatorClient(ApplicationCommunicator(failing, {"type": "websocket"}))
    with pytest.raises(Broken, match="the handler failed"):
        await client.receive(timeout=60)

    client = CommunicatorClient(ApplicationCommunicator(returning, {"type": "websocket"}))
    assert (await client.receive(timeout=60))["type"] == "bye"
    with pytest.raises(GameClosed, match="returned without closing"):
        await client.receive(timeout=60)
    assert client.waited_in is None
