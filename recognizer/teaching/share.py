"""A drawing in a link: the strokes packed into one short query parameter.

A teacher shares a drawing (a hard case, a learner's 4 that looks like a 9)
as `/learn/how-it-works/?d=<code>`, and the lessons carry it from one page to
the next. The code is the drawing itself, so the link works on any server
and needs no storage; static/js/teaching/share.js writes it, `decode` reads
it and the page checks the drawing like any other (payloads.parse_drawing).

The code: base64url (no padding) of bytes

    1                           the format
    width, height               whole canvas pixels
    number of strokes
    per stroke: number of points, the first point (x, y), then for each
    further point its step from the one before (dx, dy)

every number an unsigned LEB128 varint, the steps zigzag-coded (0, -1, 1,
-2, ... become 0, 1, 2, 3, ...). Points are rounded to whole canvas pixels
(a point that rounds onto the one before is left out):
a 300-pixel canvas becomes a 20-pixel box, so a pixel there is 0.07 of one
of the network's pixels. A point's time is left out (nothing downstream of
the pad reads it); the decoded drawing gets 16 ms between points. A step
within 63 pixels takes one byte per coordinate, so a point costs about 2.7
characters and a typical digit (two strokes, 60-150 points) is 170-420
characters; the pad's 2,000-point limit would be about 5,400. Links stay
under SHARE_MAX_CHARS: share.js simplifies a longer drawing (fewer points
along its strokes) until it fits, and a longer code is refused here with the
reason.
"""

import base64
import binascii
import math

FORMAT = 1
# The longest code a link carries: URLs of 2,000-odd characters pass every
# browser, proxy and chat app; a digit needs a fifth of it.
SHARE_MAX_CHARS = 2400
# Bounds on what a code may claim, checked before anything is built from it.
MAX_SIDE = 10_000
MAX_STROKES = 200
POINT_INTERVAL_MS = 16


class ShareError(ValueError):
    """The code is not a drawing this format can hold."""


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(value):
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value):
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


def _whole(value):
    """Rounded as JavaScript's Math.round does (halves up), as share.js rounds."""
    return math.floor(value + 0.5)


def whole_points(stroke, width, height):
    """A stroke's points rounded to whole pixels inside the canvas, repeats dropped."""
    points = []
    for point in stroke:
        xy = (min(max(_whole(point[0]), 0), width), min(max(_whole(point[1]), 0), height))
        if not points or points[-1] != xy:
            points.append(xy)
    return points


def encode(drawing):
    """The code of a drawing ({"width", "height", "strokes"}): share.js's encoding
    before any simplification."""
    width, height = _whole(drawing["width"]), _whole(drawing["height"])
    out = bytearray([FORMAT])
    out += _varint(width) + _varint(height) + _varint(len(drawing["strokes"]))
    for stroke in drawing["strokes"]:
        points = whole_points(stroke, width, height)
        out += _varint(len(points))
        (x, y), previous = points[0], points[0]
        out += _varint(x) + _varint(y)
        for x, y in points[1:]:
            out += _varint(_zigzag(x - previous[0])) + _varint(_zigzag(y - previous[1]))
            previous = (x, y)
    return base64.urlsafe_b64encode(bytes(out)).decode("ascii").rstrip("=")


class _Reader:
    def __init__(self, data):
        self.data = data
        self.at = 0

    def varint(self, what):
        value, shift = 0, 0
        while True:
            if self.at >= len(self.data):
                raise ShareError(f"the code ends in the middle of {what}")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            # The code's own length bounds every number: no 2**700 from 100 bytes.
            if shift > 28:
                raise ShareError(f"{what} is too large")


def _bytes(code):
    if not isinstance(code, str) or not code:
        raise ShareError("the code is empty")
    if len(code) > SHARE_MAX_CHARS:
        raise ShareError(f"the code is longer than {SHARE_MAX_CHARS} characters")
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in code):
        raise ShareError("the code may hold only letters, digits, '-' and '_'")
    try:
        return base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
    except (binascii.Error, ValueError):
        raise ShareError("the code is not base64url") from None


def decode(code):
    """The drawing in a code, as the recognition API takes it; ShareError says what is wrong."""
    reader = _Reader(_bytes(code))
    if reader.varint("the format") != FORMAT:
        raise ShareError(f"this code's format is not {FORMAT}")
    width, height = reader.varint("the width"), reader.varint("the height")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ShareError(f"the canvas must be 1 to {MAX_SIDE} pixels a side")
    count = reader.varint("the number of strokes")
    if not 1 <= count <= MAX_STROKES:
        raise ShareError(f"a drawing has 1 to {MAX_STROKES} strokes")
    strokes, t = [], 0
    for s in range(count):
        points = reader.varint(f"stroke {s + 1}'s length")
        # Each point takes at least two bytes: a count past what is left is a lie.
        if not 1 <= points <= (len(reader.data) - reader.at) // 2:
            raise ShareError(f"stroke {s + 1} claims more points than the code holds")
        x, y = reader.varint("a point"), reader.varint("a point")
        stroke = [[x, y, t]]
        for _ in range(points - 1):
            t += POINT_INTERVAL_MS
            x += _unzigzag(reader.varint("a step"))
            y += _unzigzag(reader.varint("a step"))
            stroke.append([x, y, t])
        t += POINT_INTERVAL_MS
        strokes.append(stroke)
    if reader.at != len(reader.data):
        raise ShareError("the code goes on after its last stroke")
    for stroke in strokes:
        for x, y, _ in stroke:
            if not (0 <= x <= width and 0 <= y <= height):
                raise ShareError("a point lies outside the canvas")
    return {"width": width, "height": height, "strokes": strokes}
