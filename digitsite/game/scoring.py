"""Scoring a connection's drawings as they come: each is checked, rendered
to the network's input, recognised, written as the player's latest for the
round (digitsite.game.guesses) and answered with a `guess`.

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
import logging

from digitsite.game import guesses, protocol
from digitsite.game.database import db, patiently
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
    """The drawings of one PlayerSession (digitsite.game.session), scored one at a time."""

    def __init__(self, session):
        self.session = session
        # The drawings waiting, each (raw, seq, game, round, target,
        # received_at, pen_up): the newest sent with the pen up, and a newer
        # one sent with the pen down after it.
        self.pending_pen_up = None
        self.pending = None
        self.task = None

    def submit(self, raw, seq, game, round_number, target, received_at, *, pen_up=False):
        """Score this drawing next, in place of any still waiting, except that
        a drawing with the pen up (`pen_up`, the only kind that can reach the
        target) is replaced only by a newer one with the pen up."""
        item = (raw, seq, game, round_number, target, received_at, pen_up)
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

    async def drain(self, timeout=10.0):
        """Wait until the drawing in hand (if any) is scored and written."""
        if self.task is not None and not self.task.done():
            await asyncio.wait({self.task}, timeout=timeout)

    async def _score_pending(self):
        from recognizer.inference import ModelUnavailable

        session = self.session
        while (item := self._next()) is not None:
            try:
                # Shielded: a drawing being recorded is recorded even if the
                # socket closes meanwhile.
                await asyncio.shield(self._score(*item))
            except GameError as exc:
                await session.error(exc.code, exc.message, "draw")
            except ModelUnavailable as exc:
                await session.error("model_unavailable", f"the recognizer is not ready: {exc}",
                                    "draw")
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scoring a drawing in room %s failed", session.code)
                await session.error("internal", "the server failed to score the drawing",
                                    "draw")

    async def _recognise(self, image):
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
        return await get_service().apredict(image)

    async def _score(self, raw, seq, game, round_number, target, received_at, pen_up):
        from recognizer.preprocessing import input_to_bytes

        session = self.session
        if session.view.finished:
            return
        drawing, image = await asyncio.to_thread(_prepare, raw)
        prediction = await self._recognise(image)
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
        # The others see it live, throttled: a class's teacher, or in an
        # ordinary room every other player (digitsite.game.live_feed).
        await session.live.scored(round_number, drawing_json, prediction, p_target,
                                  reached=reached, kept=kept)
        await session.broadcast_all(events)
