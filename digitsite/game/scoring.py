"""Scoring a connection's drawings as they come: each is checked, rendered
to the network's input, recognised, kept as the player's latest for the
round (written by digitsite.game.guesses, now or within a second:
digitsite.game.drawing_writes) and answered with a `guess`.

Only the newest drawing waiting is scored, and only it is checked in full: a
fast sender cannot queue work or make the server parse drawings nobody will
look at. One exception: the newest drawing sent with the pen up keeps its
place ahead of newer ones sent with the pen down. Only a pen-up drawing can
reach the target, so dropping it for the next stroke's first points would
lose the moment the digit was finished. At most two drawings wait, then:
the newest pen-up one and the newest of all, scored in that order. (The
points a round earns are counted when it ends, digitsite.game.finishing.)
"""

import asyncio
import collections
import contextlib
import logging
from datetime import datetime
from typing import NamedTuple

from django.conf import settings

from digitsite.game import clock, guesses, protocol
from digitsite.game.database import db, patiently, refusing
from digitsite.game.drawing_deltas import points_and_strokes
from digitsite.game.drawing_slots import drawing_slots, render_turn, rendering_in_threads
from digitsite.game.drawing_writes import Scored, may_reach, write_due
from digitsite.game.guess_timing import Stopwatch
from digitsite.game.protocol import MAX_POINTS
from digitsite.game.rules import GameError

logger = logging.getLogger(__name__)


def _prepare(raw, checked=None):
    """Validate a drawing and render the network's input (CPU work: on the
    event loop for a small drawing, in a thread for a larger one).
    `checked`: `raw` checked already (digitsite.game.drawing_deltas), if it was."""
    from recognizer.payloads import PayloadError, parse_drawing
    from recognizer.preprocessing import DrawingError, InkLimitError, strokes_to_input

    try:
        drawing = checked if checked is not None else parse_drawing(raw, max_points=MAX_POINTS)
        return drawing, strokes_to_input(drawing.strokes, drawing.width, drawing.height)
    except InkLimitError as exc:
        raise GameError("too_much_ink", str(exc)) from exc
    except (PayloadError, DrawingError) as exc:
        raise GameError("bad_drawing", str(exc)) from exc


async def _in_thread_to_the_end(function, *args):
    """`function(*args)` in a thread; a cancelled caller still waits for the
    thread to return before it is cancelled.

    A thread cannot be stopped: awaiting asyncio.to_thread directly, a
    closed socket's cancel left the rendering running (tens of ms of CPU for
    a worst-case drawing) while its drawing slot (digitsite.game.drawing_slots)
    was given back at once, so "open, send the worst drawing, close" in a
    loop filled the default thread pool past the slots' bound. Waiting here
    keeps the slot until the thread is free again.
    """
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        while not work.done():
            # A second cancel (the server stopping) waits too: the thread
            # runs on whatever this coroutine does.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({work})
        if not work.cancelled():
            work.exception()  # its result or error is nobody's now
        raise
    finally:
        # An error raised here (a refused drawing's GameError) holds this
        # frame in its traceback, and the frame held the error through
        # `work`: a reference cycle, freed only by a full garbage collection,
        # that kept the drawing's lists (5,000 for the largest) and every
        # frame on the way. Twenty sockets sending refused drawings made
        # 100,000 such lists every 5 s, and full collections of 35-58 ms
        # with the interpreter held, several in a row: every other player
        # waited (tests/test_game_scoring_garbage.py).
        del work


class Waiting(NamedTuple):
    """A drawing waiting to be scored, as its `draw` brought it."""

    raw: dict
    seq: int | None = None
    game: str | None = None
    round: int | None = None
    target: int | None = None
    received_at: datetime | None = None  # when the `draw` arrived (the game clock)
    pen_up: bool = False
    watch: Stopwatch | None = None  # its stages (digitsite.game.guess_timing); set by submit
    checked: object = None  # `raw` checked already (a recognizer.payloads.StrokeDrawing), if it was


def _resolve(future):
    if not future.done():
        future.set_result(None)


