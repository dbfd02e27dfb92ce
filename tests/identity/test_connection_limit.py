"""Issue 12 #4: the connection request is not an oracle.

At most IDENTITY_CONNECTION_FAILURES_PER_DAY requests whose details match nobody, per
account and per prison number, in 24 hours. Past that every request is refused with one
message, right details or not, real prison number or not; staff hear of it (security
log, audit entry, the visits admins' identity page) and the window has to pass."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from identity import services
from identity.models import Connection
from identity.services import CONNECTION_LIMIT_MESSAGE, CONNECTION_MISMATCH_MESSAGE, IdentityError
from tests import factories
from tests.identity.conftest import staff_login

pytestmark = pytest.mark.django_db

RIGHT_DOB = date(1985, 3, 14)


@pytest.fixture
def prisoner(establishment_x):  # type: ignore[no-untyped-def]
    return factories.PrisonerFactory(
        establishment=establishment_x,
        prison_number="A1234BC",
        last_name="Jones",
        date_of_birth=RIGHT_DOB,
    )


def ask(profile, establishment, *, number="A1234BC", dob=RIGHT_DOB, last_name="Jones"):  # type: ignore[no-untyped-def]
    return services.connection_request(
        profile=profile,
        prison_number=number,
        last_name=last_name,
        date_of_birth=dob,
        establishment=establishment,
        relationship="partner",
    )


def refusal(call) -> IdentityError:  # type: ignore[no-untyped-def]
    with pytest.raises(IdentityError) as caught:
        call()
    return caught.value


def wrong_dates(profile, establishment, count: int, *, number: str = "A1234BC") -> None:  # type: ignore[no-untyped-def]
    for n in range(count):
        error = refusal(
            lambda n=n: ask(profile, establishment, number=number, dob=date(1990, 1, 1 + n))
        )
        assert error.code == "NO_MATCH", f"try {n + 1}"
        assert error.message == CONNECTION_MISMATCH_MESSAGE


def test_the_testers_case_wrong_dates_then_the_right_one_is_refused(prisoner) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    wrong_dates(profile, prisoner.establishment, 5)
    error = refusal(lambda: ask(profile, prisoner.establishment))
    assert error.code == "TOO_MANY_TRIES"
    assert error.message == str(CONNECTION_LIMIT_MESSAGE)
    assert error.field is None
    assert not Connection.objects.exists()


def test_the_limit_is_a_setting(prisoner, settings) -> None:  # type: ignore[no-untyped-def]
    settings.IDENTITY_CONNECTION_FAILURES_PER_DAY = 2
    profile = factories.VisitorProfileFactory()
    wrong_dates(profile, prisoner.establishment, 2)
    assert refusal(lambda: ask(profile, prisoner.establishment)).code == "TOO_MANY_TRIES"


def test_the_right_details_are_refused_until_the_window_has_passed(prisoner, settings) -> None:  # type: ignore[no-untyped-def]
    # Local memory, so that travelling in time expires the counters (Redis keeps real time).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    profile = factories.VisitorProfileFactory()
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        wrong_dates(profile, prisoner.establishment, 5)
        traveller.shift(timedelta(hours=23, minutes=59))
        assert refusal(lambda: ask(profile, prisoner.establishment)).code == "TOO_MANY_TRIES"
        traveller.shift(timedelta(minutes=2))
        connection = ask(profile, prisoner.establishment)
    assert connection.prisoner == prisoner


def test_a_nonexistent_prison_number_is_limited_exactly_like_a_real_one(prisoner) -> None:  # type: ignore[no-untyped-def]
    establishment = prisoner.establishment
    real, fake = factories.VisitorProfileFactory(), factories.VisitorProfileFactory()
    wrong_dates(real, establishment, 5, number="A1234BC")
    wrong_dates(fake, establishment, 5, number="Z9999ZZ")  # nobody has this number
    on_real = refusal(lambda: ask(real, establishment, number="A1234BC"))
    on_fake = refusal(lambda: ask(fake, establishment, number="Z9999ZZ"))
    assert (on_real.code, on_real.message, on_real.field) == (
        on_fake.code,
        on_fake.message,
        on_fake.field,
    )


def test_the_prison_number_is_limited_across_accounts(prisoner) -> None:  # type: ignore[no-untyped-def]
    """Many accounts with one try each cannot go round the per-account limit."""
    establishment = prisoner.establishment
    for _ in range(5):
        wrong_dates(factories.VisitorProfileFactory(), establishment, 1)
    fresh = factories.VisitorProfileFactory()
    assert refusal(lambda: ask(fresh, establishment)).code == "TOO_MANY_TRIES"
    # Another number is not affected for that account.
    other = factories.PrisonerFactory(establishment=establishment)
    ask(
        fresh,
        establishment,
        number=other.prison_number,
        dob=other.date_of_birth,
        last_name=other.last_name,
    )


def test_the_account_is_limited_across_prison_numbers(prisoner) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    for number in ("B1111AA", "B2222AA", "B3333AA", "B4444AA", "B5555AA"):
        wrong_dates(profile, prisoner.establishment, 1, number=number)
    assert refusal(lambda: ask(profile, prisoner.establishment)).code == "TOO_MANY_TRIES"
    # The prison number itself is not blocked for somebody else.
    assert ask(factories.VisitorProfileFactory(), prisoner.establishment).prisoner == prisoner


def test_matches_and_other_refusals_are_not_counted(prisoner) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    establishment = prisoner.establishment
    wrong_dates(profile, establishment, 4)
    ask(profile, establishment)  # a match gives its try back
    for _ in range(3):
        assert refusal(lambda: ask(profile, establishment)).code == "ALREADY_REQUESTED"
    assert refusal(lambda: ask(profile, establishment, number="12")).code == "BAD_PRISON_NUMBER"
    wrong_dates(profile, establishment, 1)  # the 5th mismatch is still allowed
    assert refusal(lambda: ask(profile, establishment)).code == "TOO_MANY_TRIES"


def test_staff_are_alerted_once_at_the_prisoners_establishment(
    prisoner, establishment_y, caplog
) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    caplog.set_level(logging.INFO, logger="purplevisits.security")
    # The searcher guesses the wrong prison: the alert goes where the person really is.
    wrong_dates(profile, establishment_y, 5)
    for _ in range(3):
        assert refusal(lambda: ask(profile, establishment_y)).code == "TOO_MANY_TRIES"
    entries = AuditEntry.objects.filter(action=AuditAction.CONNECTION_REQUESTS_PAUSED)
    assert {(e.establishment, e.detail["limit"]) for e in entries} == {
        (prisoner.establishment, "account"),
        (prisoner.establishment, "prison_number"),
    }
    entry = entries.first()
    assert entry is not None
    assert entry.actor == profile.user
    assert entry.target_id == str(prisoner.pk)
    assert entry.detail["prison_number"] == "A1234BC"
    assert entry.detail["chosen_establishment"] == establishment_y.code
    events = [r for r in caplog.records if getattr(r, "event", "") == "connection_request_limited"]
    assert len(events) >= 3  # every refusal past the limit is logged
    assert {r.prison_number for r in events} == {"A1234BC"}


def test_an_unknown_number_is_filed_at_the_chosen_establishment(establishment_x) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory()
    wrong_dates(profile, establishment_x, 5, number="Z9999ZZ")
    entry = AuditEntry.objects.get(detail__limit="prison_number")
    assert entry.establishment == establishment_x and entry.target_id == ""


def test_the_visits_admins_see_it_on_their_identity_page(client, people, prisoner) -> None:  # type: ignore[no-untyped-def]
    profile = factories.VisitorProfileFactory(user=people.family_a)
    client.force_login(people.family_a)
    data = {
        "prison_number": "A1234BC",
        "last_name": "Jones",
        "establishment": prisoner.establishment.code,
        "relationship": "partner",
    }
    for day in range(1, 6):
        page = client.post(reverse("me_connect"), {**data, "date_of_birth": f"1990-01-0{day}"})
        assert "We could not find a person in prison with those details" in page.content.decode()
    page = client.post(reverse("me_connect"), {**data, "date_of_birth": "1985-03-14"})
    assert page.status_code == 200
    assert "too many requests with details that did not match" in page.content.decode()
    assert not Connection.objects.filter(visitor=profile).exists()

    staff_login(client, people.visits_admin_x)
    queue = client.get(reverse("identity_staff_queue", args=["xanadu"])).content.decode()
    assert "Connection requests paused after too many wrong details" in queue
    assert "A1234BC" in queue and people.family_a.email in queue
    # Another establishment's admins see nothing of it.
    staff_login(client, people.visits_admin_y)
    queue = client.get(reverse("identity_staff_queue", args=["yardley"])).content.decode()
    assert "Connection requests paused" not in queue
