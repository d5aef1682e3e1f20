"""Proxy headers count only from TRUSTED_PROXIES, through the real ASGI application.

Hostile inputs: X-Forwarded-Proto: https and X-Forwarded-For: 127.0.0.1 sent
straight by a client, a client-written address left of the proxy's in the
chain, garbage in the chain.
"""

import pytest
from channels.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler

from digitsite.asgi import application
from digitsite.proxies import TrustedProxyMiddleware, client_address, parse_networks

pytestmark = pytest.mark.django_db(transaction=True)

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize("peer, chain, expected", [
    ("127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
    # The client wrote "1.2.3.4" itself; nginx appended the address it saw.
    ("127.0.0.1", ["1.2.3.4, 203.0.113.9"], "203.0.113.9"),
    # Two trusted hops (a load balancer in 10/8, then nginx).
    ("127.0.0.1", ["198.51.100.7, 10.1.2.3"], "198.51.100.7"),
    ("127.0.0.1", ["198.51.100.7", "10.1.2.3"], "198.51.100.7"),
    ("127.0.0.1", ["[2001:db8::5]:4711"], "2001:db8::5"),
    ("127.0.0.1", ["203.0.113.9:5555"], "203.0.113.9"),
    # Garbage right of a trusted hop: stop at the last address known good.
    ("127.0.0.1", ["203.0.113.9, not-an-ip"], "127.0.0.1"),
    # An untrusted peer's header proves nothing.
    ("203.0.113.50", ["127.0.0.1"], "203.0.113.50"),
    ("127.0.0.1", [], "127.0.0.1"),
])
def test_the_client_is_the_rightmost_untrusted_address(peer, chain, expected):
    assert client_address(peer, chain, PROXIES) == expected


def test_a_bad_trusted_proxies_entry_is_named():
    with pytest.raises(ValueError, match="'localhost:80'"):
        parse_networks(["127.0.0.1", "localhost:80"])


async def scope_seen(settings, peer, headers, kind="http"):
    """The scope the application behind the middleware gets."""
    seen = {}

    async def inner(scope, receive, send):
        seen.update(scope)

    scope = {"type": kind, "client": (peer, 40000), "scheme": "ws" if kind == "websocket"
             else "http", "headers": headers, "path": "/"}
    await TrustedProxyMiddleware(inner)(scope, None, None)
    return seen


async def test_scope_from_a_trusted_proxy_gets_the_client_and_scheme(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    headers = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    http = await scope_seen(settings, "127.0.0.1", headers)
    assert http["client"][0] == "203.0.113.9" and http["scheme"] == "https"
    ws = await scope_seen(settings, "127.0.0.1", headers, kind="websocket")
    assert ws["client"][0] == "203.0.113.9" and ws["scheme"] == "wss"


@pytest.mark.parametrize("trusted", [[], ["10.0.0.0/8"]])
async def test_scope_from_anyone_else_keeps_its_peer_and_loses_the_https_claim(settings,
                                                                               trusted):
    settings.TRUSTED_PROXIES = trusted
    headers = [(b"x-forwarded-for", b"127.0.0.1"), (b"x-forwarded-proto", b"https")]
    seen = await scope_seen(settings, "203.0.113.50", headers)
    assert seen["client"][0] == "203.0.113.50" and seen["scheme"] == "http"
    assert (b"x-forwarded-proto", b"https") not in seen["headers"]
    # X-Forwarded-For stays: /healthz reads its presence.
    assert (b"x-forwarded-for", b"127.0.0.1") in seen["headers"]


async def get(path, peer, headers, app=application):
    """One GET through the site's real ASGI application; (status, headers)."""
    communicator = ApplicationCommunicator(app, {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": (peer, 40000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"digits.example.com"), *headers],
    })
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    await communicator.receive_output(10)  # the body
    return start["status"], dict(start["headers"])


@pytest.mark.parametrize("trusted, peer, redirected", [
    ([], "127.0.0.1", True),                       # no proxy configured: nobody is believed
    (["127.0.0.1"], "203.0.113.50", True),         # a client claiming https itself
    (["127.0.0.1"], "127.0.0.1", False),           # nginx saying the client used https
])
async def test_only_a_trusted_proxy_can_say_https(settings, trusted, peer, redirected):
    """With SECURE_SSL_REDIRECT on, a request claiming X-Forwarded-Proto: https is
    redirected to https unless a trusted proxy made the claim."""
    settings.ALLOWED_HOSTS = ["digits.example.com"]
    settings.TRUSTED_PROXIES = trusted
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Django's middleware reads SECURE_SSL_REDIRECT when built: a handler of
    # this test's own, behind the same proxy middleware as digitsite.asgi's.
    app = TrustedProxyMiddleware(ASGIHandler())
    status, headers = await get("/api/recognize", peer, [(b"x-forwarded-proto", b"https")],
                                app=app)
    if redirected:
        assert status == 301 and headers[b"Location"].startswith(b"https://")
    else:
        assert status == 405  # reached the API, which wants POST


async def test_security_headers_on_every_page(settings):
    settings.ALLOWED_HOSTS = ["digits.example.com"]
    status, headers = await get("/", "127.0.0.1", [])
    assert status == 200
    policy = headers[b"Content-Security-Policy"].decode()
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers[b"Referrer-Policy"] == b"same-origin"
    assert headers[b"X-Content-Type-Options"] == b"nosniff"


async def test_a_local_proxy_without_trusted_proxies_is_warned_about_once(settings, caplog,
                                                                          monkeypatch):
    """nginx on the same machine sending X-Forwarded-For while TRUSTED_PROXIES is
    empty: every visitor would share 127.0.0.1's limits. Warned once per process,
    not per request; a remote peer sending the header (a client forging it) and
    a configured TRUSTED_PROXIES warn nothing."""
    from digitsite import proxies

    monkeypatch.setattr(proxies, "_warned_unconfigured_proxy", False)
    forwarded = [(b"x-forwarded-for", b"203.0.113.9")]
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    await scope_seen(settings, "127.0.0.1", forwarded)
    settings.TRUSTED_PROXIES = []
    await scope_seen(settings, "203.0.113.50", forwarded)
    await scope_seen(settings, "127.0.0.1", [])
    assert "TRUSTED_PROXIES is empty" not in caplog.text

    for peer in ("127.0.0.1", "::1", "127.0.0.1"):
        seen = await scope_seen(settings, peer, forwarded)
        assert seen["client"][0] == peer  # still not believed
    warnings = [r for r in caplog.records
                if r.name == "digitsite.proxies" and "TRUSTED_PROXIES is empty" in r.message]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
