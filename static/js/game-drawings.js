// The room's drawings on their way to the server: `draw` messages numbered
// within the round, their point times counted from the round's start
// (docs/protocol.md), sent at most every `everyMs` and by the latest-only
// policy (latest-only.js): at most one drawing waits for its guess, so a busy
// server gets fewer, newer drawings instead of a queue of stale ones, and
// answers sooner. Each drawing says whether the pen is up (`pen_up`): only a
// drawing whose last stroke is complete can reach the target.

import {throttle} from "./drawing-pad.js";
import {canDraw} from "./game-state.js";
import {LatestOnly} from "./latest-only.js";

export class DrawingSender {
  constructor({pad, connection, game, everyMs, answerTimeoutMs}) {
    this.pad = pad;
    this.connection = connection;
    this.game = game;
    // The drawing is read when the message goes out, so it is always the latest.
    this.latest = new LatestOnly(() => this._sendLatest(), {
      answerTimeoutMs,
      resume: () => this.throttled(),
    });
    this.throttled = throttle(() => this.latest.send(), everyMs);
  }

  /** The pad changed: the drawing goes out soon (`now`: at once, a stroke ended). */
  changed({now = false} = {}) {
    this.latest.hold();
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
    if (canDraw(this.game) && !this.pad.isEmpty()) this.changed();
  }

  /** The finished drawing goes out even while an older one waits for its guess. */
  sendFinal() {
    this.throttled.cancel();
    this.latest.send({force: true});
  }

  _sendLatest() {
    const {game, pad} = this;
    if (!canDraw(game) || pad.isEmpty()) return false;
    // Read together: the drawing as it is and whether its last stroke is complete.
    const drawing = pad.drawing;
    const penUp = !pad.penDown;
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
