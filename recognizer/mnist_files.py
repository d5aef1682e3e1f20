"""The MNIST files on disk: their IDX format, the official four, local copies.

Both the teaching pages (which show MNIST test digits and never download)
and the trainer (which downloads what is missing, trainer/mnist.py) read
MNIST, so the format and the file set live here, beside the network.

The four files of the official distribution are looked up in a data folder
(settings.MNIST_DATA_DIR unless a caller names another), gzip-compressed or
not. A local file is trusted once its IDX header (magic number, dimensions)
and its size agree with what MNIST is; its checksum is not compared, since a
rebuilt copy is as good as the original and will not match it. The md5s and
mirrors below are for the trainer's download, and for the message that says
where a missing file can come from.
"""

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognizer.atomic_files import write_atomically

# torchvision's mirror list, in its order of preference.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


@dataclass(frozen=True)
class MnistFile:
    name: str  # without the .gz
    md5: str  # of the official .gz file
    magic: int
    shape: tuple

    @property
    def gz_name(self):
        return self.name + ".gz"


FILES = {
    ("train", "images"): MnistFile(
        "train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873", IMAGES_MAGIC,
        (60000, 28, 28),
    ),
    ("train", "labels"): MnistFile(
        "train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432", LABELS_MAGIC, (60000,),
    ),
    ("test", "images"): MnistFile(
        "t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3", IMAGES_MAGIC,
        (10000, 28, 28),
    ),
    ("test", "labels"): MnistFile(
        "t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c", LABELS_MAGIC, (10000,),
    ),
}

SPLITS = ("train", "test")


class MnistError(Exception):
    """The MNIST files are missing, corrupt, or could not be downloaded."""


def default_data_dir():
    from django.conf import settings

    return Path(settings.MNIST_DATA_DIR)


def default_mirrors():
    """Mirrors from $MNIST_MIRRORS (comma-separated URLs), else the public ones."""
    value = os.environ.get("MNIST_MIRRORS", "")
    mirrors = [item.strip() for item in value.split(",") if item.strip()]
    return tuple(mirrors) or DEFAULT_MIRRORS


# -- the IDX format -------------------------------------------------------------


def _read_bytes(path):
    """The file's content, gunzipped when it is a .gz file."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        # gzip raises BadGzipFile (an OSError) for a bad header and EOFError
        # for a cut-off stream: both mean the download or copy went wrong.
        raise MnistError(f"{path} is not a readable gzip/IDX file: {exc}") from exc


def read_idx(path, expected_magic=None, expected_shape=None):
    """Read an IDX file of unsigned bytes into a numpy uint8 array.

    Checks the magic number, the dimensions and that the data is exactly as
    long as the header says; raises MnistError naming the file otherwise.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise MnistError(f"{path} is too short to be an IDX file ({len(data)} bytes)")
    magic = struct.unpack(">I", data[:4])[0]
    if magic >> 16 != 0 or (magic >> 8) & 0xFF != 0x08:
        raise MnistError(
            f"{path} is not an IDX file of unsigned bytes (magic number 0x{magic:08x})"
        )
    if expected_magic is not None and magic != expected_magic:
        raise MnistError(
            f"{path} has magic number 0x{magic:08x}, expected 0x{expected_magic:08x}"
        )
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise MnistError(f"{path} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    if expected_shape is not None and tuple(shape) != tuple(expected_shape):
        raise MnistError(
            f"{path} holds an array of shape {tuple(shape)}, expected {tuple(expected_shape)}"
        )
    expected_bytes = int(np.prod(shape, dtype=np.int64))
    actual_bytes = len(data) - header_size
    if actual_bytes != expected_bytes:
        kind = "truncated" if actual_bytes < expected_bytes else "longer than its header says"
        raise MnistError(
            f"{path} is {kind}: {actual_bytes} data bytes for shape {tuple(shape)}, "
            f"expected {expected_bytes}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def write_idx(path, array):
    """Write a uint8 array as an IDX file (gzip-compressed if `path` ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    write_atomically(path, data)


# -- local copies ---------------------------------------------------------------


def local_path(data_dir, spec):
    """The file for `spec` in `data_dir` (.gz preferred), or None if absent."""
    for name in (spec.gz_name, spec.name):
        candidate = Path(data_dir) / name
        if candidate.is_file():
            return candidate
    return None


def find_local(data_dir, splits=SPLITS, files=None):
    """({(split, kind): path} of the files present, [((split, kind), spec) missing])."""
    files = FILES if files is None else files
    found, missing = {}, []
    for key, spec in files.items():
        if key[0] not in splits:
            continue
        path = local_path(data_dir, spec)
        if path is None:
            missing.append((key, spec))
        else:
            found[key] = path
    return found, missing


def missing_message(data_dir, specs, errors=()):
    """What is missing, where to put it, and (with `errors`) why downloading failed."""
    names = ", ".join(spec.gz_name for spec in specs)
    message = (
        f"MNIST files missing from {data_dir}: {names}. Put the official files there "
        f"(gzip-compressed or not), point MNIST_DATA_DIR or --data-dir at a folder that has "
        f"them, or allow the download from {', '.join(default_mirrors())}."
    )
    if errors:
        message += " Download failed: " + " | ".join(errors)
    return message


def check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")


def read_split(split, paths, files=None):
    """(images uint8 (N, 28, 28), labels int64 (N,)) of `split` from {(split, kind): path}."""
    files = FILES if files is None else files
    images_spec = files[(split, "images")]
    labels_spec = files[(split, "labels")]
    images = read_idx(paths[(split, "images")], images_spec.magic, images_spec.shape)
    labels = read_idx(paths[(split, "labels")], labels_spec.magic, labels_spec.shape)
    if labels.size and labels.max() > 9:
        raise MnistError(
            f"{paths[(split, 'labels')]} holds label {int(labels.max())}; MNIST labels are 0-9"
        )
    return images, labels.astype(np.int64)


def load_local_split(split, data_dir=None, files=None):
    """read_split of the copies in `data_dir`; MnistError naming what is missing."""
    check_split(split)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    found, missing = find_local(data_dir, (split,), files)
    if missing:
        raise MnistError(missing_message(data_dir, [spec for _, spec in missing]))
    return read_split(split, found, files)
