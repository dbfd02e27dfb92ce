"""Cymraeg and English: which language a request is answered in, and the switch.

The order: the language the person chose (the switch sets Django's language cookie and
their visitor profile); then Welsh first in the portal of an establishment in Wales
(``/visits/<code>/``, ``prefer_welsh_in``); then the browser's Accept-Language
(Django's LocaleMiddleware); then English.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import trans_real
from django.views.decorators.cache import never_cache

from establishments.models import Country, Establishment

WELSH = "cy"


def chosen_language(request: HttpRequest) -> str | None:
    """The language this browser chose with the switch, if any."""
    code = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if code and code in dict(settings.LANGUAGES):
        return code
    return None


def prefer_welsh_in(request: HttpRequest, establishment: Establishment) -> None:
    """In the portal of an establishment in Wales, Welsh first for a visitor who has not
    chosen a language (the switch's cookie): called by the portal views, which have the
    establishment in hand already (no query of its own)."""
    if establishment.country == Country.WALES and chosen_language(request) is None:
        translation.activate(WELSH)
        request.LANGUAGE_CODE = WELSH


def language_from_scope(scope: dict) -> str:
    """A WebSocket's language, as LanguageMiddleware would answer its page: the chosen
    one (cookie), else the browser's (Accept-Language), else the default."""
    cookie = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME)
    if cookie and cookie in dict(settings.LANGUAGES):
        return cookie
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept-language", b"").decode("latin-1")
    for code, _quality in trans_real.parse_accept_lang_header(accept):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


@never_cache
def set_language(request: HttpRequest) -> HttpResponse:
    """The header's language link (GET) or a form (POST): remember the choice in the
    language cookie, keep it on a signed-in visitor's profile for their emails and
    reminders, and go back to ``next`` (this site only; else the start page)."""
    data = request.POST if request.method == "POST" else request.GET
    target = data.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = HttpResponseRedirect(target)
    language = data.get("language", "")
    if language in dict(settings.LANGUAGES):
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,  # type: ignore[arg-type]
        )
        if request.user.is_authenticated:
            from identity.services import visitor_profile_set_language

            visitor_profile_set_language(user=request.user, language=language)
    return response
