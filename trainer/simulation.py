"""Simulated players who draw in a consistent style: their drawings, for the game to collect.

Shows that the feedback loop works: players whose handwriting differs
systematically from MNIST play the real game, the game stores their drawings,
an admin approves them, `finetune` trains on them, and the new model reads
that handwriting better. The test suite runs it small
(tests/test_feedback_loop.py), the benchmark at full size
(bench/bench_feedback_loop.py).

**Drawings.** Each drawing starts from an MNIST *train* digit, traced into
strokes (trainer.canvas_eval.trace_strokes), changed by the player's style
(`PlayerStyle.apply`, on the strokes, as a hand would change them) and redrawn
on a canvas with a person's size, position, jitter and timings
(trainer.canvas_eval.redraw_on_canvas). The game then renders it with the
site's own preprocessing, like any player's drawing. Every player draws from
their own MNIST digits, none shared with another player.

**Styles** (`STYLES`): each is a consistent habit applied to every digit a
player draws; each player has their own strength of it (their angle, say,
varies a little around the style's), and each drawing a little more. Tilts
and slants replace the MNIST writer's own lean (MNIST digits lean by up to 20
degrees either way), so the player's hand is what shows.

- `tilted` (the default): every digit turned about 35 degrees clockwise, as
  by someone who keeps the page or the phone turned. The training
  augmentation turns digits by at most 12 degrees;
- `slanted`: strong forward slant (shear) of about 45 degrees; the
  augmentation shears by at most about 10;
- `continental`: crossed sevens, ones with a long flag and a foot, and a
  moderate forward slant;
- `wide`: digits about 1.8 times as wide as MNIST's.

docs/training.md lists how often the shipped model reads each one right.

**The game.** `SimulatedPlayer`s play through the real game with
digitsite.game.simulation.play_room, which also records on each player what
they drew and were told: the game stores one drawing per player per round,
pending review.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from trainer.canvas_eval import redraw_on_canvas, trace_strokes
from trainer.styles import own_lean

# -- styles --------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """A handwriting habit; a player's own version of it comes from `for_player`."""

    name: str
    description: str
    # Forward slant in degrees (the top of the digit moves right), and how
    # much it varies between players and between one player's drawings.
    slant: float = 0.0
    slant_between_players: float = 0.0
    slant_within_player: float = 0.0
    # Clockwise turn of the whole digit in degrees (a tilted hand or page).
    rotation: float = 0.0
    rotation_between_players: float = 0.0
    rotation_within_player: float = 0.0
    # Width relative to MNIST's (height unchanged), with its variation.
    width: float = 1.0
    width_between_players: float = 0.0
    crossed_sevens: bool = False
    flag_ones: bool = False
    # The rows of the styles evaluation set (trainer.styles.STYLE_NAMES) that
    # draw the same habits, so that a benchmark can show how a model that
    # learned these players reads them: a crossed seven is `seven_bar`, a
    # flagged one with or without a foot `one_serif` or `one_flag`.
    styles_set_rows: tuple = ()

    def for_player(self, rng):
        """This style as one player has it: fixed for all of that player's drawings."""
        return PlayerStyle(
            style=self,
            slant=self.slant + rng.normal(0.0, self.slant_between_players),
            rotation=self.rotation + rng.normal(0.0, self.rotation_between_players),
            width=self.width * math.exp(rng.normal(0.0, self.width_between_players)),
            # Some people put a foot under their ones and some do not.
            one_foot=bool(rng.random() < 0.7),
        )


STYLES = {
    "tilted": Style(
        "tilted", "every digit turned about 35 degrees clockwise",
        rotation=35.0, rotation_between_players=4.0, rotation_within_player=3.0,
        styles_set_rows=("turned",),
    ),
    "slanted": Style(
        "slanted", "strong forward slant (about 45 degrees)",
        slant=45.0, slant_between_players=4.0, slant_within_player=3.0,
        styles_set_rows=("slanted",),
    ),
    "continental": Style(
        "continental", "crossed sevens, flagged ones with a foot, 20-degree slant",
        slant=20.0, slant_between_players=4.0, slant_within_player=3.0,
        crossed_sevens=True, flag_ones=True,
        styles_set_rows=("seven_bar", "one_flag", "one_serif", "slanted"),
    ),
    "wide": Style(
        "wide", "digits about 1.8 times as wide as MNIST's",
        width=1.8, width_between_players=0.1,
    ),
}
DEFAULT_STYLE = "tilted"


def _bbox(strokes):
    points = np.vstack(strokes)
    return points.min(axis=0), points.max(axis=0)


def cross_seven(strokes, rng):
    """Add the bar across a seven's stem, a little below half its height."""
    (_, top), (_, bottom) = _bbox(strokes)
    height = max(bottom - top, 1.0)
    level = top + height * rng.uniform(0.5, 0.6)
    points = np.vstack(strokes)
    near = points[np.abs(points[:, 1] - level) < max(1.5, 0.08 * height)]
    if len(near) == 0:
        return strokes
    # At that height a seven has only its stem: the bar crosses there.
    centre = float(np.median(near[:, 0]))
    half = height * rng.uniform(0.17, 0.22)
    bar = np.array([[centre - half, level], [centre + half, level + rng.normal(0.0, 0.3)]])
    return [*strokes, bar]


