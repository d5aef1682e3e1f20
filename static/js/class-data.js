// A class's own data: an "explain this drawing" link under each of the
// hardest drawings, opening it in lesson 1 (explain-link.js writes the link
// from the strokes, which the page carries in #class-hardest).

import {explainLink} from "./explain-link.js";

const source = document.getElementById("class-hardest");
const drawings = source ? JSON.parse(source.textContent) : {};

for (const item of document.querySelectorAll("[data-hard-drawing]")) {
  const drawing = drawings[item.dataset.hardDrawing];
  const slot = item.querySelector("[data-explain-slot]");
  if (!drawing || !slot) continue;
  const link = explainLink(drawing, "Explain this drawing",
    `Explain this drawing of a ${item.dataset.label} in lesson 1`);
  if (link) slot.replaceWith(link);
}
