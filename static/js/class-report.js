// What the projector shows after each round and after the game, from the
// teacher's `class_round` and `class_summary` (docs/protocol.md, "Class
// rooms"): the class's counts, the drawings the model got wrong, the
// confusion matrix so far, and what the class's drawings gave the model.

import {withArticle} from "./article.js";
import {renderDrawing} from "./drawing-pad.js";
import {explainLink} from "./explain-link.js";
import {h} from "./game-ui.js";
import {percent} from "./percent.js";

/** Paint each drawing once its canvas is laid out and has a size. */
function paintLater(pairs) {
  requestAnimationFrame(() => {
    for (const [canvas, drawing] of pairs) renderDrawing(canvas, drawing);
  });
}

/** How strong a matrix cell is shown: 0 (empty) to 4 (the row's largest share). */
function level(count, rowTotal) {
  if (!count || !rowTotal) return "0";
  return String(Math.max(1, Math.ceil((count / rowTotal) * 4)));
}

export function showRound(ui, message) {
  ui.results.hidden = false;
  ui.resultsTitle.textContent = `Round ${message.round}: draw ${withArticle(message.target)}`;
  ui.counts.textContent = `${message.correct} of ${message.drawn} drawings read right`
    + ` · ${message.recognised} recognised in time · ${message.students} students`;
  showWrong(ui, message.wrong, message.target, message.round);
  showMatrix(ui.matrix, message.matrix);
  ui.matrixRounds.textContent = message.matrix_rounds === 1
    ? "(round 1)" : `(rounds 1 to ${message.matrix_rounds})`;
}

/**
 * The round's misread drawings. With `ui.exclusions` (the teach panel's, see
 * teach/class-teach.js), each kept drawing has a button to leave it out of
 * teaching the class's copy: a scribble or a joke is no lesson.
 */
function showWrong(ui, wrong, target, round) {
  const paint = [];
  ui.wrong.replaceChildren(...wrong.map((item) => {
    const canvas = h("canvas", {class: "class-tile__drawing", role: "img",
      "aria-label": `${item.name}'s ${target}, read as ${item.digit}`});
    if (item.drawing) paint.push([canvas, item.drawing]);
    return h("li", {class: "class-tile is-wrong", dataset: {player: item.player}},
      item.drawing ? canvas : h("div", {class: "thumb thumb--deleted"}, "not kept"),
      h("div", {class: "class-tile__text"},
        h("span", {class: "class-tile__name"}, item.name),
        h("span", {class: "class-tile__guess"},
          `read as ${item.digit}${item.probability === null ? "" : ` (${percent(item.probability)})`}`),
        item.drawing ? explainLink(item.drawing, "Explain this drawing",
          `Explain this drawing, ${item.name}'s, in lesson 1 (opens in a new tab)`) : null),
      item.drawing && ui.exclusions ? leaveOutButton(ui.exclusions, item, round) : null);
  }));
  ui.noWrong.hidden = wrong.length > 0;
  paintLater(paint);
}

function leaveOutButton(exclusions, item, round) {
  const button = h("button", {type: "button", class: "button--ghost button--small class-tile__leave",
    dataset: {leaveOut: item.player}}, "Leave out of teaching");
  const show = () => {
    const out = exclusions.has(item.player, round);
    button.setAttribute("aria-pressed", String(out));
    button.textContent = out ? "Left out of teaching" : "Leave out of teaching";
    button.closest("li")?.classList.toggle("is-left-out", out);
  };
  button.addEventListener("click", () => {
    exclusions.toggle(item.player, round);
    show();
  });
  requestAnimationFrame(show);
  return button;
}

function showMatrix(table, matrix) {
  const body = table.tBodies[0];
  body.replaceChildren(...matrix.map((row, target) => {
    const total = row.reduce((sum, count) => sum + count, 0);
    return h("tr", {},
      h("th", {scope: "row"}, String(target)),
      ...row.map((count, guess) => h("td", {
        class: guess === target ? "is-right" : "is-wrong",
        dataset: {level: level(count, total), count: String(count)},
        title: `${count} × asked ${target}, read as ${guess}`,
      }, count ? String(count) : "")));
  }));
}

export function showSummary(ui, message) {
  ui.summary.hidden = false;
  const digits = message.by_digit.reduce((n, count) => n + (count ? 1 : 0), 0);
  ui.summaryCount.textContent = message.drawings
    ? `Your class gave the model ${message.drawings} labelled drawings of ${digits} digit${digits === 1 ? "" : "s"}`
      + ` (it misread ${message.misread} of them). They are kept to train the next version.`
    : "No drawings were kept this time (students who opted out keep theirs private).";
  ui.summaryDigits.replaceChildren(...message.by_digit.map((count, digit) =>
    h("li", {dataset: {digit: String(digit)}}, h("strong", {}, String(digit)), ` × ${count}`)));
  const paint = [];
  ui.samples.replaceChildren(...message.samples.map((sample) => {
    const canvas = h("canvas", {class: "class-sample__drawing", role: "img",
      "aria-label": `a ${sample.label}, read as ${sample.prediction}`});
    paint.push([canvas, sample.drawing]);
    // The whole sample is the link: a 3.5rem thumbnail has no room for words.
    const link = explainLink(sample.drawing, canvas,
      `Explain this drawing (a ${sample.label}, read as ${sample.prediction}) in lesson 1`);
    return h("li", {class: sample.label === sample.prediction ? "class-sample" : "class-sample is-wrong",
      title: `asked ${sample.label}, read as ${sample.prediction}`}, link || canvas);
  }));
  paintLater(paint);
  ui.learnLink.href = message.learn_url;
  ui.reviewLink.hidden = !message.review_url;
  if (message.review_url) ui.reviewLink.href = message.review_url;
}
