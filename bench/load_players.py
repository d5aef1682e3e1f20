"""The load benchmark's simulated players: what they draw and how they play.

A player plays the room the way the game page does (static/js/game*.js): it
draws its digit progressively, the pen adding to it 10 times a second, sends
the drawing so far at most 10 times a second and only when its previous
drawing has its guess (or waited 5 s): in protocol 2 and 3 (the default,
the page's) as the points added since the last one sent, in protocol 1
whole, and it hears the others' live drawings as the page does (together in
protocol 3, one by one before); then it waits
briefly for the finished drawing's guess and says `done`; a room's host
starts the next game when one is over. `drive` connects them all, lets them
play for the timed window and lets the rounds in hand end.
bench/bench_load.py runs them against the servers.
"""

import asyncio
import collections
import json
import math
import random
import time

from bench.common import client_address

UPDATES_PER_SECOND = 10
# As the page: a drawing unanswered this long no longer holds the next one back.
ANSWER_TIMEOUT = 5.0
# How long a player waits for the guess of the finished drawing before `done`.
DONE_WAIT = 2.0
# What a server answers to a `draw` or `done` that arrives after the round
# closed: the page expects these now and then and ignores them, so they are
# counted apart from errors.
LATE_CODES = ("not_playing", "wrong_round", "already_finished")
CANVAS = 280.0
VARIANTS = 16


# -- what the players draw --------------------------------------------------


def digit_strokes(variant, points):
    """A digit-like drawing (a loop and a tail) of `points` points with times."""
    rng = random.Random(variant)
    cx, cy = rng.uniform(110, 170), rng.uniform(80, 120)
    radius = rng.uniform(35, 55)
    loop_points = points * 2 // 3
    loop = []
    for k in range(loop_points):
        angle = 2 * math.pi * k / loop_points + variant
        loop.append([round(cx + radius * math.cos(angle), 1),
                     round(cy + radius * math.sin(angle), 1), float(k * 25)])
    tail = []
    x0 = cx + radius * rng.uniform(0.6, 1.0)
    for k in range(points - loop_points):
        tail.append([round(x0 - k * 0.8, 1), round(cy + k * 4.0, 1),
                     float((loop_points + k) * 25)])
    return [loop, tail]


