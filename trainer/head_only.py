"""Training only the head: the dense layers learn, the convolutions stay as they are.

The network (recognizer/network.py) is a convolution trunk, 65,000
parameters that turn a 28x28 drawing into 3,136 features, and a head of two
dense layers (403,000 parameters) that turns the features into ten logits.
With the trunk frozen, a digit's features never change, so they are
computed once (in eval mode, batch norm folded, as the site serves it) and
the head trains on them alone: a step of 128 costs two small matrix
products instead of a pass through every convolution and back.

Two ways to feed the features to trainer/training.py's `train`, which runs
the same loop, optimizer and schedule as a full run:

- `FeatureData.precompute`: features of a fixed set of inputs, each
  augmented `copies` times by trainer/augment.py before the trunk sees it
  (the augmentation cannot happen after: it warps images, not features).
  The teach page's private copies (trainer/teach/) train on a learner's few
  dozen drawings this way, with MNIST train digits replayed beside them
  (`replay`) so that the head does not forget what it knew.
- `TrunkFeatures`: features computed batch by batch, each batch augmented
  afresh, for `finetune --head-only` over a whole training set (its features
  held in memory would take 3,136 numbers a digit: 750 MB for 60,000 MNIST
  digits in float32).

Measured on the 2-core machine, loaded by other work (one torch thread):
300 steps of 128 on 3,000 replayed MNIST digits plus 30 drawings took 1.7 to
3 s once the features were there; the drawings' features (30 x 12 augmented)
about 0.4 s; the replayed and measured digits' features, computed once per
base model and process (`replay_features`, `test_features`), about 7 s.
docs/training.md has what the copies learn and forget.
"""

import copy
import math
import threading
from dataclasses import dataclass, replace

import torch
from torch import nn

from recognizer import frozen
from recognizer.network import HEAD_LAYERS
from trainer import cpu_kernels
from trainer.augment import AugmentConfig, augment_batch
from trainer.training import TrainConfig, train

# Features are computed this many inputs at a time (bigger batches were no
# faster on one thread; a batch of 512 holds 25 MB of activations).
FEATURE_BATCH = 512
# Features are stored as float16: half the memory of float32 (3,000 replayed
# digits take 19 MB instead of 38), and the head's answers on them moved by
# less than 1e-3 in probability in the tests.
FEATURE_DTYPE = torch.float16


class Head(nn.Module):
    """The model's head layers as a module of their own: features in, logits out.

    It holds the model's own layers, not copies: training it trains the model.
    """

    def __init__(self, model):
        super().__init__()
        self.model_head = model.head
        for name in HEAD_LAYERS:
            setattr(self, name, getattr(model, name))
        self.dropout = model.dropout

    def forward(self, features):
        return self.model_head(features)


