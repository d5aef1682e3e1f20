// The worksheet: a print button (shown only when this script runs, since
// printing needs it), and the lesson menu's links carrying the drawing last on
// show, as on the other lesson pages. Leaving out the teacher notes needs no
// script: worksheet.css hides them while the box is ticked.

import {carried, carryLinks} from "./share.js";

carryLinks(carried());

const button = document.querySelector("[data-print]");
if (button) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
