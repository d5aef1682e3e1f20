"""The teaching endpoints at classroom scale: bounded answers, caches keyed right.

- "How it works" answers stay under 15 kB for any drawing, the worst first:
  random noise as a ready input (maps that barely compress), a dense scribble
  at the ink limit, every stage asked for at once; the stages left out come
  in the next answers, and every decoded map is the network's own within the
  precision each answer states.
- "What the model looks at" computes once per (model, input, digit): a second
  learner with the same drawing gets the same answer without a computation,
  another digit or another model version is computed afresh.
- "The model" page measures the approved drawings once per model version and
  change of the approved set: approving, relabelling or a new active version
  shows at once; a view with nothing changed loads no drawing.
"""

import asyncio
import json

import numpy as np
import pytest
import torch

from recognizer import versions
from recognizer.collection import review
from recognizer.models import Drawing
from recognizer.preprocessing import strokes_to_stages
from recognizer.teaching import explain, gallery, modelcard
from recognizer.teaching.encoding import dequantise_maps, quantisation_step
from tests.support import SEVEN, register_random_model
from tests.worst_drawings import scribble, spiral

pytestmark = pytest.mark.django_db(transaction=True)

STAGES_URL = "/learn/api/stages"
ATTENTION_URL = "/learn/api/attention"
BUDGET = 15_000


def post(client, url, payload):
    return client.post(url, data=json.dumps(payload), content_type="application/json")


@pytest.fixture(autouse=True)
def fresh_service_and_caches(monkeypatch):
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))
    explain.attention_cache.clear()
    gallery.collected_cache.clear()
    gallery._guesses.update(version=None, by_id={})
    yield
    explain.attention_cache.clear()
    gallery.collected_cache.clear()


def network(version, image):
    model, _ = versions.load_version(version)
    with torch.inference_mode():
        _, activations = model.forward_with_activations(
            torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None])
    return {k: v[0].numpy() for k, v in activations.items()}


def every_stage(client, payload):
    """All stages, asked for as the page does; every answer's size checked."""
    answers = []
    asked = list(explain.STAGE_ORDER)
    received = {}
    while asked:
        response = post(client, STAGES_URL, {**payload, "stages": asked})
        assert response.status_code == 200, response.content
        assert len(response.content) <= BUDGET, (asked, len(response.content))
        body = response.json()
        assert body["activations"], "an answer without a stage would never finish"
        assert set(body["activations"]) | set(body["omitted"]) == set(asked)
        received.update(body["activations"])
        answers.append(body)
        asked = body["omitted"]
    return received, answers


def check_decoded(received, expected):
    for name in explain.STAGE_ORDER:
        decoded = dequantise_maps(received[name])
        assert decoded.shape == expected[name].shape, name
        step = quantisation_step(received[name])
        error = np.abs(decoded - expected[name]).reshape(len(step), -1).max(axis=1)
        # float32 rounding of the decoding on top of the stated step.
        tolerance = step + 1e-6 * np.abs(expected[name]).max()
        assert np.all(error <= tolerance), (name, error.max(), step.max())


def test_noise_input_answers_stay_under_15_kB_and_decode_within_their_stated_step(
        client, active_model):
    """Hostile: uniform random noise in every pixel, every stage asked for at once."""
    image = np.random.default_rng(5).random((28, 28)).astype(np.float32)
    received, answers = every_stage(client, {"input": image.tolist()})
    assert len(answers) > 1  # it did not fit in one answer
    check_decoded(received, network(active_model, image))
    # Bounded, yes; but the precision is said: some stage had to use fewer levels.
    levels = [e["levels"] for e in received.values() if "levels" in e]
    assert min(levels) < 255 and max(levels) == 255
    # The dense layer's values are exact, not quantised.
    np.testing.assert_array_equal(dequantise_maps(received["dense"]),
                                  network(active_model, image)["dense"])


