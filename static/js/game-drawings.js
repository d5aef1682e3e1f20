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
//
// Protocol 2: a drawing that only grew since the last one sent goes as what
// was added (`base`: that drawing's seq, `extend`: points added to its last
// stroke, `strokes`: new strokes), a few hundred bytes instead of the whole
// drawing. The first drawing of a round or connection, one after an undo or
// a clear, and the next after any refusal go whole.

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
    // The last drawing sent, as protocol 2's `base`: {round, seq, ...marks}.
    this.base = null;
  }

  /**
   * The pad changed: the drawing goes out soon (`now`: at once, a stroke
   * ended). `grew`: false after an undo, when a complete drawing still held
   * has the erased stroke and must not go.
   */
  changed({now = false, grew = true} = {}) {
    if (!grew) this.latest.forgetComplete();
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
    this.base = null;
  }

  /** The server answered the drawing waiting (a guess, or a refusal without seq). */
  answered(seq) {
    this.latest.answered(seq);
  }

  /**
   * The server refused a drawing (an error `for` draw): the next goes whole.
   * One sent as an addition to a drawing the server no longer has
   * (`stale_base`) goes again at once, whole.
   */
  refused(code) {
    this.base = null;
    if (code === "stale_base" && canDraw(this.game) && !this.pad.isEmpty()) this.latest.hold();
    this.latest.answered(null);
  }

  /** Seated again after a lost connection: a drawing made while offline gets its guess now. */
  rejoined() {
    this.base = null; // a new connection has no drawing to add to
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
    const message = {type: "draw", round: game.round, seq: game.seq, pen_up: penUp,
      ...this._since(drawing)};
    if (!this.connection.send(message)) {
      this.base = null;
      return false;
    }
    this.base = {round: game.round, seq: game.seq, ...marks(drawing)};
    return game.seq;
  }

  /** The fields of a `draw` carrying `drawing`: what it added to the last one sent, or all of it. */
  _since(drawing) {
    const base = this.base;
    if (!base || base.round !== this.game.round || base.width !== drawing.width
      || base.height !== drawing.height) return {drawing};
    const count = base.strokes.length;
    if (count === 0 || drawing.strokes.length < count) return {drawing};
    for (let i = 0; i < count; i += 1) {
      const [length, first, last] = base.strokes[i];
      const stroke = drawing.strokes[i];
      // Earlier strokes unchanged, the last one only longer: the pad only
      // adds points. An undo followed by a new stroke changes the marks.
      if (stroke.length < length || (i < count - 1 && stroke.length !== length)
        || !samePoint(stroke[0], first) || !samePoint(stroke[length - 1], last)) return {drawing};
    }
    const extend = drawing.strokes[count - 1].slice(base.strokes[count - 1][0]);
    const strokes = drawing.strokes.slice(count);
    return {base: base.seq, ...(extend.length ? {extend} : {}), ...(strokes.length ? {strokes} : {})};
  }
}

/** What a later drawing is compared with: the size, and each stroke's length, first and last point. */
function marks(drawing) {
  return {
    width: drawing.width,
    height: drawing.height,
    strokes: drawing.strokes.map((stroke) => [stroke.length, stroke[0], stroke[stroke.length - 1]]),
  };
}

function samePoint(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => v === b[i]);
}
