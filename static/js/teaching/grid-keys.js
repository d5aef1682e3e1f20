// Keyboard access to a canvas of tiles (a stage's feature maps, the dense
// layer's neurons): the canvas takes focus (tabindex="0" in the template),
// the arrow keys choose a tile (left/right one step, up/down one row, as the
// tiles are laid out), Enter or Space opens the chosen tile's arithmetic.
// The page paints the chosen tile's outline (`chosen()` while focused) and
// says what it is; this module only keeps the choice.

const STEPS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};

/**
 * `count()` and `columns()` describe the tiles now (0 while nothing is
 * drawn); `onChoose(index)` follows each move and focus change (null on
 * blur), `onOpen(index)` Enter or Space.
 */
export function gridKeys(canvas, {count, columns, onChoose, onOpen}) {
  let index = 0;
  const chosen = () => (document.activeElement === canvas && count() > 0 ? Math.min(index, count() - 1) : null);
  canvas.addEventListener("focus", () => onChoose(chosen()));
  canvas.addEventListener("blur", () => onChoose(null));
  canvas.addEventListener("keydown", (event) => {
    const total = count();
    if (!total) return;
    if (STEPS[event.key]) {
      const [dx, dy] = STEPS[event.key];
      const next = Math.min(index, total - 1) + dx + dy * columns();
      // A step off the grid stays on the tile at the edge.
      if (next >= 0 && next < total) index = next;
      onChoose(chosen());
    } else if (event.key === "Enter" || event.key === " ") {
      onOpen(Math.min(index, total - 1));
    } else {
      return;
    }
    event.preventDefault();
  });
  return {chosen};
}
