"""SECRET_KEY: generated once for a local installation, required in production.

Settings are read once per process, so every case runs in processes of its own.
"""

import os
import stat
import subprocess
import sys
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from digitsite.secret_key import generated_key, is_production, publish_new_key
from tests.support import BASE_DIR

PROCESSES = 8
ROUNDS = 6
WAIT_SECONDS = 120

# Imports everything heavy first, says it is ready, waits for the start
# signal, then reads the settings: all processes reach the key at once.
STARTER = r"""
import os, sys, time
import dj_database_url, django.core.exceptions  # noqa: F401
ready, go = sys.argv[1], sys.argv[2]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0005)
from django.conf import settings
print(settings.SECRET_KEY)
"""

_SCRUBBED = {"SECRET_KEY", "ALLOWED_HOSTS", "DIGITSITE_ENV", "DEBUG", "DATABASE_URL",
             "REDIS_URL"}


def environment(var_dir, **extra):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update({"DIGITSITE_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "digitsite.settings"})
    env.update(extra)
    return env


def wait_for(condition, what):
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def start_together(var_dir, signals, count):
    """Start `count` processes on an empty `var_dir`; release them at once; return their keys."""
    signals.mkdir()
    go = signals / "go"
    processes = [
        subprocess.Popen([sys.executable, "-c", STARTER, str(signals / f"ready-{i}"), str(go)],
                         cwd=BASE_DIR, env=environment(var_dir), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for i in range(count)
    ]
    try:
        wait_for(lambda: all((signals / f"ready-{i}").exists() for i in range(count))
                 or any(p.poll() is not None for p in processes), "the processes to start")
        go.touch()
        outputs = [p.communicate(timeout=WAIT_SECONDS) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-2000:]
    return [stdout.strip() for stdout, _ in outputs]


def test_processes_starting_together_all_get_the_same_generated_key(tmp_path):
    """Hostile timing: 8 processes released at the same instant on an empty var folder, 6 times."""
    for round_number in range(ROUNDS):
        var_dir = tmp_path / f"var-{round_number}"
        keys = start_together(var_dir, tmp_path / f"signals-{round_number}", PROCESSES)
        assert len(set(keys)) == 1, keys
        [key] = set(keys)
        assert len(key) >= 50
        key_file = var_dir / "secret_key"
        assert key_file.read_text().strip() == key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        # No temporary file is left behind.
        assert [p.name for p in var_dir.iterdir() if "secret_key" in p.name] == ["secret_key"]
    # A restart reads the kept key.
    [again] = start_together(var_dir, tmp_path / "signals-again", 1)
    assert again == key


def test_a_process_that_loses_the_race_keeps_the_winners_key(tmp_path):
    """The interleaving the race produces, played in order: B checks, A writes, B writes.

    Writing the file directly (as before) replaced A's key with B's after A
    had already read its own.
    """
    key_file = tmp_path / "secret_key"
    a_key = generated_key(key_file)
    publish_new_key(key_file)  # B, which found no file a moment ago
    assert key_file.read_text() == a_key
    assert generated_key(key_file) == a_key
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]
    # A key file left empty (by an older version's crash) is a clear error.
    key_file.write_text("")
    with pytest.raises(ImproperlyConfigured, match="is empty; delete it"):
        generated_key(key_file)


def settings_in_a_process(var_dir, *args, **env):
    return subprocess.run([sys.executable, "manage.py", *(args or ("check",))], cwd=BASE_DIR,
                          env=environment(var_dir, **env), capture_output=True, text=True,
                          timeout=WAIT_SECONDS)


@pytest.mark.parametrize("env", [
    {"DIGITSITE_ENV": "production"},
    {"ALLOWED_HOSTS": "digits.example.com"},
    {"ALLOWED_HOSTS": "127.0.0.1,digits.example.com", "SECRET_KEY": "   "},
    {"ALLOWED_HOSTS": "*"},
], ids=["DIGITSITE_ENV=production", "a public host", "a blank key", "any host"])
def test_production_without_a_key_refuses_to_start(tmp_path, env):
    result = settings_in_a_process(tmp_path / "var", **env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "set SECRET_KEY to 50 or more random characters" in result.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


def test_local_and_explicit_development_setups_start_without_a_key(tmp_path):
    # `make run` and the tests: no environment at all.
    assert settings_in_a_process(tmp_path / "plain").returncode == 0
    assert (tmp_path / "plain" / "secret_key").is_file()
    local_network = settings_in_a_process(tmp_path / "lan", ALLOWED_HOSTS="192.168.1.20",
                                          DIGITSITE_ENV="development")
    assert local_network.returncode == 0, local_network.stderr[-2000:]
    # Production with a key starts, and generates nothing.
    given = settings_in_a_process(tmp_path / "prod", DIGITSITE_ENV="production",
                                  SECRET_KEY="k" * 50)
    assert given.returncode == 0, given.stderr[-2000:]
    assert not (tmp_path / "prod" / "secret_key").exists()


def test_what_counts_as_production():
    local = ["localhost", "127.0.0.1", "[::1]"]
    assert not is_production(None, local)
    assert not is_production("", [])
    assert is_production("production", local)
    assert is_production(" Production ", local)
    assert is_production(None, ["digits.example.com", "127.0.0.1"])
    assert is_production(None, ["*"])
    assert not is_production("development", ["digits.example.com"])
    with pytest.raises(ImproperlyConfigured, match="DIGITSITE_ENV must be one of"):
        is_production("staging", local)
