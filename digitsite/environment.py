"""Reading settings from the environment: one way for every variable.

Unset or blank (`NAME=` or spaces, as env files leave them) means the
default. A value that cannot be read stops the process at start-up with
ImproperlyConfigured, naming the variable and the value: a misspelt switch
("SESSION_COOKIE_SECURE=ture") was read as off, silently turning a protection
off, and a number that did not read stopped every command with a bare
"invalid literal for int()" that named no variable.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# In the order the error message lists them.
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def env_text(name, default=""):
    """The variable's text, stripped; `default` when unset or blank."""
    return os.environ.get(name, "").strip() or default


def env_bool(name, default=False):
    """A switch: one of TRUE_WORDS or FALSE_WORDS, in any case."""
    value = env_text(name).lower()
    if not value:
        return default
    if value not in TRUE_WORDS + FALSE_WORDS:
        raise ImproperlyConfigured(
            f"{name} must be on ({', '.join(TRUE_WORDS)}) or off ({', '.join(FALSE_WORDS)}), "
            f"not {os.environ[name]!r}")
    return value in TRUE_WORDS


def env_list(name, default):
    """Comma-separated items, each stripped; empty items dropped."""
    value = env_text(name)
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name, default):
    """A folder (a blank one was the current folder, wherever a command ran)."""
    value = env_text(name)
    return Path(value) if value else Path(default)


def env_checked(name, default, *, kind, allowed, must_be):
    """A number that `kind` (int or float) reads and `allowed` accepts: one
    whose wrong value would do harm stops the site at start-up with "NAME
    must be <must_be>, not '<the value>'"."""
    raw = os.environ.get(name, "")
    try:
        value = kind(raw) if raw.strip() else default
    except ValueError:
        value = None
    if value is None or not allowed(value):
        raise ImproperlyConfigured(f"{name} must be {must_be}, not {raw!r}")
    return value


def env_int(name, default):
    return env_checked(name, default, kind=int, allowed=lambda value: True,
                       must_be="a whole number")


def env_float(name, default):
    return env_checked(name, default, kind=float, allowed=lambda value: True,
                       must_be="a number")
