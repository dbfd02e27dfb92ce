from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import include, path
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.i18n import JavaScriptCatalog

from purplevisits import health, i18n, metrics


@never_cache
def admin_login(request: HttpRequest) -> HttpResponseRedirect:
    """Django admin has no sign-in of its own: the site's (allauth, with two-factor and
    rate limits) is the only one. Nothing posted here is read."""
    target = request.GET.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/admin/"
    return HttpResponseRedirect(f"{settings.LOGIN_URL_PATH}?{urlencode({'next': target})}")


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    # Before admin.site.urls: /admin/login/ (where admin sends anyone not signed in)
    # answers here, never with admin's own password-only form.
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", i18n.set_language, name="set_language"),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
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
