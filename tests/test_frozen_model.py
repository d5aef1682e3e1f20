"""The frozen, batch-norm-folded network answers like the eager one (within 1e-5).

On the shipped model, whose batch norms carry real running statistics (an
untrained network's are 0 and 1, which would make folding trivially right),
and on real inputs: 500 MNIST test digits at batch sizes 7, 64 and 500, the
first 100 of them one at a time.
"""

import json

import numpy as np
import pytest
import torch

from recognizer import calibration, frozen
from recognizer.checkpoints import load_checkpoint
from recognizer.inference import InferenceService
from recognizer.versions import BUILTIN_DIR, register_version
from trainer.mnist import load_split

TOLERANCE = 1e-5
DIGITS = 500


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """As the service runs (RECOGNIZER_TORCH_THREADS): two OpenMP threads on a
    loaded 2-core machine spin against each other, 100x slower at batch 1."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shipped():
    manifest = json.loads((BUILTIN_DIR / "manifest.json").read_text())
    model, _ = load_checkpoint(BUILTIN_DIR / manifest["file"], manifest["sha256"])
    return BUILTIN_DIR / manifest["file"], model


@pytest.fixture(scope="module")
def mnist_inputs(mnist_dir):
    images, _ = load_split("test", data_dir=mnist_dir, download=False)
    return images[:DIGITS].astype(np.float32) / 255.0


def probabilities(model, inputs, batch_size):
    rows = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = torch.from_numpy(inputs[start:start + batch_size])[:, None]
            rows.append(torch.softmax(model(batch).double(), dim=1).numpy())
    return np.concatenate(rows)


@pytest.fixture(scope="module")
def eager_probabilities(shipped, mnist_inputs):
    return probabilities(shipped[1], mnist_inputs, 64)


@pytest.mark.parametrize("form", [frozen.jit_freeze, frozen.fold_batch_norm],
                         ids=["jit-frozen", "folded-by-hand"])
@pytest.mark.parametrize("batch_size", [1, 7, 64, DIGITS])
def test_frozen_probabilities_match_the_eager_network(
    shipped, mnist_inputs, eager_probabilities, form, batch_size
):
    count = 100 if batch_size == 1 else DIGITS
    eager = eager_probabilities[:count]
    served = probabilities(form(shipped[1]), mnist_inputs[:count], batch_size)
    assert np.abs(served - eager).max() <= TOLERANCE
    assert (served.argmax(axis=1) == eager.argmax(axis=1)).all()


@pytest.mark.parametrize("batch_size", [1, 3, 12, 64])
def test_the_calibrated_graph_answers_the_calibrations_probabilities_to_the_bit(
        shipped, mnist_inputs, batch_size):
    """One call of freeze_calibrated's graph against the frozen logits and
    recognizer.calibration.probabilities, as the service computed them
    before: the same float64 probabilities, every bit, at several
    temperatures; and the folded fallback within the eager tolerance."""
    _, model = shipped
    logits_graph = frozen.freeze(model)
    for temperature in (1.0, 0.7, 1.37):
        graph = frozen.freeze_calibrated(model, temperature)
        assert isinstance(graph, torch.jit.ScriptModule)
        with torch.inference_mode():
            for start in range(0, 200, batch_size):
                batch = torch.from_numpy(mnist_inputs[start:start + batch_size])[:, None]
                expected = calibration.probabilities(logits_graph(batch), temperature).numpy()
                answered = graph(batch).numpy()
                assert answered.dtype == np.float64
                assert np.array_equal(answered, expected), (temperature, start)
    folded = frozen.Calibrated(frozen.fold_batch_norm(model), 1.37).eval()
    with torch.inference_mode():
        batch = torch.from_numpy(mnist_inputs[:64])[:, None]
        expected = calibration.probabilities(model(batch), 1.37).numpy()
        assert np.abs(folded(batch).numpy() - expected).max() <= TOLERANCE


def test_folding_leaves_the_eager_network_unchanged(shipped, mnist_inputs):
    """The teaching pages keep using the eager network and its batch norms."""
    _, model = shipped
    before = probabilities(model, mnist_inputs[:64], 64)
    frozen.freeze(model)
    frozen.fold_batch_norm(model)
    assert isinstance(model.conv1[1], torch.nn.BatchNorm2d)
    assert np.array_equal(probabilities(model, mnist_inputs[:64], 64), before)


def test_a_network_in_training_mode_is_refused(shipped):
    _, model = shipped
    training = load_checkpoint(shipped[0])[0].train()
    with pytest.raises(ValueError, match="eval mode"):
        frozen.freeze(training)
    assert not model.training


@pytest.mark.django_db(transaction=True)
def test_the_service_answers_with_the_frozen_network(
    shipped, mnist_inputs, eager_probabilities, model_dir
):
    path, model = shipped
    register_version(path, activate=True, version="shipped-copy")
    service = InferenceService(reload_seconds=3600)
    loaded = service.refresh(force=True)
    assert isinstance(loaded.serving, torch.jit.ScriptModule)
    assert isinstance(loaded.answering, torch.jit.ScriptModule)
    assert loaded.model is not loaded.serving
    # The service answers with the version's temperature (recognizer/calibration.py):
    # softmax(log p / T) equals softmax(logits / T), as log p differs from the
    # logits by one constant per drawing.
    temperature = calibration.temperature_of(loaded.metadata)
    assert temperature != 1.0  # the shipped model is calibrated, so this checks something
    eager = calibration.probabilities(
        np.log(eager_probabilities[:100]), temperature).numpy()
    futures = [service.submit(image) for image in mnist_inputs[:100]]
    answers = np.array([future.result(timeout=60).probabilities for future in futures])
    assert np.abs(answers - eager).max() <= TOLERANCE
    # The teaching pages' activations still come from the eager network.
    prediction, activations = service.predict_with_activations(mnist_inputs[0], timeout=60)
    with torch.inference_mode():
        _, expected = model.forward_with_activations(torch.from_numpy(mnist_inputs[:1])[:, None])
    np.testing.assert_allclose(activations["conv1"], expected["conv1"][0].numpy(), atol=1e-6)
    assert np.abs(np.array(prediction.probabilities) - eager[0]).max() <= TOLERANCE
