"""The secret key: from the environment, or generated once per installation.

A local run needs no configuration, so without SECRET_KEY the site makes a
key and keeps it in the var folder. Several processes that start together
(Daphne workers, `manage.py` beside a server) must all end with the same key,
or sessions and CSRF tokens made by one fail in another. Checking for the file
and then writing it let two processes each write their own, or read the file
while another was still writing it (1 start in 100 with four processes gave
differing keys). Here each process writes a complete key to a private
temporary file and hard-links it to the real name: the link appears whole or
not at all and fails if the name exists, so exactly one key wins and every
process reads that one.

In production a generated key is refused: processes on several hosts (or
after a restore, or in containers with their own var folder) would each make
their own.
"""

import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

KEY_FILE_NAME = "secret_key"
# Host names that mean "this machine only": serving them is not production.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
ENVIRONMENTS = ("production", "development")


def is_production(environment, allowed_hosts):
    """Production: DIGITSITE_ENV=production, or unset with a host other than this machine's.

    An explicit DIGITSITE_ENV=development (a test on the local network, say)
    is not production whatever the hosts.
    """
    environment = (environment or "").strip().lower()
    if environment and environment not in ENVIRONMENTS:
        raise ImproperlyConfigured(
            f"DIGITSITE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}")
    if environment:
        return environment == "production"
    return any(host not in LOCAL_HOSTS for host in allowed_hosts)


def secret_key(environ_value, var_dir, production):
    """The key to use: `environ_value`, or the installation's generated one outside production."""
    key = (environ_value or "").strip()
    if key:
        return key
    if production:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. This is a production setup (DIGITSITE_ENV=production, or "
            "ALLOWED_HOSTS names a host other than localhost, 127.0.0.1 and [::1]), where "
            "every process must be given the same key: set SECRET_KEY to 50 or more random "
            "characters, for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`. For a local "
            "run, leave ALLOWED_HOSTS unset or set DIGITSITE_ENV=development."
        )
    return generated_key(Path(var_dir) / KEY_FILE_NAME)


def generated_key(path):
    """The key kept in `path`, made now if there is none yet; safe with concurrent callers."""
    path = Path(path)
    if not path.exists():
        publish_new_key(path)
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(
            f"{path} is empty; delete it (a new key is made, and sessions start over) "
            "or set SECRET_KEY")
    return key


def publish_new_key(path):
    """Put a new key at `path` unless one is already there (then that one stays)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp: mode 0600, only this user
            handle.write(secrets.token_urlsafe(64))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            pass  # another process won: its key is the one
        except OSError as exc:  # a file system without hard links
            raise ImproperlyConfigured(
                f"cannot create {path} ({exc.strerror}); set SECRET_KEY instead") from exc
    finally:
        os.unlink(tmp_name)
