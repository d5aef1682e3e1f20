"""The MNIST loader: IDX validation, the download path, the offline message, the real files."""

import gzip
import hashlib
import http.server
import shutil
import threading
from functools import partial

import numpy as np
import pytest

from tests.support import free_port
from trainer import mnist
from trainer.mnist import MnistError, MnistFile

# -- tiny IDX files ------------------------------------------------------------


def tiny_images(count=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("name", ["images-idx3-ubyte.gz", "images-idx3-ubyte"])
def test_round_trip_gzip_and_raw(tmp_path, name):
    images = tiny_images()
    path = tmp_path / name
    mnist.write_idx(path, images)
    if name.endswith(".gz"):
        assert gzip.decompress(path.read_bytes())[:4] == b"\x00\x00\x08\x03"
    else:
        assert path.read_bytes()[:4] == b"\x00\x00\x08\x03"
    loaded = mnist.read_idx(path, mnist.IMAGES_MAGIC, (5, 28, 28))
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, images)


def test_wrong_magic_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    mnist.write_idx(path, np.arange(10, dtype=np.uint8))
    with pytest.raises(MnistError, match=r"labels-idx1-ubyte has magic number 0x00000801"):
        mnist.read_idx(path, expected_magic=mnist.IMAGES_MAGIC)


def test_garbage_header_is_refused(tmp_path):
    path = tmp_path / "garbage-idx3-ubyte"
    path.write_bytes(b"PK\x03\x04 this is a zip file, not IDX" + bytes(100))
    with pytest.raises(MnistError, match="garbage-idx3-ubyte is not an IDX file"):
        mnist.read_idx(path)


def test_truncated_data_is_refused(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    mnist.write_idx(path, tiny_images(4))
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(MnistError, match=r"short-idx3-ubyte is truncated: 3036 data bytes"):
        mnist.read_idx(path)


def test_extra_data_is_refused(tmp_path):
    path = tmp_path / "long-idx1-ubyte"
    mnist.write_idx(path, np.arange(10, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00\x01")
    with pytest.raises(MnistError, match="longer than its header says"):
        mnist.read_idx(path)


def test_truncated_gzip_stream_is_refused(tmp_path):
    path = tmp_path / "cut-idx3-ubyte.gz"
    mnist.write_idx(path, tiny_images(50))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MnistError, match="cut-idx3-ubyte.gz is not a readable gzip/IDX file"):
        mnist.read_idx(path)


def test_wrong_count_is_refused(tmp_path):
    path = tmp_path / "count-idx3-ubyte.gz"
    mnist.write_idx(path, tiny_images(7))
    with pytest.raises(MnistError, match=r"shape \(7, 28, 28\), expected \(8, 28, 28\)"):
        mnist.read_idx(path, mnist.IMAGES_MAGIC, (8, 28, 28))


def test_header_cut_inside_dimensions_is_refused(tmp_path):
    path = tmp_path / "header-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00")
    with pytest.raises(MnistError, match="truncated inside its header"):
        mnist.read_idx(path)


# -- download ------------------------------------------------------------------


def tiny_split_files(folder, count=6):
    """A tiny 'test' split as .gz files in `folder`, and specs that describe them."""
    folder.mkdir(parents=True, exist_ok=True)
    images = tiny_images(count, seed=1)
    labels = (np.arange(count) % 10).astype(np.uint8)
    mnist.write_idx(folder / "tiny-images-idx3-ubyte.gz", images)
    mnist.write_idx(folder / "tiny-labels-idx1-ubyte.gz", labels)

    def md5(name):
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    files = {
        ("test", "images"): MnistFile("tiny-images-idx3-ubyte", md5("tiny-images-idx3-ubyte.gz"),
                                      mnist.IMAGES_MAGIC, (count, 28, 28)),
        ("test", "labels"): MnistFile("tiny-labels-idx1-ubyte", md5("tiny-labels-idx1-ubyte.gz"),
                                      mnist.LABELS_MAGIC, (count,)),
    }
    return files, images, labels


@pytest.fixture
def mirror(tmp_path):
    """A static HTTP server on 127.0.0.1 serving tmp_path/mirror."""
    root = tmp_path / "mirror"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_missing_files_are_downloaded_verified_and_written(tmp_path, mirror):
    root, url = mirror
    files, images, labels = tiny_split_files(root / "mnist")
    data_dir = tmp_path / "data"
    # The first mirror lacks the files: the loader must move on to the next.
    loaded_images, loaded_labels = mnist.load_split(
        "test", data_dir, mirrors=[f"{url}/nothing-here/", f"{url}/mnist/"], files=files
    )
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "tiny-images-idx3-ubyte.gz", "tiny-labels-idx1-ubyte.gz",
    ]
    # Present now: a second load needs no mirror at all.
    again, _ = mnist.load_split("test", data_dir, mirrors=["http://127.0.0.1:9/"], files=files)
    np.testing.assert_array_equal(again, images)


def test_checksum_mismatch_refuses_the_download(tmp_path, mirror):
    root, url = mirror
    files, _, _ = tiny_split_files(root)
    # Same name, other content: what the mirror serves is not the official file.
    mnist.write_idx(root / "tiny-images-idx3-ubyte.gz", tiny_images(6, seed=99))
    data_dir = tmp_path / "data"
    with pytest.raises(MnistError) as info:
        mnist.ensure_files(data_dir, splits=("test",), mirrors=[url], files=files)
    message = str(info.value)
    assert f"does not match the official {files[('test', 'images')].md5}" in message
    assert "tiny-images-idx3-ubyte.gz" in message
    # Nothing half-written or unverified is left behind.
    assert not (data_dir / "tiny-images-idx3-ubyte.gz").exists()
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".")]


def test_offline_message_names_missing_files_and_folder(tmp_path):
    data_dir = tmp_path / "empty"
    data_dir.mkdir()
    unreachable = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(MnistError) as info:
        mnist.load_split("train", data_dir, mirrors=[unreachable])
    message = str(info.value)
    assert f"MNIST files missing from {data_dir}" in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "train-labels-idx1-ubyte.gz" in message
    assert "t10k" not in message.split("Download failed")[0]
    assert "MNIST_DATA_DIR" in message
    assert unreachable in message


def test_no_download_requested_reports_missing_files(tmp_path):
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"):
        mnist.ensure_files(tmp_path, splits=("test",), download=False)


# -- the real files ------------------------------------------------------------


def test_real_test_split(mnist_dir):
    images, labels = mnist.load_split("test", mnist_dir, download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,)
    # The published class counts of MNIST's test set.
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.max() == 255 and images.min() == 0


def test_real_train_split(mnist_dir):
    images, labels = mnist.load_split("train", mnist_dir, download=False)
    assert images.shape == (60000, 28, 28)
    assert np.bincount(labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]
    # MNIST digits are centred by mass in the 28x28 field.
    mass = images[:1000].astype(np.float64)
    rows = (mass.sum(axis=2) * np.arange(28)).sum(axis=1) / mass.sum(axis=(1, 2))
    assert 13.0 < rows.mean() < 15.0


def test_a_truncated_copy_of_the_real_file_is_refused(mnist_dir, tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, tmp_path / name)
    target = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(raw[: len(raw) - 784 * 3]))
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.gz is truncated"):
        mnist.load_split("test", tmp_path, download=False)
