"""Handwriting styles (trainer/styles.py) and the styles sets (trainer/styles_set.py).

The generators run on real traced MNIST digits, 20 of each, each with its own
seed: every assertion holds for every draw of the random parameters, not for
one lucky draw.
"""

import math

import numpy as np
import pytest

from trainer import styles, styles_set
from trainer.canvas_eval import redraw_on_canvas, trace_strokes

DRAWS = 20


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    from trainer import mnist

    return mnist.load_split("test", data_dir=mnist_dir, download=False)


def traced(mnist_test, digit, count=DRAWS):
    images, labels = mnist_test
    found = np.nonzero(labels == digit)[0][:count]
    return [trace_strokes(images[i]) for i in found]


def draws(mnist_test, style, digit, count=DRAWS):
    """(original strokes, styled strokes) for `count` digits, each with its own seed."""
    for k, strokes in enumerate(traced(mnist_test, digit, count)):
        yield strokes, styles.apply_style(style, strokes, np.random.default_rng([3, k]))


def segments(stroke):
    stroke = np.asarray(stroke, dtype=np.float64)
    return list(zip(stroke[:-1], stroke[1:], strict=True))


def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def intersects(p1, p2, q1, q2):
    """Whether segments p1-p2 and q1-q2 cross properly."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def crossings(stroke, others):
    """How many times `stroke` crosses the polylines `others`."""
    count = 0
    for p1, p2 in segments(stroke):
        for other in others:
            count += sum(intersects(p1, p2, q1, q2) for q1, q2 in segments(other))
    return count


def holes(strokes, scale=4):
    """Enclosed background regions of the strokes drawn 4x larger with a 2-pixel pen."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    size = 40 * scale
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        points = [(float(x + 6) * scale, float(y + 6) * scale) for x, y in np.asarray(stroke)]
        if len(points) > 1:
            draw.line(points, fill=255, width=scale, joint="curve")
    background, count = ndimage.label(np.asarray(image) == 0)
    border = set(np.unique(np.concatenate([background[0], background[-1], background[:, 0],
                                           background[:, -1]])))
    # Gaps of less than 2 square pixels where lines join are not holes.
    inside = [label for label in range(1, count + 1)
              if label not in border and (background == label).sum() >= 2 * scale * scale]
    centres = [np.argwhere(background == label).mean(axis=0)[::-1] / scale - 6
               for label in inside]
    return centres


def box(strokes):
    points = np.vstack([np.asarray(s, dtype=np.float64) for s in strokes])
    return points.min(axis=0), points.max(axis=0)


def angle_from_horizontal(stroke):
    start, end = np.asarray(stroke[0]), np.asarray(stroke[-1])
    dx, dy = end - start
    return abs(math.degrees(math.atan2(dy, dx))) % 180


def test_every_style_has_a_generator_and_a_digit():
    assert set(styles.GENERATORS) == set(styles.STYLE_DIGITS) == set(styles.STYLE_NAMES)
    assert len(styles.STYLE_NAMES) == 11
    with pytest.raises(KeyError):
        styles.apply_style("gothic", [[(1.0, 1.0), (2.0, 2.0)]], np.random.default_rng(0))


def test_a_slashed_zero_has_a_stroke_crossing_its_loop(mnist_test):
    closed = 0
    for original, styled in draws(mnist_test, "zero_slashed", 0):
        assert len(styled) == len(original) + 1
        slash = styled[-1]
        assert crossings(slash, styled[:-1]) >= 1
        # Bottom left to top right, steep, and longer than the zero is tall.
        (left, top), (right, bottom) = box(original)
        assert slash[0][1] > slash[-1][1] and slash[0][0] < slash[-1][0]
        assert 40 <= angle_from_horizontal(slash) <= 85
        assert abs(slash[0][1] - slash[-1][1]) >= (bottom - top)
        # Across the loop: a zero whose loop is closed has it cut in two.
        if len(holes(original)) == 1:
            closed += 1
            assert len(holes(styled)) == 2
    assert closed >= DRAWS // 2


def test_a_flagged_one_has_a_flag_going_down_left_from_the_top(mnist_test):
    feet = 0
    for original, styled in draws(mnist_test, "one_flag", 1):
        (_, top), (_, bottom) = box(original)
        height = bottom - top
        flag = np.asarray(styled[0])
        # Drawn first, ending at the top of the stem.
        assert flag[-1][1] == pytest.approx(top)
        low_end = flag[0]
        assert low_end[0] < flag[-1][0] - 0.2 * height  # to the left
        assert low_end[1] > flag[-1][1] + 0.15 * height  # and down
        assert np.hypot(*(low_end - flag[-1])) >= 0.3 * height  # a long flag
        feet += len(styled) == len(original) + 2
    # A foot about 60% of the time, not always and not never.
    assert 0 < feet < DRAWS