def flag_one(strokes, rng, foot=True):
    """Give a one a long upstroke flag at the top and, with `foot`, a base."""
    (_, top), (_, bottom) = _bbox(strokes)
    height = max(bottom - top, 1.0)
    points = np.vstack(strokes)
    top_point = points[np.argmin(points[:, 1])]
    bottom_point = points[np.argmax(points[:, 1])]
    reach = height * rng.uniform(0.3, 0.4)
    flag = np.array([
        [top_point[0] - reach * 0.9, top_point[1] + reach * 0.8],
        top_point,
    ])
    added = [flag]
    if foot:
        half = height * rng.uniform(0.18, 0.25)
        added.append(np.array([[bottom_point[0] - half, bottom_point[1]],
                               [bottom_point[0] + half, bottom_point[1]]]))
    # The flag is drawn first, leading into the stem.
    return [added[0], *strokes, *added[1:]]




@dataclass(frozen=True)
class PlayerStyle:
    style: Style
    slant: float
    width: float
    rotation: float = 0.0
    one_foot: bool = True

    def apply(self, strokes, label, rng):
        """Strokes (28x28 pixel coordinates, y down) as this player draws `label`."""
        strokes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes if len(s)]
        if not strokes:
            raise ValueError("there are no strokes to restyle")
        if self.style.crossed_sevens and label == 7:
            strokes = cross_seven(strokes, rng)
        if self.style.flag_ones and label == 1:
            strokes = flag_one(strokes, rng, foot=self.one_foot)
        (left, top), (right, bottom) = _bbox(strokes)
        centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
        slant = self.slant + rng.normal(0.0, self.style.slant_within_player)
        # A slant or tilt replaces the MNIST writer's own lean (up to 20
        # degrees either way): the player's hand is what shows.
        replaces_lean = self.style.slant or self.style.rotation
        shear = math.tan(math.radians(slant)) - own_lean(strokes) if replaces_lean else 0.0
        turn = math.radians(self.rotation + rng.normal(0.0, self.style.rotation_within_player))
        cos, sin = math.cos(turn), math.sin(turn)
        out = []
        for stroke in strokes:
            x = centre_x + (stroke[:, 0] - centre_x) * self.width
            # y grows downward: points above the centre move right.
            x = x + shear * (centre_y - stroke[:, 1])
            dx, dy = x - centre_x, stroke[:, 1] - centre_y
            # Clockwise on the screen, where y grows downward.
            out.append(np.column_stack([centre_x + cos * dx - sin * dy,
                                        centre_y + sin * dx + cos * dy]))
        return out


def styled_drawing(image28, label, player_style, rng):
    """One MNIST digit drawn by a player with `player_style`: a drawing payload for the game."""
    strokes = trace_strokes(image28)
    if not strokes:
        strokes = trace_strokes(image28, threshold=0.1)
    if not strokes:
        raise ValueError("the image has no ink to trace")
    styled = player_style.apply(strokes, label, rng)
    drawn, width, height = redraw_on_canvas(styled, rng)
    return {"width": width, "height": height,
            "strokes": [[list(point) for point in stroke] for stroke in drawn]}


# -- players -------------------------------------------------------------------


@dataclass
class SimulatedPlayer:
    """A player with a style and their own MNIST train digits to draw from."""

    index: int
    name: str
    style: PlayerStyle
    # For each digit, the MNIST train indices this player draws it from, in order.
    pool: dict
    images: np.ndarray
    seed: int = 0
    # What the player did and was told in the game (digitsite.game.simulation).
    id: str | None = None
    host: bool = False
    # (game, round) -> {"label", "drawing", "guess", "result"}
    rounds: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    games_finished: int = 0
    used: dict = field(default_factory=dict)

    def drawing_for(self, label):
        """The player's next drawing of `label` (the n-th one is always the same)."""
        label = int(label)
        position = self.used.get(label, 0)
        self.used[label] = position + 1
        indices = self.pool[label]
        image = self.images[indices[position % len(indices)]]
        rng = np.random.default_rng([self.seed, self.index, label, position])
        return styled_drawing(image, label, self.style, rng)


def make_players(style, images, labels, count, per_digit, seed=0, name_prefix="sim"):
    """`count` players of `style`, each with `per_digit` MNIST digits of each label.

    No MNIST digit is given to two players. `images`/`labels`: MNIST train
    (uint8 (N, 28, 28), ints (N,)).
    """
    if isinstance(style, str):
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}: one of {', '.join(STYLES)}")
        style = STYLES[style]
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 0])
    by_label = {d: rng.permutation(np.flatnonzero(labels == d)) for d in range(10)}
    for d, found in by_label.items():
        if len(found) < count * per_digit:
            raise ValueError(f"only {len(found)} digits {d} for {count} players x {per_digit}")
    players = []
    for index in range(count):
        pool = {d: by_label[d][index * per_digit:(index + 1) * per_digit] for d in range(10)}
        players.append(SimulatedPlayer(
            index=index, name=f"{name_prefix}{index:03d}", style=style.for_player(rng),
            pool=pool, images=np.asarray(images), seed=seed,
        ))
    return players
