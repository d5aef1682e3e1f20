"""The inference service: answers match a direct forward pass, batching, concurrency."""

import asyncio
import threading

import numpy as np
import pytest
import torch

from recognizer.inference import InferenceService, ModelUnavailable
from recognizer.versions import load_version

pytestmark = pytest.mark.django_db(transaction=True)


def random_inputs(count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((count, 28, 28), dtype=np.float32)


def direct_probabilities(version, images):
    model, _ = load_version(version)
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.stack(images))[:, None])
    return torch.softmax(logits.double(), dim=1).numpy()


def test_prediction_matches_a_direct_forward_pass(active_model, inference_service):
    images = random_inputs(3)
    expected = direct_probabilities(active_model, images)
    for image, probs in zip(images, expected, strict=True):
        prediction = inference_service.predict(image)
        assert prediction.version == active_model.version
        assert prediction.digit == int(probs.argmax())
        np.testing.assert_allclose(prediction.probabilities, probs, rtol=1e-4, atol=1e-6)
        assert sum(prediction.probabilities) == pytest.approx(1.0)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(active_model):
    # A wait window makes batching visible even on a fast machine; a wide one
    # (500 ms, not 50) still gathers the threads a loaded machine wakes slowly.
    service = InferenceService(reload_seconds=60, batch_wait_ms=500, max_batch=64)
    images = random_inputs(40, seed=1)
    expected = direct_probabilities(active_model, images)
    results = [None] * len(images)
    barrier = threading.Barrier(len(images))

    def call(index):
        barrier.wait()
        results[index] = service.predict(images[index])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert service.requests_served == len(images)
    assert service.batches_run < len(images) / 4, "concurrent requests were not batched"
    for result, probs in zip(results, expected, strict=True):
        np.testing.assert_allclose(result.probabilities, probs, rtol=1e-4, atol=1e-6)


async def test_coroutines_do_not_block_the_event_loop(active_model):
    service = InferenceService(reload_seconds=60)
    images = random_inputs(16, seed=2)
    ticks = 0
    stop = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    predictions = await asyncio.gather(*(service.apredict(image) for image in images))
    stop.set()
    await ticking
    assert len(predictions) == 16
    assert all(len(p.probabilities) == 10 for p in predictions)
    # The loop kept running other coroutines while the worker thread computed.
    assert ticks > 1


def test_activations_are_the_networks_own(active_model, inference_service):
    image = random_inputs(1, seed=3)[0]
    prediction, activations = inference_service.predict_with_activations(image)
    model, _ = load_version(active_model)
    with torch.inference_mode():
        logits, expected = model.forward_with_activations(torch.from_numpy(image)[None, None])
    assert list(activations) == list(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(activations[name], value[0].numpy(), rtol=1e-4, atol=1e-5)
    assert prediction.digit == int(logits.argmax())


def test_no_active_model_is_a_clear_error(model_dir, inference_service):
    with pytest.raises(ModelUnavailable, match="no model version is active"):
        inference_service.predict(np.zeros((28, 28), dtype=np.float32))


def test_wrong_input_shape_is_refused(active_model, inference_service):
    with pytest.raises(ValueError, match="28x28"):
        inference_service.submit(np.zeros((27, 28)))
