"""The game's WebSocket accepts only the site's own pages, port included.

Hostile origins: another port on the same host (http://localhost:9999 against
a site on :8000, e.g. any local program's page), another host, no Origin at
all, a malformed port.
"""

import pytest
from channels.testing import WebsocketCommunicator

from digitsite.asgi import application
from digitsite.origins import ports_match
from tests.test_game_consumers import new_room

pytestmark = pytest.mark.django_db(transaction=True)


async def connects(code, origin, host):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, f"/ws/v1/rooms/{code}/", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.mark.parametrize("origin, host, accepted", [
    ("http://localhost:8000", "localhost:8000", True),
    ("http://localhost", "localhost", True),
    # Behind nginx with Host $host: the client used 443 (or 80).
    ("https://localhost", "localhost", True),
    ("http://localhost:9999", "localhost:8000", False),
    ("http://localhost:8000", "localhost", False),
    ("http://localhost:9999", "localhost", False),
    ("http://localhost", "localhost:8000", False),
    ("http://evil.example:8000", "localhost:8000", False),
    ("http://localhost:99999", "localhost:8000", False),
    (None, "localhost:8000", False),
])
async def test_the_origin_must_match_host_and_port(active_model, origin, host, accepted):
    room = await new_room()
    assert await connects(room.code, origin, host) is accepted


def test_ports_match_reads_ipv6_hosts():
    assert ports_match("http://[::1]:8000", "[::1]:8000")
    assert not ports_match("http://[::1]:8001", "[::1]:8000")
    assert not ports_match("not a url", "localhost")
