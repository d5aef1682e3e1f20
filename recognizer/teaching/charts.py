"""Small SVG charts rendered on the server: no chart library, nothing fetched.

Each function returns markup ready for a template. Every number is formatted
here and every label escaped, so the output is safe to insert as it is.
"""

import math
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import mark_safe

from recognizer import metrics_display

# The same palette as the CSS (teaching.css): series are told apart by colour
# and by dash pattern, so the charts read in greyscale too.
SERIES_STYLES = [
    ("#2563eb", ""),
    ("#dc2626", "6 4"),
    ("#16a34a", "2 3"),
    ("#9333ea", "8 3 2 3"),
]


def _fmt(value):
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _nice_ticks(low, high, count=5):
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
               default=magnitude * 10)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-6:
        if value >= low - step * 1e-6:
            ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_label(value, percent):
    if percent:
        return metrics_display.percent(
            value, 0 if abs(value * 100 - round(value * 100)) < 1e-6 else 1)
    return f"{value:.3g}"


@dataclass(frozen=True)
class _Frame:
    """Where a chart's plot area sits, and the values its edges stand for."""

    left: int
    top: int
    plot_w: float
    plot_h: float
    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def sx(self, x):
        return self.left + (x - self.x_low) / (self.x_high - self.x_low) * self.plot_w

    def sy(self, y):
        return self.top + (1 - (y - self.y_low) / (self.y_high - self.y_low)) * self.plot_h


def _svg_open(title, width, height, frame):
    """The chart's <svg>, its title and the plot area's background."""
    return [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect class="chart__plot" x="{frame.left}" y="{frame.top}" width="{frame.plot_w}" '
        f'height="{frame.plot_h}"/>',
    ]


def _y_grid(frame, ticks, percent):
    """A grid line and a label at each of `ticks` on the y axis."""
    parts = []
    for tick in ticks:
        y = frame.sy(tick)
        parts.append(f'<line class="chart__grid" x1="{frame.left}" '
                     f'x2="{frame.left + frame.plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="chart__tick" x="{frame.left - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{escape(_tick_label(tick, percent))}</text>')
    return parts


