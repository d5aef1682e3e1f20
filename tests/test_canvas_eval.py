"""The canvas-style evaluation set: MNIST digits traced, redrawn, preprocessed."""

import numpy as np
import pytest
from skimage.morphology import skeletonize

from recognizer.payloads import parse_drawing
from recognizer.preprocessing import center_of_mass, strokes_to_input
from trainer.canvas_eval import build_canvas_eval_set, redraw_on_canvas, trace_strokes


def t_shape():
    image = np.zeros((28, 28))
    image[4:7, 4:24] = 1.0
    image[4:24, 13:16] = 1.0
    return image


def ring():
    yy, xx = np.mgrid[:28, :28]
    radius = np.hypot(yy - 13.5, xx - 13.5)
    return ((radius > 6) & (radius < 9)).astype(np.float64)


def links_of(strokes):
    """Every step between consecutive points, as an unordered pair."""
    links = []
    for stroke in strokes:
        for p, q in zip(stroke[:-1], stroke[1:], strict=True):
            links.append(tuple(sorted((p, q))))
    return links


def check_traced(image, strokes):
    """Strokes walk the skeleton: all of its pixels, each link once, 8-connected steps."""
    skeleton = skeletonize(np.asarray(image) >= (127.5 if np.asarray(image).max() > 1 else 0.5))
    expected = {(float(c), float(r)) for r, c in zip(*np.nonzero(skeleton), strict=True)}
    drawn = {point for stroke in strokes for point in stroke}
    assert drawn == expected
    links = links_of(strokes)
    assert len(links) == len(set(links)), "a skeleton link was walked twice"
    for p, q in links:
        assert max(abs(p[0] - q[0]), abs(p[1] - q[1])) == 1, (p, q)


# -- tracing -----------------------------------------------------------------


def test_a_junction_splits_the_strokes():
    strokes = trace_strokes(t_shape())
    check_traced(t_shape(), strokes)
    assert len(strokes) == 3
    # The three strokes meet at one junction pixel.
    ends = [stroke[0] for stroke in strokes] + [stroke[-1] for stroke in strokes]
    junction = max(set(ends), key=ends.count)
    assert ends.count(junction) == 3


def test_a_loop_is_one_closed_stroke_in_path_order():
    strokes = trace_strokes(ring())
    check_traced(ring(), strokes)
    assert len(strokes) == 1
    stroke = strokes[0]
    assert stroke[0] == stroke[-1]
    assert len(stroke) > 30


def test_a_lone_pixel_and_a_blank_image():
    dot = np.zeros((28, 28), dtype=np.uint8)
    dot[10, 12] = 255
    assert trace_strokes(dot) == [[(12.0, 10.0)]]
    assert trace_strokes(np.zeros((28, 28))) == []
    with pytest.raises(ValueError, match="28x28"):
        trace_strokes(np.zeros((20, 20)))


def test_mnist_digits_are_traced_completely(mnist_test):
    images, _ = mnist_test
    for image in images[:40]:
        strokes = trace_strokes(image)
        assert strokes
        check_traced(image, strokes)
    # uint8 and the same image as floats in [0, 1] trace alike.
    assert trace_strokes(images[0]) == trace_strokes(images[0] / 255.0)


# -- redrawing ---------------------------------------------------------------


def test_redrawn_strokes_are_a_plausible_canvas_drawing():
    strokes = trace_strokes(t_shape())
    for seed in range(20):
        drawn, width, height = redraw_on_canvas(strokes, np.random.default_rng(seed))
        assert 200 <= width <= 800 and 200 <= height <= 800
        points = np.array([point for stroke in drawn for point in stroke])
        assert points.shape[1] == 3
        assert (points[:, 0] >= 0).all() and (points[:, 0] <= width).all()
        assert (points[:, 1] >= 0).all() and (points[:, 1] <= height).all()
        # Time only moves forward, across strokes too, and a digit takes a second or so.
        assert (np.diff(points[:, 2]) >= 0).all()
        assert 200 <= points[-1, 2] <= 3000
        extent = max(np.ptp(points[:, 0]), np.ptp(points[:, 1]))
        assert 0.12 * min(width, height) <= extent <= 0.95 * min(width, height)
        # The API accepts it as it is.
        payload = {"width": width, "height": height,
                   "strokes": [[list(point) for point in stroke] for stroke in drawn]}
        parsed = parse_drawing(payload)
        assert parsed.point_count == len(points)


def test_redrawing_follows_its_options_and_its_seed():
    strokes = trace_strokes(ring())
    first = redraw_on_canvas(strokes, np.random.default_rng(3), canvas_size=(300, 320),
                             digit_fraction=(0.5, 0.5))
    again = redraw_on_canvas(strokes, np.random.default_rng(3), canvas_size=(300, 320),
                             digit_fraction=(0.5, 0.5))
    other = redraw_on_canvas(strokes, np.random.default_rng(4), canvas_size=(300, 320),
                             digit_fraction=(0.5, 0.5))
    assert first == again
    assert first != other
    drawn, width, height = first
    assert 300 <= width <= 320 and 300 <= height <= 320
    points = np.array([point for stroke in drawn for point in stroke])
    extent = max(np.ptp(points[:, 0]), np.ptp(points[:, 1]))
    assert extent == pytest.approx(0.5 * min(width, height), rel=0.15)
    with pytest.raises(ValueError):
        redraw_on_canvas([], np.random.default_rng(0))


