// Following one teach job from "Teach" to its result: polling its state,
// showing progress (place in the queue, then step, steps and loss) and
// cancelling it when asked or when the page goes away. Shared by the teach
// page and the class projector.
//
//   const job = new JobWatcher(urls, {onUpdate, onFinish});
//   job.follow(answerOfPost);   // {job, state, position}
//   job.cancel();               // the learner pressed Cancel
//
// onUpdate(status) gets every answer of GET /jobs/<id>; onFinish(status) the
// last one (state done, failed, cancelled or expired) or, when polling fails
// for good, {state: "failed", error}.

import {ApiError, requestJSON, sendWhileLeaving, sentence} from "./api.js";

// The server cancels a job whose page has not asked for 15 s
// (TEACH_ABANDON_SECONDS); asking every 400 ms shows a 300-step job's progress
// about ten times over its 4-5 s and costs the server one small answer each.
// Each answer says when to ask again (`poll_after`, seconds: 0.4 running or
// next in line, 2 further back in the queue), which the page follows: 30
// learners asking every 0.4 s while queued cost the server about 6 ms each
// time and made the whole class wait longer.
export const POLL_MS = 400;
// Failed polls in a row before giving up: about 5 s of a lost connection at
// POLL_MS, well inside the server's 15 s before it cancels the job itself.
const MAX_POLL_FAILURES = 12;

export const FINAL_STATES = new Set(["done", "failed", "cancelled", "expired"]);

export class JobWatcher {
  constructor(urls, {onUpdate = () => {}, onFinish = () => {}, pollMs = POLL_MS} = {}) {
    this.urls = urls;
    this.onUpdate = onUpdate;
    this.onFinish = onFinish;
    this.pollMs = pollMs;
    this.id = null;
    this.status = null;
    this._timer = null;
    this._failures = 0;
    this._abort = null;
    this._onPageHide = () => this.leave();
    window.addEventListener("pagehide", this._onPageHide);
  }

  /** Whether a job is queued or running (what leaving the page cancels). */
  get active() {
    return this.id !== null && !FINAL_STATES.has(this.status?.state);
  }

  follow(answer) {
    this._stop();
    this.id = answer.job;
    this._failures = 0;
    this._update({state: answer.state, position: answer.position ?? 0, step: 0,
      steps: answer.steps ?? null, loss: null});
    this._schedule(answer.poll_after);
  }

  async cancel() {
    if (!this.active) return;
    const id = this.id;
    this._stop();
    try {
      const answer = await requestJSON(this.urls.cancel(id), {body: {}});
      this._finish({...this.status, state: answer.state || "cancelled"});
    } catch (error) {
      // Cancelling a job that just finished: its own state says what happened.
      this._finish({...this.status, state: "cancelled", error: error.message});
    }
  }

  /** The page is going away: the server is told at once, polling stops. */
  leave() {
    if (!this.active) return;
    sendWhileLeaving(this.urls.cancel(this.id));
    this._stop();
    this.status = {...this.status, state: "cancelled"};
  }

  destroy() {
    this._stop();
    window.removeEventListener("pagehide", this._onPageHide);
  }

  _schedule(afterSeconds = null) {
    const ms = Number.isFinite(afterSeconds) && afterSeconds > 0
      ? Math.min(afterSeconds * 1000, 5000) : this.pollMs;
    this._timer = setTimeout(() => this._poll(), ms);
  }

  async _poll() {
    this._timer = null;
    const id = this.id;
    this._abort = new AbortController();
    let status;
    try {
      status = await requestJSON(this.urls.job(id), {signal: this._abort.signal});
    } catch (error) {
      if (id !== this.id || this._abort?.signal.aborted) return;
      // 429: too many requests from this browser or its address (a school
      // shares one): ask again when the server says, not a failure.
      if (error instanceof ApiError && error.status === 429) {
        this._schedule(error.retryAfter || 1);
        return;
      }
      this._failures += 1;
      // 404: the job is gone (the server restarted, or it expired): no use asking again.
      if (this._failures >= MAX_POLL_FAILURES || (error instanceof ApiError && error.status === 404)) {
        this._finish({...this.status, state: "failed", error: error.message});
      } else {
        this._schedule();
      }
      return;
    } finally {
      this._abort = null;
    }
    if (id !== this.id) return; // a newer job is followed now
    this._failures = 0;
    if (FINAL_STATES.has(status.state)) {
      this._finish(status);
    } else {
      this._update(status);
      this._schedule(status.poll_after);
    }
  }

  _update(status) {
    this.status = status;
    this.onUpdate(status);
  }

  _finish(status) {
    this._stop();
    this.status = status;
    this.onUpdate(status);
    this.onFinish(status);
  }

  _stop() {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    this._abort?.abort();
    this._abort = null;
  }
}

/**
 * What a progress bar and its text show for a job's status: {value, max}
 * (value null: not known yet, an indeterminate bar) and a line of text.
 */
export function progressOf(status) {
  const steps = Number(status.steps) || null;
  const step = Math.min(Number(status.step) || 0, steps ?? Infinity);
  switch (status.state) {
    case "queued": {
      const ahead = Number(status.position) || 0;
      return {value: null, max: 1, text: ahead > 0
        ? `Waiting for the trainer: ${ahead} ${ahead === 1 ? "job is" : "jobs are"} ahead of yours.`
        : "Waiting for the trainer: yours is next."};
    }
    case "running": {
      if (!steps) return {value: null, max: 1, text: "Training starts…"};
      const loss = Number.isFinite(status.loss) && status.loss !== null
        ? ` · loss ${Number(status.loss).toFixed(3)}` : "";
      return {value: step, max: steps, text: `Step ${step} of ${steps}${loss}`};
    }
    case "done":
      return {value: 1, max: 1, text: steps ? `Done: ${steps} steps.` : "Done."};
    case "cancelled":
      return {value: 0, max: 1, text: "Cancelled."};
    case "expired":
      return {value: 0, max: 1, text: "This copy has expired: teach it again."};
    default:
      return {value: 0, max: 1, text: status.error ? `It failed. ${sentence(status.error)}` : "It failed."};
  }
}

/**
 * A sentence worth announcing to a screen reader when the status moves from
 * `before` to `after` (null when nothing worth saying happened): the queue,
 * the start, each quarter of the steps and the end. Every poll would be
 * about three announcements a second.
 */
export function milestone(before, after) {
  const was = before?.state;
  if (after.state === "queued" && was !== "queued") return progressOf(after).text;
  if (after.state === "running" && was !== "running") return "Training started.";
  if (after.state === "running" && after.steps) {
    const quarter = (s) => Math.floor((4 * (Number(s?.step) || 0)) / after.steps);
    const now = quarter(after);
    const then = was === "running" ? quarter(before) : 0;
    if (now > then && now < 4) return `${now * 25}% of the steps done.`;
    return null;
  }
  if (FINAL_STATES.has(after.state) && was !== after.state) return progressOf(after).text;
  return null;
}
