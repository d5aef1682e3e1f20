"""The preprocessing pipeline: strokes and images to MNIST-style 28x28 inputs."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recognizer import preprocessing
from recognizer.payloads import PayloadError, parse_drawing
from recognizer.preprocessing import (
    PEN_WIDTH,
    DrawingError,
    bytes_to_input,
    center_of_mass,
    image_to_input,
    input_to_bytes,
    input_to_png,
    strokes_to_input,
    strokes_to_stages,
)

# Shapes in a unit square (x right, y down), scaled onto canvases below.
SEVEN = [[(0.15, 0.1), (0.85, 0.1), (0.4, 0.95)]]
ELL = [[(0.2, 0.05), (0.2, 0.9), (0.7, 0.9)]]
TWO = [[(0.2, 0.3), (0.35, 0.15), (0.6, 0.12), (0.75, 0.25), (0.7, 0.45), (0.3, 0.85),
        (0.8, 0.85)]]
FOUR = [[(0.6, 0.05), (0.15, 0.6), (0.85, 0.6)], [(0.6, 0.3), (0.6, 0.95)]]


def place(shape, canvas, size, left, top):
    """`shape` drawn `size` pixels big with its unit square's corner at (left, top)."""
    return [[(left + x * size, top + y * size) for x, y in stroke] for stroke in shape]


def ink_extent(image, axis):
    """Rows (axis=1) or columns (axis=0) holding any ink."""
    used = np.flatnonzero(image.any(axis=axis))
    return used[-1] - used[0] + 1


def stroke_width(image):
    """Mean stroke width: ink divided by skeleton length (pixels), MNIST-style."""
    from skimage.morphology import skeletonize

    return image.sum() / max(1, skeletonize(image >= 0.5).sum())


# -- strokes: MNIST geometry -------------------------------------------------


@pytest.mark.parametrize("strokes, width, height", [
    (place(SEVEN, 400, 300, 50, 40), 400, 400),
    (place(ELL, 800, 500, 20, 250), 800, 800),
    # An off-centre cluster of dots, each a one-point stroke, in a corner.
    ([[(30, 40)], [(42, 41)], [(35, 55)], [(50, 52), (50, 52)], [(31, 60)]], 600, 600),
])
def test_center_of_mass_lands_on_the_centre(strokes, width, height):
    image = strokes_to_input(strokes, width, height)
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.min() >= 0 and image.max() == pytest.approx(1.0)
    cx, cy = center_of_mass(image)
    assert abs(cx - 14) < 0.05 and abs(cy - 14) < 0.05


def test_the_shift_is_sub_pixel_and_measured_before_it_is_applied():
    stages = strokes_to_stages(place(SEVEN, 400, 300, 50, 40), 400, 400)
    com = stages["center_of_mass"]
    assert com == pytest.approx(center_of_mass(stages["centered_box"]))
    # A "7" is heavy at the top: it has to move down, by a fraction of a pixel too.
    dx, dy = stages["shift"]
    assert dy > 1 and dx != round(dx) and dy != round(dy)
    assert stages["final_center_of_mass"] == pytest.approx((14, 14), abs=0.05)


def test_thickness_does_not_depend_on_canvas_or_digit_size():
    inputs = []
    for canvas in (200, 500, 1200):
        for fraction in (0.2, 0.5, 0.9):
            size = canvas * fraction
            left = (canvas - size) * 0.3 + 0.37  # anywhere, at sub-pixel offsets
            top = (canvas - size) * 0.6 + 0.11
            inputs.append(strokes_to_input(place(TWO, canvas, size, left, top), canvas, canvas))
    reference = inputs[0]
    for image in inputs[1:]:
        assert np.abs(image - reference).max() < 0.02
        assert image.sum() == pytest.approx(reference.sum(), rel=0.01)


def test_a_straight_line_carries_pen_width_of_ink_per_pixel_of_length():
    image = strokes_to_input([[(100, 20), (100, 380)]], 400, 400)
    # Every row in the middle of a vertical line holds exactly one pen width of ink.
    rows = image[8:20].sum(axis=1)
    np.testing.assert_allclose(rows, PEN_WIDTH, rtol=0.01)


