"""A WebSocket reads the browser's session and user at its handshake, and
sends its frames through the socket's own `send` (digitsite/websocket_session.py).

Through the site's own ASGI stack on a real socket: a signed-in player keeps
the account's name and seat (tests/test_game_consumers.py). Here the
middleware alone: what the inner application is given, for a browser signed
in, one with an anonymous session, one with a session key the server does not
know, and none.
"""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client as HttpClient

from digitsite.websocket_session import websocket_auth_stack

pytestmark = pytest.mark.django_db(transaction=True)


async def handshake(cookie):
    seen = {}

    async def inner(scope, receive, send):
        seen["send"] = send
        seen["session_key"] = scope["session"].session_key
        seen["user"] = (scope["user"].pk, scope["user"].is_authenticated)

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        seen.setdefault("sent", []).append(message)

    headers = [(b"cookie", cookie.encode())] if cookie else []
    await websocket_auth_stack(inner)({"type": "websocket", "path": "/ws/", "headers": headers},
                                      receive, send)
    return seen, send


@sync_to_async
def signed_in_cookie():
    http = HttpClient()
    user = User.objects.create_user("ada", password="not-used-here")
    http.force_login(user)
    return user.pk, http.cookies["sessionid"].value


@sync_to_async
def anonymous_session():
    store = SessionStore()
    store["seen"] = True
    store.save()
    return store.session_key


async def test_the_inner_application_gets_the_sockets_own_send_and_the_session():
    user_id, key = await signed_in_cookie()
    seen, send = await handshake(f"sessionid={key}")
    # The socket's own send, not a wrapper that would run at every frame.
    assert seen["send"] is send
    assert seen["session_key"] == key
    assert seen["user"] == (user_id, True)


async def test_an_anonymous_unknown_or_missing_session_reads_as_such():
    key = await anonymous_session()
    seen, send = await handshake(f"sessionid={key}")
    assert seen["send"] is send and seen["session_key"] == key
    assert seen["user"] == (None, False)
    assert "sent" not in seen  # nothing was sent on the socket's behalf
    for cookie in ("sessionid=not-a-session-the-server-knows", None):
        seen, send = await handshake(cookie)
        assert seen["send"] is send
        assert seen["user"] == (None, False)
        assert "sent" not in seen
