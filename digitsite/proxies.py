"""Trusting a reverse proxy's headers only when it is the one sending them.

Behind nginx every request arrives from the proxy's address, and the proxy
says who the client is (X-Forwarded-For) and whether it used https
(X-Forwarded-Proto). Anyone can send those headers, so they count only when
the peer is one of TRUSTED_PROXIES (addresses or networks; empty by default,
which trusts no one):

- from a trusted proxy, the client address becomes the right-most address in
  X-Forwarded-For that is not itself a trusted proxy (the ones left of it were
  written by the client and prove nothing), and X-Forwarded-Proto: https sets
  the scheme, which Django reads through SECURE_PROXY_SSL_HEADER;
- from anyone else, X-Forwarded-Proto is removed before Django sees it, and
  the address is the peer's.

This is ASGI middleware rather than Django middleware so that the WebSocket
side (room limits per address, the origin check's scheme) sees the same
client as the pages. X-Forwarded-For itself is left in place: /healthz reads
its presence to tell a proxied request from a local one.
"""

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings

logger = logging.getLogger(__name__)

# Warned once per process: every request through a misconfigured nginx would
# otherwise log the same line.
_warned_unconfigured_proxy = False


def _warn_if_proxied_without_trust(address, headers):
    """A loopback peer sending X-Forwarded-For is almost surely a local proxy
    (nginx on the same machine) while TRUSTED_PROXIES is empty: then every
    visitor has the proxy's address and shares one budget of the per-address
    limits (rooms, login failures, the API). Said once, at WARNING."""
    global _warned_unconfigured_proxy
    if _warned_unconfigured_proxy or address is None or not address.is_loopback:
        return
    if not any(k == b"x-forwarded-for" for k, _ in headers):
        return
    _warned_unconfigured_proxy = True
    logger.warning(
        "a request from %s carries X-Forwarded-For but TRUSTED_PROXIES is empty: every "
        "client behind this proxy shares its address, and so the per-address limits on "
        "rooms, login failures and the API. Set TRUSTED_PROXIES to the proxy's address "
        "(see docs/deployment.md); do not run Daphne with --proxy-headers.", address)


def parse_networks(entries):
    """ip_network objects for 'addr' or 'addr/prefix' strings; ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an address or network") \
                from exc
    return networks


@lru_cache(maxsize=8)
def _configured(entries):
    return tuple(parse_networks(entries))


def _address(text):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, networks):
    return address is not None and any(address in network for network in networks)


def client_address(peer, forwarded_for, networks):
    """The client's address as the chain of trusted proxies reports it."""
    address = _address(peer)
    if not _trusted(address, networks) or not forwarded_for:
        return peer
    hops = [hop for hop in ",".join(forwarded_for).split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = _address(hop)
        if hop_address is None:
            # Garbage in the chain: what a trusted proxy appended after it was
            # already taken, so stop at the last address known good.
            return str(address)
        address = hop_address
        if not _trusted(address, networks):
            return str(address)
    return str(address)


class TrustedProxyMiddleware:
    """ASGI middleware: the client address and scheme, proxies' headers trusted as configured."""

    def __init__(self, application):
        self.application = application

    @property
    def networks(self):
        # Read per request (parsed once per value) so that a changed setting,
        # in a test for one, takes effect.
        return _configured(tuple(settings.TRUSTED_PROXIES))

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = self._rewrite(scope)
        return await self.application(scope, receive, send)

    def _rewrite(self, scope):
        client = scope.get("client")
        peer = client[0] if client else ""
        headers = scope.get("headers", [])
        networks = self.networks
        if not networks:
            _warn_if_proxied_without_trust(_address(peer), headers)
        if not _trusted(_address(peer), networks):
            stripped = [(k, v) for k, v in headers if k != b"x-forwarded-proto"]
            return {**scope, "headers": stripped} if len(stripped) != len(headers) else scope
        forwarded_for = [v.decode("latin1") for k, v in headers if k == b"x-forwarded-for"]
        new = dict(scope)
        if forwarded_for:
            new["client"] = (client_address(peer, forwarded_for, self.networks), 0)
        proto = [v.decode("latin1").strip().lower() for k, v in headers
                 if k == b"x-forwarded-proto"]
        if proto:
            secure = proto[-1] in ("https", "wss")
            if scope["type"] == "websocket":
                new["scheme"] = "wss" if secure else "ws"
            else:
                new["scheme"] = "https" if secure else "http"
        return new
