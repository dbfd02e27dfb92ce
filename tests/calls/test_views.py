from __future__ import annotations

import re

import pytest
from django.urls import reverse

from bookings.models import Booking
from calls.models import Call
from establishments.models import Terminal
from tests import factories
from tests.calls.conftest import make_setup


def test_join_page_shows_the_check_and_the_policy(client, setup) -> None:  # type: ignore[no-untyped-def]
    client.force_login(setup.family)
    response = client.get(reverse("calls:join", args=[setup.booking.reference]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="precall-video"' in html
    assert "acceptable use policy" in html
    assert "<script>" not in html and "style=" not in html


def test_joining_needs_the_policy_accepted(client, setup) -> None:  # type: ignore[no-untyped-def]
    client.force_login(setup.family)
    url = reverse("calls:join", args=[setup.booking.reference])
    response = client.post(url, {})
    assert response.status_code == 200
    assert "There is a problem" in response.content.decode()
    assert not Call.objects.exists()
    response = client.post(url, {"accept": "on"})
    call = Call.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("calls:room", args=[call.pk])
    assert Booking.objects.get(pk=setup.booking.pk).aup_accepted_at is not None
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-ws-path="/ws/calls/{call.pk}/"' in html
    assert 'id="ice-servers"' in html


def test_room_without_the_policy_sends_back_to_join(client, setup) -> None:  # type: ignore[no-untyped-def]
    call = factories.CallFactory(booking=setup.booking)
    client.force_login(setup.family)
    response = client.get(reverse("calls:room", args=[call.pk]))
    assert response["Location"] == reverse("calls:join", args=[setup.booking.reference])


@pytest.mark.django_db
def test_join_before_the_window_says_when(client) -> None:  # type: ignore[no-untyped-def]
    early = make_setup(started_minutes_ago=-30)
    client.force_login(early.family)
    response = client.get(reverse("calls:join", args=[early.booking.reference]))
    html = response.content.decode()
    assert "not open yet" in html
    assert re.search(r"from \d\d:\d\d", html)
    response = client.post(reverse("calls:join", args=[early.booking.reference]), {"accept": "on"})
    assert not Call.objects.exists()


def test_other_people_cannot_open_someone_elses_call(client, setup) -> None:  # type: ignore[no-untyped-def]
    for user in (setup.stranger, setup.officer):
        client.force_login(user)
        assert client.get(reverse("calls:join", args=[setup.booking.reference])).status_code == 404
    call = factories.CallFactory(booking=setup.booking)
    client.force_login(setup.stranger)
    assert client.get(reverse("calls:room", args=[call.pk])).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, setup) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("calls:join", args=[setup.booking.reference]))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_terminal_lists_its_calls_and_starts_one(
    client, setup, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    other = make_setup()  # another laptop's call: not listed
    client.force_login(setup.terminal_user)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("calls:terminal"))
    html = response.content.decode()
    assert setup.booking.prisoner.prison_number in html
    assert other.booking.prisoner.prison_number not in html
    assert "Start call" in html
    response = client.post(reverse("calls:terminal_start", args=[setup.booking.reference]))
    call = Call.objects.get()
    assert response["Location"] == reverse("calls:terminal_room", args=[call.pk])
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert 'data-role="prisoner"' in page.content.decode()
    assert "kiosk" in page.content.decode()
    # Not another laptop's booking.
    response = client.post(reverse("calls:terminal_start", args=[other.booking.reference]))
    assert response.status_code == 404


def test_terminal_account_can_do_nothing_else(client, setup) -> None:  # type: ignore[no-untyped-def]
    client.force_login(setup.terminal_user)
    assert client.get(reverse("home"))["Location"] == reverse("calls:terminal")
    assert client.get("/admin/")["Location"] == reverse("calls:terminal")
    assert client.get(reverse("calls:join", args=[setup.booking.reference]))["Location"] == (
        reverse("calls:terminal")
    )
    assert client.post(reverse("home")).status_code == 403
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200  # signed out now


def test_terminal_pages_are_for_terminals_only(client, setup) -> None:  # type: ignore[no-untyped-def]
    client.force_login(setup.family)
    assert client.get(reverse("calls:terminal")).status_code == 403


def test_admin_creates_a_terminal_login_shown_once(admin_client, db) -> None:  # type: ignore[no-untyped-def]
    terminal = factories.TerminalFactory()
    response = admin_client.post(
        reverse("admin:establishments_terminal_changelist"),
        {"action": "create_login", "_selected_action": [terminal.pk]},
        follow=True,
    )
    text = response.content.decode()
    match = re.search(r"sign in as (\S+) with password (\S+) \(shown once", text)
    assert match
    terminal.refresh_from_db()
    assert terminal.user is not None
    assert terminal.user.check_password(match.group(2))
    assert terminal.user.email == match.group(1)
    # Running it again sets a new password on the same account.
    admin_client.post(
        reverse("admin:establishments_terminal_changelist"),
        {"action": "create_login", "_selected_action": [terminal.pk]},
    )
    terminal.refresh_from_db()
    assert not terminal.user.check_password(match.group(2))
    assert Terminal.objects.filter(user__isnull=False).count() == 1