def frozen_trunk(model):
    """An eval-mode copy of `model` with batch norm folded: its `trunk` gives the features."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        folded = frozen.fold_batch_norm(model)
    model.train(was_training)
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    return folded


@torch.inference_mode()
def compute_features(trunk, inputs, batch_size=FEATURE_BATCH):
    """Trunk features (N, FEATURES) of float inputs (N, 1, 28, 28), as FEATURE_DTYPE."""
    layout = cpu_kernels.memory_format("cpu")
    chunks = []
    with cpu_kernels.unfilled_memory(), cpu_kernels.model_layout(trunk, layout):
        for start in range(0, len(inputs), batch_size):
            batch = cpu_kernels.as_layout(inputs[start:start + batch_size], layout)
            chunks.append(trunk.trunk(batch).to(FEATURE_DTYPE))
    if not chunks:
        return torch.zeros((0, trunk.dense.in_features), dtype=FEATURE_DTYPE)
    return torch.cat(chunks)


@dataclass
class FeatureData:
    """Trunk features (N, FEATURES) and their labels (N,): what `train` needs of a data set."""

    features: torch.Tensor
    labels: torch.Tensor

    def __len__(self):
        return len(self.labels)

    def inputs(self, index=None):
        features = self.features if index is None else self.features[index]
        return features.float()

    def subset(self, index):
        return FeatureData(self.features[index], self.labels[index])

    def counts(self):
        return torch.bincount(self.labels, minlength=10).tolist()

    @classmethod
    def precompute(cls, trunk, data, copies=1, augment=None, seed=0):
        """Features of `data` (a DigitData): as they are when `copies` is 1 and
        `augment` None, else `copies` augmented versions of every sample."""
        inputs = data.inputs()
        if augment is not None and copies >= 1:
            generator = torch.Generator().manual_seed(seed)
            inputs = torch.cat([augment_batch(inputs, augment, generator) for _ in range(copies)])
            labels = data.labels.repeat(copies)
        else:
            labels = data.labels
        return cls(compute_features(trunk, inputs), labels.clone())

    @classmethod
    def join(cls, *parts):
        parts = [part for part in parts if part is not None and len(part)]
        return cls(torch.cat([p.features for p in parts]), torch.cat([p.labels for p in parts]))


class TrunkFeatures:
    """Features of `data` computed when a batch is drawn, augmented afresh each time.

    For a head-only run over a whole training set, whose features would not
    fit in memory: every batch costs one pass through the frozen trunk (no
    gradients), still about a quarter of a full training step.
    """

    def __init__(self, trunk, data, augment=None, seed=0):
        self.trunk = trunk
        self.data = data
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return len(self.data)

    @property
    def labels(self):
        return self.data.labels

    def inputs(self, index=None):
        images = self.data.inputs(index)
        if self.augment is not None:
            images = augment_batch(images, self.augment, self.generator)
        return compute_features(self.trunk, images).float()

    def subset(self, index):
        # Measured like a test set: the samples as they are.
        return TrunkFeatures(self.trunk, self.data.subset(index))

    def counts(self):
        return self.data.counts()


def head_config(config, samples):
    """`config` for a head-only run over `samples` features.

    Augmentation has already happened before the trunk, and features have no
    channels-last layout. With max_steps set, the run takes as many epochs
    as those steps need, so that it stops at max_steps exactly.
    """
    epochs = config.epochs
    if config.max_steps is not None:
        steps_per_epoch = max(1, math.ceil(samples / config.batch_size))
        epochs = max(1, math.ceil(config.max_steps / steps_per_epoch))
    return replace(config, augment=None, channels_last=False, epochs=epochs)


def train_head(model, train_data, config, eval_data=None, verbosity=0, on_step=None,
               progress_stream=None):
    """Train `model`'s head layers in place on features; return `train`'s history.

    `train_data` and `eval_data`: FeatureData or TrunkFeatures of `model`'s
    trunk. The trunk's parameters take no gradient during the run.
    """
    frozen_flags = [(p, p.requires_grad) for name, p in model.named_parameters()
                    if name.split(".")[0] not in HEAD_LAYERS]
    for parameter, _ in frozen_flags:
        parameter.requires_grad_(False)
    try:
        return train(Head(model), train_data, head_config(config, len(train_data)), eval_data,
                     verbosity=verbosity, on_step=on_step, progress_stream=progress_stream)
    finally:
        for parameter, flag in frozen_flags:
            parameter.requires_grad_(flag)
        model.eval()


# -- a copy taught a few examples ------------------------------------------------------

# A learner's drawings make about this share of what the head trains on when
# MNIST is replayed beside them (30 drawings beside 3,000 digits: each 34
# times). Shares of 0.10, 0.15 and 0.25 all took v1 to 99.0% of 200 other
# writers' slashed zeros and held MNIST test within 0.1 point of each other;
# the largest gives a learner's few drawings the most weight.
EXAMPLE_SHARE = 0.25
MIN_COPIES = 8
MAX_COPIES = 64
# Of those, this many are augmented versions whose features are computed;
# the rest repeat them. Each augmented drawing costs a pass through the
# convolutions (1,000 of them took 1 s of the 2-core machine, loaded). With
# 34 augmented versions of each of 30 drawings, v1 read 99.0% of the other
# writers' slashed zeros and v2 93.5% of the flagged, turned 1s after 300
# steps; with 12, 99.0% and 93.0%.
AUGMENTED_COPIES = 12
# A gentler augmentation than the full run's: a learner's style (a bar, a
# slash) is a detail that strong warps and thinning can erase.
EXAMPLE_AUGMENT = AugmentConfig(rotation_degrees=8.0, scale_range=(0.9, 1.08), shear=0.12,
                                translate_pixels=1.5, thicken_fraction=0.25, thin_fraction=0.1)
# The peak learning rate of a few hundred head-only steps. With 3,000 MNIST
# digits replayed, 300 steps on 30 slashed zeros took v1's accuracy on 200
# other writers' slashed zeros from 84.5% to 99.0% at 2e-4, 5e-4 and 1e-3
# alike, while MNIST test (2,000 digits) lost 0.1, 0.2 and 0.3 points; v2 on
# turned flagged 1s went from 82% to 93-93.5% at 3e-4 and 1e-3 alike.
TEACH_LR = 3e-4


def copies_for(examples, replay_count, share=EXAMPLE_SHARE):
    """How often each of `examples` drawings is in the data: enough to be `share` of it."""
    if examples <= 0:
        return 0
    wanted = share / (1 - share) * replay_count / examples
    return int(min(MAX_COPIES, max(MIN_COPIES, math.ceil(wanted))))


def teach(base_model, examples, steps, replay=None, seed=0, on_step=None, lr=TEACH_LR,
          batch_size=128):
    """A copy of `base_model` whose head learnt `examples` (a DigitData).

    `replay`: FeatureData of digits the base already reads, trained on beside
    the examples (None: the examples alone, which lets the copy forget).
    Returns the copy (eval mode); the base is not changed.
    """
    model = copy.deepcopy(base_model).eval()
    trunk = frozen_trunk(model)
    replay_count = len(replay) if replay is not None else 0
    copies = copies_for(len(examples), replay_count)
    augmented = FeatureData.precompute(trunk, examples, min(copies, AUGMENTED_COPIES),
                                       EXAMPLE_AUGMENT, seed)
    repeats = max(1, math.ceil(copies / AUGMENTED_COPIES))
    taught = FeatureData(augmented.features.repeat(repeats, 1), augmented.labels.repeat(repeats))
    data = FeatureData.join(taught, replay) if replay_count else taught
    config = TrainConfig(epochs=1, batch_size=batch_size, lr=lr, seed=seed, max_steps=steps,
                         train_eval_samples=0, fused_optimizer=True)
    train_head(model, data, config, on_step=on_step)
    return model


# -- replayed and measured digits, once per base model ---------------------------------

_feature_cache = {}
_feature_lock = threading.Lock()


def cached_features(key, build):
    """build() once per `key` in this process (a base model's MNIST features).

    Building holds the lock: two jobs that start together on a new model
    compute the features once, the second waiting for the first.
    """
    with _feature_lock:
        found = _feature_cache.get(key)
        if found is None:
            found = _feature_cache[key] = build()
            # One base model at a time: an activation makes the old entries garbage.
            for other in [k for k in _feature_cache if k[0] != key[0]]:
                del _feature_cache[other]
        return found


def replay_features(base_model, key, mnist_train, count):
    """FeatureData of `count` MNIST train digits spread over `mnist_train`, cached under `key`."""
    def build():
        index = torch.linspace(0, len(mnist_train) - 1, count).round().long()
        return FeatureData.precompute(frozen_trunk(base_model), mnist_train.subset(index))

    return cached_features((key, "replay", count), build)


def test_features(base_model, key, mnist_test, count):
    """FeatureData of the first `count` MNIST test digits, cached under `key`."""
    def build():
        return FeatureData.precompute(frozen_trunk(base_model), mnist_test.head(count))

    return cached_features((key, "test", count), build)


@torch.inference_mode()
def head_accuracy(model, features):
    """The share of `features` whose label `model`'s head gives (None for none)."""
    if features is None or not len(features):
        return None
    model.eval()
    logits = model.head(features.inputs())
    return float((logits.argmax(dim=1) == features.labels).float().mean())


__all__ = ["FeatureData", "Head", "TrunkFeatures", "compute_features", "frozen_trunk",
           "head_accuracy", "replay_features", "teach", "test_features", "train_head"]
