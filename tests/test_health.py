"""GET /healthz: every part reported, 200 only when all of them work."""

import os

import pytest
from channels.layers import get_channel_layer

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/healthz"


@pytest.fixture(autouse=True)
def patient_checks(settings):
    """Each test loads the model afresh, which takes seconds on a loaded machine
    (the production bound, 3 s, is for a warm process). Tests of the bound
    itself set their own."""
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 30.0


@pytest.fixture(autouse=True)
def fresh_service(monkeypatch):
    """A service of this test's own, so no model loaded by another test is reported."""
    from recognizer import inference

    monkeypatch.setattr(inference, "_service", inference.InferenceService(reload_seconds=0))


def test_all_parts_working_gives_200_and_reports_each(client, active_model):
    response = client.get(URL)
    assert response.status_code == 200, response.content
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert body["pid"] == os.getpid()
    checks = body["checks"]
    assert set(checks) == {"database", "disk", "channel_layer", "model"}
    assert checks["database"]["ok"] is True
    assert checks["database"]["vendor"] == "sqlite"
    layer = checks["channel_layer"]
    assert layer["ok"] is True
    assert layer["backend"] == type(get_channel_layer()).__name__
    model = checks["model"]
    assert model["ok"] is True
    assert model["active"] == model["loaded"] == active_model.version
    assert model["checksum_ok"] is True
    assert all(check["ms"] >= 0 for check in checks.values())


def test_a_newly_activated_version_is_reported_as_loaded(client, active_model, model_dir):
    from tests.support import register_random_model

    assert client.get(URL).json()["checks"]["model"]["loaded"] == active_model.version
    newer = register_random_model(model_dir, seed=1, activate=True)
    model = client.get(URL).json()["checks"]["model"]
    assert model["active"] == model["loaded"] == newer.version


def test_a_model_file_that_fails_its_checksum_gives_503(client, active_model, model_dir):
    path = model_dir / active_model.path
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    response = client.get(URL)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    model = body["checks"]["model"]
    assert model["ok"] is False
    assert model["checksum_ok"] is False
    assert "checksum" in model["error"]
    # The other parts still say what they are.
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True


def test_a_missing_model_file_gives_503_with_the_reason(client, active_model, model_dir):
    (model_dir / active_model.path).unlink()
    response = client.get(URL)
    assert response.status_code == 503
    model = response.json()["checks"]["model"]
    assert model["checksum_ok"] is False
    assert "cannot be read" in model["error"]


def test_no_active_version_gives_503(client, model_dir):
    response = client.get(URL)
    assert response.status_code == 503
    model = response.json()["checks"]["model"]
    assert model["ok"] is False
    assert model["active"] is None
    assert "no model version is active" in model["error"]


def test_the_database_check_writes_the_health_row(client, active_model):
    from digitsite.game.models import HealthProbe

    HealthProbe.objects.all().delete()  # a flushed database: the probe makes its row
    for _ in range(2):
        response = client.get(URL)
        assert response.status_code == 200, response.content
        assert response.json()["checks"]["database"]["write"] is True
    (probe,) = HealthProbe.objects.all()
    assert probe.checked_at is not None


def test_free_space_under_the_threshold_gives_503(client, active_model, settings):
    """Hostile input: a threshold above the real free space, as on a full disk."""
    import shutil

    free_mb = shutil.disk_usage(settings.VAR_DIR).free / 2**20
    response = client.get(URL)
    assert response.status_code == 200, response.content
    disk = response.json()["checks"]["disk"]
    assert disk["ok"] is True and disk["free_mb"]["var"] > 0

    settings.HEALTH_MIN_FREE_MB = free_mb * 2 + 1
    response = client.get(URL)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    disk = body["checks"]["disk"]
    assert disk["ok"] is False
    assert "var" in disk["error"] and "MiB free" in disk["error"]
    assert body["checks"]["database"]["ok"] is True


def test_other_methods_are_refused(client):
    response = client.post(URL)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert "GET" in response.json()["error"]


@pytest.mark.slow
def test_unreachable_database_and_redis_give_503_quickly(tmp_path):
    """A real server whose PostgreSQL and Redis are gone names both and does not hang."""
    import json
    import time
    import urllib.error
    import urllib.request

    from tests.live import LiveServer
    from tests.support import free_port

    dead_pg, dead_redis = free_port(), free_port()
    server = LiveServer(tmp_path, migrate=False, env={
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead_pg}/nothing",
        "REDIS_URL": f"redis://127.0.0.1:{dead_redis}/0",
        "HEALTH_CHECK_TIMEOUT_SECONDS": "3",  # the bound under test
    })
    server.start()
    try:
        start = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(server.url + URL, timeout=120)
        elapsed = time.monotonic() - start
        assert caught.value.code == 503
        body = json.loads(caught.value.read())
        checks = body["checks"]
        assert checks["database"]["ok"] is False
        assert checks["channel_layer"]["ok"] is False
        assert checks["channel_layer"]["backend"] == "RedisChannelLayer"
        assert checks["model"]["ok"] is False
        assert body["pid"] == server.process.pid
        # Each check gives up after 3 s and refused ports answer at once; a
        # hung check would take the client's whole 120 s. 30 s leaves a
        # loaded machine room and still tells the two apart.
        assert elapsed < 30, f"the probe took {elapsed:.1f} s"
    finally:
        server.stop()


