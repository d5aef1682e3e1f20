// Before and after: how often the site's model and the taught copy are right
// on the examples held out of training and on MNIST's test digits, as a
// job's result sends them (accuracies are fractions 0..1). Shared by the
// teach page and the class projector.

import {h} from "../game-ui.js";
import {percent} from "../percent.js";

// A change smaller than this reads as "about the same": one held-out example
// of 4 is 25 points, one MNIST test digit in 10,000 is 0.01.
const SAME = 0.0005;

/** "+4.0 points", "-12.5 points" or "no change", between two fractions. */
export function change(before, after) {
  const delta = (Number(after) - Number(before)) * 100;
  if (!Number.isFinite(delta) || Math.abs(delta) < SAME * 100) return "no change";
  return `${delta > 0 ? "+" : "−"}${Math.abs(delta).toFixed(1)} points`;
}

/**
 * Rows of the before/after table into `body` (a <tbody>): one per entry of
 * `rows` = [{key, label, note, score: {count, before, after}}], skipping
 * scores the result does not have.
 */
export function showScores(body, rows) {
  body.replaceChildren(...rows.filter((row) => row.score).map(({key, label, note, score}) => {
    const delta = Number(score.after) - Number(score.before);
    const trend = Math.abs(delta) < SAME ? "same" : delta > 0 ? "up" : "down";
    return h("tr", {dataset: {score: key, before: String(score.before), after: String(score.after),
      trend}},
      h("th", {scope: "row"}, label,
        h("span", {class: "muted small teach-scores__note"}, note(score.count))),
      h("td", {class: "teach-scores__value"}, percent(score.before)),
      h("td", {class: "teach-scores__value teach-scores__after"}, percent(score.after),
        h("span", {class: `teach-scores__change is-${trend}`}, change(score.before, score.after))));
  }));
}

/**
 * A sentence saying what the numbers mean, for the page and its live region;
 * `copy` names the taught copy ("Your copy", "The class's copy").
 */
export function verdict(result, {replay = true, copy = "Your copy"} = {}) {
  const held = result.held_out;
  const mnist = result.mnist;
  const parts = [];
  if (held) {
    parts.push(held.after > held.before + SAME
      ? `${copy} reads ${percent(held.after)} of the held-out drawings right, up from ${percent(held.before)}.`
      : held.after < held.before - SAME
        ? `${copy} reads fewer held-out drawings right: ${percent(held.after)}, down from ${percent(held.before)}.`
        : `On the held-out drawings nothing changed: ${percent(held.after)}.`);
  }
  if (mnist) {
    const fell = mnist.before - mnist.after;
    if (fell > 0.01) {
      parts.push(`It forgot some MNIST: ${percent(mnist.after)}, down from ${percent(mnist.before)}.`
        + (replay ? "" : " Switch the reminder back on and teach again to undo it."));
    } else {
      parts.push(`It still reads MNIST: ${percent(mnist.after)} (before: ${percent(mnist.before)}).`);
    }
  }
  return parts.join(" ");
}
