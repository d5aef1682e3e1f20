"""MNIST for training: the local copies, downloading the files that are missing.

Reading the files (their IDX format, the official file set, local copies) is
recognizer/mnist_files.py, which the teaching pages use too; its names are
reachable here as well. A file that has to be downloaded is checked against
the md5 published for the official file before it is written (atomically)
into the data folder.
"""

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

from recognizer.atomic_files import write_atomically
from recognizer.mnist_files import (
    DEFAULT_MIRRORS,
    FILES,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    SPLITS,
    MnistError,
    MnistFile,
    check_split,
    default_data_dir,
    default_mirrors,
    find_local,
    local_path,
    missing_message,
    read_idx,
    read_split,
    write_idx,
)

__all__ = [
    "DEFAULT_MIRRORS", "FILES", "IMAGES_MAGIC", "LABELS_MAGIC", "SPLITS", "MnistError",
    "MnistFile", "default_data_dir", "default_mirrors", "download_file", "ensure_files",
    "load_split", "local_path", "read_idx", "write_idx",
]

logger = logging.getLogger(__name__)


def download_file(spec, data_dir, mirrors=None, timeout=30):
    """Fetch `spec`'s official .gz from the first mirror that has it; return its path.

    What arrives is checked against the published md5 before it is written;
    a mismatch from one mirror moves on to the next.
    """
    mirrors = tuple(mirrors) if mirrors else default_mirrors()
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + spec.gz_name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        digest = hashlib.md5(data).hexdigest()
        if digest != spec.md5:
            failures.append(f"{url}: md5 {digest} does not match the official {spec.md5}")
            continue
        target = Path(data_dir) / spec.gz_name
        write_atomically(target, data)
        logger.info("downloaded %s from %s", spec.gz_name, url)
        return target
    raise MnistError(f"could not download {spec.gz_name}: " + "; ".join(failures))


def ensure_files(data_dir=None, splits=SPLITS, download=True, mirrors=None, files=None):
    """Return {(split, kind): path} for the requested splits, downloading what is missing.

    `files` maps (split, kind) to MnistFile (default: the official FILES).
    Offline, the error names every missing file and the folder to put it in.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    found, missing = find_local(data_dir, splits, files)
    if not missing:
        return found
    if not download:
        raise MnistError(missing_message(data_dir, [spec for _, spec in missing]))
    errors = []
    still_missing = []
    for key, spec in missing:
        try:
            found[key] = download_file(spec, data_dir, mirrors=mirrors)
        except MnistError as exc:
            errors.append(str(exc))
            still_missing.append(spec)
        except OSError as exc:  # the data folder itself cannot be written
            errors.append(f"could not write {spec.gz_name} into {data_dir}: {exc}")
            still_missing.append(spec)
    if still_missing:
        raise MnistError(missing_message(data_dir, still_missing, errors))
    return found


def load_split(split, data_dir=None, download=True, mirrors=None, files=None):
    """(images uint8 (N, 28, 28), labels int64 (N,)) of 'train' or 'test'."""
    check_split(split)
    paths = ensure_files(data_dir, splits=(split,), download=download, mirrors=mirrors,
                         files=files)
    return read_split(split, paths, files)
