// The class projector's "Teach the model with our class's drawings": after a
// game, the teacher's screen asks for a job that teaches the class's copy
// from the game's drawings (POST /learn/teach/api/class/<code>/jobs), shows
// its progress and then before and after on the class's held-out drawings.
// The class's next game is read by that copy (the server decides).

import {apiUrls, requestJSON} from "./api.js";
import {showScores, verdict} from "./before-after.js";
import {JobWatcher, milestone, progressOf} from "./job.js";

/** Wire the panel `section`; the returned show(visible) shows or hides it. */
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
  };
  let last = null;

  function showError(text) {
    ui.error.textContent = text || "";
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
      const answer = await requestJSON(section.dataset.classJobsUrl, {body: {}});
      job.follow(answer);
    } catch (error) {
      ui.start.disabled = false;
      const wait = error.retryAfter ? ` Try again in ${Math.ceil(error.retryAfter)} s.` : "";
      showError(error.message + wait);
    }
  });

  return {
    job,
    show(visible) {
      // A game starting hides the panel; a job still running keeps it.
      section.hidden = !visible && !job.active;
    },
  };
}