def progressive_drawings(variant, steps, points):
    """The drawing as the page sends it after each of `steps` updates: growing."""
    full = digit_strokes(variant, points)
    total = sum(len(s) for s in full)
    drawings = []
    for step in range(1, steps + 1):
        keep = max(2, total * step // steps)
        strokes = []
        for stroke in full:
            if keep <= 0:
                break
            strokes.append(stroke[:keep])
            keep -= len(stroke)
        drawing = {"width": CANVAS, "height": CANVAS, "strokes": strokes}
        # Serialised once: the client must not be the bottleneck it measures.
        drawings.append((drawing, json.dumps(drawing, separators=(",", ":"))))
    return drawings


def added_since(before, after):
    """Protocol 2's `extend` and `strokes` taking drawing `before` to `after`,
    which only grew (progressive_drawings' steps)."""
    old, new = before["strokes"], after["strokes"]
    last = len(old) - 1
    return new[last][len(old[last]):], new[len(old):]


# -- one simulated player ---------------------------------------------------


class Player:
    """One simulated player: its connection, what it sent, what came back in time."""

    def __init__(self, index, room, server, drawings, clock):
        self.index = index
        self.room = room
        self.server = server
        self.drawings = drawings  # [(drawing, json text)] per update step
        self.clock = clock  # shared: start/stop times and the stop event
        self.client = None
        self.id = None
        self.host = False
        self.sent = {}  # seq -> (send time, step)
        self.latencies = []  # seconds, for draws sent in the timed window
        self.guesses_in_window = 0
        self.draws_sent = 0
        self.drawing_seconds = 0.0  # time spent drawing inside the timed window
        self.last_scored = {}  # (game, round) -> the drawing last said kept
        self.held_steps = {}  # seq -> step, for drawings answered `held`
        self.errors = []
        self.late_refusals = 0
        self.late_guesses = 0
        self.ended = set()  # (game, round) whose round_end arrived
        self.rounds_ended = 0
        self.games_started = 0
        self.games_over = set()
        self.game = None
        self.round = None
        self.drawing_task = None
        self.round_settled = asyncio.Event()  # no drawing of ours awaits storage
        self.round_settled.set()
        self.seq = 0
        self.recent = collections.deque(maxlen=8)  # for reports of a stuck round
        self.received = collections.Counter()  # messages received, by type
        # What the page keeps to have one drawing at a time waiting for its guess.
        self.round_number = None
        self.latest = None  # step of the newest drawing on the pad
        self.unsent = False
        self.awaiting = None  # seq of the drawing waiting for its guess
        self.awaiting_since = 0.0
        self.last_send = -math.inf
        self.send_timer = None
        # Protocol 2, as the page: (round, seq, step) of the last drawing sent,
        # which the next one adds to; None after a refusal or a new round.
        self.base = None

    async def connect(self):
        self.client = await self.server.game_client(
            self.room, f"player {self.index}", compression=None, open_timeout=60,
            max_size=2**22, local_addr=client_address(self.index),
        )
        welcome = await self.client.join(timeout=60, protocol=self.clock["protocol"])
        self.id = welcome["you"]["id"]
        self.host = welcome["you"]["host"]

    async def play(self):
        """Read messages until the socket closes; react like the page does."""
        try:
            self.client.listen(self.on_message)
            await self.client.closed(timeout=None)
            if self.client.dropped and not self.clock["closing"]:
                self.errors.append(f"connection dropped: {self.client.dropped}")
        finally:
            if self.drawing_task is not None:
                self.drawing_task.cancel()

    def on_message(self, message):
        kind = message["type"]
        now = time.perf_counter()
        self.received[kind] += 1
        self.recent.append((round(now - self.clock["start"], 2), kind, message.get("round"),
                            message.get("code") or message.get("reason")))
        if kind == "guess":
            self.on_guess(message, now)
        elif kind == "kept":
            self.on_kept(message)
        elif kind == "round_start":
            self.game, self.round = message["game"], message["round"]
            self.base = None
            if self.drawing_task is not None:
                self.drawing_task.cancel()
            if not self.clock["stop"].is_set():
                self.round_settled.clear()
                self.drawing_task = asyncio.ensure_future(self.draw(message["round"]))
        elif kind == "player_finished" and message["player"] == self.id:
            self.round_settled.set()
        elif kind == "round_end":
            self.ended.add((message["game"], message["round"]))
            self.rounds_ended += 1
            if self.drawing_task is not None:
                self.drawing_task.cancel()
            self.round_settled.set()
        elif kind == "game_over":
            # A connection that missed a broadcast is caught up with the same
            # messages again: one start per game.
            if (self.host and not self.clock["stop"].is_set()
                    and message["game"] not in self.games_over):
                self.games_over.add(message["game"])
                asyncio.ensure_future(self.start_game(delay=0.5))
        elif kind == "error":
            if message.get("for") == "draw":
                self.base = None  # the next drawing goes whole
                self.answered(None)
            if message["code"] in LATE_CODES and message.get("for") in ("draw", "done"):
                self.late_refusals += 1
            else:
                self.errors.append(f"{message['code']}: {message['message']}")

    def on_guess(self, message, now):
        sent = self.sent.pop(message["seq"], None)
        if sent is None:
            return
        sent_at, step = sent
        if self.clock["start"] <= sent_at <= self.clock["stop_at"]:
            self.latencies.append(now - sent_at)
        if now <= self.clock["stop_at"]:
            self.guesses_in_window += 1
        if message["kept"]:
            self.last_scored[(self.game, message["round"])] = self.drawings[step][0]
        elif message["held"]:
            # Written within a second; a `kept` message says when.
            self.held_steps[message["seq"]] = step
        else:
            # Written after the player's round closed: not part of it.
            self.late_guesses += 1
        self.answered(message["seq"])

    def on_kept(self, message):
        step = self.held_steps.pop(message["seq"], None)
        # Older held drawings were replaced unwritten: never kept.
        for seq in [s for s in self.held_steps if s < message["seq"]]:
            del self.held_steps[seq]
        if step is not None:
            self.last_scored[(self.game, message["round"])] = self.drawings[step][0]

    async def start_game(self, delay=0.0):
        await asyncio.sleep(delay)
        if self.clock["stop"].is_set():
            return
        self.games_started += 1
        await self.client.start()

    async def draw(self, round_number):
        self.round_number = round_number
        self.awaiting = None
        self.unsent = False
        try:
            # A person looks at the target before drawing.
            await asyncio.sleep(self.clock["rng"].uniform(0.5, 1.5) * self.clock["think"])
            began = time.perf_counter()
            for step in range(len(self.drawings)):
                if self.clock["stop"].is_set():
                    break
                self.latest = step
                self.unsent = True
                self.want_send()
                await asyncio.sleep(1 / UPDATES_PER_SECOND)
            self.count_drawing_time(began, time.perf_counter())
            if self.latest is None:
                self.round_settled.set()
                return
            # The player watches the finished drawing's guess come back, then
            # clicks done; the page sends the drawing at once if it is still held.
            waited = time.perf_counter() + DONE_WAIT
            while (self.unsent or self.awaiting is not None) and time.perf_counter() < waited:
                await asyncio.sleep(0.02)
            if self.unsent:
                await self.send_draw()
            await self.client.done(round_number)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.clock["closing"]:
                self.errors.append(f"send failed: {exc!r}")
            self.round_settled.set()
        finally:
            if self.round_number == round_number:  # not yet the next round's
                self.round_number = None
                self.latest = None
                if self.send_timer is not None:
                    self.send_timer.cancel()
                    self.send_timer = None

    def count_drawing_time(self, began, ended):
        """Add the part of [began, ended] inside the timed window: guesses per
        second of drawing is what a player feels as "live"."""
        inside = min(ended, self.clock["stop_at"]) - max(began, self.clock["start"])
        if inside > 0:
            self.drawing_seconds += inside

    def want_send(self):
        """The pad changed or a guess came back: send the newest drawing if the
        page would (10 a second at most, one waiting for its guess at most)."""
        now = time.perf_counter()
        if (not self.unsent or self.round_number is None or self.send_timer is not None
                or (self.awaiting is not None and now - self.awaiting_since < ANSWER_TIMEOUT)):
            return
        wait = self.last_send + 1 / UPDATES_PER_SECOND - now
        if wait > 0:
            self.send_timer = asyncio.get_running_loop().call_later(wait, self.send_later)
        else:
            self.send_later()

    def send_later(self):
        self.send_timer = None
        if self.unsent and self.round_number is not None:
            asyncio.ensure_future(self.send_draw())

    async def send_draw(self):
        step = self.latest
        if not self.unsent or step is None or self.round_number is None:
            # A send the pace timer scheduled, overtaken before it ran: the
            # round's draw task sent the drawing itself and said done.
            return
        self.seq += 1
        self.sent[self.seq] = (time.perf_counter(), step)
        self.unsent = False
        self.awaiting = self.seq
        self.awaiting_since = self.last_send = time.perf_counter()
        self.draws_sent += 1
        base = self.base
        self.base = (self.round_number, self.seq, step) if self.clock["protocol"] >= 2 else None
        try:
            if base is not None and base[0] == self.round_number:
                extend, strokes = added_since(self.drawings[base[2]][0], self.drawings[step][0])
                await self.client.send_raw(json.dumps(
                    {"type": "draw", "round": self.round_number, "seq": self.seq,
                     "base": base[1], "extend": extend, "strokes": strokes, "pen_up": True},
                    separators=(",", ":")))
            else:
                await self.client.draw_serialised(self.round_number, self.seq,
                                                  self.drawings[step][1])
        except Exception as exc:
            if not self.clock["closing"]:
                self.errors.append(f"send failed: {exc!r}")

    def answered(self, seq):
        if self.awaiting is None or (seq is not None and seq < self.awaiting):
            return
        self.awaiting = None
        self.want_send()

    async def finish(self, timeout):
        """After the timed window: let the round in hand be stored, then leave."""
        try:
            await asyncio.wait_for(self.round_settled.wait(), timeout)
            # A guess may still be on its way (kept after the round ended).
            waited = time.perf_counter() + 10
            while self.awaiting is not None and time.perf_counter() < waited:
                await asyncio.sleep(0.05)
        except TimeoutError:
            self.errors.append(f"the round in hand did not end in time (room {self.room}; "
                               f"last messages: {list(self.recent)})")
        self.clock["closing"] = True
        await self.client.close()


async def drive(players, seconds, finish_timeout):
    """Connect the players, let them play `seconds`, then let their rounds end:
    the wall seconds from the window's start."""
    clock = players[0].clock
    # Connect in small waves: a burst of 200 handshakes at once would only
    # measure the listen backlog.
    gate = asyncio.Semaphore(16)

    async def connect(player):
        async with gate:
            await player.connect()

    await asyncio.gather(*(connect(p) for p in players))
    readers = [asyncio.ensure_future(p.play()) for p in players]
    clock["start"] = time.perf_counter()
    clock["stop_at"] = clock["start"] + seconds
    clock.get("window_starts", lambda: None)()
    for player in players:
        if player.host:
            await player.start_game()
    # Until the window's end, which the guesses are counted by (the hosts'
    # starts above took some of it).
    await asyncio.sleep(max(clock["stop_at"] - time.perf_counter(), 0.0))
    clock["stop"].set()
    clock.get("window_ends", lambda: None)()
    await asyncio.gather(*(p.finish(finish_timeout) for p in players))
    await asyncio.wait(readers, timeout=10)
    return time.perf_counter() - clock["start"]
