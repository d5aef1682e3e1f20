"""WebSocket routes, all under /ws/."""

websocket_urlpatterns = []
