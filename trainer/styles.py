"""Handwriting styles from around the world, applied to traced digits as a hand would.

MNIST was written by American Census Bureau employees and students; players
write the way they learned at school. Each style here takes the strokes of a
traced digit (trainer.canvas_eval.trace_strokes: polylines in 28x28 pixel
coordinates, x right, y down) and returns the strokes of the same digit
written in that style, drawing every random choice from the generator it is
given, so one seed always gives the same drawing:

- `zero_slashed` (0): a slash through the loop, as in Scandinavia, Germany
  and among programmers;
- `one_flag` (1): a long flag from the top down to the left, with a foot
  (base serif) 60% of the time, as written across continental Europe;
- `one_serif` (1): a base serif only;
- `seven_bar` (7): a bar across the stem;
- `four_open`, `four_closed` (4): the top open (two strokes that do not
  meet) or closed (a triangle);
- `nine_straight`, `nine_curved` (9): the tail straight down or curving to
  the left;
- `two_loop` (2): a small loop where the diagonal turns into the base;
- `slanted` (any digit): a forward slant of 20-30 degrees;
- `turned` (any digit): the whole digit turned 20-30 degrees either way.

Strokes are added (slash, flag, serif, bar) or changed (loop, slant, turn) on
the traced digit itself. The 4s and 9s are different: their variant changes
the digit's topology (a top that closes, a tail that bends), which no added
stroke can undo, so they are written anew in the traced digit's box and with
its own lean, from a template whose proportions are drawn at random.
"""

import math

import numpy as np

# style name -> the digit it applies to (None: any digit).
STYLE_DIGITS = {
    "zero_slashed": 0,
    "one_flag": 1,
    "one_serif": 1,
    "seven_bar": 7,
    "four_open": 4,
    "four_closed": 4,
    "nine_straight": 9,
    "nine_curved": 9,
    "two_loop": 2,
    "slanted": None,
    "turned": None,
}
STYLE_NAMES = tuple(STYLE_DIGITS)


def as_arrays(strokes):
    """Strokes as float (n, 2) arrays, empty ones dropped; ValueError if none is left."""
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes if len(s)]
    if not arrays:
        raise ValueError("there are no strokes to restyle")
    return arrays


def bounding_box(strokes):
    """(left, top, right, bottom) of all points."""
    points = np.vstack(strokes)
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
    return float(left), float(top), float(right), float(bottom)


def own_lean(strokes):
    """How far x moves right per unit of height upward (the tangent of the digit's slant).

    From the second moments of the points, the usual deskewing estimate;
    clipped to +-0.6 (31 degrees), since a lone stroke of a 1 gives wild values.
    """
    points = np.vstack(strokes)
    centred = points - points.mean(axis=0)
    var_y = float((centred[:, 1] ** 2).mean())
    if var_y < 1e-6:
        return 0.0
    # Covariance of x with -y (y grows downward): positive when the top leans right.
    lean = float((centred[:, 0] * -centred[:, 1]).mean()) / var_y
    return float(np.clip(lean, -0.6, 0.6))


def _line(start, end, count=8):
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    at = np.linspace(0.0, 1.0, count)[:, None]
    return start + (end - start) * at


def _bezier(p0, p1, p2, count=16):
    """A quadratic Bezier curve from p0 to p2 pulled towards p1."""
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _shear(strokes, shear, centre_y):
    """Points above `centre_y` move right by `shear` per unit of height."""
    out = []
    for stroke in strokes:
        stroke = stroke.copy()
        stroke[:, 0] += shear * (centre_y - stroke[:, 1])
        out.append(stroke)
    return out


# -- strokes added to the traced digit ------------------------------------------