def test_the_bounding_box_is_fitted_to_20x20_keeping_the_aspect_ratio():
    one = strokes_to_stages([[(300, 100), (303, 500)]], 600, 600)
    assert one["scale"] == pytest.approx((20 - PEN_WIDTH) / 400)
    assert ink_extent(one["fitted"], axis=1) == 20  # 20 rows high
    assert ink_extent(one["fitted"], axis=0) <= 4  # and narrow
    assert ink_extent(one["input"], axis=1) <= 21  # whatever its sub-pixel position
    assert one["input"][0].sum() == 0 and one["input"][-1].sum() == 0

    dash = strokes_to_stages([[(100, 300), (500, 302)]], 600, 600)
    assert ink_extent(dash["fitted"], axis=0) == 20
    assert ink_extent(dash["fitted"], axis=1) <= 4

    # A box twice as high as wide: the ink's width is the skeleton's (half of
    # 20 - pen) plus one pen width.
    ell = strokes_to_stages([[(100, 100), (100, 500), (300, 500)]], 600, 600)
    columns = ell["fitted"].sum(axis=0)
    assert ink_extent(ell["fitted"], axis=1) == 20
    assert columns.sum() > 0
    expected_width = (20 - PEN_WIDTH) / 2 + PEN_WIDTH
    assert abs(ink_extent(ell["fitted"], axis=0) - expected_width) <= 1.0


def test_stages_are_consistent_with_the_input():
    strokes = place(FOUR, 500, 350, 80, 60)
    stages = strokes_to_stages(strokes, 500, 500)
    np.testing.assert_array_equal(stages["input"], strokes_to_input(strokes, 500, 500))
    assert stages["bbox"] == pytest.approx({
        "left": 80 + 0.15 * 350, "top": 60 + 0.05 * 350, "right": 80 + 0.85 * 350,
        "bottom": 60 + 0.95 * 350, "width": 0.7 * 350, "height": 0.9 * 350,
    })
    assert stages["scale"] == pytest.approx((20 - PEN_WIDTH) / (0.9 * 350))
    assert stages["strokes"] == 2 and stages["points"] == 5
    assert stages["fitted"].shape == (20, 20)
    np.testing.assert_array_equal(stages["fitted"], stages["centered_box"][4:24, 4:24])
    assert stages["centered_box"].sum() == pytest.approx(stages["fitted"].sum())
    com = stages["center_of_mass"]
    assert stages["shift"] == pytest.approx((14 - com[0], 14 - com[1]), abs=0.03)
    # Moving the ink moves it, without adding or losing any to speak of.
    assert stages["input"].sum() == pytest.approx(stages["centered_box"].sum(), rel=0.02)
    assert stages["pen_width"] == PEN_WIDTH
    assert stages["canvas"] == {"width": 500.0, "height": 500.0}


def test_points_with_times_as_parse_drawing_returns_them():
    drawing = parse_drawing({
        "width": 320, "height": 240,
        "strokes": [[[40, 30, 0], [200, 30, 16], [90, 220, 40]]],
    })
    image = strokes_to_input(drawing.strokes, drawing.width, drawing.height)
    plain = strokes_to_input([[(40, 30), (200, 30), (90, 220)]], 320, 240)
    np.testing.assert_array_equal(image, plain)


def test_parse_drawing_gives_floats_and_names_the_point_at_fault():
    """The whole-drawing check and the point-by-point one agree."""
    drawing = parse_drawing({
        "width": 320, "height": 240,
        "strokes": [[[40, 30.5, 0], [200, 30]], [], [[1, 2]]],
    })
    assert drawing.strokes == (((40.0, 30.5, 0.0), (200.0, 30.0)), ((1.0, 2.0),))
    assert all(type(v) is float for stroke in drawing.strokes for p in stroke for v in p)
    with pytest.raises(PayloadError, match="point 1 of stroke 2 must be a number"):
        parse_drawing({"width": 9, "height": 9,
                       "strokes": [[[1, 2]], [], [[3, 4], [5, False]]]})
    with pytest.raises(PayloadError, match="point 0 of stroke 1 must be finite"):
        parse_drawing({"width": 9, "height": 9, "strokes": [[[1, 2]], [[10 ** 400, 4]]]})
    with pytest.raises(PayloadError, match="too many points"):
        parse_drawing({"width": 9, "height": 9, "strokes": [[[1, 2]] * 6]}, max_points=5)
    with pytest.raises(PayloadError, match="too many strokes"):
        parse_drawing({"width": 9, "height": 9, "strokes": [[]] * 6}, max_points=5)


