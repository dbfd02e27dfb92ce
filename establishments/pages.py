"""The pages a public service must have: help, privacy notice, accessibility statement,
cookies, and the feedback form. All public; the footer links to each."""

from __future__ import annotations

import hashlib

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from establishments import selectors, services
from establishments.forms import FeedbackForm
from establishments.models import Establishment

# Feedback sent from one address (or one account) in an hour; then "try again later".
FEEDBACK_PER_HOUR = 5
FEEDBACK_WINDOW_SECONDS = 3600


def _language() -> str:
    return "cy" if (get_language() or "").startswith("cy") else "en-gb"


def help_page(request: HttpRequest) -> HttpResponse:
    """What to do when a call goes wrong, and the visits team's contact details: the
    visitor's own prisons, or the one picked from the list (works without JavaScript)."""
    mine = list(selectors.visitor_establishments(request.user).order_by("name"))
    picked = None
    code = request.GET.get("prison", "")[:64]
    if code:
        picked = Establishment.objects.filter(code=code).first()
    shown = [picked] if picked is not None else mine
    return render(
        request,
        "pages/help.html",
        {
            "contacts": shown,
            "mine": mine,
            "picked": picked,
            "choices": Establishment.objects.order_by("name").only("code", "name"),
            "asked_for": code,
        },
    )


def privacy(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "pages/privacy.html",
        {
            "id_image_days": settings.IDENTITY_ID_IMAGE_RETENTION_DAYS,
            "encoding_months": settings.IDENTITY_ENCODING_RETENTION_DAYS * 12 // 365,
            "precall_days": settings.IDENTITY_PRECALL_ENCODING_DAYS,
            "snapshot_days": settings.ALERT_SNAPSHOT_RETENTION_DAYS,
            "session_hours": settings.SESSION_ABSOLUTE_SECONDS // 3600,
        },
    )


def accessibility(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/accessibility.html")


def cookies(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "pages/cookies.html",
        {
            "session_cookie": settings.SESSION_COOKIE_NAME,
            "csrf_cookie": settings.CSRF_COOKIE_NAME,
            "language_cookie": settings.LANGUAGE_COOKIE_NAME,
            "session_hours": settings.SESSION_ABSOLUTE_SECONDS // 3600,
            "language_days": settings.LANGUAGE_COOKIE_AGE // (24 * 3600),
            "messages_cookie": CookieStorage.cookie_name,
        },
    )


def _throttle_keys(request: HttpRequest) -> list[str]:
    address = get_adapter(request).get_client_ip(request) or "unknown"
    keys = ["feedback:address:" + hashlib.sha256(address.encode()).hexdigest()[:32]]
    if request.user.is_authenticated:
        keys.append(f"feedback:user:{request.user.pk}")
    return keys


def _over_limit(keys: list[str]) -> bool:
    """Count this attempt against each key; True once any is past the hourly limit."""
    over = False
    for key in keys:
        cache.add(key, 0, timeout=FEEDBACK_WINDOW_SECONDS)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=FEEDBACK_WINDOW_SECONDS)
            count = 1
        over = over or count > FEEDBACK_PER_HOUR
    return over


@require_http_methods(["GET", "POST"])
def feedback(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = FeedbackForm(request.POST)
        if form.is_valid():
            if _over_limit(_throttle_keys(request)):
                form.add_error(
                    None,
                    _("You have sent a lot of feedback in the last hour. Try again later."),
                )
                return render(request, "pages/feedback.html", {"form": form}, status=429)
            services.feedback_create(
                topic=form.cleaned_data["topic"],
                message=form.cleaned_data["message"],
                establishment=form.cleaned_data["establishment"],
                reply_to=form.cleaned_data["reply_to"],
                language=_language(),
                user=request.user if request.user.is_authenticated else None,
            )
            return HttpResponseRedirect(reverse("feedback_sent"))
        return render(request, "pages/feedback.html", {"form": form}, status=400)
    return render(request, "pages/feedback.html", {"form": FeedbackForm()})


def feedback_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/feedback_sent.html")
