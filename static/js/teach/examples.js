// The learner's examples: each drawing with the digit it is meant to be and
// what the site's model reads in it, shown as a list of small pictures.
//
//   const examples = new Examples(list, {readDrawing, onChange});
//   examples.add(label, drawing);   examples.undo();   examples.clear();
//   examples.items -> [{label, drawing, reading}]
//
// readDrawing(drawing) resolves to the production model's ten probabilities;
// the readings are asked one at a time, in the order drawn, so a learner
// adding examples quickly sends the server one request at a time.

import {renderDrawing} from "../drawing-pad.js";
import {h} from "../game-ui.js";
import {percent} from "../percent.js";

export class Examples {
  constructor(list, {readDrawing, onChange = () => {}, max = 30}) {
    this.list = list;
    this.readDrawing = readDrawing;
    this.onChange = onChange;
    this.max = max;
    this.items = [];
    this._serial = 0;
    this._reading = Promise.resolve();
  }

  get count() {
    return this.items.length;
  }

  /** How many examples of each digit: an array of ten counts. */
  byLabel() {
    const counts = Array(10).fill(0);
    for (const item of this.items) counts[item.label] += 1;
    return counts;
  }

  add(label, drawing) {
    if (this.items.length >= this.max) return null;
    this._serial += 1;
    const item = {id: this._serial, label, drawing, reading: null, error: null};
    item.element = this._render(item);
    this.items.push(item);
    this.list.append(item.element);
    // Painted once the list item is laid out and its canvas has a size.
    requestAnimationFrame(() => renderDrawing(item.canvas, drawing));
    this._reading = this._reading.then(() => this._read(item));
    this.onChange(this);
    return item;
  }

  undo() {
    const item = this.items.pop();
    if (!item) return;
    item.element.remove();
    this.onChange(this);
  }

  clear() {
    this.items = [];
    this.list.replaceChildren();
    this.onChange(this);
  }

  /** The examples as POST /jobs wants them. */
  payload() {
    return this.items.map(({label, drawing}) => ({label, drawing}));
  }

  async _read(item) {
    if (!this.items.includes(item)) return; // undone before its turn
    try {
      item.reading = await this.readDrawing(item.drawing);
    } catch (error) {
      item.error = error.message;
    }
    this._show(item);
    this.onChange(this);
  }

  _render(item) {
    const number = this.items.length + 1;
    item.canvas = h("canvas", {class: "teach-example__drawing", role: "img",
      "aria-label": `Example ${number}: your ${item.label}`});
    item.caption = h("span", {class: "teach-example__reading"}, "reading…");
    return h("li", {class: "teach-example", dataset: {label: String(item.label)}},
      item.canvas,
      h("span", {class: "teach-example__label"}, h("strong", {}, String(item.label))),
      item.caption);
  }

  _show(item) {
    const number = this.items.indexOf(item) + 1;
    if (item.error || !item.reading) {
      item.caption.textContent = "not read";
      item.caption.title = item.error || "";
      return;
    }
    const probabilities = item.reading;
    const digit = probabilities.indexOf(Math.max(...probabilities));
    const right = digit === item.label;
    item.element.dataset.reading = String(digit);
    item.element.classList.toggle("is-misread", !right);
    item.caption.replaceChildren(h("span", {}, `read ${digit}`), h("span", {}, percent(probabilities[digit])));
    item.canvas.setAttribute("aria-label", `Example ${number}: your ${item.label};`
      + ` the site's model reads it as ${digit}, ${percent(probabilities[digit])} sure`
      + `${right ? "" : ", wrong"}.`);
  }
}
