"""The renderer against the previous one, and the worst drawings the entry points accept.

The previous renderer (tests/reference_renderer.py) listed every pixel of
each segment's bounding box; today's measures only pixels within reach of
the segment, in compiled code (recognizer/pen_kernel.py) with the same
arithmetic, so the images must agree to the bit (the issue asked for 1/255).
Hostile drawings tried: a zigzag between opposite corners (the drawing that
cost 1-2 s and 530 MB), sweeping zigzags, spirals, a circle gone over and
over, dense random scribbles at and far over the ink limit, thousands of
taps, a zigzag across the canvas edge, every point on one spot, and the most
points allowed, on the API, the game and the teaching endpoints. The bounds
asserted count work (pixels measured, pairs at once, bytes allocated), never
time, so they hold on any machine under any load.
"""

import json

import numpy as np
import pytest

from recognizer import preprocessing
from recognizer.payloads import parse_drawing
from recognizer.preprocessing import (
    MAX_INK_LENGTH,
    DrawingError,
    InkLimitError,
    strokes_to_input,
    strokes_to_stages,
)
from tests.reference_renderer import reference_stages
from tests.worst_drawings import corner_zigzag, peak_bytes, worst_drawings

TOLERANCE = 1 / 255


def compare(strokes, width, height, report):
    """Both renderers on one drawing; the difference goes into `report`."""
    try:
        old = reference_stages(strokes, width, height)
    except DrawingError as exc:
        with pytest.raises(DrawingError) as caught:
            strokes_to_stages(strokes, width, height)
        assert str(caught.value) == str(exc)
        report["both_refused"] += 1
        return None
    try:
        new = strokes_to_stages(strokes, width, height)
    except InkLimitError:
        report["ink_limit"] += 1
        return None
    difference = np.abs(new["input"] - old["input"])
    report["max"] = max(report["max"], float(difference.max()))
    report["sum"] += float(difference.mean())
    report["count"] += 1
    assert difference.max() <= TOLERANCE
    assert np.array_equal(new["input"], old["input"])
    assert np.array_equal(new["centered_box"], old["centered_box"])
    for key in ("strokes", "points", "bbox", "scale", "center_of_mass", "shift",
                "final_center_of_mass"):
        assert new[key] == old[key], key
    return new


def new_report():
    return {"max": 0.0, "sum": 0.0, "count": 0, "ink_limit": 0, "both_refused": 0}


def summary(report):
    return (f"{report['count']} drawings: max difference {report['max']:.3g}, "
            f"mean {report['sum'] / max(report['count'], 1):.3g}; "
            f"{report['ink_limit']} over the ink limit, {report['both_refused']} refused by both")


def random_drawing(rng):
    """Scribbles, walks, taps and strokes that leave the canvas, on any canvas."""
    width, height = (int(v) for v in rng.integers(20, 1200, 2))
    strokes = []
    for _ in range(int(rng.integers(1, 6))):
        count = int(rng.integers(1, 60))
        kind = rng.integers(5)
        if kind == 0:  # anywhere on the canvas
            points = rng.uniform(0, 1, (count, 2)) * (width, height)
        elif kind == 1:  # in and out of the canvas
            points = rng.uniform(-0.5, 1.5, (count, 2)) * (width, height)
        elif kind == 2:  # a hand-like walk
            points = np.cumsum(rng.normal(0, 0.03 * width, (count, 2)), axis=0) + (width / 2,
                                                                                 height / 2)
        elif kind == 3:  # on a coarse grid: repeats, edges, corners, flat segments
            points = rng.integers(-1, 6, (count, 2)) * (width / 4, height / 4)
        else:  # a tap, or a short dense trace
            points = (rng.uniform(0, 1, 2) * (width, height)
                      + np.cumsum(rng.normal(0, 0.2, (count, 2)), axis=0))
        strokes.append([tuple(map(float, p)) for p in points])
    return strokes, width, height


def test_the_renderer_matches_the_previous_one_on_random_scribbles(monkeypatch):
    # Most random scribbles are far over the ink limit; the renderer is
    # compared on them too.
    monkeypatch.setattr(preprocessing, "MAX_INK_LENGTH", float("inf"))
    rng = np.random.default_rng(12)
    report = new_report()
    for _ in range(2500):
        compare(*random_drawing(rng), report)
    print(summary(report))
    assert report["count"] > 2400 and report["ink_limit"] == 0
    assert report["max"] <= TOLERANCE


