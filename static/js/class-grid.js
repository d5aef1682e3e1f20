// The projector's grid: one tile per student with their drawing as they
// draw it and the model's current guess, from the teacher's `class_drawing`
// messages (docs/protocol.md, "Class rooms"). The server sends each
// student's drawing a few times a second at most; the tiles repaint once a
// frame at most, only those that changed.

import {renderDrawing} from "./drawing-pad.js";
import {pointExplainLink} from "./explain-link.js";
import {h} from "./game-ui.js";
import {percent} from "./percent.js";

const FINISHED = {
  reached: "✓ recognised",
  done: "done",
  time: "time",
  disconnected: "offline",
  left: "left",
  kicked: "removed",
};

export class ClassGrid {
  constructor(list, empty) {
    this.list = list;
    this.empty = empty;
    this.tiles = new Map(); // player id -> {item, canvas, guess, state, drawing}
    this.dirty = new Set();
    this.frame = null;
  }

  /** The students seated now (a `room` snapshot's players, less the teacher). */
  showStudents(students) {
    const ids = new Set(students.map((p) => p.id));
    for (const [id, tile] of this.tiles) {
      if (!ids.has(id)) {
        tile.item.remove();
        this.tiles.delete(id);
      }
    }
    for (const student of students) {
      const tile = this.tiles.get(student.id) || this._add(student);
      tile.name.textContent = student.name;
      tile.item.classList.toggle("is-offline", !student.connected);
    }
    this.empty.hidden = this.tiles.size > 0;
  }

  _add(student) {
    const canvas = h("canvas", {class: "class-tile__drawing", role: "img",
      "aria-label": `${student.name}'s drawing`});
    const name = h("span", {class: "class-tile__name"});
    const guess = h("span", {class: "class-tile__guess", dataset: {guess: ""}});
    const state = h("span", {class: "class-tile__state"});
    const explain = h("a", {class: "explain-link", target: "_blank", rel: "noopener",
      hidden: true, dataset: {explain: ""}}, "Explain this drawing");
    const item = h("li", {class: "class-tile", dataset: {player: student.id, live: "false"}},
      canvas, h("div", {class: "class-tile__text"}, name, guess, state, explain));
    this.list.append(item);
    const tile = {item, canvas, name, guess, state, explain, drawing: null};
    this.tiles.set(student.id, tile);
    return tile;
  }

  /** A new round: every tile blank again. */
  reset() {
    for (const tile of this.tiles.values()) {
      tile.drawing = null;
      tile.item.dataset.live = "false";
      tile.item.classList.remove("is-finished", "is-right", "is-wrong");
      tile.guess.textContent = "";
      tile.state.textContent = "";
      tile.explain.hidden = true;
      tile.canvas.getContext("2d").clearRect(0, 0, tile.canvas.width, tile.canvas.height);
    }
  }

  /** A `class_drawing`: the student's drawing so far and the model's guess of it. */
  update(message, target) {
    const tile = this.tiles.get(message.player);
    if (!tile) return;
    tile.drawing = message.drawing;
    tile.item.dataset.live = "true";
    tile.guess.textContent = `${message.digit} · ${percent(message.probability)}`;
    tile.item.classList.toggle("is-right", message.digit === target);
    this.dirty.add(message.player);
    if (this.frame === null) {
      this.frame = requestAnimationFrame(() => this._paint());
    }
  }

  _paint() {
    this.frame = null;
    for (const id of this.dirty) {
      const tile = this.tiles.get(id);
      if (!tile?.drawing) continue;
      renderDrawing(tile.canvas, tile.drawing);
      // Once a frame at most, like the painting: the link follows the drawing.
      pointExplainLink(tile.explain, tile.drawing);
      tile.explain.setAttribute("aria-label",
        `Explain this drawing, ${tile.name.textContent}'s, in lesson 1 (opens in a new tab)`);
    }
    this.dirty.clear();
  }

  /** A student's round ended (`player_finished`). */
  finished(message) {
    const tile = this.tiles.get(message.player);
    if (!tile) return;
    tile.item.classList.add("is-finished");
    tile.state.textContent = `${FINISHED[message.reason] || message.reason} +${message.points}`;
  }

  /** The round's results: each tile ends on the drawing and guess kept for the round. */
  ended(results, target) {
    for (const result of results) {
      const tile = this.tiles.get(result.player);
      if (!tile) continue;
      tile.item.classList.add("is-finished");
      tile.item.classList.toggle("is-right", result.digit === target);
      tile.item.classList.toggle("is-wrong", result.digit !== null && result.digit !== target);
      if (result.digit !== null) tile.guess.textContent = `${result.digit}`;
      tile.state.textContent = `+${result.points}`;
    }
  }
}
