from django.contrib import admin
from django.urls import include, path

from purplevisits import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("monitoring.urls")),
    path("calls/", include("calls.urls")),
    path("", include("establishments.urls")),
    path("", include("bookings.urls")),
    path("", include("identity.urls")),
]

handler400 = "purplevisits.errors.bad_request"
handler403 = "purplevisits.errors.permission_denied"
handler404 = "purplevisits.errors.page_not_found"
handler500 = "purplevisits.errors.server_error"
