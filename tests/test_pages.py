"""The pages a public service must have (issue 17): help and contact, privacy notice,
accessibility statement, cookies and feedback, in Cymraeg and English, linked from
every footer; the children's rule on the booking and join pages."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import translation

from establishments.models import Feedback
from identity.models import ConnectionStatus
from tests import factories

pytestmark = pytest.mark.django_db

PAGES = ["help", "privacy", "accessibility", "cookies", "feedback"]


@pytest.fixture(autouse=True)
def _fresh() -> None:  # type: ignore[misc]
    cache.clear()  # the feedback limit counts in the cache
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _footer(content: str) -> str:
    return content.split('<footer class="site-footer">', 1)[1]


@pytest.mark.parametrize("name", ["home", *PAGES, "feedback_sent"])
@pytest.mark.parametrize(("language", "lang"), [("en-GB", "en-GB"), ("cy", "cy")])
def test_every_page_answers_in_both_languages_with_the_footer_links(
    client: Client, name: str, language: str, lang: str
) -> None:
    response = client.get(reverse(name), HTTP_ACCEPT_LANGUAGE=language)
    content = response.content.decode()
    assert response.status_code == 200
    assert f'<html lang="{lang}">' in content
    footer = _footer(content)
    for page in PAGES:
        assert f'href="{reverse(page)}"' in footer
    assert ("Help a chysylltu" in footer) == (lang == "cy")
    assert 'name="viewport"' in content


def test_footer_links_are_on_signed_in_pages_too(client: Client) -> None:
    visitor = factories.VisitorProfileFactory()
    client.force_login(visitor.user)
    footer = _footer(client.get(reverse("bookings:my_bookings")).content.decode())
    assert all(f'href="{reverse(page)}"' in footer for page in PAGES)


# --- help and contact --------------------------------------------------------------------


def _contact_establishment(**extra: object):  # type: ignore[no-untyped-def]
    return factories.EstablishmentFactory(
        name="HMP Berwyn",
        code="berwyn",
        country="wales",
        visits_phone="+44 1978 523000",
        visits_email="visits.berwyn@example.test",
        visits_hours="Monday to Friday, 9am to 4pm",
        visits_hours_cy="Dydd Llun i ddydd Gwener, 9am tan 4pm",
        **extra,
    )


def test_help_shows_the_visits_team_of_the_visitors_own_prisons(client: Client) -> None:
    berwyn = _contact_establishment()
    elsewhere = factories.EstablishmentFactory(name="HMP Elsewhere", visits_phone="01000 000000")
    connection = factories.ConnectionFactory(prisoner__establishment=berwyn)
    # A request still pending reveals nothing about where the person is held.
    factories.ConnectionFactory(
        visitor=connection.visitor,
        prisoner__establishment=elsewhere,
        status=ConnectionStatus.PENDING,
    )
    client.force_login(connection.visitor.user)
    content = client.get(reverse("help")).content.decode()
    assert "Visits team at HMP Berwyn" in content
    assert 'href="tel:+441978523000"' in content and ">+44 1978 523000</a>" in content
    assert 'href="mailto:visits.berwyn@example.test"' in content
    assert "Monday to Friday, 9am to 4pm" in content
    assert "01000 000000" not in content and "Visits team at HMP Elsewhere" not in content

    welsh = client.get(reverse("help"), HTTP_ACCEPT_LANGUAGE="cy").content.decode()
    assert "Tîm ymweliadau HMP Berwyn" in welsh
    assert "Dydd Llun i ddydd Gwener, 9am tan 4pm" in welsh


def test_help_picker_works_without_javascript(client: Client) -> None:
    berwyn = _contact_establishment()
    content = client.get(reverse("help")).content.decode()
    assert "Visits team at" not in content  # nobody signed in, nothing picked
    assert f'<option value="{berwyn.code}">HMP Berwyn</option>' in content
    picked = client.get(reverse("help"), {"prison": berwyn.code}).content.decode()
    assert "Visits team at HMP Berwyn" in picked and "+44 1978 523000" in picked
    assert f'<option value="{berwyn.code}" selected>' in picked
    unknown = client.get(reverse("help"), {"prison": "<b>nowhere</b>"}).content.decode()
    assert "We could not find that prison" in unknown and "<b>nowhere</b>" not in unknown


def test_help_says_so_when_a_prison_has_no_contact_details(client: Client) -> None:
    bare = factories.EstablishmentFactory(name="HMP Bare")
    content = client.get(reverse("help"), {"prison": bare.code}).content.decode()
    assert "has not published its visits team's contact details" in content


def test_help_covers_drops_no_join_and_cameras(client: Client) -> None:
    content = client.get(reverse("help")).content.decode()
    for anchor in ("call-drops", "prison-not-joined", "camera", "contact"):
        assert f'id="{anchor}"' in content


# --- privacy and cookies -----------------------------------------------------------------


@override_settings(
    IDENTITY_ID_IMAGE_RETENTION_DAYS=31,
    IDENTITY_ENCODING_RETENTION_DAYS=730,
    ALERT_SNAPSHOT_RETENTION_DAYS=91,
)
def test_privacy_notice_takes_its_retention_from_the_settings(client: Client) -> None:
    content = client.get(reverse("privacy")).content.decode()
    assert "deleted 31 days after prison staff decide" in content
    assert "no call for 24 months" in content
    assert "deleted after 91 days" in content
    assert f'href="{reverse("me_consent")}"' in content  # the non-biometric choice
    assert "checked by hand" in content
    welsh = client.get(reverse("privacy"), HTTP_ACCEPT_LANGUAGE="cy").content.decode()
    assert "31 diwrnod" in welsh and "24 mis" in welsh and "â llaw" in welsh


def test_the_cookie_page_lists_every_cookie_the_site_sets(client: Client) -> None:
    visitor = factories.VisitorProfileFactory()
    client.force_login(visitor.user)
    client.get(reverse("feedback"))  # a form: the CSRF cookie
    client.get(reverse("set_language"), {"language": "cy", "next": "/"})
    set_by_site = {name for name, morsel in client.cookies.items() if morsel.value}
    assert {"sessionid", "csrftoken", "django_language"} <= set_by_site
    content = client.get(reverse("cookies")).content.decode()
    listed = set(re.findall(r"<td><code>([^<]+)</code></td>", content))
    assert set_by_site <= listed
    assert listed == {"sessionid", "csrftoken", "django_language", "messages"}


# --- feedback ----------------------------------------------------------------------------


def _send(client: Client, **fields: str):  # type: ignore[no-untyped-def]
    data = {"topic": "website", "message": "The booking page was easy to use."}
    data.update(fields)
    return client.post(reverse("feedback"), data)


def test_feedback_is_stored_for_the_administrators(client: Client) -> None:
    berwyn = _contact_establishment()
    response = _send(client, establishment=berwyn.code, reply_to="jo@example.test")
    assert response.status_code == 302 and response["Location"] == reverse("feedback_sent")
    feedback = Feedback.objects.get()
    assert (feedback.topic, feedback.establishment, feedback.reply_to) == (
        "website",
        berwyn,
        "jo@example.test",
    )
    assert feedback.language == "en-gb" and feedback.user is None
    assert "Thank you for your feedback" in client.get(response["Location"]).content.decode()


def test_feedback_in_welsh_records_the_language(client: Client) -> None:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "cy"
    assert _send(client).status_code == 302
    assert Feedback.objects.get().language == "cy"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"topic": "", "message": ""}, "Choose what your feedback is about."),
        ({"message": "   "}, "Enter your feedback."),
        ({"message": "x" * 2001}, "must be 2,000 characters or fewer"),
        ({"message": "x" * 300_000}, "must be 2,000 characters or fewer"),
        ({"topic": "<script>"}, "Select a valid choice"),
        ({"establishment": "no-such-prison"}, "Choose a prison from the list."),
        ({"reply_to": "not an address"}, "Enter an email address"),
        ({"reply_to": "a" * 250 + "@example.test"}, "254 characters or fewer"),
    ],
)
def test_bad_feedback_is_refused_and_nothing_is_stored(
    client: Client, fields: dict[str, str], error: str
) -> None:
    response = _send(client, **fields)
    content = response.content.decode()
    assert response.status_code == 400
    assert 'class="error-summary"' in content and error in content
    assert Feedback.objects.count() == 0


def test_hostile_feedback_is_stored_as_plain_text(client: Client) -> None:
    message = "<script>alert('x')</script>\x1b[31m hello\u202e\nsecond line"
    assert _send(client, message=message).status_code == 302
    stored = Feedback.objects.get().message
    # Control and bidi-override characters dropped; markup kept as text (escaped on output).
    assert stored == "<script>alert('x')</script>[31m hello\nsecond line"


def test_feedback_with_a_null_character_is_refused(client: Client) -> None:
    response = _send(client, message="hello\x00")
    assert response.status_code == 400 and "Null characters are not allowed" in (
        response.content.decode()
    )
    assert Feedback.objects.count() == 0


def test_feedback_needs_the_csrf_token() -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("feedback"), {"topic": "website", "message": "hi"})
    assert response.status_code == 403
    assert Feedback.objects.count() == 0


def test_feedback_is_limited_per_address_per_hour(client: Client) -> None:
    from establishments.pages import FEEDBACK_PER_HOUR

    for _ in range(FEEDBACK_PER_HOUR):
        assert _send(client).status_code == 302
    refused = _send(client)
    assert refused.status_code == 429
    assert "Try again later" in refused.content.decode()
    assert Feedback.objects.count() == FEEDBACK_PER_HOUR


def test_feedback_limit_counts_per_address(client: Client) -> None:
    from establishments.pages import FEEDBACK_PER_HOUR

    data = {"topic": "website", "message": "Hello"}
    for _ in range(FEEDBACK_PER_HOUR):
        client.post(reverse("feedback"), data, REMOTE_ADDR="198.51.100.1")
    assert client.post(reverse("feedback"), data, REMOTE_ADDR="198.51.100.1").status_code == 429
    assert client.post(reverse("feedback"), data, REMOTE_ADDR="198.51.100.2").status_code == 302


def test_feedback_only_answers_get_and_post(client: Client) -> None:
    assert client.put(reverse("feedback")).status_code == 405


# --- the children's rule on the booking and join pages -------------------------------------


def _booking_page(establishment):  # type: ignore[no-untyped-def]
    from datetime import datetime

    from django.template.loader import render_to_string

    from bookings.forms import BookingForm

    connection = factories.ConnectionFactory(prisoner__establishment=establishment)
    return render_to_string(
        "bookings/book.html",
        {
            "establishment": establishment,
            "connection": connection,
            "profile": connection.visitor,
            "local_start": datetime(2026, 12, 7, 10, 0),
            "show_form": True,
            "form": BookingForm(),
        },
    )


def _join_page(booking):  # type: ignore[no-untyped-def]
    from django.template.loader import render_to_string

    return render_to_string("calls/join.html", {"booking": booking, "form": None})


@pytest.mark.parametrize("language", ["en-gb", "cy"])
def test_the_childrens_rule_is_shown_where_visitors_choose_who_joins(language: str) -> None:
    from calls.faces import children_rule_text

    establishment = factories.EstablishmentFactory(face_check_children_under=12)
    booking = factories.BookingFactory(connection__prisoner__establishment=establishment)
    with translation.override(language):
        rule = children_rule_text(establishment)
        assert ("12" in rule) and rule
        for page in (_booking_page(establishment), _join_page(booking)):
            assert f'<p class="hint" id="children-rule">{rule}</p>' in page.replace("&#x27;", "'")
    off = factories.EstablishmentFactory(face_check_children_under=0)
    assert 'id="children-rule"' not in _booking_page(off)
    booking.establishment = off
    assert 'id="children-rule"' not in _join_page(booking)


def test_the_booking_portal_shows_the_prisons_visits_team(client: Client) -> None:
    establishment = _contact_establishment()
    content = client.get(reverse("bookings:portal", args=[establishment.code])).content.decode()
    assert establishment.visits_phone in content
    assert f"mailto:{establishment.visits_email}" in content
