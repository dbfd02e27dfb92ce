from django.urls import path

from calls.consumers import CallConsumer

websocket_urlpatterns = [
    path("ws/calls/<uuid:call_id>/", CallConsumer.as_asgi()),
]
