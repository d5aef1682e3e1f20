"""A teach request's checks and its held-out split (trainer/teach/jobs.py), plain Python.

What was tried: no examples, too few and too many, labels that are not
digits (10, -1, "7", true, missing), drawings that are not drawings or have
more points than allowed, a drawing with no ink, steps out of range or not
whole, flags that are not booleans, class exclusions of the wrong shape.
"""

import pytest

from tests.support import SEVEN
from trainer.teach import jobs
from trainer.teach.jobs import Bounds, TeachInputError

BOUNDS = Bounds(min_examples=6, max_examples=60, max_steps=1000, default_steps=300,
                max_points=200)


def examples(count, label=7):
    return [{"label": label, "drawing": SEVEN} for _ in range(count)]


def refused(body, match):
    with pytest.raises(TeachInputError, match=match):
        jobs.parse_request(body, BOUNDS)


def test_a_good_request_and_its_defaults():
    parsed = jobs.parse_request({"examples": examples(6)}, BOUNDS)
    assert parsed.labels == [7] * 6 and len(parsed.drawings) == 6
    assert (parsed.replay, parsed.steps, parsed.store) == (True, 300, True)
    parsed = jobs.parse_request({"examples": examples(60), "replay": False, "steps": 20.0,
                                 "store": False}, BOUNDS)
    assert (parsed.replay, parsed.steps, parsed.store) == (False, 20, False)
    inputs = jobs.render_examples(parsed.drawings[:3])
    assert inputs.shape == (3, 28, 28) and inputs.max() > 0.5


def test_counts_labels_and_options_are_checked():
    refused([], "JSON object with 'examples'")
    refused({}, "'examples' must be a list")
    refused({"examples": examples(5)}, r"send from 6 to 60 examples \(got 5\)")
    refused({"examples": examples(61)}, r"send from 6 to 60 examples \(got 61\)")
    for label in (10, -1, "7", True, None, 7.0):
        body = {"examples": examples(5) + [{"label": label, "drawing": SEVEN}]}
        refused(body, "example 5: 'label' must be a digit from 0 to 9")
    refused({"examples": examples(5) + ["7"]}, "example 5 must be an object")
    for steps in (19, 1001, 300.5, "300", True):
        refused({"examples": examples(6), "steps": steps}, "'steps' must be a whole number "
                                                           "from 20 to 1000")
    refused({"examples": examples(6), "replay": "yes"}, "'replay' must be true or false")
    refused({"examples": examples(6), "store": 0}, "'store' must be true or false")


def test_drawings_are_checked_and_bounded_with_their_index():
    too_long = {"width": 300, "height": 300, "strokes": [[[i, i] for i in range(201)]]}
    refused({"examples": examples(6) + [{"label": 1, "drawing": too_long}]},
            "example 6: too many points: at most 200")
    refused({"examples": [{"label": 1, "drawing": {"width": 300}}] + examples(6)},
            "example 0: missing field 'height'")
    huge = {"width": 20_000, "height": 300, "strokes": [[[1, 1], [2, 2]]]}
    refused({"examples": examples(3) + [{"label": 1, "drawing": huge}] + examples(3)},
            "example 3: width must be between 1 and 10000")
    # A scribble: 100 strokes across its box, far more ink than any digit.
    scribble = {"width": 300, "height": 300,
                "strokes": [[[0, 0], [100, 100]] if i % 2 else [[100, 0], [0, 100]]
                            for i in range(100)]}
    parsed = jobs.parse_request({"examples": examples(6) + [{"label": 1, "drawing": scribble}]},
                                BOUNDS)
    with pytest.raises(TeachInputError, match="example 6: .*ink"):
        jobs.render_examples(parsed.drawings)


def test_the_split_holds_a_quarter_out_per_digit_reproducibly():
    labels = [0] * 12 + [7] * 8 + [1] * 2 + [3]
    train, held = jobs.split_examples(labels, seed=5)
    assert sorted(train + held) == list(range(len(labels))) and not set(train) & set(held)
    assert len(held) == round(len(labels) / 4)  # 23 -> 6
    held_labels = [labels[i] for i in held]
    assert held_labels.count(0) == 3 and held_labels.count(7) == 2
    # Every digit keeps an example to train on; a lone 3 is never held out.
    assert {labels[i] for i in train} == {0, 1, 3, 7}
    assert jobs.split_examples(labels, seed=5) == (train, held)
    assert jobs.split_examples(labels, seed=6) != (train, held)
    # At least two are held out of the smallest request.
    assert len(jobs.split_examples([4] * 6, seed=1)[1]) == 2
    assert jobs.seed_of("abc") == jobs.seed_of("abc") != jobs.seed_of("abd")


def test_class_exclusions():
    assert jobs.parse_exclusions(None) == set()
    assert jobs.parse_exclusions([{"player": "p1", "round": 2}]) == {("p1", 2)}
    for bad in ("p1", [{"player": "p1"}], [{"player": "", "round": 1}],
                [{"player": "p1", "round": True}], [{"player": 1, "round": 1}]):
        with pytest.raises(TeachInputError, match="exclude"):
            jobs.parse_exclusions(bad)
    with pytest.raises(TeachInputError, match="at most 1000"):
        jobs.parse_exclusions([{"player": "p", "round": 1}] * 1001)