def test_the_same_digit_redrawn_anywhere_preprocesses_alike():
    for image in (t_shape(), ring()):
        strokes = trace_strokes(image)
        # The traced strokes drawn as they are, on a 28x28 "canvas".
        plain = strokes_to_input(strokes, 28, 28)
        correlation = []
        for seed in range(20):
            drawn, width, height = redraw_on_canvas(strokes, np.random.default_rng(seed))
            redrawn = strokes_to_input(drawn, width, height)
            correlation.append(np.corrcoef(redrawn.ravel(), plain.ravel())[0, 1])
        # Size and place are normalised away; what is left is the few degrees
        # of tilt and percent of stretch a hand adds.
        assert np.median(correlation) > 0.85
        assert min(correlation) > 0.5


# -- the evaluation set ------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    from trainer import mnist

    images, labels = mnist.load_split("test", data_dir=mnist_dir, download=False)
    return images[:120], labels[:120]


def test_redrawn_mnist_digits_keep_their_structure(mnist_test):
    images, labels = mnist_test
    inputs, out_labels = build_canvas_eval_set(images, labels, seed=0, use_cache=False)
    assert inputs.shape == (120, 28, 28) and inputs.dtype == np.float32
    assert out_labels.dtype == np.int64
    np.testing.assert_array_equal(out_labels, labels)
    assert inputs.min() >= 0 and inputs.max() <= 1
    for image in inputs:
        assert center_of_mass(image) == pytest.approx((14, 14), abs=0.2)
    correlation = np.array([
        np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(inputs, images, strict=True)
    ])
    # Same digit, same place, same thickness: close to the original scan.
    assert correlation.mean() > 0.7
    assert (correlation > 0.5).mean() > 0.95


def test_the_set_is_deterministic_for_a_seed(mnist_test):
    images, labels = mnist_test
    images, labels = images[:30], labels[:30]
    first, _ = build_canvas_eval_set(images, labels, seed=7, use_cache=False)
    again, _ = build_canvas_eval_set(images, labels, seed=7, use_cache=False)
    other, _ = build_canvas_eval_set(images, labels, seed=8, use_cache=False)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.1
    # Each digit has its own generator: a shorter set is a prefix of a longer one.
    head, head_labels = build_canvas_eval_set(images, labels, seed=7, limit=10, use_cache=False)
    np.testing.assert_array_equal(head, first[:10])
    np.testing.assert_array_equal(head_labels, labels[:10])
    # Floats in [0, 1] give the same set as uint8.
    floats, _ = build_canvas_eval_set(images / 255.0, labels, seed=7, use_cache=False)
    np.testing.assert_array_equal(floats, first)


def test_the_set_is_cached_atomically_and_a_damaged_cache_is_rebuilt(mnist_test, tmp_path):
    images, labels = mnist_test
    images, labels = images[:12], labels[:12]
    built, _ = build_canvas_eval_set(images, labels, seed=1, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    assert "seed1" in files[0].name
    cache = files[0]

    # The second call reads the file: planted contents come back.
    planted = np.full_like(built, 0.25)
    with open(cache, "wb") as handle:
        np.savez_compressed(handle, inputs=planted, labels=labels)
    from_cache, _ = build_canvas_eval_set(images, labels, seed=1, cache_dir=tmp_path)
    np.testing.assert_array_equal(from_cache, planted)

    # A damaged file is ignored and replaced.
    cache.write_bytes(b"not an npz file")
    rebuilt, _ = build_canvas_eval_set(images, labels, seed=1, cache_dir=tmp_path)
    np.testing.assert_array_equal(rebuilt, built)
    reread, _ = build_canvas_eval_set(images, labels, seed=1, cache_dir=tmp_path)
    np.testing.assert_array_equal(reread, built)

    # Other images, seed or limit: another file. No temporary file is left.
    build_canvas_eval_set(images[::-1], labels[::-1], seed=1, cache_dir=tmp_path)
    build_canvas_eval_set(images, labels, seed=2, cache_dir=tmp_path)
    build_canvas_eval_set(images, labels, seed=1, limit=5, cache_dir=tmp_path)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 4
    assert all(name.endswith(".npz") and not name.startswith(".") for name in names)


def test_the_default_cache_lives_under_var_dir(mnist_test, settings, tmp_path):
    images, labels = mnist_test
    settings.VAR_DIR = tmp_path
    build_canvas_eval_set(images[:3], labels[:3], seed=0)
    assert len(list((tmp_path / "cache").glob("canvas-eval-*.npz"))) == 1


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((3, 28, 27)), np.zeros(3), "shape"),
    (np.zeros((3, 28, 28)), np.zeros(2), "labels"),
])
def test_bad_arrays_are_refused(images, labels, message):
    with pytest.raises(ValueError, match=message):
        build_canvas_eval_set(images, labels, use_cache=False)


def test_a_blank_image_is_named_in_the_error():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[0] = (t_shape() * 255).astype(np.uint8)
    with pytest.raises(ValueError, match="image 1"):
        build_canvas_eval_set(images, [1, 2], use_cache=False)