def line_chart(series, title, x_label, y_label, percent=False, width=440, height=260,
               y_range=None):
    """Lines of (x, y) points; `series` is a list of (name, points).

    Returns "" when there is nothing to draw.
    """
    series = [(name, [(float(x), float(y)) for x, y in points if y is not None])
              for name, points in series]
    series = [(name, points) for name, points in series if points]
    if not series:
        return ""
    xs = [x for _, points in series for x, _ in points]
    frame = _line_frame(series, percent, y_range, width, height)
    parts = _svg_open(title, width, height, frame)
    parts += _y_grid(frame, _nice_ticks(frame.y_low, frame.y_high), percent)
    x_ticks = sorted({round(x) for x in xs}) if len(set(xs)) <= 12 else _nice_ticks(
        frame.x_low, frame.x_high)
    for tick in x_ticks:
        parts.append(f'<text class="chart__tick" x="{frame.sx(tick):.1f}" '
                     f'y="{frame.top + frame.plot_h + 16}" '
                     f'text-anchor="middle">{escape(_fmt(tick))}</text>')
    parts.append(f'<text class="chart__label" x="{frame.left + frame.plot_w / 2:.1f}" '
                 f'y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text class="chart__label" transform="translate(14 '
                 f'{frame.top + frame.plot_h / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    parts += _lines(frame, series, percent)
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _line_frame(series, percent, y_range, width, height):
    """The line chart's frame: the points' range, padded; 0..100% at most for percentages."""
    xs = [x for _, points in series for x, _ in points]
    ys = [y for _, points in series for _, y in points]
    x_low, x_high = min(xs), max(xs)
    if x_high == x_low:
        x_low, x_high = x_low - 0.5, x_high + 0.5
    if y_range:
        y_low, y_high = y_range
    else:
        y_low, y_high = min(ys), max(ys)
        pad = (y_high - y_low) * 0.08 or abs(y_high) * 0.05 or 0.5
        y_low, y_high = y_low - pad, y_high + pad
        if percent:
            y_low, y_high = max(0.0, y_low), min(1.0, y_high)
    left, right, top, bottom = 56, 12, 30, 44
    return _Frame(left, top, width - left - right, height - top - bottom,
                  x_low, x_high, y_low, y_high)


def _lines(frame, series, percent):
    """Each series' line, its points (with their values as tooltips) and its legend entry."""
    parts = []
    legend_x = frame.left
    for index, (name, points) in enumerate(series):
        colour, dash = SERIES_STYLES[index % len(SERIES_STYLES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        path = " ".join(f"{frame.sx(x):.1f},{frame.sy(y):.1f}" for x, y in points)
        parts.append(f'<polyline class="chart__line" points="{path}" stroke="{colour}"'
                     f'{dash_attr}><title>{escape(name)}</title></polyline>')
        for x, y in points:
            label = f"{name}, epoch {_fmt(x)}: {_tick_label(y, percent) if percent else f'{y:.4f}'}"
            parts.append(f'<circle class="chart__dot" cx="{frame.sx(x):.1f}" '
                         f'cy="{frame.sy(y):.1f}" r="3" '
                         f'fill="{colour}"><title>{escape(label)}</title></circle>')
        parts.append(f'<line x1="{legend_x}" x2="{legend_x + 22}" y1="14" y2="14" '
                     f'stroke="{colour}" stroke-width="2.5"{dash_attr}/>')
        parts.append(f'<text class="chart__legend" x="{legend_x + 27}" y="18">'
                     f"{escape(name)}</text>")
        legend_x += 34 + 7 * len(name)
    return parts


def bar_chart(values, title, labels=None, percent=True, width=440, height=230,
              highlight_lowest=True):
    """Vertical bars, one per value; None values are drawn as a gap marked "n/a"."""
    labels = labels or [str(i) for i in range(len(values))]
    present = [v for v in values if v is not None]
    if not present:
        return ""
    if percent:
        # Per-class accuracies sit close together near 100%: start the axis a
        # little below the lowest, and say so on the chart.
        low = max(0.0, math.floor((min(present) - 0.02) * 50) / 50)
        high = 1.0
    else:
        low, high = 0.0, max(present) * 1.1 or 1.0
    left, right, top, bottom = 56, 12, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(values)
    lowest = min(present)
    frame = _Frame(left, top, plot_w, plot_h, 0, 1, low, high)  # bars go by slot, not by x
    sy = frame.sy
    parts = _svg_open(title, width, height, frame)
    parts += _y_grid(frame, _nice_ticks(low, high, 4), percent)
    for index, value in enumerate(values):
        x = left + index * slot + slot * 0.15
        w = slot * 0.7
        parts.append(f'<text class="chart__tick" x="{x + w / 2:.1f}" y="{top + plot_h + 16}" '
                     f'text-anchor="middle">{escape(labels[index])}</text>')
        if value is None:
            parts.append(f'<text class="chart__tick" x="{x + w / 2:.1f}" y="{top + plot_h - 4}" '
                         f'text-anchor="middle">n/a</text>')
            continue
        y = sy(max(value, low))
        cls = "chart__bar chart__bar--low" if highlight_lowest and value == lowest else "chart__bar"
        text = _tick_label(value, percent) if percent else _fmt(value)
        parts.append(f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                     f'height="{top + plot_h - y:.1f}"><title>{escape(labels[index])}: '
                     f"{escape(text)}</title></rect>")
    if percent and low > 0:
        parts.append(f'<text class="chart__note" x="{left + plot_w}" y="{height - 4}" '
                     f'text-anchor="end">axis starts at {escape(_tick_label(low, True))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


# The confusion matrix's colours (blue right, orange mistakes; safe for
# colour-blind readers and in greyscale) and shades: metrics_display's, the
# same as the class page's table and the admin's. The diagonal also carries
# an outline and a label, so it does not rely on colour at all.
RIGHT_RGB = metrics_display.RIGHT_RGB
MISTAKE_RGB = metrics_display.MISTAKE_RGB
mistake_opacity = metrics_display.mistake_opacity
# The mistake shares the key shows, of the true digit's samples.
MISTAKE_KEY = (0.001, 0.01, 0.1)
# The diagonal's swatch in the key: a typical right share (the model's are
# 97-99.6%).
RIGHT_KEY_OPACITY = 0.9


def _matrix_summary(matrix):
    """The matrix in words, for readers who cannot see it: right answers, biggest mistakes."""
    total = sum(int(c) for row in matrix for c in row)
    right = sum(int(matrix[i][i]) for i in range(len(matrix)))
    mistakes = sorted(((int(matrix[i][j]), i, j) for i in range(len(matrix))
                       for j in range(len(matrix)) if i != j and matrix[i][j]), reverse=True)
    words = f"{right} of {total} right."
    if mistakes:
        words += " Most common mistakes: " + "; ".join(
            f"{i} read as {j}, {count} time{'s' if count != 1 else ''}"
            for count, i, j in mistakes[:3]) + "."
    return words


def confusion_matrix(matrix, title="Confusion matrix", size=440):
    """A 10x10 heat map: rows the true digit, columns the model's guess.

    Right answers (the diagonal) in blue, outlined and labelled; mistakes in
    orange on a square-root scale of their share of the true digit (see
    mistake_opacity), with a key of numbers under the grid; the counts are
    written in every non-empty cell. A <desc> says the same in words.
    """
    if not matrix:
        return ""
    n = len(matrix)
    left, top, key = 44, 44, 46
    cell = (size - left - 8) / n
    height = size + key
    summary = _matrix_summary(matrix)
    parts = [
        f'<svg class="chart chart--matrix" viewBox="0 0 {size} {height}" role="img" '
        f'aria-label="{escape(title)}: {escape(summary)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title><desc>{escape(summary)}</desc>",
        f'<text class="chart__label" x="{left + n * cell / 2:.1f}" y="14" '
        f'text-anchor="middle">the model guessed</text>',
        f'<text class="chart__label" transform="translate(12 {top + n * cell / 2:.1f}) '
        f'rotate(-90)" text-anchor="middle">the true digit</text>',
    ]
    for k in range(n):
        parts.append(f'<text class="chart__tick" x="{left + (k + 0.5) * cell:.1f}" y="{top - 8}" '
                     f'text-anchor="middle">{k}</text>')
        y = top + (k + 0.5) * cell + 4
        parts.append(f'<text class="chart__tick" x="{left - 8}" y="{y:.1f}" '
                     f'text-anchor="end">{k}</text>')
    for i in range(n):
        row_total = sum(int(count) for count in matrix[i])
        for j in range(n):
            parts += _matrix_cell(int(matrix[i][j]), row_total, i, j, left + j * cell,
                                  top + i * cell, cell)
    parts += _matrix_key(left, top + n * cell)
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _matrix_cell(count, row_total, i, j, x, y, cell):
    rgb, alpha = metrics_display.confusion_shade(count, row_total, i == j)
    fill = metrics_display.rgba(rgb, alpha)
    kind = "right" if i == j else "mistake"
    light = " chart__count--light" if metrics_display.light_text_on(rgb, alpha) else ""
    tip = f"true {i}, guessed {j}: {count}"
    parts = [f'<rect class="chart__cell chart__cell--{kind}" x="{x:.1f}" y="{y:.1f}" '
             f'width="{cell:.1f}" height="{cell:.1f}" fill="{fill}"><title>{tip}</title></rect>']
    if count:
        font = 11 if count < 1000 else 9.5
        parts.append(f'<text class="chart__count{light}" x="{x + cell / 2:.1f}" '
                     f'y="{y + cell / 2 + 4:.1f}" text-anchor="middle" '
                     f'font-size="{font}">{count}</text>')
    return parts


def _matrix_key(left, top):
    """Under the grid: what the diagonal is, and the mistake shades with their numbers."""
    y = top + 22
    parts = [
        f'<rect class="chart__swatch chart__swatch--right" x="{left}" y="{y - 11}" width="14" '
        f'height="14" fill="{metrics_display.rgba(RIGHT_RGB, RIGHT_KEY_OPACITY)}"/>',
        f'<text class="chart__tick" x="{left + 18}" y="{y}">right (the diagonal)</text>',
    ]
    # Beyond the longest label left of it ("right (the diagonal)", 11 px type).
    x = left + 140
    parts.append(f'<text class="chart__tick" x="{x:.1f}" y="{y}">mistakes:</text>')
    x += 60
    for share in MISTAKE_KEY:
        fill = metrics_display.rgba(MISTAKE_RGB, mistake_opacity(share))
        parts.append(f'<rect class="chart__swatch" x="{x:.1f}" y="{y - 11}" width="14" '
                     f'height="14" fill="{fill}"/>')
        parts.append(f'<text class="chart__tick" x="{x + 18:.1f}" y="{y}" data-key-share>'
                     f"{escape(metrics_display.percent(share, 1 if share < 0.01 else 0))}"
                     f"</text>")
        x += 56
    parts.append(f'<text class="chart__note" x="{left}" y="{y + 18}">of the true digit\'s '
                 f"samples; the number in a cell is how many</text>")
    return parts
