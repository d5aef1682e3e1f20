"""A WebSocket's session and user, read at its handshake, with the socket's
own `send`.

Channels' SessionMiddleware (in its AuthMiddlewareStack) wraps `send` to save
a changed session when an HTTP response starts. A WebSocket sends no such
message, so it never saves, yet every frame a socket sends passes through the
wrapper: two reads through the session's lazy object, an emptiness check and
one more coroutine, about 2% of the event loop's samples in a profile of 64
players in one process (py-spy, GIL mode). The game's sockets read the session
(its key, which digitsite.game.consumers looks up seats by) and the user,
and never write the session. Here both are resolved as Channels resolves
them, and the inner application gets the socket's own `send`.
"""

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, InstanceSessionWrapper


class ReadOnlySessionMiddleware:
    """Channels' SessionMiddleware without its wrapped `send`: scope["session"]
    is the browser's session, to read; a change to it is not saved."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


def websocket_auth_stack(inner):
    """Channels' AuthMiddlewareStack, the session read-only."""
    return CookieMiddleware(ReadOnlySessionMiddleware(AuthMiddleware(inner)))