@pytest.mark.parametrize("drawing", [
    pytest.param(scribble(1_000), id="dense scribble at the ink limit"),
    pytest.param(spiral(1_000), id="spiral at the ink limit"),
    pytest.param(SEVEN, id="an ordinary seven"),
])
def test_drawings_answers_stay_under_15_kB(client, active_model, drawing):
    received, _ = every_stage(client, drawing)
    image = strokes_to_stages(drawing["strokes"], drawing["width"], drawing["height"])["input"]
    check_decoded(received, network(active_model, image))


def test_an_ordinary_drawing_keeps_8_bit_maps(client, active_model):
    """Only pathological inputs lose precision: a seven's maps are 255 levels."""
    received, _ = every_stage(client, SEVEN)
    assert {e.get("levels", 255) for e in received.values()} == {255}


def test_only_the_stages_asked_for_are_sent(client, active_model):
    body = post(client, STAGES_URL, {**SEVEN, "stages": ["pool2", "dense"]}).json()
    assert list(body["activations"]) == ["pool2", "dense"]
    assert body["omitted"] == []
    assert len(json.dumps(body)) < 8_000


@pytest.mark.parametrize("stages", [[], ["conv9"], "conv1", [1], ["conv1", None]],
                         ids=["empty", "unknown name", "a string", "a number", "null"])
def test_bad_stage_lists_get_a_clear_error(client, active_model, stages):
    response = post(client, STAGES_URL, {**SEVEN, "stages": stages})
    assert response.status_code == 400
    assert "'stages'" in response.json()["error"]


# -- attention cache --------------------------------------------------------------


def test_attention_is_computed_once_per_model_input_and_digit(client, model_dir):
    register_random_model(model_dir, seed=0, activate=True, version="first")
    first = post(client, ATTENTION_URL, SEVEN).json()
    assert explain.attention_cache.misses == 1
    again = post(client, ATTENTION_URL, SEVEN).json()
    assert again == first
    assert explain.attention_cache.misses == 1 and explain.attention_cache.hits == 1

    other_digit = (first["digit"] + 1) % 10
    chosen = post(client, ATTENTION_URL, {**SEVEN, "target": other_digit}).json()
    assert chosen["target"] == other_digit and explain.attention_cache.misses == 2

    # A drawing one point different is another input.
    moved = {**SEVEN, "strokes": [SEVEN["strokes"][0][:-1]] + SEVEN["strokes"][1:]}
    post(client, ATTENTION_URL, moved)
    assert explain.attention_cache.misses == 3

    # A new active version: computed again, on the new weights.
    register_random_model(model_dir, seed=7, activate=True, version="second")
    second = post(client, ATTENTION_URL, SEVEN).json()
    assert second["model"] == "second"
    assert second["probabilities"] != first["probabilities"]
    assert explain.attention_cache.misses == 4


def test_attention_maps_run_two_at_once_on_one_torch_thread_each(settings):
    """Two workers, each computing with RECOGNIZER_TORCH_THREADS (1) PyTorch
    threads (explain.py says why): two computations that wait for each other
    finish only if both run at once."""
    assert settings.RECOGNIZER_TORCH_THREADS == 1
    import threading

    both_started = threading.Barrier(2, timeout=30)

    def compute():
        both_started.wait()
        return torch.get_num_threads(), threading.current_thread().name

    futures = [explain.attention_cache.get(("threads-check", n), compute) for n in range(2)]
    try:
        answers = [f.result(timeout=60) for f in futures]
    finally:
        for n, future in enumerate(futures):
            explain.attention_cache.forget(("threads-check", n), future)
    assert [threads for threads, _ in answers] == [1, 1]
    assert len({name for _, name in answers}) == 2


def test_attention_cache_is_bounded(monkeypatch, client, active_model):
    monkeypatch.setattr(explain.attention_cache, "size", 3)
    rng = np.random.default_rng(2)
    for _ in range(5):
        image = (rng.random((28, 28)) > 0.7).astype(float)
        assert post(client, ATTENTION_URL, {"input": image.tolist()}).status_code == 200
    assert len(explain.attention_cache) == 3