# -- strokes: awkward input --------------------------------------------------


def test_a_single_dot_is_a_centred_pen_wide_disc():
    stages = strokes_to_stages([[(123.4, 56.7)]], 300, 300)
    image = stages["input"]
    assert stages["scale"] is None
    assert center_of_mass(image) == pytest.approx((14, 14), abs=1e-6)
    assert image.sum() == pytest.approx(np.pi * (PEN_WIDTH / 2) ** 2, rel=0.15)
    assert ink_extent(image, axis=0) <= 4


def test_duplicate_points_change_nothing():
    clean = [[(50, 50), (250, 50), (120, 350)]]
    repeated = [[(50, 50), (50, 50), (250, 50), (250, 50), (250, 50), (120, 350), (120, 350)]]
    np.testing.assert_allclose(strokes_to_input(repeated, 300, 400),
                               strokes_to_input(clean, 300, 400), atol=1e-6)
    # A stroke that is one point many times is a dot, like a tap.
    tap = strokes_to_input([[(10, 10)] * 50], 100, 100)
    assert center_of_mass(tap) == pytest.approx((14, 14), abs=1e-6)


def test_a_vertical_line_has_no_width_and_does_not_divide_by_zero():
    image = strokes_to_input([[(50, 10), (50, 90)]], 100, 100)
    assert np.isfinite(image).all()
    assert ink_extent(image, axis=1) >= 20
    assert center_of_mass(image) == pytest.approx((14, 14), abs=0.05)


def test_ink_outside_the_canvas_is_cut_at_the_edge():
    # The pen left the canvas and came back: only the visible part counts.
    strokes = [[(50, 50), (50, 150), (-80, 150), (-80, 300), (50, 300), (50, 350)]]
    visible = [[(50, 50), (50, 150), (0, 150)], [(0, 300), (50, 300), (50, 350)]]
    np.testing.assert_allclose(strokes_to_input(strokes, 400, 400),
                               strokes_to_input(visible, 400, 400), atol=1e-5)
    # Points that are all outside, except one stroke.
    mixed = [[(-10, -10), (-20, -30)], [(100, 100), (100, 300)]]
    only = [[(100, 100), (100, 300)]]
    np.testing.assert_array_equal(strokes_to_input(mixed, 400, 400),
                                  strokes_to_input(only, 400, 400))


@pytest.mark.parametrize("strokes, width, height, message", [
    ([], 100, 100, "empty"),
    ([[], []], 100, 100, "empty"),
    ([[(-5, -5), (-1, -9)]], 100, 100, "outside"),
    ([[(1, float("nan"))]], 100, 100, "finite"),
    ([[(1, float("inf"))]], 100, 100, "finite"),
    ([[(1, 2)]], 0, 100, "positive"),
    ([[(1, 2)]], 100, float("nan"), "positive"),
    ([[(1, 2)]], "wide", 100, "numbers"),
    ([[("a", 2)]], 100, 100, "points"),
    ([[1, 2]], 100, 100, "points"),
    ([[(1, 2, 3, 4)]], 100, 100, None),
    (None, 100, 100, "list of strokes"),
    ("strokes", 100, 100, "list of strokes"),
])
def test_bad_strokes_are_refused_with_a_clear_error(strokes, width, height, message):
    if message is None:
        # Extra numbers after x and y are ignored, like a time stamp.
        assert strokes_to_input(strokes, width, height).sum() > 0
        return
    with pytest.raises(DrawingError, match=message):
        strokes_to_input(strokes, width, height)