def zero_slashed(strokes, rng):
    """A straight slash through the zero's loop, bottom left to top right, past the loop."""
    strokes = as_arrays(strokes)
    left, top, right, bottom = bounding_box(strokes)
    width, height = max(right - left, 1.0), max(bottom - top, 1.0)
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    # Steeper than the diagonal of the box most of the time: people slash at
    # 50-75 degrees from the horizontal, and overshoot the loop by 5-20%.
    angle = math.radians(rng.uniform(50.0, 75.0))
    direction = np.array([math.cos(angle), -math.sin(angle)])  # up and to the right
    half_height = height / 2 * rng.uniform(1.05, 1.2)
    half_width = width * rng.uniform(0.7, 0.9)
    half_length = min(half_height / abs(direction[1]), half_width / abs(direction[0]))
    shift = rng.normal(0.0, 0.05, size=2) * np.array([width, height])
    start = centre + shift - direction * half_length
    end = centre + shift + direction * half_length * rng.uniform(0.95, 1.05)
    # The slash is the last stroke: written after the loop.
    return [*strokes, _line(start, end, 12)]


def _stem_ends(strokes):
    points = np.vstack(strokes)
    return points[np.argmin(points[:, 1])], points[np.argmax(points[:, 1])]


def _foot(bottom_point, height, rng):
    half = height * rng.uniform(0.15, 0.25)
    # Within a few degrees of the horizontal.
    tilt = rng.uniform(-0.03, 0.03) * height
    return _line([bottom_point[0] - half, bottom_point[1] + tilt],
                 [bottom_point[0] + half * rng.uniform(0.9, 1.1), bottom_point[1] - tilt], 8)


def one_flag(strokes, rng, foot=None):
    """A long flag from the top of the one down to the left, and often a foot.

    The flag is 35-55% of the height long, 30-50 degrees below the
    horizontal, and drawn first, leading up into the stem. `foot`: True,
    False, or None for a foot 60% of the time.
    """
    strokes = as_arrays(strokes)
    _, top, _, bottom = bounding_box(strokes)
    height = max(bottom - top, 1.0)
    top_point, bottom_point = _stem_ends(strokes)
    length = height * rng.uniform(0.35, 0.55)
    angle = math.radians(rng.uniform(30.0, 50.0))
    flag_end = top_point + length * np.array([-math.cos(angle), math.sin(angle)])
    flag = _line(flag_end, top_point, 10)
    out = [flag, *strokes]
    if foot is None:
        foot = bool(rng.random() < 0.6)
    if foot:
        out.append(_foot(bottom_point, height, rng))
    return out


def one_serif(strokes, rng):
    """A base serif under the one: a short horizontal stroke centred on its foot."""
    strokes = as_arrays(strokes)
    _, top, _, bottom = bounding_box(strokes)
    _, bottom_point = _stem_ends(strokes)
    return [*strokes, _foot(bottom_point, max(bottom - top, 1.0), rng)]


def seven_bar(strokes, rng):
    """A roughly horizontal bar across the seven's stem, a little below half its height."""
    strokes = as_arrays(strokes)
    left, top, right, bottom = bounding_box(strokes)
    height = max(bottom - top, 1.0)
    level = top + height * rng.uniform(0.48, 0.6)
    points = np.vstack(strokes)
    band = max(1.5, 0.08 * height)
    near = points[np.abs(points[:, 1] - level) < band]
    # At that height a seven has only its stem: the bar crosses there. A
    # seven with nothing at that height (a broken trace) gets the bar under
    # the middle of its top.
    centre = float(np.median(near[:, 0])) if len(near) else (left + right) / 2
    half = max(right - left, height * 0.5) * rng.uniform(0.25, 0.35)
    tilt = math.tan(math.radians(rng.normal(0.0, 5.0))) * half
    bar = _line([centre - half * rng.uniform(0.9, 1.1), level + tilt],
                [centre + half * rng.uniform(0.9, 1.1), level - tilt], 10)
    return [*strokes, bar]


# -- strokes changed --------------------------------------------------------------


def _bottom_left_corner(strokes):
    """(stroke index, point index) of the point furthest down and to the left."""
    best, where = None, (0, 0)
    left, top, right, bottom = bounding_box(strokes)
    width, height = max(right - left, 1.0), max(bottom - top, 1.0)
    for s, stroke in enumerate(strokes):
        # Lowest-left: small x, large y, each relative to the box.
        score = (stroke[:, 0] - left) / width - (stroke[:, 1] - top) / height
        index = int(np.argmin(score))
        if best is None or score[index] < best:
            best, where = float(score[index]), (s, index)
    return where


