"""Emails to visitors about decisions. Called after commit (services use on_commit)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from identity.models import Connection, Dependant, IdentityCheck
from purplevisits.text import one_line


def _site_url(path: str) -> str:
    protocol = getattr(settings, "ACCOUNT_DEFAULT_HTTP_PROTOCOL", "https")
    host = (settings.ALLOWED_HOSTS or ["localhost"])[0].lstrip(".")
    if host in ("127.0.0.1", "localhost", "[::1]"):
        host = f"{host}:8000"
    return f"{protocol}://{host}{path}"


def _send(*, to: str, subject: str, template: str, context: dict[str, object]) -> None:
    """Render and send one email (call inside translation.override of its reader)."""
    if not to:
        return
    context = {"service_name": settings.SERVICE_NAME, "me_url": _site_url(reverse("me")), **context}
    text = render_to_string(f"identity/email/{template}.txt", context)
    html = render_to_string(f"identity/email/{template}.html", context)
    message = EmailMultiAlternatives(
        # Names in a subject may predate the forms' one-line rule: a line break there
        # would raise BadHeaderError and lose the email, so the subject is made one line.
        subject=one_line(f"{settings.SERVICE_NAME}: {subject}"),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(html, "text/html")
    message.send()


def send_identity_decision(*, check_id: int, approved: bool, reason: str) -> None:
    check = IdentityCheck.objects.select_related("profile__user").filter(pk=check_id).first()
    if check is None:
        return
    with translation.override(check.profile.language):
        _send(
            to=check.profile.user.email,
            subject=_("your identity is approved")
            if approved
            else _("we could not approve your identity"),
            template="identity_decision",
            context={"profile": check.profile, "approved": approved, "reason": reason},
        )


def send_dependant_decision(*, dependant_id: int, approved: bool, reason: str) -> None:
    dependant = (
        Dependant.objects.select_related("lead_visitor__user").filter(pk=dependant_id).first()
    )
    if dependant is None:
        return
    names = {"name": dependant.first_name}
    with translation.override(dependant.lead_visitor.language):
        _send(
            to=dependant.lead_visitor.user.email,
            subject=_("%(name)s is approved") % names
            if approved
            else _("we could not approve %(name)s") % names,
            template="dependant_decision",
            context={"dependant": dependant, "approved": approved, "reason": reason},
        )


def send_connection_decision(*, connection_id: int, status: str) -> None:
    connection = (
        Connection.objects.select_related("visitor__user", "prisoner__establishment")
        .filter(pk=connection_id)
        .first()
    )
    if connection is None:
        return
    with translation.override(connection.visitor.language):
        subjects = {
            "approved": _("you can now book calls"),
            "rejected": _("your request to be connected was not approved"),
            "revoked": _("your approval to call has been withdrawn"),
        }
        _send(
            to=connection.visitor.user.email,
            subject=subjects.get(status) or _("your connection has changed"),
            template="connection_decision",
            context={"connection": connection, "status": status},
        )
