"""The production setup: `check --deploy` with the documented env, and structured logs.

Settings are read once per process, so each environment runs `manage.py` in a
subprocess of its own.
"""

import json
import logging
import os
import re
import secrets
import subprocess
import sys

import pytest

from tests.support import BASE_DIR

# The environment docs/deployment.md tells an operator to set.
PRODUCTION_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "DEBUG": "false",
    "ALLOWED_HOSTS": "digits.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://digits.example.com",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "LOG_FORMAT": "json",
}

# Variables of the machine running the tests that would change the result.
_SCRUBBED = {
    "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECRET_KEY", "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "LOG_FORMAT", "LOG_LEVEL",
    "DATABASE_URL", "REDIS_URL", "TRUSTED_PROXIES", "DATABASE_CONN_MAX_AGE",
    "RECOGNIZER_MODEL_DIR", "RECOGNIZER_TORCH_THREADS", "STATIC_ROOT", "DIGITSITE_VAR_DIR",
}


def documented_env(tmp_path):
    """The example environment file of docs/deployment.md, as written there, with a
    real key for its placeholder and tmp_path for /srv/digitsite (not writable here)."""
    text = (BASE_DIR / "docs" / "deployment.md").read_text()
    block = re.search(r"Put the environment in one file.*?```sh\n(.*?)```", text, re.S).group(1)
    env = {}
    for line in block.splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value.replace("/srv/digitsite", str(tmp_path / "srv"))
    assert env["SECRET_KEY"].startswith("..."), "the key is a placeholder in the docs"
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def manage(tmp_path, env, *args):
    full_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    full_env.update({"DIGITSITE_VAR_DIR": str(tmp_path / "var"),
                     "DJANGO_SETTINGS_MODULE": "digitsite.settings"})
    full_env.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=full_env,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_passes_with_the_production_env(tmp_path):
    result = manage(tmp_path, PRODUCTION_ENV, "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output


def test_check_deploy_passes_with_the_deployment_guides_own_env_file(tmp_path):
    env = documented_env(tmp_path)
    assert env["TRUSTED_PROXIES"] == "127.0.0.1" and env["SECURE_SSL_REDIRECT"] == "true"
    result = manage(tmp_path, env, "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_check_deploy_flags_a_setup_left_at_its_defaults(tmp_path):
    result = manage(tmp_path, {"DEBUG": "true"}, "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016",
                 "security.W018"):
        assert code in output, output


def test_health_probes_are_not_redirected_to_https(tmp_path):
    """With SECURE_SSL_REDIRECT on, a plain-HTTP probe still reaches /healthz."""
    code = (
        "from django.test import Client\n"
        "c = Client(SERVER_NAME='digits.example.com')\n"
        "print(c.get('/healthz').status_code, c.get('/api/recognize').status_code)\n"
    )
    result = manage(tmp_path, PRODUCTION_ENV, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    health_status, other_status = result.stdout.splitlines()[-1].split()
    assert health_status in ("200", "503")  # its own answer, whatever the health
    assert other_status == "301"


def test_an_unknown_log_format_is_refused_with_a_clear_message(tmp_path):
    result = manage(tmp_path, {"LOG_FORMAT": "xml"}, "check")
    assert result.returncode != 0
    assert "LOG_FORMAT must be 'plain' or 'json'" in result.stderr


def test_json_log_format_writes_one_object_per_line(tmp_path):
    code = (
        "import logging\n"
        "log = logging.getLogger('digitsite.rooms')\n"
        "log.warning('room %s closed', 'AB12', extra={'room': 'AB12', 'players': 3})\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    log.exception('round \"failed\"\\nbadly')\n"
    )
    result = manage(tmp_path, {"LOG_FORMAT": "json"}, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    closed, failed = [e for e in entries if e["logger"] == "digitsite.rooms"]
    assert closed["message"] == "room AB12 closed"
    assert closed["level"] == "WARNING"
    assert closed["room"] == "AB12" and closed["players"] == 3
    assert isinstance(closed["process"], int) and closed["process"] > 0
    assert closed["time"].endswith("+00:00")
    assert failed["level"] == "ERROR"
    assert failed["message"] == 'round "failed"\nbadly'
    assert "ZeroDivisionError" in failed["exception"]


def test_plain_log_format_is_the_default(tmp_path):
    code = "import logging; logging.getLogger('digitsite.rooms').warning('hello plain')"
    result = manage(tmp_path, {}, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "hello plain" in line)
    assert "WARNING digitsite.rooms hello plain" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_the_formatter_writes_values_json_cannot_hold_as_text():
    from digitsite.logging import JsonFormatter

    class Unprintable:
        def __str__(self):
            return "<a thing>"

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "seen %d", (5,), None)
    record.thing = Unprintable()
    record.nested = {"a": [1, 2]}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "seen 5"
    assert entry["thing"] == "<a thing>"
    assert entry["nested"] == {"a": [1, 2]}
    assert "args" not in entry and "msg" not in entry


@pytest.mark.parametrize("blank", ["", "  "], ids=["empty", "spaces"])
def test_a_blank_database_url_means_the_default_sqlite_database(tmp_path, blank):
    # `DATABASE_URL=` in an env file, as `REDIS_URL=` turns Redis off: before,
    # dj_database_url read it as a configuration without an engine and every
    # command failed on a KeyError.
    code = ("from django.conf import settings\n"
            "db = settings.DATABASES['default']\n"
            "print(db['ENGINE'], db['NAME'])\n")
    result = manage(tmp_path, {"DATABASE_URL": blank}, "shell", "-c", code)
    assert result.returncode == 0, result.stderr[-2000:]
    engine, name = result.stdout.splitlines()[-1].split()
    assert engine == "django.db.backends.sqlite3"
    assert name == str(tmp_path / "var" / "db.sqlite3")


@pytest.mark.parametrize(("name", "value", "said"), [
    ("SESSION_COOKIE_SECURE", "ture", "SESSION_COOKIE_SECURE must be on (1, true, yes, on) "
                                      "or off (0, false, no, off), not 'ture'"),
    ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of CRITICAL, FATAL, ERROR, WARN, WARNING, "
                          "INFO, DEBUG, NOTSET (in any case), not 'loud'"),
    ("CHANNEL_LAYER_CAPACITY", "0", "CHANNEL_LAYER_CAPACITY must be a whole number above 0, "
                                    "not '0'"),
], ids=["a switch misspelt", "a log level that is none", "a channel layer that holds nothing"])
def test_a_setting_the_site_cannot_read_stops_it_with_the_variable_named(tmp_path, name,
                                                                         value, said):
    # Before: a misspelt switch was read as off, silently (a cookie sent over
    # plain HTTP), and logging refused a level naming no variable.
    result = manage(tmp_path, {name: value}, "check")
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {said}" in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize(("read", "value", "said"), [
    (lambda s: s.env_bool("X", False), "maybe", "X must be on (1, true, yes, on) or off "
                                                 "(0, false, no, off), not 'maybe'"),
    (lambda s: s.env_int("X", 4), "four", "X must be a whole number, not 'four'"),
    (lambda s: s.env_int("X", 0), "1.5", "X must be a whole number, not '1.5'"),
    (lambda s: s.env_float("X", 20.0), "20s", "X must be a number, not '20s'"),
], ids=["a switch that is no word for on or off", "a count in words", "a count with a fraction",
        "a number with a unit"])
