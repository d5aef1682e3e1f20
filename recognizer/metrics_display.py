"""How a model's measurements look, the same on every page and in the trainer's log.

Percentages (one way of writing them, one dash for a value that is unknown)
and the shading of a confusion matrix's cells, shared by the admin's model
version page, the teaching site's model card and charts, and `finetune`.
"""

# What a page or log line shows for a number that was not measured.
UNKNOWN = "—"


def percent(value, digits=2):
    """0.98765 -> "98.77%" (`digits` decimals); UNKNOWN for None or a non-number."""
    try:
        return f"{float(value):.{digits}%}"
    except (TypeError, ValueError):
        return UNKNOWN


# A confusion matrix's colours, safe for colour-blind readers and in
# greyscale: right answers (the diagonal) dark blue, mistakes orange, each an
# opacity over the page (white). Blue and orange are the pair every common
# colour-vision deficiency tells apart (red and green are the pair they
# confuse); and their luminances differ (0.07 and 0.31, against 1 for white),
# so a black-and-white print or a washed-out projector still shows which
# cells are right, which are mistakes and which are empty (tested in
# tests/test_colour_scales.py). The heat maps' diverging scale ends on the
# same two colours (static/js/teaching/common.js).
RIGHT_RGB = (30, 64, 175)
MISTAKE_RGB = (235, 120, 0)
# Below this luminance a cell's number is written in white: where black and
# white text have the same contrast (sqrt(1.05 x 0.061) - 0.05, for the
# pages' near-black text).
LIGHT_TEXT_BELOW = 0.2


def right_opacity(share):
    return 0.15 + 0.75 * share if share > 0 else 0.0


def mistake_opacity(share):
    """A mistake cell's opacity for `share` of its true digit: on the square root,
    so that 0.1% is already visible (0.18) next to 10% (0.75)."""
    return min(0.9, 0.12 + 2.0 * share ** 0.5) if share > 0 else 0.0


def over_white(rgb, alpha):
    """The colour `rgb` at opacity `alpha` shows on a white page."""
    return tuple(alpha * c + (1 - alpha) * 255 for c in rgb)


def relative_luminance(rgb):
    """WCAG 2's relative luminance of an sRGB colour (0 black, 1 white)."""
    def linear(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(float(c)) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def confusion_shade(count, row_total, diagonal):
    """(rgb, opacity) of one confusion-matrix cell; opacity 0 for an empty cell.

    Shades follow the fraction of the true digit's samples in the cell
    (`row_total` is that digit's count), so rare mistakes stay visible next
    to thousands of correct answers.
    """
    share = count / row_total if row_total else 0.0
    if diagonal:
        return RIGHT_RGB, right_opacity(share)
    return MISTAKE_RGB, mistake_opacity(share)


def rgba(rgb, alpha):
    return f"rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {alpha:.3f})"


def confusion_colour(count, row_total, diagonal):
    """The fill of one confusion-matrix cell, as CSS rgba()."""
    return rgba(*confusion_shade(count, row_total, diagonal))


def light_text_on(rgb, alpha):
    """Whether a number on this cell reads better in white than in black."""
    return relative_luminance(over_white(rgb, alpha)) < LIGHT_TEXT_BELOW


def confusion_grid(matrix):
    """Rows of cells for a confusion matrix table, each with its colour (the
    admin's model version page, a class's own data page); None for anything
    but 10 rows of 10 counts.

    Shades follow the fraction of the true digit's samples in the cell: blue
    on the diagonal (right), orange off it (wrong); see confusion_shade.
    """
    try:
        rows = [[int(v) for v in row] for row in matrix]
    except (TypeError, ValueError):
        return None
    if len(rows) != 10 or any(len(r) != 10 for r in rows):
        return None
    grid = []
    for true_digit, row in enumerate(rows):
        total = sum(row)
        cells = []
        for predicted, count in enumerate(row):
            share = count / total if total else 0.0
            rgb, alpha = confusion_shade(count, total, predicted == true_digit)
            cells.append({"count": count, "share": share, "colour": rgba(rgb, alpha),
                          "light_text": light_text_on(rgb, alpha),
                          "diagonal": predicted == true_digit, "predicted": predicted})
        grid.append({"digit": true_digit, "total": total, "cells": cells})
    return grid
