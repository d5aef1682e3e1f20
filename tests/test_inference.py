"""The inference service: answers match a direct forward pass, batching, concurrency,
cancelled requests dropped before the forward pass, clients served round robin."""

import asyncio
import threading
from concurrent.futures import Future

import numpy as np
import pytest
import torch

from recognizer.inference import FairQueue, InferenceService, ModelUnavailable, _Request
from recognizer.versions import load_version
from tests.support import wait_until

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


def test_cancelled_waiting_requests_are_dropped_not_computed(active_model):
    """Ten requests wait behind a busy worker; five are cancelled; only five are computed."""
    # reload_seconds=0: the worker takes the service's lock at every batch to
    # look for a new version, so holding it holds the worker mid-batch.
    service = InferenceService(reload_seconds=0)
    image = random_inputs(1, seed=4)[0]
    service.predict(image)
    served = service.requests_served
    with service._lock:
        first = service.submit(image)
        wait_until(lambda: service.waiting == 0, what="the worker to take the first request")
        waiting = [service.submit(image) for _ in range(10)]
        assert service.waiting == 10
        for future in waiting[::2]:
            assert future.cancel()
        # Gone from the queue at once, not when the worker reaches them.
        assert service.waiting == 5
        assert service.requests_dropped == 5
    first.result(timeout=30)
    answers = [future.result(timeout=30) for future in waiting[1::2]]
    assert all(answer.digit == first.result().digit for answer in answers)
    assert service.requests_served == served + 1 + 5
    assert service.requests_dropped == 5


async def test_a_cancelled_coroutine_takes_its_request_out_of_the_queue(active_model):
    """The path of a client that went away: its view's task is cancelled while it awaits."""
    service = InferenceService(reload_seconds=0)
    image = random_inputs(1, seed=5)[0]
    await service.apredict(image)
    served = service.requests_served
    with service._lock:
        first = service.submit(image)
        wait_until(lambda: service.waiting == 0, what="the worker to take the first request")
        tasks = [asyncio.create_task(service.apredict(image)) for _ in range(4)]
        await asyncio.sleep(0)  # let them queue their requests
        assert service.waiting == 4
        tasks[0].cancel()
        tasks[3].cancel()
        await asyncio.gather(tasks[0], tasks[3], return_exceptions=True)
        assert service.waiting == 2
    assert (await asyncio.wrap_future(first)).version == active_model.version
    answers = await asyncio.gather(tasks[1], tasks[2])
    assert tasks[0].cancelled() and tasks[3].cancelled()
    assert all(len(answer.probabilities) == 10 for answer in answers)
    assert service.requests_served == served + 3
    assert service.requests_dropped == 2


async def test_a_batch_of_coroutines_is_answered_in_one_call_on_their_loop(active_model):
    """Six coroutines' requests wait behind a busy worker and go in one batch:
    the loop is woken once for the six, each gets its own answer, and one
    whose task was cancelled after the worker took it is left alone."""
    service = InferenceService(reload_seconds=0)
    images = random_inputs(6, seed=6)
    await service.apredict(images[0])
    runs = service.batches_run  # counted before the warm-up's answer came
    loop = asyncio.get_running_loop()
    wakes = []
    real = loop.call_soon_threadsafe

    def counted(callback, *args, **kwargs):
        if threading.current_thread().name == "recognizer-inference":
            wakes.append(len(args[0]) if args else None)
        return real(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counted
    try:
        with service._lock:
            first = service.submit(images[0])
            wait_until(lambda: service.waiting == 0, what="the worker to take the first")
            tasks = [asyncio.create_task(service.apredict(image)) for image in images]
            await asyncio.sleep(0)
            assert service.waiting == 6
        first.result(timeout=30)
        # The six computed (the loop held here: their answers wait for it).
        wait_until(lambda: service.batches_run == runs + 2, what="the worker to compute the six")
        tasks[5].cancel()  # computed already: its answer unwanted
        answers = await asyncio.gather(*tasks[:5])
        assert (await asyncio.gather(tasks[5], return_exceptions=True))[0].__class__ is (
            asyncio.CancelledError)
    finally:
        loop.call_soon_threadsafe = real
    expected = direct_probabilities(active_model, images[:5])
    for answer, row in zip(answers, expected, strict=True):
        assert np.abs(np.array(answer.probabilities) - row).max() <= 1e-5
    assert wakes == [6]


async def test_a_failed_batch_fails_each_coroutine_and_the_worker_goes_on(model_dir):
    """No active model: every coroutine of the batch gets the error; a model
    made active afterwards answers the next ones."""
    service = InferenceService(reload_seconds=0)
    images = random_inputs(3, seed=7)
    results = await asyncio.gather(*(service.apredict(image) for image in images),
                                   return_exceptions=True)
    assert all(isinstance(result, ModelUnavailable) for result in results)
    from tests.support import register_random_model

    await asyncio.to_thread(register_random_model, model_dir, seed=1)
    answer = await service.apredict(images[0])
    assert len(answer.probabilities) == 10


async def test_a_closed_loop_does_not_stop_the_worker(active_model):
    """A coroutine's loop closed before its answer came (a server stopping):
    the answer has nowhere to go, and the worker serves the next request."""
    service = InferenceService(reload_seconds=0)
    image = random_inputs(1, seed=8)[0]
    await service.apredict(image)
    worker = service._worker
    other = asyncio.new_event_loop()
    with service._lock:
        future = other.create_future()
        service._queue_request(_Request(image, future, client=None, loop=other))
        other.close()
    answer = await asyncio.wait_for(service.apredict(image), 60)
    assert answer.digit in range(10)
    assert not future.done()
    # The same worker answered: the closed loop did not end it.
    assert service._worker is worker and worker.is_alive()


def test_clients_are_taken_round_robin():
    """A flood of 100 requests from one client; another's one is in the first batch."""
    fair = FairQueue()
    image = np.zeros((28, 28), dtype=np.float32)

    def request(client):
        return _Request(image, Future(), client=client)

    flood = [request("flood") for _ in range(100)]
    for item in flood:
        fair.put(item)
    others = [request("player"), request(None), request(None)]
    for item in others:
        fair.put(item)
    batch = fair.take(8)
    assert others[0] in batch and others[1] in batch
    assert sum(item.client == "flood" for item in batch) == 5
    assert len(fair) == 103 - 8
    # Each client's own requests stay in order.
    assert [item for item in batch if item.client == "flood"] == flood[:5]
    assert fair.discard(flood[50]) and not fair.discard(flood[50])
    assert not fair.discard(batch[0])
    assert len(fair) == 103 - 8 - 1