def test_mean_stroke_width_matches_mnist(mnist_dir):
    from trainer import mnist
    from trainer.canvas_eval import build_canvas_eval_set

    images, labels = mnist.load_split("test", data_dir=mnist_dir, download=False)
    images, labels = images[:300], labels[:300]
    mnist_width = np.mean([stroke_width(image / 255.0) for image in images])
    redrawn, _ = build_canvas_eval_set(images, labels, seed=0, use_cache=False)
    ours = np.mean([stroke_width(image) for image in redrawn])
    # MNIST's digits measure about 2.8 pixels with this estimator.
    assert 2.4 < mnist_width < 3.1
    assert ours == pytest.approx(mnist_width, rel=0.08)
    # And as much ink per digit.
    assert redrawn.sum(axis=(1, 2)).mean() == pytest.approx(
        (images / 255.0).sum(axis=(1, 2)).mean(), rel=0.1)


# -- images ------------------------------------------------------------------


def draw_two(size, pen=0.08, ink=0, paper=255, mode="L"):
    """TWO drawn with Pillow on a `size` image, pen as a fraction of the shorter side."""
    w, h = size
    image = Image.new(mode, (w, h), paper)
    draw = ImageDraw.Draw(image)
    side = min(w, h)
    points = [(x * side + (w - side) / 2, y * side + (h - side) / 2) for x, y in TWO[0]]
    radius = pen * side / 2
    draw.line(points, fill=ink, width=max(1, round(pen * side)))
    for x, y in points:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=ink)
    return image


def encode(image, fmt="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def reference_two():
    return image_to_input(encode(draw_two((280, 280))))


def transparent(ink_colour):
    alpha = draw_two((280, 280), ink=255, paper=0)
    image = Image.new("RGBA", (280, 280), (*ink_colour, 0))
    image.putalpha(alpha)
    return image


IMAGE_VARIANTS = {
    "light on dark": lambda: encode(draw_two((280, 280), ink=255, paper=0)),
    "jpeg": lambda: encode(draw_two((280, 280)).convert("RGB"), "JPEG", quality=75),
    "large, not square": lambda: encode(draw_two((1500, 1100))),
    "small": lambda: encode(draw_two((64, 64))),
    "colour": lambda: encode(Image.merge("RGB", [
        draw_two((300, 300), ink=30, paper=250), draw_two((300, 300), ink=40, paper=240),
        draw_two((300, 300), ink=160, paper=60)])),
    "black ink on transparent": lambda: encode(transparent((0, 0, 0))),
    "white ink on transparent": lambda: encode(transparent((255, 255, 255))),
    "grey paper photo-like": lambda: encode(draw_two((400, 400), ink=70, paper=190)),
    "fine pen, large image": lambda: encode(draw_two((1000, 1000), pen=0.012)),
}


@pytest.mark.parametrize("variant", list(IMAGE_VARIANTS))
def test_the_same_digit_in_any_image_gives_nearly_the_same_input(variant, reference_two):
    image = image_to_input(IMAGE_VARIANTS[variant]())
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert center_of_mass(image) == pytest.approx((14, 14), abs=0.05)
    assert np.abs(image - reference_two).mean() < 0.03
    assert np.corrcoef(image.ravel(), reference_two.ravel())[0, 1] > 0.98
    assert image.sum() == pytest.approx(reference_two.sum(), rel=0.08)


def test_an_image_is_fitted_like_strokes(reference_two):
    strokes = strokes_to_input(place(TWO, 280, 280, 0, 0), 280, 280)
    assert np.corrcoef(reference_two.ravel(), strokes.ravel())[0, 1] > 0.97
    assert reference_two.sum() == pytest.approx(strokes.sum(), rel=0.1)
    # 20 pixels high, give or take the sub-pixel position.
    assert ink_extent(reference_two, axis=1) in (20, 21, 22)


def test_a_speck_of_dust_does_not_move_the_digit(reference_two):
    image = draw_two((280, 280))
    ImageDraw.Draw(image).ellipse([262, 262, 265, 265], fill=0)
    np.testing.assert_allclose(image_to_input(encode(image)), reference_two, atol=1e-6)


def png_claiming(width, height):
    """A tiny PNG whose header says it is width x height."""
    data = bytearray(encode(Image.new("L", (1, 1), 255)))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17]))
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not an image"),
    (encode(draw_two((200, 200)))[:300], "damaged or truncated"),
    (encode(draw_two((200, 200)).convert("RGB"), "JPEG")[:400], "damaged or truncated"),
    (png_claiming(20_000, 20_000), "too large"),
    (png_claiming(6000, 5000), "too large"),
    (encode(Image.new("L", (200, 200), 255)), "blank"),
    (encode(Image.new("RGB", (200, 200), (0, 0, 0))), "blank"),
    (encode(Image.new("RGBA", (200, 200), (0, 0, 0, 0))), "blank"),
    (encode(Image.new("L", (1, 1), 0)), "blank"),
    # Faint texture is not a digit.
    (encode(Image.fromarray(
        (200 + np.random.default_rng(0).integers(0, 12, (120, 120))).astype(np.uint8))),
     "blank"),
])
def test_bad_images_are_refused_with_a_clear_error(data, message):
    with pytest.raises(DrawingError, match=message):
        image_to_input(data)


