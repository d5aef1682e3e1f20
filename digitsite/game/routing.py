"""WebSocket routes, all under /ws/."""

from django.urls import re_path

from digitsite.game.consumers import GameConsumer

websocket_urlpatterns = [
    # Any code reaches the consumer, which answers an unknown one with a
    # readable error and close code 4004 instead of a failed handshake.
    re_path(r"^ws/v1/rooms/(?P<code>[^/]{1,64})/$", GameConsumer.as_asgi()),
]