class DrawingScorer:
    """The drawings of one PlayerSession (digitsite.game.session), scored one at a time.

    Scoring has two parts. Computing (rendering, recognising) is work for the
    client alone: when its socket closes, the drawing waiting and the one
    being computed are dropped (the inference queue forgets a cancelled
    request, digitsite/game/drawing_slots.py a cancelled wait). Recording
    (the write, then the guess) is shielded: a drawing being written is
    written even if the socket closes meanwhile, as its guess may be the
    last the player heard.

    A scored drawing is written at once, or held as the player's latest and
    written when due (digitsite.game.drawing_writes says when): its guess
    then says `held`, and a `kept` message follows its write. Writes of one
    connection go one at a time, in the order of their drawings.
    """

    def __init__(self, session):
        self.session = session
        # The drawings waiting (each a Waiting): the newest sent with the pen
        # up, and a newer one sent with the pen down after it.
        self.pending_pen_up = None
        self.pending = None
        self.task = None
        self.held = None  # the newest scored drawing not written yet (a Scored)
        self.flusher = None  # the task writing `held` when it is due
        self.writes = set()  # writes under way
        # The write under way or waiting of a drawing that may end the
        # player's round (drawing_writes.may_reach), if any.
        self.reaching = None
        # The write holding write_turn was refused by the database (and has
        # not landed yet); the answers of the writes waiting for the turn,
        # given as `held` when it is (a dict: in the order they came).
        self.turn_refused = False
        self.waiting_answers = {}
        self.write_turn = asyncio.Lock()
        self.last_write = None  # ((game, round), game clock time) of the last write begun
        # Drawings scored and not yet written, per (game, round): a write
        # counts those it replaced (the progress's `guesses`).
        self.unwritten = collections.Counter()
        # The highest target probability of the pen-up drawings among those,
        # per (game, round): the round's best counts finished drawings, and a
        # held one replaced before its write still was one (its guess was
        # shown); the next write carries it (guesses.record_guess's `best`).
        self.unwritten_best = {}

    def submit(self, raw, seq, game, round_number, target, received_at, *, pen_up=False,
               checked=None):
        """Score this drawing next, in place of any still waiting, except that
        a drawing with the pen up (`pen_up`, the only kind that can reach the
        target) is replaced only by a newer one with the pen up. `checked`:
        `raw` checked already, if it was (digitsite.game.drawing_deltas)."""
        item = Waiting(raw, seq, game, round_number, target, received_at, pen_up, Stopwatch(),
                       checked)
        if pen_up:
            # Newer than anything waiting, and itself complete: it replaces both.
            self.pending_pen_up, self.pending = item, None
        else:
            self.pending = item
        if self.task is None or self.task.done():
            self.task = self.session.spawn(self._score_pending())

    def _next(self):
        """The drawing to score next (None: none waits), in the order sent."""
        if self.pending_pen_up is not None:
            item, self.pending_pen_up = self.pending_pen_up, None
        else:
            item, self.pending = self.pending, None
        return item

    async def drain(self, timeout=10.0, report=True):
        """Wait until the drawing in hand (if any) is scored and everything
        scored is written: before `done`, leaving, or a stopping server.
        `report`: warn when the wait gives up (a stopping server counts its
        unfinished players in one line instead: digitsite.game.upkeep)."""
        if self.task is not None and not self.task.done():
            done, _ = await asyncio.wait({self.task}, timeout=timeout)
            if not done and report:
                self._gave_up("its drawing in hand was not scored", timeout)
        await self._settle(timeout, report)

    def _gave_up(self, what, timeout):
        # The caller goes on: a `done` finishes the round without the drawing
        # in hand, and a write still under way lands later. Said, as nothing
        # else would say why a player's last drawing is missing from their
        # round or their round ended late.
        logger.warning("room %s: player %s: %s within %g s; going on without waiting more",
                       self.session.code, self.session.player_id, what, timeout)

    async def drop_unscored(self, timeout=10.0):
        """The client is gone: drop the drawings waiting, the pen-up one too
        (nothing was promised for it: only a scored drawing's `guess` or
        `kept` says kept), and the one being computed (its rendering thread
        still ends first: _in_thread_to_the_end); write what was scored (a
        rejoin's `welcome` brings it back)."""
        self.pending_pen_up = self.pending = None
        if self.task is not None and not self.task.done():
            self.task.cancel()
        await self._settle(timeout)

    async def _settle(self, timeout, report=True):
        if self.held is not None:
            self._write_held()
        if self.writes:
            _, late = await asyncio.wait(set(self.writes), timeout=timeout)
            # While the database refuses writes the outage is logged already,
            # once for the process (digitsite.game.database): not per player.
            if late and report and not refusing():
                self._gave_up(f"{len(late)} drawing write(s) did not end", timeout)

    async def _score_pending(self):
        while (item := self._next()) is not None:
            item.watch.lap("waited")
            computed = await self._reporting(self._compute(item))
            if computed is None:
                continue
            scored = Scored.of(item, *computed)
            key = (scored.game, scored.round)
            self.unwritten[key] += 1
            if scored.pen_up:
                self.unwritten_best[key] = max(self.unwritten_best.get(key, 0.0),
                                               scored.p_target)
            if self._write_now(scored):
                self.held = None  # this newer drawing replaces it
                answered = asyncio.get_running_loop().create_future()
                write = self._start_write(scored, answer=True, answered=answered)
                if may_reach(scored, self.session.view.room):
                    self.reaching = write
                    write.add_done_callback(self._reached_or_not)
                # Its guess, not its write: answered held when the database
                # refuses it (_write), the next drawings are scored meanwhile.
                await asyncio.shield(answered)
            else:
                self.held = scored
                await self._answer(scored, kept=False, held=True, reached=False)
                if self.flusher is None or self.flusher.done():
                    self.flusher = self.session.spawn(self._flush_when_due())

    def _write_now(self, scored):
        """Whether `scored` is written now, its guess after its write (or its
        write's first refusal), rather than held as the player's latest."""
        if write_due(scored, self.session.view.room, self.last_write, clock.time()) is not None:
            return False
        if not (self.write_turn.locked() and (self.turn_refused or refusing())):
            return True
        # This player's write waits on the database: held, and the newest
        # held written next (by the flusher), so that an outage keeps one
        # write of a player under way and at most two waiting (the
        # flusher's, and one that may end the player's round while no other
        # that may is waiting), not one more each second, each with its
        # drawing, for as long as it lasts. Without a refusal, as before.
        return may_reach(scored, self.session.view.room) and self.reaching is None

    def _reached_or_not(self, write):
        if self.reaching is write:
            self.reaching = None

    async def _flush_when_due(self):
        """Write the held drawing when it is due (the session's close cancels
        this and writes it itself)."""
        while self.held is not None:
            due = write_due(self.held, self.session.view.room, self.last_write, clock.time())
            if due is not None:
                # Checked again after the sleep: a newer drawing, written at
                # once, may have moved the time on.
                await clock.sleep(max(due - clock.time(), 0.001))
                continue
            await asyncio.shield(self._write_held())

    def _write_held(self):
        scored, self.held = self.held, None
        return self._start_write(scored, answer=False)

    def _start_write(self, scored, *, answer, answered=None):
        """Begin writing `scored` (its guess follows when `answer`, a `kept`
        message otherwise); a future of the write, which a close does not
        cancel. `answered`, a future, is resolved once the guess went out
        (or the write ended without one)."""
        key = (scored.game, scored.round)
        self.last_write = (key, clock.time())
        drawings = max(self.unwritten.pop(key, 0), 1)
        best = self.unwritten_best.pop(key, None)
        write = asyncio.ensure_future(self._reporting(self._write(scored, answer, drawings,
                                                                  best, answered)))
        self.writes.add(write)
        write.add_done_callback(self.writes.discard)
        if answered is not None:
            write.add_done_callback(lambda _: _resolve(answered))
        return write

    async def _reporting(self, coroutine):
        """Await `coroutine`; a failure is told to the client as an error
        answering its `draw` (None is returned). A protocol 2 client then
        sends the whole drawing, so the one built so far is forgotten."""
        from recognizer.inference import ModelUnavailable

        session = self.session
        try:
            return await coroutine
        except asyncio.CancelledError:
            raise
        except GameError as exc:
            session.round_drawing.forget()
            await session.error(exc.code, exc.message, "draw")
        except ModelUnavailable as exc:
            session.round_drawing.forget()
            await session.error("model_unavailable", f"the recognizer is not ready: {exc}",
                                "draw")
        except Exception:
            session.round_drawing.forget()
            logger.exception("scoring a drawing in room %s failed", session.code)
            await session.error("internal", "the server failed to score the drawing", "draw")
        return None

    async def _compute(self, item):
        """Render and recognise a drawing: (drawing, image, prediction), or
        None when the player's round is over already."""
        session = self.session
        if session.view.finished:
            return None
        raw, watch = item.raw, item.watch
        address = getattr(session.transport, "client_address", None)
        # One of the address's few slots (its other sockets' drawings wait),
        # and its own lane in the inference queue.
        async with drawing_slots.held(address):
            watch.lap("slot")
            on_loop = settings.GAME_RENDER_ON_LOOP_POINTS
            if (0 < on_loop and points_and_strokes(raw) <= on_loop
                    and not rendering_in_threads()):
                # A small drawing is rendered here, at once: in a thread it
                # held the interpreter all the same, and cost two hand-overs
                # between threads (see the setting). Not while larger ones
                # are rendered in threads: then it takes its turn in its
                # address's lane like them, so a flood of the largest
                # drawings meets the same round robin as before (README,
                # the abuse runs beside it).
                drawing, image = _prepare(raw, item.checked)
            else:
                # And a turn among the process's renderings, round robin by address.
                async with render_turn(address):
                    drawing, image = await _in_thread_to_the_end(_prepare, raw, item.checked)
            if item.checked is None:
                # The next delta on this drawing converts only what it adds.
                session.round_drawing.learn(raw, drawing)
            watch.lap("render")
            prediction = await self._recognise(image, address)
            watch.lap("recognise")
        return drawing, image, prediction

    async def _recognise(self, image, address):
        """The guess for a 28x28 input: the served model's, or in a class room
        whose teacher taught the model the class's drawings, the class's copy's
        (recognizer.taught; no other room and no teach page is read by it)."""
        from recognizer import taught
        from recognizer.inference import get_service

        session = self.session
        if session.feed.classroom:
            copy = await db(taught.class_copy)(session.code)
            if copy is not None:
                try:
                    return await taught.apredict(copy, image)
                except taught.CopyError as exc:
                    logger.warning("class %s: its taught copy cannot answer (%s); the served "
                                   "model does", session.code, exc)
        return await get_service().apredict(image, client=("game", address))

    async def _write(self, scored, answer, drawings, best=None, answered=None):
        """Write a scored drawing as the player's latest, then say so: its
        `guess` (`answer`) or, for a drawing answered as held, `kept`.

        The drawing is written before the client hears it is kept, so `kept`
        is a promise: this drawing is the player's for the round. An
        overloaded server then answers fewer drawings, later, but never
        loses one it told the player about. A database that refuses the
        write (locked, restarting) does not hold up the answer: the guess
        goes out as `held` at the first refusal (or at once, while this
        process's writes are refused), the write is tried again until it
        lands, and `kept` follows it; `received_at` still decides whether
        the drawing counts for the round. The guess waited for the write:
        through a database outage the player saw nothing, for up to
        GAME_WRITE_PATIENCE_SECONDS.
        """
        session = self.session
        answered_held = False

        async def answer_held():
            nonlocal answered_held
            if answer and not answered_held:
                answered_held = True
                try:
                    if scored.watch is not None:
                        scored.watch.lap("write")
                    await self._answer(scored, kept=False, held=True, reached=False)
                finally:
                    if answered is not None:
                        _resolve(answered)

        async def refused():
            # This write holds the turn: it, and every write waiting for the
            # turn behind it, are answered held now, in the order they came.
            self.turn_refused = True
            for answer_one in (answer_held, *self.waiting_answers):
                try:
                    await answer_one()
                except Exception:  # the next ones are answered all the same
                    logger.exception("room %s: answering a drawing whose write the "
                                     "database refuses failed", session.code)

        if refusing() or self.turn_refused:
            await answer_held()
        self.waiting_answers[answer_held] = None
        try:
            async with self.write_turn:
                self.waiting_answers.pop(answer_held, None)
                try:
                    kept, events = await patiently(
                        guesses.record_guess, session.code, session.player_id, scored.game,
                        scored.round, what=f"a drawing in room {session.code}",
                        on_refused=refused,
                        drawing=scored.drawing_json, input_bytes=scored.input_bytes,
                        prediction=scored.prediction, target=scored.target,
                        received_at=scored.received_at, pen_up=scored.pen_up,
                        drawings=drawings, best=best,
                    )
                finally:
                    self.turn_refused = False
        finally:
            self.waiting_answers.pop(answer_held, None)
        answer = answer and not answered_held
        if answer and scored.watch is not None:
            scored.watch.lap("write")
        reached = any(m["type"] == "player_finished" and m["player"] == session.player_id
                      and m["reason"] == "reached" for m in events)
        if reached:
            session.view.finished = True  # nothing drawn after this counts
        if answer:
            await self._answer(scored, kept=kept, held=False, reached=reached)
        elif kept:
            await session.send(protocol.message("kept", round=scored.round, seq=scored.seq))
        await session.broadcast_all(events)

    async def _answer(self, scored, *, kept, held, reached):
        session = self.session
        prediction = scored.prediction
        await session.send(protocol.message(
            "guess",
            round=scored.round,
            seq=scored.seq,
            digit=prediction.digit,
            top3=[[d, p] for d, p in prediction.top(3)],
            probabilities=prediction.probabilities,
            target_probability=scored.p_target,
            reached=reached,
            kept=kept,
            held=held,
            model=prediction.version,
        ))
        if scored.watch is not None:
            scored.watch.done()
        # The others see it live, throttled: a class's teacher, or in an
        # ordinary room every other player (digitsite.game.live_feed).
        await session.live.scored(scored.round, scored.drawing_json, prediction,
                                  scored.p_target, reached=reached, kept=kept or held,
                                  game=scored.game)
