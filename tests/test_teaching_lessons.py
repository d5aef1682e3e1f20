"""What the lessons say is what the code and the model do.

Each page is rendered for real (Django's test client, the real templates)
and its words are checked against the code they describe: the network's
normalisation and the first block of the model being served, the
preprocessing's pen and centring, the trainer's augmentation, and what the
pages show when the server lacks the MNIST files or a query makes no sense.
"""

import json
import logging
import re

import numpy as np
import pytest
import torch

from recognizer import network, preprocessing, versions
from recognizer.teaching import explain
from tests.support import SEVEN, register_random_model

pytestmark = pytest.mark.django_db(transaction=True)

SHIPPED = "digitcnn-v2-styles-seed1.pt"


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    """Each test gets its own service, so a model from another test never leaks in."""
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))


@pytest.fixture
def shipped_model(model_dir):
    """The model the site ships with, active, with the training record it ships with."""
    manifest = json.loads((versions.BUILTIN_DIR / "manifest.json").read_text())
    assert manifest["file"] == SHIPPED
    return versions.register_version(versions.BUILTIN_DIR / SHIPPED, activate=True,
                                     version="shipped", training=manifest["training"])


def blank_page_maps(version):
    """conv1's maps above zero on blank paper, away from the border, by hand."""
    model, _ = versions.load_version(version)
    paper = (0.0 - network.MNIST_MEAN) / network.MNIST_STD
    with torch.inference_mode():
        maps = model.conv1(torch.full((1, 1, 28, 28), paper))[0]
    return int((maps[:, 14, 14] > 0).sum()), int(maps.shape[0])