def test_a_one_with_a_serif_has_a_horizontal_base_centred_on_its_foot(mnist_test):
    for original, styled in draws(mnist_test, "one_serif", 1):
        assert len(styled) == len(original) + 1
        (_, top), (_, bottom) = box(original)
        serif = np.asarray(styled[-1])
        assert angle_from_horizontal(serif) < 12 or angle_from_horizontal(serif) > 168
        assert serif[:, 1].mean() == pytest.approx(bottom, abs=0.1 * (bottom - top))
        assert serif[0][0] < serif[-1][0]


def test_a_barred_seven_has_a_horizontal_stroke_crossing_its_stem(mnist_test):
    for original, styled in draws(mnist_test, "seven_bar", 7):
        bar = styled[-1]
        assert angle_from_horizontal(bar) < 20 or angle_from_horizontal(bar) > 160
        assert crossings(bar, original) >= 1
        (_, top), (_, bottom) = box(original)
        # Below the top stroke, above the foot of the stem.
        assert top + 0.35 * (bottom - top) < np.mean(np.asarray(bar)[:, 1]) < bottom


def test_fours_have_an_open_or_a_closed_top(mnist_test):
    for k, strokes in enumerate(traced(mnist_test, 4)):
        rng = np.random.default_rng([5, k])
        first, stem = styles.four_open(strokes, rng)
        width = np.ptp(np.vstack([first, stem])[:, 0])
        # Open: the tops of the two strokes are apart, nothing is enclosed.
        assert np.hypot(*(first[0] - stem[0])) > 0.2 * width
        assert holes([first, stem]) == []
        # The bar crosses the stem.
        assert crossings(first, [stem]) >= 1

        first, stem = styles.four_closed(strokes, rng)
        # Closed: the diagonal starts where the stem starts, enclosing a triangle.
        assert np.hypot(*(first[0] - stem[0])) < 0.1 * width
        assert len(holes([first, stem])) == 1
        assert crossings(first, [stem]) >= 1


def upright(nine, strokes):
    """Undo the lean that trainer.styles._place gave the template."""
    (_, top), (_, bottom) = box(strokes)
    height = max(bottom - top, 4.0)
    out = nine.copy()
    out[:, 0] -= styles.own_lean(strokes) * (top + height / 2 - nine[:, 1])
    return out


def test_nines_have_a_loop_and_a_straight_or_a_curved_tail(mnist_test):
    for k, strokes in enumerate(traced(mnist_test, 9)):
        rng = np.random.default_rng([6, k])
        for style in ("nine_straight", "nine_curved"):
            (nine,) = styles.apply_style(style, strokes, rng)
            assert len(holes([nine])) == 1
            (hole_x, hole_y), = holes([nine])
            (_, top), (_, bottom) = box([nine])
            assert hole_y < (top + bottom) / 2  # the loop is on top
            straight = upright(nine, strokes)
            width = np.ptp(straight[:, 0])
            tail_start, tail_end = straight[40], straight[-1]
            assert tail_end[1] > tail_start[1] + 0.5 * (bottom - top)
            if style == "nine_straight":
                # Ends about under where it left the loop.
                assert abs(tail_end[0] - tail_start[0]) < 0.15 * width
            else:
                # Bends back to the left of where it left the loop.
                assert tail_end[0] < tail_start[0] - 0.4 * width


def test_a_looped_two_has_a_loop_at_its_bottom_left(mnist_test):
    for original, styled in draws(mnist_test, "two_loop", 2):
        added = sum(len(s) for s in styled) - sum(len(s) for s in original)
        assert added == 23  # the loop's points, spliced into one stroke
        before, after = holes(original), holes(styled)
        (left, top), (right, bottom) = box(original)
        new = [c for c in after if all(np.hypot(*(c - b)) > 1.0 for b in before)]
        # The loop, or parts of it where the diagonal and the base run through it.
        assert 1 <= len(new) <= 3, "no new enclosed region"
        # At the bottom-left corner, where the diagonal turns into the base.
        corner = np.array([left, bottom])
        assert min(np.hypot(*(c - corner)) for c in new) < 0.5 * (bottom - top)


def stem_angle(strokes):
    """Degrees from the vertical of a one's stroke (its principal axis), positive leaning right."""
    points = np.vstack(strokes)
    centred = points - points.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    dx, dy = axes[0]
    if dy > 0:
        dx, dy = -dx, -dy
    return math.degrees(math.atan2(dx, -dy))


def test_slanted_and_turned_digits_lean_20_to_30_degrees(mnist_test):
    turned_either_way = set()
    for k, strokes in enumerate(traced(mnist_test, 1)):
        rng = np.random.default_rng([7, k])
        before = stem_angle(strokes)
        slanted = styles.slanted(strokes, rng)
        # A slant replaces the writer's own lean: a forward slant of 20-30.
        assert 15 <= stem_angle(slanted) <= 35
        turned = styles.turned(strokes, rng)
        change = stem_angle(turned) - before
        assert 19 <= abs(change) <= 31
        turned_either_way.add(change > 0)
    assert turned_either_way == {True, False}


