"""Staff booking pages in the reader's language: dates written by the code, not strftime."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests import factories
from tests.bookings.conftest import uk

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)


@pytest.fixture
def blocked_url(world) -> str:  # type: ignore[no-untyped-def]
    factories.BookingFactory(
        connection=world.connection, terminal=world.terminals[0], starts_at=uk(WED, 9, 30)
    )
    return reverse("bookings:staff_blocked_dates", args=[world.establishment.code])


def _message(response) -> str:  # type: ignore[no-untyped-def]
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(texts) == 1, texts
    return texts[0]


def test_blocking_a_date_says_so_in_english(client, people, blocked_url) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    response = client.post(blocked_url, {"date": "2026-11-04", "reason": "lockdown"})
    assert response.status_code == 302
    assert _message(response) == "4 November 2026 is blocked. 1 call cancelled and the family told."


def test_blocking_a_date_names_the_month_in_welsh(client, people, blocked_url) -> None:  # type: ignore[no-untyped-def]
    # strftime("%B") wrote "November" whatever the reader's language.
    client.force_login(people.visits_admin_x)
    response = client.post(
        blocked_url, {"date": "2026-11-04", "reason": "lockdown"}, HTTP_ACCEPT_LANGUAGE="cy"
    )
    assert response.status_code == 302
    message = _message(response)
    assert "4 Tachwedd 2026" in message and "November" not in message
