"""Rendering on several processes gives exactly what one process gives."""

import numpy as np
import pytest

from trainer import canvas_eval, parallel, styles_set


@pytest.fixture(scope="module")
def digits(mnist_dir):
    from trainer import mnist

    images, labels = mnist.load_split("test", data_dir=mnist_dir, download=False)
    return images[:120], labels[:120]


def test_two_processes_render_the_same_sets_as_one(digits, monkeypatch):
    images, labels = digits
    # Small sets normally stay in one process; here they must not.
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ITEMS", 10)
    serial, _ = canvas_eval.build_canvas_eval_set(images, labels, seed=4, use_cache=False,
                                                  workers=1)
    spread, _ = canvas_eval.build_canvas_eval_set(images, labels, seed=4, use_cache=False,
                                                  workers=2)
    np.testing.assert_array_equal(spread, serial)

    one = styles_set.build_styles_set(images, labels, per_style=3, seed=2, use_cache=False,
                                      workers=1)
    two = styles_set.build_styles_set(images, labels, per_style=3, seed=2, use_cache=False,
                                      workers=2)
    np.testing.assert_array_equal(two.inputs, one.inputs)
    np.testing.assert_array_equal(two.labels, one.labels)


def test_an_error_in_a_process_reaches_the_caller(monkeypatch):
    """A digit with no ink, rendered in another process, is named in the error."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ITEMS", 2)
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    images[:3, 10:18, 12:15] = 255
    with pytest.raises(ValueError, match="image 3"):
        canvas_eval.build_canvas_eval_set(images, np.ones(4), use_cache=False, workers=2)


def test_the_default_is_every_core_up_to_sixteen():
    assert 1 <= parallel.default_workers() <= parallel.MAX_WORKERS == 16