def test_the_settings_readers_name_what_they_cannot_read(monkeypatch, read, value, said):
    # Before: a number they could not read stopped every command with a bare
    # "invalid literal for int()" naming no variable.
    from django.core.exceptions import ImproperlyConfigured

    from digitsite import environment as readers

    monkeypatch.setenv("X", value)
    with pytest.raises(ImproperlyConfigured) as refused:
        read(readers)
    assert str(refused.value).startswith(said)


def test_the_settings_readers_take_blanks_as_the_default(monkeypatch, tmp_path):
    from digitsite import environment as readers

    for blank in ("", "   "):
        monkeypatch.setenv("X", blank)
        assert readers.env_bool("X", True) is True
        assert readers.env_int("X", 7) == 7
        assert readers.env_float("X", 2.5) == 2.5
        # A blank folder was the current folder, wherever a command ran.
        assert readers.env_path("X", tmp_path) == tmp_path
        assert readers.env_list("X", ["localhost"]) == ["localhost"]
        assert readers.env_text("X", "redis://") == "redis://"
    monkeypatch.setenv("X", " ON ")
    assert readers.env_bool("X", False) is True
    monkeypatch.setenv("X", "no")
    assert readers.env_bool("X", True) is False


def test_switches_and_numbers_read_their_words_and_blanks(tmp_path):
    code = ("from django.conf import settings as s\n"
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.GAME_DB_THREADS, s.DATABASE_LOCK_TIMEOUT, s.LOG_LEVEL)\n"
            "print(s.MNIST_DATA_DIR)\n")
    env = {"DEBUG": " Off ", "SESSION_COOKIE_SECURE": "YES", "CSRF_COOKIE_SECURE": "  ",
           "GAME_DB_THREADS": " 3 ", "DATABASE_LOCK_TIMEOUT": "", "LOG_LEVEL": " warning ",
           "MNIST_DATA_DIR": " "}
    result = manage(tmp_path, env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr[-2000:]
    # A blank value is the default: CSRF_COOKIE_SECURE off, a 20 s lock
    # timeout, the MNIST files under the var folder (not the current folder).
    assert result.stdout.splitlines()[-2:] == ["False True False 3 20.0 WARNING",
                                               str(tmp_path / "var" / "mnist")]
