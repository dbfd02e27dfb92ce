"""WebSocket routes of every app, collected in one list."""

from calls.routing import websocket_urlpatterns as calls_routes
from monitoring.routing import websocket_urlpatterns as monitoring_routes

websocket_urlpatterns: list = [*calls_routes, *monitoring_routes]
