"""Simulated players playing whole games in a room, each over a protocol client.

`play_room` seats a room's players, each over its own client
(digitsite.game.client: a `GameClient` over a real socket in the benchmark,
a `CommunicatorClient` in tests). The first player is the host and starts
`games` games of `rounds` rounds once everyone is seated; each round every
player draws the target digit in their style, sends it, waits for the guess
and says `done`. The game stores one drawing per player per round, pending
review.

A player is any object with a `name`, a `drawing_for(label)` that gives its
next drawing of a digit, and the record this module fills in: `id`, `host`,
`rounds`, `errors` and `games_finished` (trainer.simulation.SimulatedPlayer,
who draws in a handwriting style).
"""

import asyncio
import collections


def _seated(room):
    return sum(1 for p in room.get("players", []) if p["connected"] and not p["gone"])


class _Seat:
    """One player's part in the room: what it does with each message it receives."""

    def __init__(self, player, client, *, games, rounds, room_size, welcomed):
        self.player = player
        self.client = client
        self.games = games
        self.rounds = rounds
        self.room_size = room_size
        self.welcomed = welcomed
        self.started = False
        self.game = self.number = None

    async def on(self, message):
        handler = {
            "welcome": self.welcome, "room": self.room, "round_start": self.round_start,
            "guess": self.guess, "round_end": self.round_end, "game_over": self.game_over,
            "error": self.error,
        }.get(message["type"])
        if handler is not None:
            await handler(message)

    async def welcome(self, message):
        self.player.id = message["you"]["id"]
        self.player.host = message["you"]["host"]
        if self.welcomed is not None:
            self.welcomed.set()
        await self.room(message["room"])

    async def room(self, room):
        if self.player.host and not self.started and _seated(room) >= self.room_size:
            self.started = True
            await self.client.start(rounds=self.rounds)

    async def round_start(self, message):
        self.game, self.number, target = message["game"], message["round"], message["target"]
        drawing = await asyncio.to_thread(self.player.drawing_for, target)
        self.player.rounds[(self.game, self.number)] = {"label": target, "drawing": drawing}
        await self.client.draw(self.number, drawing, seq=self.number)

    async def guess(self, message):
        entry = self.player.rounds.get((self.game, message["round"]))
        if entry is not None:
            entry["guess"] = message
        if not message["reached"]:
            await self.client.done(message["round"])

    async def round_end(self, message):
        mine = next((r for r in message["results"] if r["player"] == self.player.id), None)
        entry = self.player.rounds.get((message["game"], message["round"]))
        if entry is not None and mine is not None:
            entry["result"] = {k: mine[k] for k in ("digit", "reason", "points")}

    async def game_over(self, message):
        self.player.games_finished += 1
        # Everyone is still seated: they leave only after the last game.
        if self.player.host and self.player.games_finished < self.games:
            await self.client.start(rounds=self.rounds)

    async def error(self, message):
        self.player.errors.append(message["code"])
        if message.get("for") == "draw" and self.number is not None:
            # The drawing was refused: end the round for this player anyway.
            await self.client.done(self.number)


async def play(player, client, *, games, rounds, room_size, timeout=60.0, welcomed=None):
    """Play `games` games in the room `client` is open to; returns when the last is over.

    The host (the first to join) starts each game once `room_size` players
    are seated. Each round the player draws the target in their style, sends
    the whole drawing, waits for its guess and says `done` (unless the guess
    already reached the target and so ended the round for them).
    """
    seat = _Seat(player, client, games=games, rounds=rounds, room_size=room_size,
                 welcomed=welcomed)
    heard = collections.deque(maxlen=8)  # what the player last heard, for a failure's report
    await client.join(player.name, wait=False)
    while player.games_finished < games:
        try:
            message = await client.receive(timeout)
        except TimeoutError as exc:
            raise Silence(player.name, timeout, seat, list(heard),
                          getattr(client, "waited_in", None),
                          getattr(client, "busy_db_threads", None)) from exc
        heard.append(_summary(message))
        await seat.on(message)
    await client.leave()


class Silence(AssertionError):
    """A player heard nothing for `timeout` seconds before its last game was
    over (game and round None: before its first round began)."""

    def __init__(self, name, timeout, seat, heard, waited_in=None, busy_db_threads=None):
        where = ""
        if waited_in:
            where += "; its connection's application was waiting in: " + " > ".join(waited_in)
        if busy_db_threads:
            where += ("; the game's database threads then busy (any connection's jobs): "
                      + "; ".join(busy_db_threads))
        super().__init__(
            f"{name} heard nothing for {timeout:g} s in game {seat.game} round "
            f"{seat.number} (games finished: {seat.player.games_finished}); last heard, "
            f"oldest first: {heard}{where}")


def _summary(message):
    """A message in a few words: its type and the fields that place it."""
    fields = ("round", "seq", "player", "reason", "kept", "held", "code", "for")
    return " ".join([message["type"], *(f"{k}={message[k]}" for k in fields
                                        if k in message)])


async def play_room(players, connect, *, games, rounds, timeout=60.0):
    """Seat `players` in one room (the first one hosts) and play; `connect()`
    opens a client (digitsite.game.client) to the room.

    Returns the players (with their rounds filled in).
    """
    welcomed = asyncio.Event()

    async def run(player, first):
        client = await connect()
        try:
            await play(player, client, games=games, rounds=rounds, room_size=len(players),
                       timeout=timeout, welcomed=welcomed if first else None)
        finally:
            try:
                await client.close()
            except Exception:  # already closed by the server after `leave`
                pass

    host = asyncio.ensure_future(run(players[0], True))
    # The first to join becomes the host: the others wait for its welcome.
    waiter = asyncio.ensure_future(welcomed.wait())
    await asyncio.wait({host, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if host.done():
        waiter.cancel()
        host.result()
        return players
    others = [asyncio.ensure_future(run(p, False)) for p in players[1:]]
    # Every player's ending, not only the first failure's: when one player
    # is stuck, the others' reports say which.
    endings = await asyncio.gather(host, *others, return_exceptions=True)
    failures = [(p.name, e) for p, e in zip(players, endings, strict=True)
                if isinstance(e, BaseException)]
    if failures:
        if len(failures) == 1:
            raise failures[0][1]
        raise AssertionError("; ".join(f"{name}: {type(error).__name__}: {error}"
                                       for name, error in failures)) from failures[0][1]
    return players