def test_the_renderer_matches_the_previous_one_on_canvas_style_and_players_drawings(mnist_dir):
    """MNIST test redrawn canvas-style and MNIST train drawn by simulated players in every style.

    Real digits are also far below the ink limit: under a third of it.
    """
    from trainer import mnist
    from trainer.canvas_eval import redraw_on_canvas, trace_strokes
    from trainer.simulation import STYLES, styled_drawing

    report = new_report()
    longest = 0.0
    test_images, _ = mnist.load_split("test", data_dir=mnist_dir, download=False)
    for index, image in enumerate(test_images[:1200]):
        rng = np.random.default_rng([0, index])
        drawn, width, height = redraw_on_canvas(trace_strokes(image), rng)
        stages = compare(drawn, width, height, report)
        longest = max(longest, stages["ink_length"])
    train_images, train_labels = mnist.load_split("train", data_dir=mnist_dir, download=False)
    for s_index, style in enumerate(STYLES.values()):
        players = [style.for_player(np.random.default_rng([s_index, p])) for p in range(5)]
        for index in range(200):
            image_index = s_index * 200 + index
            drawing = styled_drawing(train_images[image_index], int(train_labels[image_index]),
                                     players[index % 5], np.random.default_rng([7, image_index]))
            stages = compare(drawing["strokes"], drawing["width"], drawing["height"], report)
            longest = max(longest, stages["ink_length"])
    print(summary(report), f"; longest ink {longest:.2f} bounding boxes")
    assert report["count"] == 2000 and report["ink_limit"] == 0
    assert longest < MAX_INK_LENGTH / 3


# -- the work the renderer does ----------------------------------------------


@pytest.fixture
def render_work(monkeypatch):
    """Counts of what the renders did, summed over a drawing's renders (the
    strokes' renders all go through _centre_segments)."""
    work = {}
    centre = preprocessing._centre_segments

    def counted(*args, **kwargs):
        return centre(*args, work=work, **kwargs)

    monkeypatch.setattr(preprocessing, "_centre_segments", counted)
    return work


def test_cost_grows_with_the_inks_length_not_segments_times_pixels():
    """Corner-to-corner diagonals, rendered with no ink limit in the way.

    The previous renderer measured each diagonal against its whole bounding
    box, 784 pixels; today's against the pixels within reach, with nothing
    allocated per pair, so memory does not grow with the drawing.
    """
    corner = np.array([[0.0, 0.0], [27.0, 27.0]])
    pairs = {}
    for count in (100, 10_000):
        seg_a = np.tile(corner[[0]], (count, 1))
        seg_b = np.tile(corner[[1]], (count, 1))
        work = {}
        peak = peak_bytes(lambda a=seg_a, b=seg_b, w=work: preprocessing._centre_segments(
            a, b, preprocessing.PEN_WIDTH, work=w))
        pairs[count] = (work["pairs"], work["renders"])
        # In each of the 28 rows a diagonal crosses, the part of it within
        # reach of the row spans 2 * reach pixels across, widened by reach
        # on each side: at most 4 * 1.7 + 1 = 7.8 pixels, not 28, a render
        # (two to four of them, the centring's).
        assert work["pairs"] <= work["renders"] * count * 28 * 7.8
        assert work["pairs"] < work["renders"] * count * 784 / 4
        # The previous renderer held ~50 bytes per pair at once: 390 MB here;
        # the segments' own arrays are 36 bytes each (360 kB here).
        assert peak < 8_000_000
    # The same renders, each a hundred times the segments: a hundred times the pairs.
    assert pairs[10_000] == (100 * pairs[100][0], pairs[100][1])
    image = preprocessing._centre_segments(corner[[0]], corner[[1]],
                                           preprocessing.PEN_WIDTH)[3]
    old = reference_stages([[(0, 0), (27, 27)]], 28, 28)
    assert image.sum() > 0 and old["input"].sum() > 0


@pytest.mark.parametrize("max_points, side", [(10_000, 400), (10_000, 10_000), (5000, 4000)])
def test_worst_drawings_are_refused_or_bounded(render_work, max_points, side):
    for case in worst_drawings(max_points, side):
        drawing = parse_drawing(json.loads(json.dumps(case.drawing)), max_points=max_points)
        render_work.clear()

        def render(drawing=drawing):
            return strokes_to_stages(drawing.strokes, drawing.width, drawing.height)

        if case.refused:
            with pytest.raises(InkLimitError, match="too much ink for one digit"):
                render()
            assert render_work == {}, f"{case.name}: rendered before refusing"
            continue
        peak = peak_bytes(render)
        stages = render()
        assert stages["ink_length"] is None or stages["ink_length"] <= MAX_INK_LENGTH
        # Two renders, and at most two corrections of the centre of mass.
        renders = render_work["renders"] / 2
        assert renders <= 4, case.name
        # Ink of 20 bounding boxes is at most 352 pixels of path, thinned to
        # one point per 0.1 pixel: ~3,500 segments, each measured against at
        # most ~30 pixels (5 rows of 6).
        assert render_work["segments"] <= 10 * 17.6 * MAX_INK_LENGTH + 400, case.name
        assert render_work["pairs"] / render_work["renders"] <= 120_000, case.name
        assert peak < 8_000_000, f"{case.name}: {peak} bytes"


