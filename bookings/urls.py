from django.urls import path

from bookings import staff_views, views

app_name = "bookings"

urlpatterns = [
    path("visits/", views.my_bookings, name="my_bookings"),
    path("visits/call/<uuid:reference>/", views.detail, name="detail"),
    path("visits/call/<uuid:reference>/calendar.ics", views.calendar_file, name="calendar"),
    path("visits/call/<uuid:reference>/cancel/", views.cancel, name="cancel"),
    path("visits/call/<uuid:reference>/respond/", views.respond, name="respond"),
    path("visits/call/<uuid:reference>/move/", views.move, name="move"),
    path("visits/<slug:code>/", views.portal, name="portal"),
    path("visits/<slug:code>/book/", views.book, name="book"),
    path("staff/<slug:code>/bookings/", staff_views.day, name="staff_day"),
    path("staff/<slug:code>/bookings/week/", staff_views.week, name="staff_week"),
    path(
        "staff/<slug:code>/bookings/blocked-dates/",
        staff_views.blocked_dates,
        name="staff_blocked_dates",
    ),
    path("staff/<slug:code>/bookings/request/", staff_views.request_new, name="staff_request"),
    path("staff/<slug:code>/bookings/requests/", staff_views.requests_list, name="staff_requests"),
    path(
        "staff/<slug:code>/bookings/<uuid:reference>/cancel/",
        staff_views.cancel,
        name="staff_cancel",
    ),
    path(
        "staff/<slug:code>/bookings/<uuid:reference>/move/",
        staff_views.move,
        name="staff_move",
    ),
]
