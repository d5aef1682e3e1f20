"""`finetune --snapshots DIR`: the network kept while it learns (trainer/snapshots.py).

A tiny run (400 MNIST digits in batches of 8: 50 steps an epoch, two epochs)
has the snapshots of steps 0, 1 and 10, the end of each epoch (50 and 100;
100 is also a named step, kept once), and each loads into the network.
"""

import json

import pytest
import torch
from django.core.management import CommandError, call_command

from recognizer.network import build_model
from trainer import snapshots


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_dir, django_db_setup, django_db_blocker):
    """One tiny run's snapshot folder, shared by the tests of this module."""
    folder = tmp_path_factory.mktemp("snapshots")
    model_dir = tmp_path_factory.mktemp("snapshot-models")
    from django.conf import settings
    old = settings.RECOGNIZER_MODEL_DIR, settings.VAR_DIR
    settings.RECOGNIZER_MODEL_DIR, settings.VAR_DIR = model_dir, tmp_path_factory.mktemp("var")
    try:
        with django_db_blocker.unblock():
            call_command("finetune", data_dir=str(mnist_dir), from_scratch=True, limit=400,
                         epochs=2, batch_size=8, seed=3, no_activate=True, verbosity=0,
                         calibration_holdout=0, styles_per_style=0,
                         snapshots=str(folder / "run"))
    finally:
        settings.RECOGNIZER_MODEL_DIR, settings.VAR_DIR = old
    return folder / "run"


def test_a_run_keeps_the_promised_steps_and_each_loads(tiny_run):
    manifest = json.loads((tiny_run / snapshots.MANIFEST_NAME).read_text())
    steps = [entry["step"] for entry in manifest["snapshots"]]
    assert steps == [0, 1, 10, 50, 100]
    ends = {entry["step"]: entry.get("epoch_end") for entry in manifest["snapshots"]}
    assert ends == {0: None, 1: None, 10: None, 50: 1, 100: 2}
    assert manifest["seed"] == 3 and manifest["dtype"] == "float16"
    assert "snapshots=" in manifest["command"] and manifest["data"]["train_total"] == 400
    assert manifest["quick_test"]["first"] == 400  # --limit 400 leaves 400 test digits
    files = sorted(p.name for p in tiny_run.glob("*.pt"))
    assert files == [snapshots.file_name(s) for s in steps]

    first, last = manifest["snapshots"][0], manifest["snapshots"][-1]
    assert first["train_loss"] is None and last["train_loss"] > 0
    # Ten digits guessed at random, then trained: 400 digits twice is enough to beat chance.
    assert first["test_accuracy"] < 0.3 < last["test_accuracy"]
    for entry in manifest["snapshots"]:
        payload = torch.load(tiny_run / entry["file"], weights_only=True)
        assert payload["state_dict"]["conv1.0.weight"].dtype == torch.float16
        assert payload["metadata"]["step"] == entry["step"]
        assert (tiny_run / entry["file"]).stat().st_size == entry["size_bytes"]
        model = build_model()
        model.load_state_dict(payload["state_dict"])
    # The weights move between snapshots.
    start = torch.load(tiny_run / first["file"], weights_only=True)["state_dict"]
    end = torch.load(tiny_run / last["file"], weights_only=True)["state_dict"]
    assert not torch.equal(start["conv1.0.weight"], end["conv1.0.weight"])


def test_snapshots_refuse_head_only(mnist_dir, model_dir, db):
    with pytest.raises(CommandError, match="--snapshots .* --head-only"):
        call_command("finetune", data_dir=str(mnist_dir), head_only=True, verbosity=0,
                     snapshots="anywhere", limit=10)