def test_the_corner_zigzag_is_refused_before_any_rendering(render_work):
    drawing = corner_zigzag(10_000)
    with pytest.raises(InkLimitError) as caught:
        strokes_to_input(drawing["strokes"], drawing["width"], drawing["height"])
    assert "14141 times" in str(caught.value)
    assert f"at most {MAX_INK_LENGTH:g}" in str(caught.value)
    assert render_work == {}


def test_ink_just_under_the_limit_passes_and_just_over_is_refused():
    """A line gone over back and forth: each pass is one bounding box of ink."""
    pen = preprocessing.PEN_WIDTH / (preprocessing.BOX - preprocessing.PEN_WIDTH)
    passes = int(MAX_INK_LENGTH - pen)
    under = [(50.0 + 100 * (i % 2), 80.0) for i in range(passes + 1)]
    stages = strokes_to_stages([under], 200, 200)
    assert stages["ink_length"] == pytest.approx(passes + pen)
    over = under + [(50.0 + 100 * ((passes + 1) % 2), 80.0)]
    with pytest.raises(InkLimitError, match=f"{passes + 1 + pen:.0f} times"):
        strokes_to_stages([over], 200, 200)
    # A second stroke counts its length and its pen width too.
    with pytest.raises(InkLimitError):
        strokes_to_stages([under, [(60.0, 90.0), (140.0, 90.0)]], 200, 200)


def test_a_dot_made_of_many_points_is_one_cheap_disc(render_work):
    taps = [[(50.0, 50.0)] for _ in range(5000)]
    image = strokes_to_input(taps, 100, 100)
    np.testing.assert_array_equal(image, reference_stages([[(50.0, 50.0)]], 100, 100)["input"])
    assert render_work["segments"] == 1


def _reference_segments(points, starts, centre, factor):
    from tests.reference_renderer import _segments

    pieces = np.split(points, starts[1:])
    return _segments([(piece - centre) * factor + preprocessing.BOX_CENTRE
                      for piece in pieces])


def test_the_compiled_segments_are_the_numpy_ones_to_the_bit():
    """Scaling and thinning (pen_kernel.segments) against the numpy version
    the reference keeps, on the segment arrays themselves: one-point pieces,
    pieces whose points are all on one spot, two points on one spot, traces
    denser than MIN_STEP, steps just around it, an empty piece, and random
    walks of many pieces at many scales."""
    step = preprocessing.MIN_STEP
    cases = [
        (np.array([[5.0, 7.0]]), np.array([0])),
        (np.array([[5.0, 7.0], [5.0, 7.0], [5.0, 7.0]]), np.array([0])),
        (np.array([[5.0, 7.0], [5.0, 7.0]]), np.array([0])),
        (np.array([[1.0, 1.0], [2.0, 2.0], [2.0, 2.0], [9.0, 1.0]]), np.array([0, 1, 3])),
        (np.column_stack([np.linspace(0, 1, 400), np.zeros(400)]), np.array([0])),
        (np.column_stack([np.arange(12) * step * np.array([0.5, 1, 1.5])[np.arange(12) % 3],
                          np.zeros(12)]), np.array([0, 5])),
        # An empty piece in the middle draws nothing in either.
        (np.array([[1.0, 1.0], [4.0, 4.0], [6.0, 1.0], [8.0, 3.0]]), np.array([0, 2, 2])),
    ]
    rng = np.random.default_rng(7)
    for _ in range(300):
        count = int(rng.integers(1, 200))
        points = np.cumsum(rng.normal(0, rng.choice([0.01, 0.5, 20.0]), (count, 2)), axis=0)
        cuts = np.sort(rng.choice(np.arange(1, count), min(count - 1, int(rng.integers(0, 6))),
                                  replace=False)) if count > 1 else np.array([], dtype=int)
        cases.append((points, np.concatenate(([0], cuts)).astype(np.int64)))
    for points, starts in cases:
        centre = points.mean(axis=0)
        for factor in (0.0, 0.013, 0.5, 1.0, 3.7):
            new_a, new_b = preprocessing._segments(points, starts, tuple(centre), factor)
            old_a, old_b = _reference_segments(points, starts, centre, factor)
            assert np.array_equal(new_a, old_a) and np.array_equal(new_b, old_b), (
                points.tolist(), starts.tolist(), factor)


def test_pieces_that_do_not_start_at_the_first_point_are_refused():
    """The compiled loop reads points by index without bounds checks: what
    it is given is checked before."""
    points = np.array([[1.0, 1.0], [2.0, 2.0]])
    for starts in (np.array([], dtype=np.int64), np.array([1])):
        with pytest.raises(ValueError):
            preprocessing._segments(points, starts, (0.0, 0.0), 1.0)
