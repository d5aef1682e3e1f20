// Small DOM helpers shared by the game room and the practice page.

import {percent} from "./percent.js";

/** Create an element: h("li", {class: "x", dataset: {id: 1}}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** The `k` most probable digits as [[digit, probability], ...], best first. */
export function topK(probabilities, k = 3) {
  return (probabilities || [])
    .map((p, digit) => [digit, Number(p) || 0])
    .sort((a, b) => b[1] - a[1])
    .slice(0, k);
}

/**
 * Show the top-3 guesses as probability bars in `list` (an <ol>), marking the
 * target digit. Rows are reused so the bars animate instead of flickering.
 */
export function renderBars(list, probabilities, target = null, k = 3) {
  const rows = topK(probabilities, k);
  while (list.children.length < rows.length) {
    list.append(h("li", {class: "bar"},
      h("span", {class: "bar__digit"}),
      h("span", {class: "bar__track"}, h("span", {class: "bar__fill"})),
      h("span", {class: "bar__value"})));
  }
  while (list.children.length > rows.length) list.lastElementChild.remove();
  rows.forEach(([digit, probability], index) => {
    const row = list.children[index];
    row.dataset.digit = String(digit);
    row.classList.toggle("is-top", index === 0);
    row.classList.toggle("is-target", target !== null && digit === Number(target));
    row.querySelector(".bar__digit").textContent = String(digit);
    row.querySelector(".bar__fill").style.width = `${(probability * 100).toFixed(1)}%`;
    row.querySelector(".bar__value").textContent = percent(probability);
    row.setAttribute("aria-label", `${digit}: ${percent(probability)}`);
  });
}

/** Empty placeholder bars, before anything has been drawn. */
export function resetBars(list) {
  list.replaceChildren();
}
