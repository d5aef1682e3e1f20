"""ASGI middleware: HTTP request bodies over HTTP_MAX_BODY_BYTES get a 413.

Django's ASGI handler copies a whole body into a temporary file before any
view can look at it. This answers 413 instead, as soon as the announced
Content-Length or the bytes received so far pass the limit, and never hands
the request to Django. It cannot stop the server's own buffering: Daphne
reads the body before calling any application, which digitsite/serve.py
bounds; this is the same rule for any server.
"""

import json

from django.conf import settings


class BodyLimitMiddleware:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.application(scope, receive, send)
        limit = settings.HTTP_MAX_BODY_BYTES
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > limit:
            return await _refuse(send, limit)

        # Read the body here, counting; Django gets it replayed only if it fits.
        messages, received = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                messages.append(message)  # a disconnect: let Django see it
                break
            received += len(message.get("body", b""))
            if received > limit:
                return await _refuse(send, limit)
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay():
            if messages:
                return messages.pop(0)
            return await receive()

        return await self.application(scope, replay, send)


async def _refuse(send, limit):
    body = json.dumps({"error": f"the body is larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