def two_loop(strokes, rng):
    """A small loop where the two's diagonal turns into its base.

    The loop passes through the bottom-left corner of the traced two and
    rises above it by 25-35% of the height, drawn anticlockwise on the page
    (the way the pen comes down the diagonal, circles and leaves along the
    base) and spliced into the stroke at the corner.
    """
    strokes = as_arrays(strokes)
    left, top, right, bottom = bounding_box(strokes)
    height = max(bottom - top, 1.0)
    s, index = _bottom_left_corner(strokes)
    corner = strokes[s][index]
    radius = height * rng.uniform(0.12, 0.18)
    # The centre sits above the corner and a little to the right.
    direction = np.array([rng.uniform(0.1, 0.5), -1.0])
    direction /= np.linalg.norm(direction)
    centre = corner + direction * radius
    start_angle = math.atan2(corner[1] - centre[1], corner[0] - centre[0])
    # y is down, so a decreasing angle turns anticlockwise on the page.
    angles = start_angle - np.linspace(0.0, 2 * math.pi, 24)
    squash = np.array([rng.uniform(0.8, 1.2), 1.0])
    loop = centre + radius * np.column_stack([np.cos(angles), np.sin(angles)]) * squash
    loop[0] = loop[-1] = corner
    stroke = strokes[s]
    spliced = np.vstack([stroke[:index + 1], loop[1:], stroke[index + 1:]])
    return [*strokes[:s], spliced, *strokes[s + 1:]]


def slanted(strokes, rng, degrees=(20.0, 30.0)):
    """A forward slant of `degrees` (the top moves right), replacing the writer's own lean."""
    strokes = as_arrays(strokes)
    _, top, _, bottom = bounding_box(strokes)
    angle = math.radians(rng.uniform(*degrees))
    shear = math.tan(angle) - own_lean(strokes)
    return _shear(strokes, shear, (top + bottom) / 2)


def turned(strokes, rng, degrees=(20.0, 30.0)):
    """The whole digit turned by `degrees`, clockwise or anticlockwise."""
    strokes = as_arrays(strokes)
    left, top, right, bottom = bounding_box(strokes)
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    angle = math.radians(rng.uniform(*degrees)) * (1 if rng.random() < 0.5 else -1)
    # x right, y down: a positive angle turns clockwise on the page.
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return [(stroke - centre) @ rotation.T + centre for stroke in strokes]


# -- digits written anew in the traced digit's box ------------------------------


def _place(template_strokes, strokes, rng, min_width=0.5):
    """Template strokes in the unit box, put in the traced digit's box with its lean.

    A template is drawn upright; the traced digit's own lean (its slant,
    from the points' second moments) and its height and position are kept.
    Narrow traces (a 4 written as one slanted line) get at least
    `min_width` of the height as width.
    """
    left, top, right, bottom = bounding_box(strokes)
    height = max(bottom - top, 4.0)
    lean = own_lean(strokes)
    # The box of a leaning digit is wider than the digit: take the lean out.
    width = max(right - left - abs(lean) * height, min_width * height)
    width *= math.exp(rng.normal(0.0, 0.08))
    centre_x = (left + right) / 2
    placed = []
    for stroke in template_strokes:
        x = centre_x + (stroke[:, 0] - 0.5) * width
        y = top + stroke[:, 1] * height
        placed.append(np.column_stack([x, y]))
    return _shear(placed, lean, top + height / 2)


def _jitter(point, rng, scale=0.03):
    return np.asarray(point, dtype=np.float64) + rng.normal(0.0, scale, size=2)


