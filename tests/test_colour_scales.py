"""The heat maps' and confusion matrices' colours keep their meaning in greyscale.

A black-and-white print of the worksheet or a washed-out projector loses the
hues: what is left is luminance. So the two ends of the diverging scale
(negative, positive) and its zero, and the confusion matrix's right answers,
strong mistakes and empty cells, must be three clearly different greys:
each pair at least 2:1 in WCAG contrast ((L1 + 0.05) / (L2 + 0.05)). The
colours are read from the constants the pages use: the JavaScript's
DIVERGING and SEQUENTIAL arrays and metrics_display's RIGHT_RGB and
MISTAKE_RGB. (The keys' signed numbers are checked in Chromium:
test_teaching_maps_browser.py.)
"""

import json
import re
from pathlib import Path

from recognizer import metrics_display
from recognizer.metrics_display import over_white, relative_luminance
from recognizer.teaching import charts

COMMON_JS = Path(__file__).resolve().parent.parent / "static" / "js" / "teaching" / "common.js"
# Clearly different greys: at least 2:1 (white against the orange end is 2.9:1).
CLEAR_MARGIN = 2.0


def contrast(a, b):
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def js_scale(name):
    """The stops of `const NAME = [[r, g, b], ...];` in the teaching pages' common.js."""
    found = re.search(rf"const {name} = (\[[\s\S]*?\]);", COMMON_JS.read_text())
    assert found, name
    stops = re.sub(r",\s*\]", "]", found.group(1))  # JavaScript allows a trailing comma
    return [tuple(stop) for stop in json.loads(stops)]


def test_the_diverging_scale_keeps_its_signs_in_greyscale():
    stops = js_scale("DIVERGING")
    negative, zero, positive = stops[0], stops[len(stops) // 2], stops[-1]
    assert zero == (255, 255, 255)
    assert contrast(negative, zero) >= CLEAR_MARGIN
    assert contrast(positive, zero) >= CLEAR_MARGIN
    assert contrast(negative, positive) >= CLEAR_MARGIN
    # From zero outwards each side only darkens: a stronger value is a darker grey.
    lightness = [relative_luminance(stop) for stop in stops]
    middle = len(stops) // 2
    assert lightness[:middle + 1] == sorted(lightness[:middle + 1])
    assert lightness[middle:] == sorted(lightness[middle:], reverse=True)
    # The same two colours as the confusion matrix: blue against, orange for.
    assert negative == metrics_display.RIGHT_RGB and positive == metrics_display.MISTAKE_RGB


def test_the_sequential_scale_runs_from_paper_to_ink():
    stops = js_scale("SEQUENTIAL")
    lightness = [relative_luminance(stop) for stop in stops]
    assert lightness == sorted(lightness, reverse=True)
    assert contrast(stops[0], stops[-1]) >= 10


def test_the_confusion_matrix_keeps_right_mistake_and_empty_apart_in_greyscale():
    white = (255, 255, 255)
    # A typical right cell (97% of the digit) and a strong mistake (10%).
    right = over_white(*metrics_display.confusion_shade(97, 100, True))
    mistake = over_white(*metrics_display.confusion_shade(10, 100, False))
    assert contrast(right, white) >= CLEAR_MARGIN
    assert contrast(mistake, white) >= CLEAR_MARGIN
    assert contrast(right, mistake) >= CLEAR_MARGIN
    # Its number stays readable: white on the dark diagonal, black elsewhere.
    assert metrics_display.light_text_on(*metrics_display.confusion_shade(97, 100, True))
    assert not metrics_display.light_text_on(*metrics_display.confusion_shade(10, 100, False))
    black = (17, 24, 39)
    for rgb, alpha in (metrics_display.confusion_shade(97, 100, True),
                       metrics_display.confusion_shade(3, 100, True),
                       metrics_display.confusion_shade(10, 100, False)):
        cell = over_white(rgb, alpha)
        text = white if metrics_display.light_text_on(rgb, alpha) else black
        assert contrast(cell, text) >= 4.5, (rgb, alpha)


def test_the_matrix_svg_and_table_use_those_shades_with_light_numbers_on_the_diagonal():
    matrix = [[0] * 10 for _ in range(10)]
    for d in range(10):
        matrix[d][d] = 95
        matrix[d][(d + 1) % 10] = 5
    svg = str(charts.confusion_matrix(matrix))
    right = re.findall(r'class="chart__count( chart__count--light)?"[^>]*>95<', svg)
    assert right == [" chart__count--light"] * 10
    assert re.findall(r'class="chart__count( chart__count--light)?"[^>]*>5<', svg) == [""] * 10
    assert f"rgba({', '.join(map(str, charts.RIGHT_RGB))}, " in svg
    grid = metrics_display.confusion_grid(matrix)
    assert grid[0]["cells"][0]["light_text"] and not grid[0]["cells"][1]["light_text"]
    assert grid[0]["cells"][1]["colour"].startswith("rgba(235, 120, 0, ")
    # The key has its numbers.
    words = " ".join(re.sub(r"<[^>]+>", " ", svg).split())
    assert "mistakes: 0.1% 1% 10%" in words