# -- who sees the details ------------------------------------------------------------


@pytest.fixture
def dead_redis(settings):
    """The channel layer pointed at a Redis that is not there: its failure names the host."""
    from tests.support import free_port

    port = free_port()
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
    }}
    return port


def assert_public(response, port):
    assert response.status_code == 503
    body = response.json()
    assert body == {"status": "failing", "checks": {
        "database": "ok", "disk": "ok", "channel_layer": "failing", "model": "ok"}}
    text = response.content.decode()
    for leak in (str(port), "127.0.0.1", "redis", "Redis", "Error", "pid"):
        assert leak not in text, (leak, text)


@pytest.mark.parametrize("headers", [
    {"REMOTE_ADDR": "203.0.113.7"},
    {"REMOTE_ADDR": "2001:db8::7"},
    # A proxy on this machine relaying a visitor: loopback peer, forwarding header.
    {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"},
    {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.7"},
    {"REMOTE_ADDR": "::1", "HTTP_X_REAL_IP": "203.0.113.7"},
])
def test_the_public_answer_names_no_host_port_or_error(client, active_model, dead_redis,
                                                       headers):
    """A failing Redis at 127.0.0.1:<port>: visitors from elsewhere, also through a
    proxy on this machine, learn only that channel_layer is failing."""
    assert_public(client.get(URL, **headers), dead_redis)


@pytest.mark.parametrize("remote", ["127.0.0.1", "::1"])
def test_a_direct_loopback_request_gets_the_details(client, active_model, dead_redis, remote):
    body = client.get(URL, REMOTE_ADDR=remote).json()
    layer = body["checks"]["channel_layer"]
    assert layer["ok"] is False and layer["backend"] == "RedisChannelLayer"
    assert str(dead_redis) in layer["error"]
    assert body["pid"] == os.getpid()


def test_a_staff_user_from_anywhere_gets_the_details(client, active_model, dead_redis,
                                                     django_user_model):
    plain = django_user_model.objects.create_user("pat", password="pw-12345-long")
    client.force_login(plain)
    assert_public(client.get(URL, REMOTE_ADDR="203.0.113.7"), dead_redis)
    staff = django_user_model.objects.create_user("sam", password="pw-12345-long",
                                                  is_staff=True)
    client.force_login(staff)
    body = client.get(URL, REMOTE_ADDR="203.0.113.7",
                      HTTP_X_FORWARDED_FOR="198.51.100.1").json()
    assert str(dead_redis) in body["checks"]["channel_layer"]["error"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.slow
def test_a_real_server_tells_a_proxied_visitor_only_the_status(tmp_path):
    """Daphne (python -m digitsite.serve) with a dead Redis: asked through a proxy
    (X-Forwarded-For), the answer names no host or port; asked directly, it does."""
    import json
    import urllib.error
    import urllib.request

    from tests.live import LiveServer
    from tests.support import free_port

    dead_redis = free_port()
    server = LiveServer(tmp_path, env={"REDIS_URL": f"redis://127.0.0.1:{dead_redis}/0"})
    server.start()
    try:
        def ask(**headers):
            request = urllib.request.Request(server.url + URL, headers=headers)
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=30)
            assert caught.value.code == 503
            return caught.value.read().decode()

        public = ask(**{"X-Forwarded-For": "203.0.113.7"})
        assert json.loads(public) == {"status": "failing", "checks": {
            "database": "ok", "disk": "ok", "channel_layer": "failing", "model": "ok"}}
        assert str(dead_redis) not in public and "127.0.0.1" not in public
        assert str(dead_redis) in ask()
    finally:
        server.stop()


def test_a_hung_check_fails_after_the_configured_bound(client, active_model, settings,
                                                        monkeypatch):
    """A dependency that never answers is reported as failing, named, after
    HEALTH_CHECK_TIMEOUT_SECONDS, instead of hanging the probe."""
    import asyncio

    from digitsite import health

    async def never_answers():
        await asyncio.Event().wait()

    monkeypatch.setattr(health, "_channel_layer_check", never_answers)
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.2
    response = client.get(URL)
    assert response.status_code == 503
    layer = response.json()["checks"]["channel_layer"]
    assert layer["ok"] is False
    assert layer["error"] == "no answer within 0.2 s"
    assert layer["ms"] >= 200
