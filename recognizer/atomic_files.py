"""Files that appear whole or not at all."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_writer(path):
    """Open a temporary file beside `path`; rename it over `path` on success.

    The bytes are flushed to disk before the rename, so a crash, Ctrl-C or
    kill at any moment leaves either the old file (or none) or the complete
    new one, never a half-written file under the real name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private; other processes (a web server under
        # another user) must be able to read what is written here.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_atomically(path, data):
    with atomic_writer(path) as handle:
        handle.write(data)
