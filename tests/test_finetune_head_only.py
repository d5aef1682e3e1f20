"""`manage.py finetune --head-only`: the dense layers learn, the convolutions stay.

Tiny: 200 MNIST digits for one epoch from the active (shipped) version.
"""

import pytest
import torch
from django.core.management import CommandError, call_command

from recognizer.checkpoints import load_checkpoint
from recognizer.models import ModelVersion
from recognizer.versions import active_version, load_version, resolve_path
from tests.teaching_models import register_shipped


@pytest.fixture
def small_run_settings(settings, model_dir, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return settings


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.django_db
def test_head_only_trains_the_dense_layers_alone(mnist_dir, small_run_settings, capsys):
    # The shipped model, as the migrations register it (registered again here:
    # a transactional test run before this one in the same process empties
    # the tables).
    parent = active_version() or register_shipped()
    call_command("finetune", data_dir=str(mnist_dir), limit=200, epochs=1, batch_size=32,
                 head_only=True, styles_per_style=0, calibration_holdout=200, no_activate=True,
                 verbosity=1, seed=0)
    out = capsys.readouterr().out
    assert "the dense layers only (convolutions frozen)" in out

    row = ModelVersion.objects.order_by("-id").first()
    assert row != parent and row.parent == parent and not row.is_active
    assert row.training["head_only"] is True and "head_only=True" in row.training["command"]
    before, _ = load_version(parent)
    after, _ = load_checkpoint(resolve_path(row.path), expected_sha256=row.sha256)
    for name, value in after.state_dict().items():
        same = torch.equal(value, before.state_dict()[name])
        # Batch norm's running statistics included: the trunk ran in eval mode.
        assert same == (name.split(".")[0] not in ("dense", "classifier")), name
    [epoch] = row.metrics["curves"]
    assert epoch["eval_accuracy"] == row.metrics["mnist_test"]["accuracy"] > 0.9
    assert row.metrics["mnist_test"]["count"] == 200


@pytest.mark.django_db
def test_head_only_needs_a_version_to_start_from(mnist_dir, small_run_settings):
    with pytest.raises(CommandError, match="--head-only keeps the active version's convolutions"):
        call_command("finetune", data_dir=str(mnist_dir), limit=50, head_only=True,
                     from_scratch=True, verbosity=0)
