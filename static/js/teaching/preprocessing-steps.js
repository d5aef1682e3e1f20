// Part one of "How it works": the learner's strokes, the crop and scale, the
// centre of mass and the 28x28 input, painted from the server's answer into
// the step cards under `root` (static/js/teaching/how-it-works.js asks for it).

import {withArticle} from "../article.js";
import {drawPixelGrid, inkColour, paintValues, setFacts} from "./common.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** The strokes as points and lines, with the box around the ink (`pre`: the answer's preprocessing). */
export function renderStrokes(root, drawing, pre) {
  const svg = root.querySelector("[data-strokes-svg]");
  const size = Math.max(drawing.width, drawing.height);
  svg.setAttribute("viewBox", `0 0 ${drawing.width} ${drawing.height}`);
  const dot = size / 110;
  const children = [];
  const frame = element("rect", {x: 0, y: 0, width: drawing.width, height: drawing.height,
    class: "strokes__paper"});
  children.push(frame);
  for (const stroke of drawing.strokes) {
    children.push(element("polyline", {
      points: stroke.map(([x, y]) => `${x},${y}`).join(" "),
      class: "strokes__line", "stroke-width": size / 60,
    }));
    for (const [x, y] of stroke) children.push(element("circle", {cx: x, cy: y, r: dot, class: "strokes__point"}));
  }
  const box = pre.bbox;
  children.push(element("rect", {
    x: box.left, y: box.top, width: Math.max(box.width, 0.5), height: Math.max(box.height, 0.5),
    class: "strokes__bbox", "stroke-width": size / 150,
  }));
  svg.replaceChildren(...children);
  setFacts(root, "strokes", `${plural(pre.strokes, "stroke")}, ` +
    `${plural(pre.points, "point")}; box ${Math.round(box.width)} x ` +
    `${Math.round(box.height)} pixels of ${withArticle(Math.round(drawing.width))} x ` +
    `${Math.round(drawing.height)} canvas.`);
}

/** An MNIST digit: it was cropped, scaled and centred when MNIST was made. */
export function renderReadyInput(root, input) {
  root.querySelector("[data-strokes-svg]").replaceChildren();
  for (const name of ["fitted", "centered_box"]) {
    const target = root.querySelector(`[data-image="${name}"]`);
    target.getContext("2d").clearRect(0, 0, target.width, target.height);
  }
  paintImage(root.querySelector('[data-image="shifted"]'), input, 28, 7);
  paintImage(root.querySelector('[data-image="input"]'), input, 28, 10);
  for (const name of ["strokes", "fitted"]) setFacts(root, name, "");
  const com = centreOfMass(input, 28);
  setFacts(root, "center", com ? `Its centre of mass is at (${com[0].toFixed(1)}, ${com[1].toFixed(1)}).` : "");
  setFacts(root, "input", `${input.filter((v) => v > 0).length} of 784 pixels have some ink.`);
}

/** The crop and scale, the centre of mass and the input of a drawing (`images`: the decoded ones). */
export function renderPreprocessing(root, pre, images) {
  const fitted = root.querySelector('[data-image="fitted"]');
  paintImage(fitted, images.fitted, 20, 10);
  setFacts(root, "fitted", pre.scale === null
    ? "A single dot: there is nothing to scale."
    : `Scale: ${pre.scale.toFixed(3)} (each pixel of your canvas became ` +
      `${pre.scale.toFixed(3)} pixels here), pen ${pre.pen_width.toFixed(1)} pixels wide.`);

  const cell = 7;
  const boxCanvas = root.querySelector('[data-image="centered_box"]');
  paintImage(boxCanvas, images.centered_box, 28, cell);
  const ctx = boxCanvas.getContext("2d");
  // The 20x20 box inside the 28x28 field.
  ctx.save();
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = "rgba(79, 70, 229, 0.8)";
  ctx.lineWidth = 2;
  ctx.strokeRect(4 * cell, 4 * cell, 20 * cell, 20 * cell);
  ctx.restore();
  const [cx, cy] = pre.center_of_mass;
  const centre = 14;
  arrow(ctx, (cx + 0.5) * cell, (cy + 0.5) * cell, (centre + 0.5) * cell, (centre + 0.5) * cell);
  cross(ctx, (centre + 0.5) * cell, (centre + 0.5) * cell, "#2563eb");
  cross(ctx, (cx + 0.5) * cell, (cy + 0.5) * cell, "#dc2626");

  const shifted = root.querySelector('[data-image="shifted"]');
  const input = images.input;
  paintImage(shifted, input, 28, cell);
  const sctx = shifted.getContext("2d");
  cross(sctx, (centre + 0.5) * cell, (centre + 0.5) * cell, "#2563eb");
  if (pre.final_center_of_mass) {
    const [fx, fy] = pre.final_center_of_mass;
    cross(sctx, (fx + 0.5) * cell, (fy + 0.5) * cell, "#dc2626");
  }
  const [dx, dy] = pre.shift;
  setFacts(root, "center", `Centre of mass at (${cx.toFixed(1)}, ${cy.toFixed(1)}), moved by ` +
    `${signed(dx)} pixels across and ${signed(dy)} down to (14, 14).`);

  const inputCanvas = root.querySelector('[data-image="input"]');
  paintImage(inputCanvas, input, 28, 10);
  const inked = input.filter((v) => v > 0).length;
  inputCanvas.dataset.inked = String(inked);
  setFacts(root, "input", `${inked} of 784 pixels have some ink.`);
}

/** (x, y) of an image's ink in pixel-index coordinates, as the server measures it; null if blank. */
function centreOfMass(values, side) {
  let total = 0;
  let x = 0;
  let y = 0;
  values.forEach((v, i) => {
    total += v;
    x += v * (i % side);
    y += v * Math.floor(i / side);
  });
  return total > 0 ? [x / total, y / total] : null;
}

function paintImage(target, values, side, cell) {
  target.width = side * cell + 1;
  target.height = side * cell + 1;
  const ctx = target.getContext("2d");
  paintValues(ctx, values, side, side, {cell, colour: inkColour});
  drawPixelGrid(ctx, side, side, cell);
}

function cross(ctx, x, y, colour) {
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(x - 8, y);
  ctx.lineTo(x + 8, y);
  ctx.moveTo(x, y - 8);
  ctx.lineTo(x, y + 8);
  ctx.stroke();
  ctx.restore();
}

function arrow(ctx, x0, y0, x1, y1) {
  const length = Math.hypot(x1 - x0, y1 - y0);
  if (length < 4) return;
  const angle = Math.atan2(y1 - y0, x1 - x0);
  ctx.save();
  ctx.strokeStyle = "#f59e0b";
  ctx.fillStyle = "#f59e0b";
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - 9 * Math.cos(angle - 0.45), y1 - 9 * Math.sin(angle - 0.45));
  ctx.lineTo(x1 - 9 * Math.cos(angle + 0.45), y1 - 9 * Math.sin(angle + 0.45));
  ctx.closePath();
  ctx.fill();
  ctx.restore();
}

function element(name, attributes) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function signed(value) {
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}`;
}
