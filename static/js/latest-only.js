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
 *   latest.send();         // it goes now, unless one waits for its answer
 *   latest.answered(id);   // the answer came: the newest, if any, goes next
 *
 * send(...args) puts a drawing on its way and returns its id (a number that
 * grows, or nothing), or false when it could not go: it then stays the newest.
 */
export class LatestOnly {
  constructor(send, {answerTimeoutMs = Infinity, resume = null} = {}) {
    this._send = send;
    // A drawing still unanswered after this long no longer holds the next one back.
    this._answerTimeoutMs = answerTimeoutMs;
    // How the newest drawing goes once the answer came: at once unless told.
    this._resume = resume || (() => this.send());
    this._newest = null; // {args} of the drawing not sent yet
    this._waiting = null; // {id, since} of the drawing waiting for its answer
  }

  /** Whether a drawing is held to go next. */
  get pending() {
    return this._newest !== null;
  }

  /** Whether a drawing on its way holds the next one back. */
  get waiting() {
    return this._waiting !== null
      && performance.now() - this._waiting.since < this._answerTimeoutMs;
  }

  hold(...args) {
    this._newest = {args};
  }

  /** Send the newest drawing unless one waits for its answer (`force`: even then). */
  send({force = false} = {}) {
    if (this._newest === null) return;
    if (this.waiting && !force) return; // goes out when the answer comes back
    const newest = this._newest;
    this._newest = null;
    const id = this._send(...newest.args);
    if (id === false) {
      if (this._newest === null) this._newest = newest;
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
    if (this._newest !== null) this._resume();
  }

  /** Forget the drawing held to go next. */
  drop() {
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
  // Forget whatever is queued or on its way (after "clear").
  request.reset = () => {
    generation += 1;
    latest.drop();
  };
  return request;
}
