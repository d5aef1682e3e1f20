"""Reading a QR code back out of the SVG path segno draws, for tests.

segno draws the dark modules as one SVG path of horizontal strokes: "M4 4.5"
moves to a row's first dark run, "h7" draws 7 modules, "m2 0" skips 2,
"m-29 1" goes down a row. `dark_modules` replays those moves into the set of
dark (column, row) modules; `matrix_modules` gives the same set for segno's
own encoding of a text, so a page's QR code can be checked module by module
against what the text encodes.
"""

import re

from digitsite.game import join_qr


def dark_modules(path_data):
    """The (x, y) modules a segno path draws dark (the border included in x, y)."""
    dark = set()
    x = y = 0.0
    for command, args in re.findall(r"([MmHh])([^MmHh]*)", path_data):
        numbers = [float(n) for n in args.replace(",", " ").split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        elif command == "h":
            for step in range(int(numbers[0])):
                dark.add((int(x) + step, int(y)))
            x += numbers[0]
        else:
            raise ValueError(f"unexpected path command {command}")
    return dark


def matrix_modules(text):
    """The dark modules of the site's QR code of `text`, from segno's matrix."""
    code = join_qr.join_qr(text)
    border = join_qr.BORDER
    return {(column + border, row + border)
            for row, line in enumerate(code.matrix)
            for column, module in enumerate(line) if module & 1}


def path_of(svg):
    """The `d` of the path with segno's module class in an SVG's text."""
    match = re.search(r'<path class="qr__modules"[^>]* d="([^"]+)"', svg)
    assert match, "no QR modules path in the SVG"
    return match.group(1)
