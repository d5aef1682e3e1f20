"""Training and evaluation data as in-memory tensors.

Everything fits in memory (MNIST's 70,000 digits are 55 MB as bytes), so the
data stays as uint8 tensors and each batch is turned into floats in [0, 1]
when it is drawn; there is no DataLoader, just shuffled index slices.
"""

from dataclasses import dataclass

import numpy as np
import torch

from trainer import mnist


@dataclass
class DigitData:
    """Images as uint8 (N, 28, 28), 255 = ink; labels as int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self):
        return len(self.labels)

    @classmethod
    def from_arrays(cls, images, labels):
        images = np.asarray(images)
        if images.dtype != np.uint8:
            # Float inputs in [0, 1], as Drawing.input_array() and the canvas
            # renderer produce them.
            images = np.clip(np.rint(np.asarray(images, dtype=np.float64) * 255), 0, 255)
            images = images.astype(np.uint8)
        labels = np.array(labels, dtype=np.int64)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        # A copy: the source may be a read-only view of a file's bytes.
        return cls(torch.from_numpy(np.array(images, order="C")), torch.from_numpy(labels))

    def head(self, limit):
        """The first `limit` samples (all of them when limit is None)."""
        if limit is None or limit >= len(self):
            return self
        return DigitData(self.images[:limit], self.labels[:limit])

    def subset(self, index):
        """The samples at `index` (a tensor of positions), as a DigitData."""
        return DigitData(self.images[index], self.labels[index])

    def inputs(self, index=None):
        """Float network inputs (N, 1, 28, 28) in [0, 1]."""
        images = self.images if index is None else self.images[index]
        return images.unsqueeze(1).float().div_(255.0)

    def counts(self):
        """How many samples of each digit, as a list of ten ints."""
        return torch.bincount(self.labels, minlength=10).tolist()


def concatenate(*parts):
    parts = [part for part in parts if part is not None and len(part)]
    if not parts:
        return DigitData(torch.zeros((0, 28, 28), dtype=torch.uint8),
                         torch.zeros(0, dtype=torch.int64))
    return DigitData(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


def mnist_split(split, data_dir=None, limit=None, download=True):
    images, labels = mnist.load_split(split, data_dir=data_dir, download=download)
    return DigitData.from_arrays(images, labels).head(limit)


def batches(data, batch_size, generator=None, shuffle=True, drop_last=False):
    """Yield (inputs, labels) batches; a shuffle follows `generator`."""
    n = len(data)
    if shuffle:
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size]
        yield data.inputs(index), data.labels[index]


def canvas_style(data, count, seed=1, workers=None):
    """The first `count` digits of `data` redrawn the way the site's canvas draws.

    Players draw with a pen of one width along smooth strokes; training on
    such renderings of MNIST train digits (trainer.canvas_eval, cached after
    the first build) shows the network that style next to MNIST's scans.
    Raises ImportError when the canvas renderer is not available. `workers`:
    processes that render (default: every core).
    """
    from trainer.canvas_eval import build_canvas_eval_set

    part = data.head(count)
    inputs, labels = build_canvas_eval_set(part.images.numpy(), part.labels.numpy(), seed=seed,
                                           workers=workers)
    return DigitData.from_arrays(inputs, labels)
