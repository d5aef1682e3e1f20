"""Scoring a connection's drawings as they come: each is checked, rendered
to the network's input, recognised, written as the player's latest for the
round (digitsite.game.guesses) and answered with a `guess`.

Only the newest drawing waiting is scored, and only it is checked in full: a
fast sender cannot queue work or make the server parse drawings nobody will
look at. (The points a round earns are counted when it ends,
digitsite.game.finishing.)
"""

import asyncio
import logging

from digitsite.game import guesses, protocol
from digitsite.game.database import patiently
from digitsite.game.drawing_slots import drawing_slots
from digitsite.game.protocol import MAX_POINTS
from digitsite.game.rules import GameError

logger = logging.getLogger(__name__)


def count_points(drawing):
    strokes = drawing.get("strokes")
    if not isinstance(strokes, list):
        return 0
    return sum(len(stroke) for stroke in strokes if isinstance(stroke, list))


def _prepare(raw):
    """Validate a drawing and render the network's input (CPU work, run in a thread)."""
    from recognizer.payloads import PayloadError, parse_drawing
    from recognizer.preprocessing import DrawingError, InkLimitError, strokes_to_input

    try:
        drawing = parse_drawing(raw, max_points=MAX_POINTS)
        return drawing, strokes_to_input(drawing.strokes, drawing.width, drawing.height)
    except InkLimitError as exc:
        raise GameError("too_much_ink", str(exc)) from exc
    except (PayloadError, DrawingError) as exc:
        raise GameError("bad_drawing", str(exc)) from exc


class DrawingScorer:
    """The drawings of one PlayerSession (digitsite.game.session), scored one at a time.

    Scoring has two parts. Computing (rendering, recognising) is work for the
    client alone: when its socket closes, the drawing waiting and the one
    being computed are dropped (the inference queue forgets a cancelled
    request, digitsite/game/drawing_slots.py a cancelled wait). Recording
    (the write, then the guess) is shielded: a drawing being written is
    written even if the socket closes meanwhile, as its guess may be the
    last the player heard.
    """

    def __init__(self, session):
        self.session = session
        # The newest drawing waiting: (raw, seq, game, round, target,
        # received_at, pen_up).
        self.pending = None
        self.task = None
        self.writing = None  # the record of a computed drawing, under way

    def submit(self, raw, seq, game, round_number, target, received_at, *, pen_up=False):
        """Score this drawing next, in place of any still waiting. Only a
        drawing with the pen up (`pen_up`) can reach the target."""
        self.pending = (raw, seq, game, round_number, target, received_at, pen_up)
        if self.task is None or self.task.done():
            self.task = self.session.spawn(self._score_pending())

    async def drain(self, timeout=10.0):
        """Wait until the drawing in hand (if any) is scored and written."""
        waits = {task for task in (self.task, self.writing)
                 if task is not None and not task.done()}
        if waits:
            await asyncio.wait(waits, timeout=timeout)

    async def drop_unscored(self, timeout=10.0):
        """The client is gone: drop the drawing waiting and the one being
        computed; let a write under way land."""
        self.pending = None
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.writing is not None and not self.writing.done():
            await asyncio.wait({self.writing}, timeout=timeout)

    async def _score_pending(self):
        while self.pending is not None:
            item, self.pending = self.pending, None
            computed = await self._reporting(self._compute(item))
            if computed is None:
                continue
            self.writing = asyncio.ensure_future(self._reporting(self._record(item, *computed)))
            await asyncio.shield(self.writing)

    async def _reporting(self, coroutine):
        """Await `coroutine`; a failure is told to the client as an error
        answering its `draw` (None is returned)."""
        from recognizer.inference import ModelUnavailable

        session = self.session
        try:
            return await coroutine
        except GameError as exc:
            await session.error(exc.code, exc.message, "draw")
        except ModelUnavailable as exc:
            await session.error("model_unavailable", f"the recognizer is not ready: {exc}",
                                "draw")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("scoring a drawing in room %s failed", session.code)
            await session.error("internal", "the server failed to score the drawing", "draw")
        return None

    async def _compute(self, item):
        """Render and recognise a drawing: (drawing, image, prediction), or
        None when the player's round is over already."""
        from recognizer.inference import get_service

        session = self.session
        if session.view.finished:
            return None
        raw = item[0]
        address = getattr(session.transport, "client_address", None)
        # One of the address's few slots (its other sockets' drawings wait),
        # and its own lane in the inference queue.
        async with drawing_slots.held(address):
            drawing, image = await asyncio.to_thread(_prepare, raw)
            prediction = await get_service().apredict(image, client=("game", address))
        return drawing, image, prediction

    async def _record(self, item, drawing, image, prediction):
        from recognizer.preprocessing import input_to_bytes

        _raw, seq, game, round_number, target, received_at, pen_up = item
        session = self.session
        # The drawing is written before its guess goes out, so a guess marked
        # `kept` is a promise: this drawing is the player's for the round.
        # An overloaded server then answers fewer drawings, later, but never
        # loses one it told the player about. A database that refuses the
        # write (locked, restarting) delays the guess: the write is tried
        # again until it lands, and `received_at` still decides whether the
        # drawing counts for the round.
        drawing_json = drawing.as_json()
        kept, events = await patiently(
            guesses.record_guess, session.code, session.player_id, game, round_number,
            what=f"a drawing in room {session.code}",
            drawing=drawing_json, input_bytes=input_to_bytes(image),
            prediction=prediction, target=target, received_at=received_at, pen_up=pen_up,
        )
        p_target = float(prediction.probabilities[target])
        reached = any(m["type"] == "player_finished" and m["player"] == session.player_id
                      and m["reason"] == "reached" for m in events)
        if reached:
            session.view.finished = True  # nothing drawn after this counts
        await session.send(protocol.message(
            "guess",
            round=round_number,
            seq=seq,
            digit=prediction.digit,
            top3=[[d, p] for d, p in prediction.top(3)],
            probabilities=prediction.probabilities,
            target_probability=p_target,
            reached=reached,
            kept=kept,
            model=prediction.version,
        ))
        # In a class room, the teacher's projector shows it too (throttled).
        await session.feed.scored(round_number, drawing_json, prediction, p_target,
                                  reached=reached, kept=kept)
        await session.broadcast_all(events)
