"""WebSocket routes of every app, collected in one list."""

from monitoring.routing import websocket_urlpatterns as monitoring_routes

websocket_urlpatterns: list = [*monitoring_routes]