def text(html):
    """The page's words without tags, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# -- lesson 1: the network's first layer ------------------------------------------------------


def test_lesson_one_names_the_normalisation_and_batch_norm_with_the_models_numbers(
        client, shipped_model):
    words = text(client.get("/learn/how-it-works/").content.decode())
    responding, maps = blank_page_maps(shipped_model)
    # The shipped model: 14 of its 32 first-layer maps are above zero on blank paper.
    assert (responding, maps) == (14, 32)
    assert f"on a blank page, {responding} of this model's {maps} maps are above zero" in words
    assert "Paper (0) becomes -0.42 and full ink (1) becomes 2.82" in words
    assert "batch normalisation" in words and "a scale and adds a shift" in words
    assert "the 9 pixels under it" not in words
    # Step 4 keeps 0..1 and says where the network takes them.
    assert "a number between 0 (paper) and 1 (full ink)" in words
    assert "maps them to -0.42 (paper) to 2.82 (full ink)" in words


def test_lesson_one_counts_the_maps_of_whichever_model_is_served(client, model_dir):
    for seed in (0, 3):
        version = register_random_model(model_dir, seed=seed, activate=True)
        responding, maps = blank_page_maps(version)
        words = text(client.get("/learn/how-it-works/").content.decode())
        assert f"on a blank page, {responding} of this model's {maps} maps" in words, seed


def test_lesson_one_without_a_model_still_explains_blank_paper(client, db):
    words = text(client.get("/learn/how-it-works/").content.decode())
    assert "on a blank page some maps are above zero all over the paper" in words
    assert "Paper (0) becomes -0.42" in words


def test_lesson_one_describes_the_pen_and_the_centring_the_preprocessing_does(client, db):
    words = text(client.get("/learn/how-it-works/").content.decode())
    assert "like the handwritten digits the network learned from" not in words
    assert "exactly in the middle" not in words
    assert (f"a round pen of one fixed thickness, {preprocessing.PEN_WIDTH} pixels of the "
            "20x20 box") in words
    assert "training makes digits bolder or thinner at random" in words
    assert "the centre of pixel (14, 14)" in words
    assert "need not be a whole number of pixels" in words
    assert f"within {preprocessing.COM_TOLERANCE} pixel of the cross" in words

    # And that is what the preprocessing does: a slide by a fraction of a pixel
    # that ends within the tolerance of (14, 14).
    stages = preprocessing.strokes_to_stages(SEVEN["strokes"], SEVEN["width"], SEVEN["height"])
    assert any(abs(s - round(s)) > 0.05 for s in stages["shift"])
    final = stages["final_center_of_mass"]
    assert max(abs(final[0] - 14), abs(final[1] - 14)) < preprocessing.COM_TOLERANCE


# -- lesson 2 and the model card ---------------------------------------------------------------


def test_lesson_two_does_not_announce_an_answer_before_there_is_one(client, db):
    words = text(client.get("/learn/attention/").content.decode())
    assert 'The network says "7"' not in words
    assert "The network gives its answer" in words


def test_every_augmentation_of_the_trainer_has_words_on_the_card():
    from recognizer.teaching import augmentation
    from trainer.augment import AugmentConfig

    fields = AugmentConfig().as_dict()
    assert set(augmentation.LABELS) == set(fields)
    assert len(augmentation.describe(fields)) == len(fields)
    assert augmentation.describe(None) == []
    assert augmentation.describe(True) == augmentation.KINDS


def test_model_card_lists_the_augmentation_the_version_recorded(client, shipped_model):
    words = text(client.get("/learn/model/").content.decode())
    assert "shifted, rotated, scaled and thickened" not in words
    for change in ("turned by up to 12° either way",
                   "scaled to between 0.85 and 1.12 times their size",
                   "made up to 8% wider and shorter, or narrower and taller",
                   "slanted by up to 10°",
                   "shifted by up to 2.5 pixels in each direction",
                   "30% of them made bolder",
                   "15% of them made thinner"):
        assert change in words, change


def test_model_card_reads_other_recorded_amounts_and_unrecorded_ones(client, model_dir):
    from recognizer.teaching import augmentation
    from trainer.augment import AugmentConfig

    version = register_random_model(model_dir, seed=0, activate=True)
    version.training = {"augment": {**AugmentConfig().as_dict(), "rotation_degrees": 7.0,
                                    "thin_fraction": 0.0}}
    version.save()
    words = text(client.get("/learn/model/").content.decode())
    assert "turned by up to 7° either way" in words and "0% of them made thinner" in words
    version.training = {"augment": True}
    version.save()
    words = text(client.get("/learn/model/").content.decode())
    assert all(kind in words for kind in augmentation.KINDS)


# -- the data page without MNIST ---------------------------------------------------------------


def test_data_page_without_the_mnist_files_says_so_and_keeps_the_path_in_the_log(
        client, settings, tmp_path, active_model, caplog):
    empty = tmp_path / "mnist-folder-left-empty"
    empty.mkdir()
    settings.MNIST_DATA_DIR = empty
    with caplog.at_level(logging.WARNING, logger="recognizer.teaching"):
        response = client.get("/learn/data/?digit=4")
    html = response.content.decode()
    assert response.status_code == 200
    assert "The MNIST examples are not installed on this server" in html
    assert str(empty) not in html and str(tmp_path) not in html
    assert "ubyte" not in html
    logged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(empty) in r.getMessage() for r in logged)

    # A lesson asked to open an MNIST digit says the same, on the site's page.
    response = client.get("/learn/how-it-works/?mnist=5")
    html = response.content.decode()
    assert response.status_code == 404
    assert "The MNIST examples are not installed on this server" in html
    assert 'class="site-header"' in html and str(empty) not in html


# -- bad addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "reason"), [
    ("/learn/how-it-works/?mnist=abc", "“mnist” must be a whole number, not “abc”"),
    ("/learn/attention/?mnist=-3", "“mnist” must be between"),
    ("/learn/data/?digit=99", "“digit” must be between 0 and 9, not 99"),
    ("/learn/data/?digit=2&page=x", "“page” must be a whole number, not “x”"),
])
def test_bad_query_parameters_get_the_sites_page_with_the_reason(client, settings, mnist_dir,
                                                                  query, reason):
    settings.DEBUG = False
    settings.MNIST_DATA_DIR = mnist_dir
    response = client.get(query)
    html = response.content.decode()
    assert response.status_code == 404
    assert 'data-error-page="404"' in html and 'class="site-header"' in html
    assert "css/site.css" in html
    assert reason in html


def test_an_unknown_address_gets_the_sites_page_without_a_reason(client, settings, db):
    settings.DEBUG = False
    response = client.get("/learn/nowhere/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'data-error-page="404"' in html and "/learn/nowhere/" in html
    assert "data-error-reason" not in html and "Resolver404" not in html


def test_a_bad_request_gets_the_sites_page(client, settings, db):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get("/learn/", HTTP_HOST="not-this-site.example")
    html = response.content.decode()
    assert response.status_code == 400
    assert 'data-error-page="400"' in html and 'class="site-header"' in html


# -- attention: cells over blank paper ---------------------------------------------------------


def test_occlusion_marks_the_cells_that_covered_only_paper(client, active_model):
    body = client.post("/learn/api/attention", data=json.dumps(SEVEN),
                       content_type="application/json").json()
    image = preprocessing.strokes_to_stages(SEVEN["strokes"], SEVEN["width"],
                                            SEVEN["height"])["input"]
    paper = np.array(body["occlusion"]["paper"], dtype=bool).reshape(14, 14)
    covered = explain.occlusion_inputs(image)
    unchanged = np.array([np.array_equal(c, image) for c in covered]).reshape(14, 14)
    np.testing.assert_array_equal(paper, unchanged)
    assert paper.any() and not paper.all()
    values = np.array(body["occlusion"]["values"]).reshape(14, 14)
    assert np.all(values[paper] == 0)