def test_a_corrupted_png_is_refused():
    data = bytearray(encode(draw_two((200, 200))))
    middle = len(data) // 2
    data[middle:middle + 40] = b"\x00" * 40
    with pytest.raises(DrawingError):
        image_to_input(bytes(data))


def test_image_input_must_be_bytes():
    with pytest.raises(DrawingError, match="bytes"):
        image_to_input("a file name")


# -- storage and display -----------------------------------------------------


def test_bytes_round_trip_matches_the_drawing_model():
    from recognizer.models import Drawing

    image = strokes_to_input(place(SEVEN, 300, 250, 20, 30), 300, 300)
    data = input_to_bytes(image)
    assert isinstance(data, bytes) and len(data) == 784
    back = bytes_to_input(data)
    assert back.dtype == np.float32 and back.shape == (28, 28)
    assert np.abs(back - image).max() <= 0.5 / 255 + 1e-6
    # The model reads the same format back.
    np.testing.assert_allclose(Drawing(input_image=data).input_array(), back, atol=1e-6)
    assert data[0] == 0 and max(data) == 255


def test_bytes_of_the_wrong_size_or_shape_are_refused():
    with pytest.raises(DrawingError, match="784"):
        bytes_to_input(b"\x00" * 100)
    with pytest.raises(DrawingError, match="28x28"):
        input_to_bytes(np.zeros((14, 14)))
    with pytest.raises(DrawingError, match="finite"):
        input_to_bytes(np.full((28, 28), np.nan))


@pytest.mark.parametrize("scale", [1, 4])
def test_input_to_png_is_white_ink_on_black(scale):
    image = strokes_to_input(place(ELL, 300, 250, 20, 30), 300, 300)
    png = input_to_png(image, scale=scale)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = Image.open(io.BytesIO(png))
    assert decoded.size == (28 * scale, 28 * scale) and decoded.mode == "L"
    pixels = np.asarray(decoded)
    # Hard pixels: every 28x28 pixel is a scale x scale block of one value.
    np.testing.assert_array_equal(pixels[::scale, ::scale], np.rint(image * 255))
    np.testing.assert_array_equal(pixels, np.kron(pixels[::scale, ::scale],
                                                  np.ones((scale, scale), dtype=np.uint8)))
    assert pixels[0, 0] == 0 and pixels.max() == 255


@pytest.mark.parametrize("scale", [0, -1, 2.5, True, 1000])
def test_input_to_png_refuses_a_bad_scale(scale):
    with pytest.raises(DrawingError, match="scale"):
        input_to_png(np.zeros((28, 28)), scale=scale)


def test_the_module_keeps_its_public_names():
    for name in ("DrawingError", "strokes_to_input", "strokes_to_stages", "image_to_input",
                 "input_to_png", "input_to_bytes", "bytes_to_input"):
        assert hasattr(preprocessing, name)
    assert issubclass(DrawingError, ValueError)
