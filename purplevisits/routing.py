"""WebSocket routes of every app, collected in one list, and the route for any other path."""

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import re_path

from calls.routing import websocket_urlpatterns as calls_routes
from monitoring.routing import websocket_urlpatterns as monitoring_routes

# Every route here has a decision per role in tests/test_access_matrix.py.
websocket_urlpatterns: list = [*calls_routes, *monitoring_routes]

CLOSE_NOT_FOUND = 4404


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any other path, such as a call id that is not a UUID: a clean 4404.

    Without it channels' URLRouter raises "No route found for path", and daphne answers
    the handshake with HTTP 500 and logs a traceback. Accepting first lets the close
    carry the contract's code (SIGNALLING.md: 4404, no such call).
    """

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)


# Last in the router: matches whatever the routes above did not.
unknown_path_route = re_path(r"", UnknownPathConsumer.as_asgi())