def test_every_style_is_drawable_through_the_games_pipeline(mnist_test):
    from recognizer import preprocessing

    images, labels = mnist_test
    for name, digit in styles.STYLE_DIGITS.items():
        index = int(np.nonzero(labels == (digit if digit is not None else 3))[0][0])
        first = styles_set.styled_input(images[index], name, 0, 1, index)
        again = styles_set.styled_input(images[index], name, 0, 1, index)
        other = styles_set.styled_input(images[index], name, 1, 1, index)
        assert first.shape == (28, 28) and first.dtype == np.float32
        assert 0.02 < first.mean() < 0.5
        np.testing.assert_array_equal(first, again)  # the seed decides everything
        assert np.abs(first - other).max() > 0.1
        # And the strokes themselves are a valid canvas drawing.
        strokes = styles.apply_style(name, trace_strokes(images[index]),
                                     np.random.default_rng(0))
        drawn, width, height = redraw_on_canvas(strokes, np.random.default_rng(1))
        assert preprocessing.strokes_to_input(drawn, width, height).max() > 0.5


def test_empty_strokes_are_refused_with_a_clear_error():
    for name in styles.STYLE_NAMES:
        with pytest.raises(ValueError, match="no strokes"):
            styles.apply_style(name, [], np.random.default_rng(0))
        with pytest.raises(ValueError, match="no strokes"):
            styles.apply_style(name, [[]], np.random.default_rng(0))


# -- the sets -----------------------------------------------------------------------


def test_the_styles_set_takes_each_styles_digit_and_is_seeded(mnist_test, tmp_path):
    images, labels = mnist_test
    images, labels = images[:300], labels[:300]
    built = styles_set.build_styles_set(images, labels, per_style=4, seed=0,
                                        cache_dir=tmp_path, workers=1)
    assert len(built) == 4 * len(styles.STYLE_NAMES)
    for number, name in enumerate(styles.STYLE_NAMES):
        mask = built.styles == number
        assert mask.sum() == 4
        digit = styles.STYLE_DIGITS[name]
        if digit is not None:
            assert (built.labels[mask] == digit).all()
    # The digits come from the images given, chosen by a seeded shuffle.
    chosen = styles_set.select(labels, 4, 0)
    assert all((labels[chosen[n]] == built.labels[built.styles == i]).all()
               for i, n in enumerate(styles.STYLE_NAMES))
    assert not np.array_equal(chosen["slanted"], styles_set.select(labels, 4, 1)["slanted"])

    # Cached: a second build reads the file, and a damaged file is rebuilt.
    (cache,) = tmp_path.iterdir()
    again = styles_set.build_styles_set(images, labels, per_style=4, seed=0,
                                        cache_dir=tmp_path, workers=1)
    np.testing.assert_array_equal(again.inputs, built.inputs)
    cache.write_bytes(b"not a numpy file")
    rebuilt = styles_set.build_styles_set(images, labels, per_style=4, seed=0,
                                          cache_dir=tmp_path, workers=1)
    np.testing.assert_array_equal(rebuilt.inputs, built.inputs)


def test_the_evaluation_set_comes_from_test_digits_and_training_digits_from_train(
        mnist_dir, settings, tmp_path):
    """Training and evaluation apart: other images, other seeds."""
    from trainer import datasets

    settings.VAR_DIR = tmp_path
    test = datasets.mnist_split("test", mnist_dir, limit=200)
    train = datasets.mnist_split("train", mnist_dir, limit=200)
    evaluation = styles_set.evaluation_set(test, per_style=2, workers=1)
    training = styles_set.training_digits(train, 22, workers=1)
    assert len(evaluation) == 22 and len(training) == 22
    test_set = {bytes(img) for img in (test.images.numpy() > 127)}
    # Every evaluation digit is a test digit: its source index is a test index
    # with the same label.
    chosen = styles_set.select(test.labels.numpy(), 2, styles_set.EVAL_SEED)
    for name, indices in chosen.items():
        assert (test.labels.numpy()[indices] == evaluation.labels[
            evaluation.styles == styles.STYLE_NAMES.index(name)]).all()
    assert styles_set.EVAL_SEED != styles_set.TRAIN_SEED
    assert test_set  # the test images are what the evaluation set is drawn from


def test_per_style_metrics_count_what_each_style_was_read_as():
    built = styles_set.StylesSet(
        inputs=np.zeros((4, 28, 28), dtype=np.float32),
        labels=np.array([0, 0, 1, 5]),
        styles=np.array([0, 0, 1, 9]),
    )
    logits = np.zeros((4, 10))
    logits[0, 0] = logits[1, 8] = logits[2, 7] = logits[3, 5] = 1.0
    table = styles_set.per_style_metrics(logits, built)
    assert table["zero_slashed"] == {"count": 2, "accuracy": 0.5,
                                     "read_as": [1, 0, 0, 0, 0, 0, 0, 0, 1, 0]}
    assert table["one_flag"]["accuracy"] == 0.0 and table["one_flag"]["read_as"][7] == 1
    assert table["slanted"]["accuracy"] == 1.0
    assert "turned" not in table
