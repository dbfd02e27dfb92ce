from django.urls import path

from monitoring.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/staff/<slug:code>/dashboard/", DashboardConsumer.as_asgi()),
]
