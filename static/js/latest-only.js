// Sending the latest drawing only: at most one drawing waits for its answer;
// drawings made meanwhile replace each other, and when the answer comes the
// newest of them goes. A busy server then gets fewer, newer drawings instead
// of a queue of stale ones, and answers sooner; a slow answer never shows an
// older drawing after a newer one. The game sends this way over its
// WebSocket (game-drawings.js), the practice and teaching pages over HTTP
// (latestRequest below).

/**
 * The policy, for any way of sending:
 *
 *   const latest = new LatestOnly(send, {answerTimeoutMs, resume});
 *   latest.hold(...args);  // the newest drawing: it goes with the next send()
 *   latest.holdComplete(...args); // a finished drawing: newer ones do not replace it
 *   latest.send();         // it goes now, unless one waits for its answer
 *   latest.answered(id);   // the answer came: the newest, if any, goes next
 *   latest.forgetComplete(); // the complete drawing held is no longer true (an undo)
 *
 * send(...args) puts a drawing on its way and returns its id (a number that
 * grows, or nothing), or false when it could not go: it then stays the newest.
 *
 * A complete drawing (the game's: the pen lifted, the only kind that can
 * reach the target) is not superseded by the next stroke's first points: it
 * goes first, then the newest held after it. Without this, a pen lifted
 * while a guess was on its way and put down again before it came back was
 * never scored with the pen up. Still at most one drawing waits for its
 * answer, and at most two are held: the newest complete one, and the newest.
 */
export class LatestOnly {
  constructor(send, {answerTimeoutMs = Infinity, resume = null} = {}) {
    this._send = send;
    // A drawing still unanswered after this long no longer holds the next one back.
    this._answerTimeoutMs = answerTimeoutMs;
    // How the newest drawing goes once the answer came: at once unless told.
    this._resume = resume || (() => this.send());
    this._complete = null; // {args} of the newest complete drawing not sent yet
    this._newest = null; // {args} of the newest drawing not sent yet, held after it
    this._waiting = null; // {id, since} of the drawing waiting for its answer
  }

  /** Whether a drawing is held to go next. */
  get pending() {
    return this._complete !== null || this._newest !== null;
  }

  /** Whether a drawing on its way holds the next one back. */
  get waiting() {
    return this._waiting !== null
      && performance.now() - this._waiting.since < this._answerTimeoutMs;
  }

  hold(...args) {
    this._newest = {args};
  }

  /** Hold a complete drawing: it replaces every drawing held before it, and no later hold() replaces it. */
  holdComplete(...args) {
    this._complete = {args};
    this._newest = null;
  }

  /**
   * Send the next drawing held (the complete one first) unless one waits for
   * its answer (`force`: even then).
   */
  send({force = false} = {}) {
    if (!this.pending) return;
    if (this.waiting && !force) return; // goes out when the answer comes back
    const slot = this._complete !== null ? "_complete" : "_newest";
    const next = this[slot];
    this[slot] = null;
    const id = this._send(...next.args);
    if (id === false) {
      if (this[slot] === null) this[slot] = next;
      return;
    }
    this._waiting = {id, since: performance.now()};
  }

  /**
   * The answer to drawing `id` came (null: to whichever waits); an answer to
   * an older drawing than the one waiting changes nothing.
   */
  answered(id = null) {
    if (this._waiting === null || (id != null && id < this._waiting.id)) return;
    this._waiting = null;
    if (this.pending) this._resume();
  }

  /**
   * Forget the complete drawing held, keeping the newest: the drawing no
   * longer only grew since (an undo), so the complete one shows strokes the
   * player erased, and sent later with the pen up it could still win the round.
   */
  forgetComplete() {
    this._complete = null;
  }

  /** Forget the drawings held to go next. */
  drop() {
    this._complete = null;
    this._newest = null;
  }

  /** The drawing on its way will get no answer (a new connection): stop waiting for it. */
  stopWaiting() {
    this._waiting = null;
  }
}

/** Thrown by a request to have it sent again after `delayMs` (the server asked to wait). */
export class RetryLater extends Error {
  constructor(delayMs) {
    super(`try again in ${delayMs} ms`);
    this.delayMs = delayMs;
  }
}

/**
 * The policy for requests that answer by themselves (fetch): request(...args)
 * goes at once or, while one is on its way, waits as the newest. Answers come
 * to onResult(result, ...args), failures to onError(error, ...args), except
 * those of requests made before the last reset(). A request that throws
 * RetryLater goes again after its delay, unless a newer one is held by then.
 */
export function latestRequest(send, onResult, onError) {
  let generation = 0;
  const latest = new LatestOnly((args, gen) => {
    run(args, gen);
  });

  async function run(args, gen) {
    let delay = 0;
    try {
      const result = await send(...args);
      if (gen === generation) onResult(result, ...args);
    } catch (error) {
      if (error instanceof RetryLater) {
        delay = error.delayMs;
        if (gen === generation && !latest.pending) latest.hold(args, gen);
      } else if (gen === generation) {
        onError(error, ...args);
      }
    } finally {
      if (delay) {
        // Still on its way while waiting, so newer drawings replace the one held.
        setTimeout(() => latest.answered(), delay);
      } else {
        latest.answered();
      }
    }
  }

  const request = (...args) => {
    latest.hold(args, generation);
    latest.send();
  };
  // Whether a newer call is waiting (follow-up requests then give way to it).
  request.hasPending = () => latest.pending;
  // Whether nothing is held or on its way.
  request.isIdle = () => !latest.pending && !latest.waiting;
  // Forget whatever is queued or on its way (after "clear").
  request.reset = () => {
    generation += 1;
    latest.drop();
  };
  return request;
}
