"""Which pages may open the game's WebSocket: the site's own, port included.

Channels' AllowedHostsOriginValidator compares only the Origin's host name
with ALLOWED_HOSTS, so a page served from http://localhost:9999 (any other
program on the player's machine, or another site on the same host name)
could open a socket to the game on http://localhost:8000 with the player's
cookies. Browsers treat those as different origins; so does this check: the
Origin's port must be the port the client connected to, as the Host header
says.

A Host header without a port means the client used a default port; behind a
proxy that terminates TLS the process cannot tell which scheme the client
used (the proxy's X-Forwarded-Proto is trusted only from TRUSTED_PROXIES), so
then the Origin's port must be 80 or 443.
"""

from urllib.parse import urlsplit

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _header(scope, name):
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _port_of(netloc):
    """The explicit port in a host[:port] (IPv6 in brackets), or None; -1 if malformed."""
    try:
        return urlsplit("//" + netloc).port
    except ValueError:
        return -1


def ports_match(origin, host):
    """Whether an Origin URL's port is the one the Host header says was used."""
    try:
        parsed = urlsplit(origin)
        origin_port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    except ValueError:
        return False
    if origin_port is None or host is None:
        return False
    host_port = _port_of(host)
    if host_port is None:
        return origin_port in (80, 443)
    return host_port == origin_port


class SameOriginValidator(OriginValidator):
    """ALLOWED_HOSTS for the host name, as channels checks it, plus the port."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            origin = _header(scope, b"origin")
            if origin is None or not ports_match(origin, _header(scope, b"host")):
                return await WebsocketDenier()(scope, receive, send)
        return await super().__call__(scope, receive, send)


def same_origin_only(application):
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return SameOriginValidator(application, allowed_hosts)
