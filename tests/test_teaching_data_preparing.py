"""The data page's first visit after a new model answers at once.

The model's answers on the MNIST test digits take 10-20 s the first time;
the page says it is preparing the numbers, reloads itself (a meta refresh,
no JavaScript needed) and the computation runs once in the background,
however many visits arrive meanwhile. Without MNIST's files the page says
so in plain words; the details (the folder) go to the log only.
"""

import threading

import pytest

from recognizer.teaching import gallery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def small_test_set(settings, tmp_path, mnist_dir):
    settings.MNIST_DATA_DIR = mnist_dir
    settings.VAR_DIR = tmp_path / "var"
    settings.TEACHING_MNIST_LIMIT = 500
    gallery.predictions_cache.clear()
    gallery._failed_predictions.clear()
    yield
    gallery.predictions_cache.clear()
    gallery._failed_predictions.clear()


def test_the_first_visit_says_it_is_preparing_and_computes_once(client, monkeypatch,
                                                                 active_model):
    release = threading.Event()
    started = threading.Event()
    calls = []
    real_predict = gallery.predict

    def gated_predict(*args, **kwargs):
        calls.append(len(args[1]))
        started.set()
        assert release.wait(60)
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(gallery, "predict", gated_predict)
    for digit in (3, 3, 5):
        response = client.get(f"/learn/data/?digit={digit}")
        assert response.status_code == 200
        html = response.content.decode()
        assert 'data-preparing="mistakes"' in html
        assert "Preparing the numbers" in html
        assert '<meta http-equiv="refresh" content="3">' in html
        assert "data-mistakes-all" not in html
        # The digits themselves do not wait for the model.
        assert 'data-sprite="mnist"' in html
    assert started.wait(60)
    assert calls == [500]  # one computation for three visits

    release.set()
    for future in list(gallery.predictions_cache._entries.values()):
        future.result(timeout=120)
    html = client.get("/learn/data/?digit=3").content.decode()
    assert "data-mistakes-all" in html
    assert 'data-preparing="mistakes"' not in html
    assert 'http-equiv="refresh"' not in html
    assert calls == [500]


def test_a_failed_computation_says_so_plainly_and_is_tried_again(client, monkeypatch,
                                                                 active_model, caplog):
    attempts = []

    def broken_model(version):
        attempts.append(version.pk)
        raise gallery.DataUnavailable("checkpoint /srv/secret/model.pt failed its checksum")

    monkeypatch.setattr(gallery, "model_for", broken_model)
    assert 'data-preparing="mistakes"' in client.get("/learn/data/").content.decode()
    for future in list(gallery.predictions_cache._entries.values()):
        with pytest.raises(gallery.DataUnavailable):
            future.result(timeout=60)
    # The next visit says so, and stops reloading itself.
    html = client.get("/learn/data/").content.decode()
    assert "cannot be worked out on this server" in html
    assert "/srv/secret" not in html and 'http-equiv="refresh"' not in html
    assert "/srv/secret" in caplog.text
    # The one after it tries again.
    assert 'data-preparing="mistakes"' in client.get("/learn/data/").content.decode()
    gallery.predictions_cache.clear()


def test_without_mnist_files_a_friendly_message_and_no_paths(client, settings, tmp_path,
                                                             active_model, caplog):
    settings.MNIST_DATA_DIR = tmp_path / "no-mnist-here"
    html = client.get("/learn/data/").content.decode()
    assert "The MNIST examples are not installed on this server" in html
    assert "no-mnist-here" not in html and 'http-equiv="refresh"' not in html
    assert "no-mnist-here" in caplog.text
