"""A teach request's checks and its examples' split, in plain Python.

A request (POST /learn/teach/api/jobs) is
{"examples": [{"label": 0-9, "drawing": {width, height, strokes}}, ...],
"replay": true, "steps": 300, "store": true}. `parse_request` checks every
part against its bound and says what is wrong, naming the example at fault;
`render_examples` turns the drawings into the network's 28x28 inputs;
`split_examples` holds about one in four out, per digit, to measure the
copy on drawings it never trained on. No I/O and no Django here but the
drawing checks of recognizer.payloads (which read one setting).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from recognizer.payloads import PayloadError, parse_drawing
from recognizer.preprocessing import DrawingError, strokes_to_input

# Held out from training to measure the copy: about this share of the
# examples, and at least HELD_OUT_MIN.
HELD_OUT_SHARE = 0.25
HELD_OUT_MIN = 2
# The most entries of a class job's "exclude" list (a class has at most a
# few hundred drawings a game).
MAX_EXCLUDED = 1000


class TeachInputError(ValueError):
    """A request the teach API refuses; the message says why (a 400)."""


@dataclass(frozen=True)
class Bounds:
    """What one request may ask for (the TEACH_* settings)."""

    min_examples: int
    max_examples: int
    max_steps: int
    default_steps: int
    max_points: int
    min_steps: int = 20

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.TEACH_MIN_EXAMPLES, settings.TEACH_MAX_EXAMPLES,
                   settings.TEACH_MAX_STEPS, settings.TEACH_DEFAULT_STEPS,
                   settings.TEACH_MAX_POINTS)


@dataclass
class JobRequest:
    """A checked request: labels, drawings (recognizer.payloads.StrokeDrawing), options."""

    labels: list
    drawings: list
    replay: bool = True
    steps: int = 300
    store: bool = True
    # A class job's drawings to leave out: (player id, round number) pairs.
    exclude: set = field(default_factory=set)


def _flag(data, name, default):
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise TeachInputError(f"'{name}' must be true or false")
    return value


def parse_options(data, bounds):
    """(replay, steps, store) of a request body (a dict)."""
    steps = data.get("steps", bounds.default_steps)
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    if isinstance(steps, bool) or not isinstance(steps, int) or not (
            bounds.min_steps <= steps <= bounds.max_steps):
        raise TeachInputError(
            f"'steps' must be a whole number from {bounds.min_steps} to {bounds.max_steps}")
    return _flag(data, "replay", True), steps, _flag(data, "store", True)


def _label(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise TeachInputError(f"{where}: 'label' must be a digit from 0 to 9")
    return value


def parse_request(data, bounds):
    """The JobRequest of a decoded JSON body; TeachInputError naming the first fault."""
    if not isinstance(data, dict):
        raise TeachInputError("the body must be a JSON object with 'examples'")
    examples = data.get("examples")
    if not isinstance(examples, list):
        raise TeachInputError("'examples' must be a list of {label, drawing} objects")
    if not bounds.min_examples <= len(examples) <= bounds.max_examples:
        raise TeachInputError(
            f"send from {bounds.min_examples} to {bounds.max_examples} examples "
            f"(got {len(examples)}): about 1 in 4 is kept aside to test the copy")
    replay, steps, store = parse_options(data, bounds)
    labels, drawings = [], []
    for index, example in enumerate(examples):
        where = f"example {index}"
        if not isinstance(example, dict):
            raise TeachInputError(f"{where} must be an object with 'label' and 'drawing'")
        labels.append(_label(example.get("label"), where))
        try:
            drawings.append(parse_drawing(example.get("drawing"), max_points=bounds.max_points))
        except PayloadError as exc:
            raise TeachInputError(f"{where}: {exc}") from exc
    return JobRequest(labels, drawings, replay, steps, store)


def parse_exclusions(value):
    """A class job's "exclude": [{"player": id, "round": n}, ...] as a set of pairs."""
    if value is None:
        return set()
    if not isinstance(value, list) or len(value) > MAX_EXCLUDED:
        raise TeachInputError(f"'exclude' must be a list of at most {MAX_EXCLUDED} "
                              "{player, round} objects")
    pairs = set()
    for index, entry in enumerate(value):
        player = entry.get("player") if isinstance(entry, dict) else None
        number = entry.get("round") if isinstance(entry, dict) else None
        if (not isinstance(player, str) or not 0 < len(player) <= 64
                or isinstance(number, bool) or not isinstance(number, int)):
            raise TeachInputError(f"exclude entry {index} must be {{\"player\": id, "
                                  "\"round\": number}")
        pairs.add((player, number))
    return pairs


def render_examples(drawings):
    """The (N, 28, 28) float32 inputs of checked drawings; TeachInputError naming a bad one."""
    inputs = []
    for index, drawing in enumerate(drawings):
        try:
            inputs.append(strokes_to_input(drawing.strokes, drawing.width, drawing.height))
        except DrawingError as exc:
            raise TeachInputError(f"example {index}: {exc}") from exc
    return np.stack(inputs).astype(np.float32) if inputs else np.zeros((0, 28, 28), np.float32)


def split_examples(labels, seed):
    """(training indices, held-out indices) of `labels`, stratified by label.

    About HELD_OUT_SHARE of the examples (at least HELD_OUT_MIN) are held
    out, each digit contributing in proportion to its examples, and every
    digit keeps at least one for training. The same labels and seed always
    give the same split (the seed comes from the job's id).
    """
    labels = list(labels)
    n = len(labels)
    if n < HELD_OUT_MIN + 1:
        raise TeachInputError(f"at least {HELD_OUT_MIN + 1} examples are needed to hold "
                              f"{HELD_OUT_MIN} out")
    rng = np.random.default_rng(seed)
    groups = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    for members in groups.values():
        rng.shuffle(members)
    target = max(HELD_OUT_MIN, round(n * HELD_OUT_SHARE))
    # Each digit's share, rounded down; the rest goes to the digits whose
    # share lost most to the rounding, among those that can spare one.
    held = {label: math.floor(len(members) * HELD_OUT_SHARE)
            for label, members in groups.items()}
    order = sorted(groups, key=lambda label: (
        -(len(groups[label]) * HELD_OUT_SHARE - held[label]), -len(groups[label]), label))
    while sum(held.values()) < target:
        spare = [label for label in order if len(groups[label]) - held[label] > 1]
        if not spare:
            break
        held[spare[0]] += 1
        order = spare[1:] + [spare[0]]
    held_out = sorted(i for label, members in groups.items() for i in members[:held[label]])
    chosen = set(held_out)
    return [i for i in range(n) if i not in chosen], held_out


def seed_of(job_id):
    """A 32-bit seed from a job id (the same id, the same split and training)."""
    value = 0
    for char in str(job_id):
        value = (value * 131 + ord(char)) % (2 ** 32)
    return value