# -- the model page -------------------------------------------------------------------


def approved(label, image):
    return Drawing.objects.create(
        label=label, strokes={}, input_image=image.tobytes(), prediction=0,
        probabilities=[0.1] * 10, player_id=f"p{Drawing.objects.count()}", player_name="Ann",
        game_id="g", round_number=Drawing.objects.count(), status=Drawing.Status.APPROVED)


def accuracy_text(version, images, labels):
    """The page's figure for `version` on these drawings, computed here directly."""
    model, _ = versions.load_version(version)
    with torch.inference_mode():
        guesses = model(torch.from_numpy(np.stack(images) / 255.0).float()[:, None])
    correct = (guesses.argmax(1).numpy() == np.asarray(labels)).mean()
    return f">{correct * 100:.1f}%<"


def test_the_model_page_is_served_with_its_cache_down(client, model_dir, monkeypatch, caplog):
    """Redis down: the card is drawn for each view, and the page is still served."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from recognizer.teaching import views

    register_random_model(model_dir, seed=0, activate=True, version="v-one")

    def refused(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to localhost:6379. Connection refused.")

    monkeypatch.setattr(views.cache, "get", refused)
    monkeypatch.setattr(views.cache, "set", refused)
    for _ in range(2):
        response = client.get("/learn/model/")
        assert response.status_code == 200
        assert 'data-version="v-one"' in response.content.decode()
    assert "the model card's cache failed" in caplog.text


def test_the_card_key_follows_the_code_that_draws_it(model_dir, monkeypatch):
    version = register_random_model(model_dir, seed=0, activate=True, version="v-one")
    key = modelcard.card_key(version, (0, None, None), [])
    assert modelcard.card_key(version, (0, None, None), []) == key
    assert modelcard.card_key(version, (1, None, None), []) != key
    monkeypatch.setattr(modelcard, "card_code_digest", lambda: "another-template")
    assert modelcard.card_key(version, (0, None, None), []) != key


def test_the_model_page_reads_its_state_once_per_window(client, model_dir, settings,
                                                        monkeypatch, django_assert_num_queries):
    """Within MODEL_CARD_STATE_SECONDS a view reads neither the database nor the cache;
    a change made meanwhile (an approval, another active version) shows once it ends."""
    from recognizer.teaching import views

    now = [1000.0]
    monkeypatch.setattr(views.card_state, "clock", lambda: now[0])
    settings.MODEL_CARD_STATE_SECONDS = 2.0
    register_random_model(model_dir, seed=0, activate=True, version="v-one")
    first = client.get("/learn/model/").content.decode()
    assert 'data-version="v-one"' in first

    cache_reads = []
    real_get = views.cache.get

    def counting_get(*args, **kwargs):
        cache_reads.append(args)
        return real_get(*args, **kwargs)

    monkeypatch.setattr(views.cache, "get", counting_get)
    register_random_model(model_dir, seed=9, activate=True, version="v-two")
    approved(3, np.zeros((28, 28), np.uint8))
    now[0] += 1.9
    with django_assert_num_queries(0):
        assert client.get("/learn/model/").content.decode() == first
    assert cache_reads == []

    now[0] += 0.1
    html = client.get("/learn/model/").content.decode()
    assert 'data-version="v-two"' in html and "on 1 approved player drawing" in html
    assert len(cache_reads) == 1
    # The card drawn for the new state is kept with it: the next view draws nothing.
    drawn = []
    monkeypatch.setattr(views, "render_to_string", lambda *a, **k: drawn.append(a))
    with django_assert_num_queries(0):
        assert client.get("/learn/model/").content.decode() == html
    assert drawn == [] and len(cache_reads) == 1


def test_model_page_follows_approvals_relabels_and_versions(client, model_dir):
    """The cache key changes with an approval, a relabel and a new active version."""
    first = register_random_model(model_dir, seed=0, activate=True, version="v-one")
    # Drawings each seeded model calls differently, so the figures move.
    rng = np.random.default_rng(4)
    images = [(rng.random((28, 28)) > 0.8).astype(np.uint8) * 255 for _ in range(4)]
    model, _ = versions.load_version(first)
    with torch.inference_mode():
        guesses = model(torch.from_numpy(np.stack(images) / 255.0).float()[:, None]).argmax(1)
    # The first three right by construction, the fourth wrong, then right after relabelling.
    labels = [int(g) for g in guesses]
    for index in range(3):
        approved(labels[index], images[index])
    html = client.get("/learn/model/").content.decode()
    assert "right on 3 approved player drawings" in html and ">100.0%<" in html
    assert gallery.collected_cache.misses == 1

    predicted = []  # how many images each forward pass of the page's measurement ran
    real = gallery.predict

    def counting(model, images):
        predicted.append(len(images))
        return real(model, images)

    gallery.predict = counting
    try:
        # Nothing changed: the card as it was rendered (views.model_page caches
        # it), so neither a drawing is run nor the figure looked up again.
        assert client.get("/learn/model/").content.decode() == html
        assert predicted == [] and gallery.collected_cache.hits == 0
        assert gallery.collected_cache.misses == 1

        # A drawing approved in review, labelled as the model does not guess: counted
        # at once, and only it is run through the model.
        wrong = (labels[3] + 1) % 10
        pending = Drawing.objects.create(
            label=wrong, strokes={}, input_image=images[3].tobytes(), prediction=0,
            probabilities=[0.1] * 10, player_id="p-new", player_name="Bo", game_id="g",
            round_number=1)
        client.get("/learn/model/")  # a pending drawing changes nothing
        assert predicted == []
        review.set_status(Drawing.objects.filter(pk=pending.pk), Drawing.Status.APPROVED)
        html = client.get("/learn/model/").content.decode()
        assert "right on 4 approved player drawings" in html and ">75.0%<" in html
        assert predicted == [1]

        # Relabelled to what the model guesses: measured again against the new label
        # (no forward pass needed: the drawing itself did not change).
        review.relabel(Drawing.objects.filter(pk=pending.pk), labels[3])
        html = client.get("/learn/model/").content.decode()
        assert ">100.0%<" in html and gallery.collected_cache.misses == 3

        # Rejected again: out of the figure.
        review.set_status(Drawing.objects.filter(pk=pending.pk), Drawing.Status.REJECTED)
        html = client.get("/learn/model/").content.decode()
        assert "right on 3 approved player drawings" in html

        # Another active version: its own guesses on every drawing.
        second = register_random_model(model_dir, seed=9, activate=True, version="v-two")
        html = client.get("/learn/model/").content.decode()
        assert 'data-version="v-two"' in html and predicted == [1, 3]
        assert accuracy_text(second, images[:3], labels[:3]) in html
    finally:
        gallery.predict = real


@pytest.fixture
def held_measurement(transactional_db, model_dir, monkeypatch):
    """The accuracy on three approved drawings, measured only once the test
    lets it go (`release`), so that a view's wait always ends first whatever
    the machine's speed; `runs` lists the measurements started, `cards`
    the cards drawn, and `fail` makes the next measurement fail as the
    database going away would."""
    import threading
    from types import SimpleNamespace

    from django.conf import settings

    from recognizer.teaching import views

    version = register_random_model(model_dir, seed=0, activate=True, version="v-one")
    rng = np.random.default_rng(5)
    images = [(rng.random((28, 28)) > 0.8).astype(np.uint8) * 255 for _ in range(3)]
    for image in images:
        approved(1, image)
    held = SimpleNamespace(version=version, images=images, release=threading.Event(),
                           runs=[], cards=[], fail=False, closing=False,
                           idle=threading.Semaphore(1))
    real_guesses, real_render = gallery._approved_guesses, views.render_to_string

    def held_back(version):
        with held.idle:
            held.runs.append(version.version)
            assert held.release.wait(60)
            if held.fail or held.closing:
                raise gallery.DataUnavailable("the database went away")
            return real_guesses(version)

    def counting_render(template, *args, **kwargs):
        held.cards.append(template)
        return real_render(template, *args, **kwargs)

    monkeypatch.setattr(gallery, "_approved_guesses", held_back)
    monkeypatch.setattr(views, "render_to_string", counting_render)
    monkeypatch.setattr(settings, "MODEL_CARD_WAIT_SECONDS", 0.05)
    yield held
    # Never leave the Memo's one worker waiting, nor reading the drawings
    # while the test database is emptied for the next test.
    held.closing = True
    held.release.set()
    assert held.idle.acquire(timeout=60)
    held.idle.release()
    views._failed_measurements.clear()


def measuring(html):
    return ('data-preparing="collected"' in html
            and '<meta http-equiv="refresh" content="3">' in html
            and 'data-version="v-one"' in html)  # the rest of the card is there


def test_the_model_page_says_it_is_measuring_rather_than_wait_for_it(client, held_measurement,
                                                                      monkeypatch):
    """A process's first view of a version runs every approved drawing (9 s
    for 20,000): past MODEL_CARD_WAIT_SECONDS the page shows the card
    without that figure, says it is being measured and reloads itself; the
    measurement goes on once, and the next view shows the figure."""
    from django.conf import settings

    held = held_measurement
    for _ in range(3):
        assert measuring(client.get("/learn/model/").content.decode())
    # Drawn once while the measurement runs, not for each view.
    assert held.cards == ["teaching/_model_card.html"]
    held.release.set()
    # The next view waits (within the limit) for the one measurement under way.
    monkeypatch.setattr(settings, "MODEL_CARD_WAIT_SECONDS", 60)
    html = client.get("/learn/model/").content.decode()
    assert "right on 3 approved player drawings" in html
    assert accuracy_text(held.version, held.images, [1, 1, 1]) in html
    assert "data-preparing" not in html and 'http-equiv="refresh"' not in html
    assert held.runs == ["v-one"]


async def test_a_class_opening_the_page_at_once_shares_one_card_while_measuring(
        held_measurement):
    from django.test import AsyncClient

    held = held_measurement
    pages = await asyncio.gather(*(AsyncClient().get("/learn/model/") for _ in range(6)))
    assert all(measuring(page.content.decode()) for page in pages)
    assert held.cards == ["teaching/_model_card.html"] and held.runs == ["v-one"]


def test_a_measurement_that_fails_after_the_wait_is_explained_once(client, held_measurement,
                                                                    monkeypatch):
    """Tried: the approved drawings becoming unreadable after the page had
    said they were being measured. The next view says why, without
    reloading; the one after measures again."""
    import time

    from django.conf import settings

    from recognizer.teaching import views

    held = held_measurement
    held.fail = True
    assert measuring(client.get("/learn/model/").content.decode())
    held.release.set()
    deadline = time.monotonic() + 60  # a bound; the failure comes at once
    while not views._failed_measurements and time.monotonic() < deadline:
        time.sleep(0.01)
    html = client.get("/learn/model/").content.decode()
    assert "not measured: the model could not be run on this server right now" in html
    assert 'http-equiv="refresh"' not in html
    assert held.runs == ["v-one"]
    held.fail = False
    monkeypatch.setattr(settings, "MODEL_CARD_WAIT_SECONDS", 60)
    html = client.get("/learn/model/").content.decode()
    assert "right on 3 approved player drawings" in html
    assert held.runs == ["v-one", "v-one"]


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "a second"])
def test_a_model_card_wait_that_is_not_a_number_of_seconds_stops_the_site(tmp_path, value):
    """Hostile settings: a wait without end, not a number, below zero, text."""
    from tests.test_deploy_check import manage

    result = manage(tmp_path, {"MODEL_CARD_WAIT_SECONDS": value}, "check")
    assert result.returncode != 0
    assert (f"MODEL_CARD_WAIT_SECONDS must be a number of seconds, 0 or more, not {value!r}"
            in result.stderr)
