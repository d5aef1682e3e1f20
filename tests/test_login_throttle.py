"""Failed logins to the real admin login view are throttled per account and per address.

Hostile inputs: wrong passwords for one account from many addresses (the
audit's "100 wrong passwords, then the right one worked"), many user names
from one address, wrong passwords for an account that does not exist.
"""

import pytest
from django.core.cache import cache

from digitsite import login_throttle

pytestmark = pytest.mark.django_db

URL = "/admin/login/"
PASSWORD = "right-horse-battery-1"


@pytest.fixture(autouse=True)
def clean_cache_and_clock(monkeypatch, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 5
    settings.LOGIN_FAILURES_PER_IP = 20
    settings.LOGIN_LOCKOUT_SECONDS = 900
    # A fast hasher: dozens of logins per test, each hashing a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    now = [1_000_000.0]
    monkeypatch.setattr(login_throttle, "clock", lambda: now[0])
    cache.clear()
    yield now
    cache.clear()


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", password=PASSWORD)


def log_in(client, username, password, address="203.0.113.1"):
    client.cookies.clear()
    response = client.post(URL, {"username": username, "password": password,
                                 "next": "/admin/"}, REMOTE_ADDR=address)
    return response


def logged_in(response):
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_the_right_password_works(client, root):
    assert logged_in(log_in(client, "root", PASSWORD))


def test_wrong_passwords_from_many_addresses_lock_the_account(client, root):
    for n in range(10):
        response = log_in(client, "root", f"guess-{n}", address=f"198.51.100.{n}")
        assert not logged_in(response)
    response = log_in(client, "root", PASSWORD, address="192.0.2.77")
    assert not logged_in(response)
    text = response.content.decode()
    assert "Too many failed logins" in text and "Try again in 15 minutes" in text
    # Other accounts are not affected.
    assert "Too many" not in log_in(client, "someone", "x", address="192.0.2.78") \
        .content.decode()


def test_the_lock_expires_after_the_lockout(client, root, clean_cache_and_clock):
    now = clean_cache_and_clock
    for n in range(5):
        log_in(client, "root", f"guess-{n}")
    assert "Too many" in log_in(client, "root", PASSWORD).content.decode()
    now[0] += 899
    assert "Try again in 1 minute." in log_in(client, "root", PASSWORD).content.decode()
    now[0] += 2
    assert logged_in(log_in(client, "root", PASSWORD))


def test_tries_while_locked_do_not_extend_the_lock(client, root, clean_cache_and_clock):
    now = clean_cache_and_clock
    for n in range(5):
        log_in(client, "root", f"guess-{n}")
    for _ in range(3):
        now[0] += 300
        log_in(client, "root", "still-guessing")
    now[0] += 1
    assert logged_in(log_in(client, "root", PASSWORD))


def test_many_names_from_one_address_lock_the_address(client, root):
    for n in range(20):
        log_in(client, f"user{n}", "guess", address="203.0.113.9")
    locked = log_in(client, "root", PASSWORD, address="203.0.113.9")
    assert not logged_in(locked) and "Too many failed logins" in locked.content.decode()
    assert logged_in(log_in(client, "root", PASSWORD, address="203.0.113.10"))


def test_a_success_clears_the_accounts_count(client, root):
    for n in range(4):
        log_in(client, "root", f"guess-{n}", address=f"198.51.100.{n}")
    assert logged_in(log_in(client, "root", PASSWORD))
    for n in range(4):
        log_in(client, "root", f"guess-{n}", address=f"198.51.100.{n + 10}")
    assert logged_in(log_in(client, "root", PASSWORD))


def test_an_unknown_account_locks_like_a_real_one(client):
    """The message must not tell which accounts exist."""
    for n in range(5):
        log_in(client, "nobody-here", f"guess-{n}", address=f"198.51.100.{n}")
    assert "Too many failed logins" in log_in(client, "nobody-here", "x").content.decode()


def test_user_names_differing_in_case_share_a_count(client, root):
    for n, name in enumerate(["root", "ROOT", "Root", "rOOt", "roOT"]):
        log_in(client, name, f"guess-{n}", address=f"198.51.100.{n}")
    assert "Too many failed logins" in log_in(client, "root", PASSWORD).content.decode()


def test_with_the_cache_down_logins_work_unthrottled(client, root, settings, caplog):
    """Redis gone: the admin must stay reachable (no 500), and the log says why
    nothing is throttled."""
    from tests.support import free_port

    working = settings.CACHES
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    assert log_in(client, "root", "wrong").status_code == 200
    assert logged_in(log_in(client, "root", PASSWORD))
    assert "login throttling is off" in caplog.text
    settings.CACHES = working  # for the fixture's clean-up


def test_an_error_that_is_not_the_caches_is_not_reported_as_an_outage(settings, caplog):
    """A lockout of 0 used to divide by zero inside the guard, which logged "the
    cache failed" on every failed login while throttling stayed off. Only the
    cache's own errors may turn throttling off."""
    settings.LOGIN_LOCKOUT_SECONDS = 0
    with pytest.raises(ZeroDivisionError):
        login_throttle.record_failure(None, "root")
    assert "login throttling is off" not in caplog.text


@pytest.mark.parametrize("name, value", [
    ("LOGIN_LOCKOUT_SECONDS", "0"), ("LOGIN_FAILURES_PER_ACCOUNT", "-1"),
    ("LOGIN_FAILURES_PER_IP", "twenty"),
])
def test_a_login_limit_of_zero_or_less_stops_the_site_with_a_clear_error(tmp_path, name,
                                                                         value):
    """Hostile settings: 0 (divides by zero, or locks every name at once), a
    negative count, text."""
    from tests.test_deploy_check import manage

    result = manage(tmp_path, {name: value}, "check")
    assert result.returncode != 0
    assert f"{name} must be a whole number above 0, not {value!r}" in result.stderr