def four_closed(strokes, rng):
    """A four with a closed top: one stroke down the diagonal and along the bar, then the stem."""
    strokes = as_arrays(strokes)
    stem_x = rng.uniform(0.6, 0.75)
    bar_y = rng.uniform(0.55, 0.7)
    apex = _jitter([stem_x, 0.0], rng, 0.01)
    corner = _jitter([rng.uniform(0.0, 0.08), bar_y], rng)
    bar_end = _jitter([1.0, bar_y + rng.normal(0.0, 0.02)], rng)
    first = np.vstack([_line(apex, corner, 10), _line(corner, bar_end, 8)[1:]])
    stem = _line(apex + [rng.normal(0.0, 0.01), 0.0], _jitter([stem_x, 1.0], rng, 0.02), 12)
    return _place([first, stem], strokes, rng)


def four_open(strokes, rng):
    """A four with an open top: a down stroke turning into the bar, then a separate stem.

    The two strokes do not meet at the top: the stem starts 25-45% of the
    width right of the first stroke's top.
    """
    strokes = as_arrays(strokes)
    stem_x = rng.uniform(0.62, 0.78)
    bar_y = rng.uniform(0.5, 0.65)
    start = _jitter([rng.uniform(0.05, 0.25), rng.uniform(0.0, 0.1)], rng, 0.01)
    # Starting 0.25-0.45 of the width left of the stem keeps the top open.
    start[0] = min(start[0], stem_x - rng.uniform(0.35, 0.5))
    corner = _jitter([max(start[0] - rng.uniform(0.0, 0.1), 0.0), bar_y], rng)
    bar_end = _jitter([1.0, bar_y + rng.normal(0.0, 0.02)], rng)
    first = np.vstack([_line(start, corner, 8), _line(corner, bar_end, 8)[1:]])
    stem = _line(_jitter([stem_x, rng.uniform(0.0, 0.12)], rng, 0.01),
                 _jitter([stem_x, 1.0], rng, 0.02), 12)
    return _place([first, stem], strokes, rng)


def _nine_loop(rng):
    """The loop of a nine: starts on its right side, goes up and round anticlockwise."""
    radius_x = rng.uniform(0.35, 0.45)
    radius_y = rng.uniform(0.18, 0.25)
    centre = np.array([0.5 - rng.uniform(0.0, 0.1), radius_y])
    # Start at the right and go over the top (decreasing angle with y down
    # is anticlockwise on the page), round once and a little past the start.
    angles = -np.linspace(0.0, 2 * math.pi + 0.2, 40)
    loop = centre + np.column_stack([radius_x * np.cos(angles), radius_y * np.sin(angles)])
    return loop, centre, radius_x, radius_y


def nine_straight(strokes, rng):
    """A nine whose tail runs straight down from the right of the loop."""
    strokes = as_arrays(strokes)
    loop, centre, radius_x, _ = _nine_loop(rng)
    attach = loop[-1]
    tail_end = np.array([centre[0] + radius_x + rng.normal(0.0, 0.03), 1.0])
    tail = _line(attach, tail_end, 14)
    return _place([np.vstack([loop, tail[1:]])], strokes, rng)


def nine_curved(strokes, rng):
    """A nine whose tail goes down and curves back to the left at the bottom."""
    strokes = as_arrays(strokes)
    loop, centre, radius_x, _ = _nine_loop(rng)
    attach = loop[-1]
    right = centre[0] + radius_x
    bend = np.array([right + rng.uniform(-0.02, 0.05), rng.uniform(1.0, 1.12)])
    tail_end = np.array([rng.uniform(0.05, 0.3), rng.uniform(0.88, 1.0)])
    tail = np.vstack([_line(attach, [right, 0.6], 8),
                      _bezier([right, 0.6], bend, tail_end, 14)[1:]])
    return _place([np.vstack([loop, tail[1:]])], strokes, rng)


GENERATORS = {
    "zero_slashed": zero_slashed,
    "one_flag": one_flag,
    "one_serif": one_serif,
    "seven_bar": seven_bar,
    "four_open": four_open,
    "four_closed": four_closed,
    "nine_straight": nine_straight,
    "nine_curved": nine_curved,
    "two_loop": two_loop,
    "slanted": slanted,
    "turned": turned,
}


def apply_style(name, strokes, rng):
    """The traced strokes written in style `name`; KeyError for an unknown style."""
    return GENERATORS[name](strokes, rng)
