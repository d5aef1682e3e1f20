// The room's drawings on their way to the server: `draw` messages numbered
// within the round, their point times counted from the round's start
// (docs/protocol.md), sent at most every `everyMs` and by the latest-only
// policy (latest-only.js): at most one drawing waits for its guess, so a busy
// server gets fewer, newer drawings instead of a queue of stale ones, and
// answers sooner. Each drawing says whether the pen is up (`pen_up`): only a
// drawing whose last stroke is complete can reach the target. So the drawing
// as it was when a stroke ended is held as complete: if a guess is still on
// its way then, it goes when the guess comes back, even when the next stroke
// has begun meanwhile (the drawing held after it goes next).

import {throttle} from "./drawing-pad.js";
import {canDraw} from "./game-state.js";
import {LatestOnly} from "./latest-only.js";

export class DrawingSender {
  constructor({pad, connection, game, everyMs, answerTimeoutMs}) {
    this.pad = pad;
    this.connection = connection;
    this.game = game;
    // The drawing is read when the message goes out, so it is always the
    // latest; a complete one is read when its stroke ends ({drawing}).
    this.latest = new LatestOnly((complete) => this._sendLatest(complete), {
      answerTimeoutMs,
      resume: () => this.throttled(),
    });
    this.throttled = throttle(() => this.latest.send(), everyMs);
  }

  /** The pad changed: the drawing goes out soon (`now`: at once, a stroke ended). */
  changed({now = false} = {}) {
    if (now && !this.pad.penDown) this.latest.holdComplete({drawing: this.pad.drawing});
    else this.latest.hold();
    this.throttled();
    if (now) this.throttled.flush();
  }

  /** Nothing to send: the pad is empty, or I cannot draw now. */
  drop() {
    this.throttled.cancel();
    this.latest.drop();
  }

  /** Drop the drawing due and stop waiting for a guess (a round starts or ends). */
  reset() {
    this.drop();
    this.latest.stopWaiting();
  }

  /** The server answered the drawing waiting (a guess, or a refusal without seq). */
  answered(seq) {
    this.latest.answered(seq);
  }

  /** Seated again after a lost connection: a drawing made while offline gets its guess now. */
  rejoined() {
    this.latest.stopWaiting();
    // The pad as it is now goes; a stroke's end held from before is in it.
    this.latest.drop();
    if (canDraw(this.game) && !this.pad.isEmpty()) this.changed();
  }

  /** The finished drawing goes out even while an older one waits for its guess. */
  sendFinal() {
    this.throttled.cancel();
    // The pad as it is now, not a stroke's end held before it.
    if (!this.pad.isEmpty()) this.latest.holdComplete();
    this.latest.send({force: true});
  }

  _sendLatest(complete = null) {
    const {game, pad} = this;
    if (!canDraw(game) || (complete === null && pad.isEmpty())) return false;
    // Read together: the drawing as it is and whether its last stroke is complete.
    // A copy of the complete one: it is shifted below, and held again if it cannot go.
    const drawing = complete ? structuredClone(complete.drawing) : pad.drawing;
    const penUp = complete ? true : !pad.penDown;
    // Point times count from the round's start, as the protocol asks.
    const shift = game.roundStartLocal !== null && pad.startedAt !== null
      ? Math.max(0, pad.startedAt - game.roundStartLocal) : 0;
    if (shift) {
      for (const stroke of drawing.strokes) for (const point of stroke) point[2] += shift;
    }
    game.seq += 1;
    if (!this.connection.send({type: "draw", round: game.round, seq: game.seq, drawing, pen_up: penUp})) {
      return false;
    }
    return game.seq;
  }
}
