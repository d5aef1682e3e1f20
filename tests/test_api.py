"""POST /api/recognize: good drawings and images, and every kind of bad input."""

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.support import SEVEN

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/recognize"


def post_json(client, payload, **extra):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return client.post(URL, data=body, content_type="application/json", **extra)


def assert_error(response, status, words):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    message = response.json()["error"]
    assert words.lower() in message.lower(), message


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    """Each test gets its own service, so a model from another test never leaks in."""
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))


@pytest.fixture(autouse=True)
def fresh_limits(monkeypatch):
    """Each test starts with a full rate bucket for the test client's address."""
    from recognizer import clients

    monkeypatch.setattr(clients, "_limits", None)


def test_strokes_give_a_digit_probabilities_and_the_model_version(client, active_model):
    response = post_json(client, SEVEN)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"digit", "probabilities", "model"}
    assert body["model"] == active_model.version
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-6)
    assert body["digit"] == int(np.argmax(body["probabilities"]))


def test_the_answer_is_the_models_answer_for_the_preprocessed_drawing(client, active_model):
    from recognizer.inference import InferenceService
    from recognizer.preprocessing import strokes_to_input

    expected = InferenceService(reload_seconds=0).predict(
        strokes_to_input(SEVEN["strokes"], SEVEN["width"], SEVEN["height"])
    )
    body = post_json(client, SEVEN).json()
    np.testing.assert_allclose(body["probabilities"], expected.probabilities, atol=1e-6)


def test_points_without_times_are_accepted(client, active_model):
    payload = {"width": 200, "height": 100, "strokes": [[[10, 10], [90, 80]]]}
    assert post_json(client, payload).status_code == 200


def test_image_upload(client, active_model):
    image = Image.new("L", (640, 480), 255)
    ImageDraw.Draw(image).line([(200, 100), (420, 100), (300, 400)], fill=0, width=24)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "seven.png"
    response = client.post(URL, data={"image": buffer})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == active_model.version
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    "payload, words",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\xfd", "not valid JSON"),
        ([1, 2, 3], "JSON object"),
        ({"width": 100, "height": 100}, "missing field 'strokes'"),
        ({"width": "100", "height": 100, "strokes": [[[1, 2]]]}, "width must be a number"),
        ({"width": 100, "height": 100, "strokes": "abc"}, "strokes must be a list"),
        ({"width": 100, "height": 100, "strokes": [[1, 2]]}, "must be [x, y]"),
        ({"width": 100, "height": 100, "strokes": [[[1, 2, 3, 4]]]}, "must be [x, y]"),
        ({"width": 100, "height": 100, "strokes": [[["1", 2]]]}, "must be a number"),
        ({"width": 100, "height": 100, "strokes": [[[True, 2]]]}, "must be a number"),
        ({"width": 100, "height": 100, "strokes": [[[None, 2]]]}, "must be a number"),
        ({"width": 0, "height": 100, "strokes": [[[1, 2]]]}, "width must be between"),
        ({"width": 100, "height": 100, "strokes": []}, "empty"),
        ({"width": 100, "height": 100, "strokes": [[], []]}, "empty"),
    ],
)
def test_malformed_drawings_get_a_clear_400(client, active_model, payload, words):
    assert_error(post_json(client, payload), 400, words)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused(client, active_model, bad):
    body = '{"width": 100, "height": 100, "strokes": [[[' + bad + ', 5], [6, 7]]]}'
    assert_error(post_json(client, body), 400, "finite")


def test_more_than_ten_thousand_points_is_refused(client, active_model):
    stroke = [[i % 100, i // 100] for i in range(10_001)]
    assert_error(post_json(client, {"width": 100, "height": 101, "strokes": [stroke]}), 400,
                 "too many points")


def test_exactly_ten_thousand_points_is_fine(client, active_model):
    # A "0" traced by a fast stylus: 10,000 points, an ordinary amount of ink.
    angles = np.linspace(0, 2 * np.pi, 10_000)
    stroke = [[round(150 + 80 * np.cos(a), 2), round(150 + 110 * np.sin(a), 2)] for a in angles]
    assert post_json(client, {"width": 300, "height": 300, "strokes": [stroke]}).status_code == 200


def test_more_strokes_than_points_allowed_is_refused(client, active_model):
    """10,001 empty strokes: each would cost a loop step; refused before any."""
    strokes = [[] for _ in range(10_001)]
    strokes[0] = [[1, 2]]
    assert_error(post_json(client, {"width": 100, "height": 100, "strokes": strokes}), 400,
                 "too many strokes")


def test_a_zigzag_between_opposite_corners_is_refused_as_too_much_ink(client, active_model):
    """The 10,000-point corner-to-corner zigzag that cost 1.4 s and 530 MB to render."""
    from tests.worst_drawings import corner_zigzag

    response = post_json(client, corner_zigzag(10_000))
    assert_error(response, 400, "too much ink for one digit")
    assert "at most 20" in response.json()["error"]


def test_a_number_too_large_for_a_float_is_refused_not_a_500(client, active_model):
    """Hostile inputs: a 400-digit integer (refused while decoding, before
    Python builds it) and 1e400 (a float too large to be finite)."""
    body = '{"width": 100, "height": 100, "strokes": [[[' + "9" * 400 + ', 5], [6, 7]]]}'
    assert_error(post_json(client, body), 400, "more than 20 digits")
    body = '{"width": 100, "height": 100, "strokes": [[[1e400, 5], [6, 7]]]}'
    assert_error(post_json(client, body), 400, "finite")


@pytest.mark.parametrize("content_type", [
    "",  # what a Blob without a type sends: a cross-site "simple" request
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
])
def test_json_must_be_declared_as_application_json(client, active_model, content_type):
    response = client.post(URL, data=json.dumps(SEVEN), content_type=content_type)
    assert_error(response, 415, "Content-Type: application/json")


def test_application_json_with_a_charset_is_json(client, active_model):
    response = client.post(URL, data=json.dumps(SEVEN),
                           content_type="application/json; charset=utf-8")
    assert response.status_code == 200


def test_a_body_over_one_mebibyte_is_refused(client, active_model):
    body = json.dumps({"width": 100, "height": 100, "strokes": [[[1, 2]]], "pad": "x" * (1 << 20)})
    assert_error(post_json(client, body), 413, "larger than")


@pytest.mark.parametrize(
    "content, words",
    [
        (b"this is not an image", "image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image"),
    ],
)
def test_broken_images_get_a_clear_400(client, active_model, content, words):
    upload = io.BytesIO(content)
    upload.name = "broken.png"
    assert_error(client.post(URL, data={"image": upload}), 400, words)


def test_multipart_without_an_image_field(client, active_model):
    assert_error(client.post(URL, data={"picture": "x"}), 400, "field 'image'")


def test_get_is_not_allowed(client, active_model):
    assert_error(client.get(URL), 405, "POST")


def test_no_active_model_is_a_503_not_a_500(client, model_dir):
    assert_error(post_json(client, SEVEN), 503, "no model")
