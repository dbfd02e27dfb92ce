from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("join/<uuid:reference>/", views.join, name="join"),
    path("<uuid:call_id>/", views.room, name="room"),
    path("terminal/", views.terminal_home, name="terminal"),
    path("terminal/start/<uuid:reference>/", views.terminal_start, name="terminal_start"),
    path("terminal/call/<uuid:call_id>/", views.terminal_room, name="terminal_room"),
]
