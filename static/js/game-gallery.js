// The end-of-game gallery, from `gallery` (docs/protocol.md): every drawing
// of the game by every player, round by round, as the model saw it (its
// 28x28 input), with the target, the model's reading and how sure it was.
// On the player's own drawings kept as training data, "This was wrong…"
// offers the digits, and the one chosen goes as `correct`, once; the server answers `corrected`, and the
// reviewers see the player's word beside the drawing's label.

import {withArticle} from "./article.js";
import {h} from "./game-ui.js";
import {percent} from "./percent.js";

export class Gallery {
  /** `section`: the gallery's element; `onCorrect(game, round, digit)` sends the correction. */
  constructor(section, onCorrect) {
    this.section = section;
    this.grid = section.querySelector("[data-gallery-grid]");
    this.onCorrect = onCorrect;
    this.game = null;
  }

  hide() {
    this.section.hidden = true;
    this.grid.replaceChildren();
    this.game = null;
  }

  /** Show a `gallery` message; `myId` marks the player's own drawings. */
  show(message, myId) {
    this.game = message.game;
    const rounds = new Map();
    for (const entry of message.drawings) {
      if (!rounds.has(entry.round)) rounds.set(entry.round, []);
      rounds.get(entry.round).push(entry);
    }
    this.grid.replaceChildren(...[...rounds].map(([round, entries]) => h("section",
      {class: "gallery__round", dataset: {round: String(round)}},
      h("h3", {class: "gallery__title"}, `Round ${round}: draw ${withArticle(entries[0].target)}`),
      h("div", {class: "gallery__cards"}, entries.map((entry) => this._card(entry, myId))))));
    this.section.hidden = message.drawings.length === 0;
  }

  /** The server recorded a correction (`corrected`). */
  corrected(message) {
    if (message.game !== this.game) return;
    const card = this._cardOf(message.round);
    if (!card) return;
    delete card.dataset.correcting;
    card.querySelector("[data-correction]").replaceChildren(saidText(message.digit));
  }

  /** The server refused a correction: say why on the card waiting for an answer. */
  refused(text) {
    const card = this.grid.querySelector("[data-correcting]");
    if (!card) return;
    delete card.dataset.correcting;
    const row = card.querySelector("[data-correction]");
    row.replaceChildren(h("span", {class: "errorlist small", role: "alert"}, text));
  }

  _cardOf(round) {
    return this.grid.querySelector(`.gallery__card[data-mine][data-round="${round}"]`);
  }

  _card(entry, myId) {
    const mine = entry.player === myId;
    const thumb = entry.input
      ? h("img", {class: "thumb thumb--pixels", src: entry.input, width: 28, height: 28,
        alt: `What the model saw of ${entry.name}'s ${withArticle(entry.target)}`})
      : h("div", {class: "thumb thumb--deleted"}, entry.drawing_deleted ? "not kept" : "–");
    const reading = entry.digit === null
      ? "no reading"
      : `read as ${entry.digit}${entry.probability === null ? "" : `, ${percent(entry.probability)} sure`}`;
    const card = h("article", {
      class: `gallery__card${entry.digit === entry.target ? " is-right" : " is-wrong"}`,
      dataset: {player: entry.player, round: String(entry.round), ...(mine ? {mine: ""} : {})},
    },
    h("figure", {title: "What the model saw: the drawing as 28×28 pixels"}, thumb),
    h("div", {class: "gallery__text"},
      h("div", {class: "gallery__name"}, entry.name, mine ? " (you)" : ""),
      h("div", {class: "small"}, reading),
      h("div", {class: "small muted"}, `${percent(entry.target_probability)} for ${entry.target}`),
      mine && entry.kept ? h("div", {class: "gallery__correction small", dataset: {correction: ""}},
        entry.correction === null ? this._correctButton(entry) : saidText(entry.correction)) : null));
    return card;
  }

  _correctButton(entry) {
    return h("button", {type: "button", class: "button--ghost button--small", dataset: {correct: ""},
      onclick: (event) => {
        const row = event.currentTarget.parentElement;
        row.replaceChildren(this._digitChoice(entry, row));
      }}, "This was wrong…");
  }

  /** "It was: 0 1 2 ..." without the model's own reading (nothing to correct there). */
  _digitChoice(entry, row) {
    const digits = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((d) => d !== entry.digit);
    return h("div", {class: "gallery__digits", role: "group", "aria-label": "Which digit was it?"},
      h("span", {}, "It was:"),
      digits.map((digit) => h("button", {type: "button", class: "button--small gallery__digit",
        dataset: {digit: String(digit)},
        onclick: () => {
          row.closest(".gallery__card").dataset.correcting = "";
          row.replaceChildren(h("span", {class: "muted"}, "Sending…"));
          if (!this.onCorrect(this.game, entry.round, digit)) this.refused("Not connected: try again.");
        }}, String(digit))),
      h("button", {type: "button", class: "button--ghost button--small",
        onclick: () => row.replaceChildren(this._correctButton(entry))}, "Cancel"));
  }
}

function saidText(digit) {
  return h("span", {class: "gallery__said"},
    `You said it was ${withArticle(digit)}. Thank you: a reviewer will look at it.`);
}
