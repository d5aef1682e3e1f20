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


def confusion_colour(count, row_total, diagonal):
    """The fill of one confusion-matrix cell, as CSS rgba().

    Shades follow the fraction of the true digit's samples in the cell
    (`row_total` is that digit's count): green on the diagonal (right), red
    off it (wrong), so rare mistakes stay visible next to thousands of
    correct answers. An empty cell is fully transparent.
    """
    share = count / row_total if row_total else 0.0
    if diagonal:
        alpha = 0.15 + 0.75 * share if count else 0.0
        return f"rgba(40, 160, 70, {alpha:.3f})"
    # Square root: a 1% confusion is already clearly tinted.
    alpha = min(0.9, 0.12 + 2.0 * share ** 0.5) if count else 0.0
    return f"rgba(210, 50, 40, {alpha:.3f})"


def confusion_grid(matrix):
    """Rows of cells for a confusion matrix table, each with its colour (the
    admin's model version page, a class's own data page); None for anything
    but 10 rows of 10 counts.

    Shades follow the fraction of the true digit's samples in the cell: green
    on the diagonal (right), red off it (wrong), so rare mistakes stay visible
    next to thousands of correct answers.
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
            colour = confusion_colour(count, total, predicted == true_digit)
            cells.append({"count": count, "share": share, "colour": colour,
                          "diagonal": predicted == true_digit, "predicted": predicted})
        grid.append({"digit": true_digit, "total": total, "cells": cells})
    return grid
