// The class projector's "Teach the model with our class's drawings": after a
// game, the teacher's screen asks for a job that teaches the class's copy
// from the game's drawings (POST /learn/teach/api/class/<code>/jobs), shows
// its progress and then before and after on the class's held-out drawings.
// The class's next game is read by that copy (the server decides).

import {apiUrls, requestJSON, sentence} from "./api.js";
import {showScores, verdict} from "./before-after.js";
import {JobWatcher, milestone, progressOf} from "./job.js";

/**
 * The drawings the teacher left out of teaching, by player and round (the
 * class job's "exclude"); `onChange(count)` follows them. At most 400 (the
 * server's bound on a class job's list, a class game's most drawings).
 */
export class Exclusions {
  constructor(onChange = () => {}, max = 400) {
    this.onChange = onChange;
    this.max = max;
    this._keys = new Map();
  }

  get size() {
    return this._keys.size;
  }

  has(player, round) {
    return this._keys.has(`${round}:${player}`);
  }

  toggle(player, round) {
    const key = `${round}:${player}`;
    if (this._keys.has(key)) this._keys.delete(key);
    else if (this._keys.size < this.max) this._keys.set(key, {player, round});
    this.onChange(this.size);
  }

  clear() {
    this._keys.clear();
    this.onChange(0);
  }

  list() {
    return [...this._keys.values()];
  }
}

/**
 * Wire the panel `section`; the returned show(visible) shows or hides it and
 * `exclusions` holds the drawings to leave out.
 */
export function classTeach(section) {
  const $ = (selector) => section.querySelector(selector);
  const urls = apiUrls(section);
  const ui = {
    start: $("[data-class-teach-start]"),
    progress: $("[data-progress]"),
    bar: $("[data-progress-bar]"),
    text: $("[data-progress-text]"),
    error: $("[data-error]"),
    announce: $("[data-announce]"),
    result: $("[data-class-teach-result]"),
    verdict: $("[data-verdict]"),
    scores: $("[data-scores]"),
    leftOut: $("[data-left-out]"),
  };
  const exclusions = new Exclusions((count) => {
    ui.leftOut.textContent = count
      ? `${count} drawing${count === 1 ? "" : "s"} left out (marked under the round's results).` : "";
  });
  let last = null;

  function showError(text) {
    ui.error.textContent = sentence(text);
    ui.error.hidden = !text;
  }

  const job = new JobWatcher(urls, {
    onUpdate(status) {
      const {value, max, text} = progressOf(status);
      ui.progress.hidden = false;
      ui.progress.dataset.state = status.state;
      if (value === null) ui.bar.removeAttribute("value");
      else {
        ui.bar.max = max;
        ui.bar.value = value;
      }
      ui.text.textContent = text;
      const said = milestone(last, status);
      if (said) ui.announce.textContent = said;
      last = status;
    },
    onFinish(status) {
      ui.start.disabled = false;
      if (status.state === "done" && status.result) {
        showResult(status.result);
      } else if (status.state === "failed") {
        showError(status.error || "Teaching failed.");
      }
    },
  });

  function showResult(result) {
    ui.result.hidden = false;
    showScores(ui.scores, [
      {key: "held_out", label: "The class's held-out drawings",
        note: (n) => `${n} drawings the copy never trained on`, score: result.held_out},
      {key: "trained_on", label: "The drawings it learned from",
        note: (n) => `${n} of the class's: it has seen these`, score: result.trained_on},
      {key: "mnist", label: "MNIST test digits",
        note: (n) => `${Number(n).toLocaleString("en")} scanned digits: did it forget?`, score: result.mnist},
    ]);
    ui.verdict.textContent = verdict(result, {copy: "The class's copy"});
    ui.announce.textContent = `Done. ${ui.verdict.textContent}`;
  }

  ui.start.addEventListener("click", async () => {
    showError("");
    ui.result.hidden = true;
    ui.start.disabled = true;
    last = null;
    try {
      const answer = await requestJSON(section.dataset.classJobsUrl,
        {body: exclusions.size ? {exclude: exclusions.list()} : {}});
      job.follow(answer);
    } catch (error) {
      ui.start.disabled = false;
      const wait = error.retryAfter ? ` Try again in ${Math.ceil(error.retryAfter)} s.` : "";
      showError(sentence(error.message) + wait);
    }
  });

  return {
    job,
    exclusions,
    show(visible) {
      // A game starting hides the panel, and the last teaching's numbers
      // with it (the next game's drawings are new); a job still running
      // keeps it.
      if (visible || job.active) {
        section.hidden = false;
        return;
      }
      section.hidden = true;
      ui.result.hidden = true;
      ui.progress.hidden = true;
      showError("");
    },
  };
}
