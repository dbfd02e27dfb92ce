"""WebSocket routes of every app, collected in one list."""

from calls.routing import websocket_urlpatterns as calls_websocket_urlpatterns

websocket_urlpatterns: list = [*calls_websocket_urlpatterns]
