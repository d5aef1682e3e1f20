// Sizes and colours computed on the server arrive as data-width (a percentage)
// and data-background (a CSS colour) instead of style="..." attributes, which
// the site's Content-Security-Policy refuses; setting them through the DOM is
// allowed.
function applyDataStyles(root) {
  for (const element of root.querySelectorAll("[data-width]")) {
    const percent = Number.parseFloat(element.dataset.width);
    if (Number.isFinite(percent)) element.style.width = `${Math.min(Math.max(percent, 0), 100)}%`;
  }
  for (const element of root.querySelectorAll("[data-background]")) {
    element.style.backgroundColor = element.dataset.background;
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => applyDataStyles(document));
} else {
  applyDataStyles(document);
}
