from datetime import date, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from establishments.models import RolloutStage, StaffMembership, StaffRole, VisitSession
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("number", ["A1234BC", "Z0000ZZ"])
def test_valid_prison_numbers(number: str) -> None:
    prisoner = factories.PrisonerFactory.build(
        prison_number=number, establishment=factories.EstablishmentFactory()
    )
    prisoner.full_clean()


@pytest.mark.parametrize(
    "number", ["1234ABC", "A123BC", "A12345BC", "AB1234C", "A1234B", "", "A1234 BC"]
)
def test_invalid_prison_numbers(number: str) -> None:
    prisoner = factories.PrisonerFactory.build(
        prison_number=number, establishment=factories.EstablishmentFactory()
    )
    with pytest.raises(ValidationError) as excinfo:
        prisoner.full_clean()
    assert "prison_number" in excinfo.value.message_dict


def test_prison_number_is_normalised_to_upper_case() -> None:
    prisoner = factories.PrisonerFactory.build(
        prison_number="a1234bc", establishment=factories.EstablishmentFactory()
    )
    prisoner.full_clean()
    assert prisoner.prison_number == "A1234BC"


def test_prisoner_born_in_future_is_rejected() -> None:
    prisoner = factories.PrisonerFactory.build(
        date_of_birth=timezone.localdate() + timedelta(days=1),
        establishment=factories.EstablishmentFactory(),
    )
    with pytest.raises(ValidationError) as excinfo:
        prisoner.full_clean()
    assert "date_of_birth" in excinfo.value.message_dict


def test_session_ending_before_it_starts_is_rejected_by_clean_and_database() -> None:
    establishment = factories.EstablishmentFactory()
    session = VisitSession(
        establishment=establishment, weekday=0, start_time=time(14), end_time=time(13)
    )
    with pytest.raises(ValidationError) as excinfo:
        session.full_clean()
    assert "end_time" in excinfo.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        session.save()


def test_session_valid_range() -> None:
    session = factories.VisitSessionFactory.build(
        establishment=factories.EstablishmentFactory(),
        valid_from=date(2026, 5, 1),
        valid_to=date(2026, 4, 1),
    )
    with pytest.raises(ValidationError) as excinfo:
        session.full_clean()
    assert "valid_to" in excinfo.value.message_dict


def test_session_applies_only_on_its_weekday_inside_validity() -> None:
    session = VisitSession(
        weekday=0,
        start_time=time(9),
        end_time=time(10),
        valid_from=date(2026, 11, 2),
        valid_to=date(2026, 11, 30),
    )
    assert session.applies_on(date(2026, 11, 9))  # a Monday
    assert not session.applies_on(date(2026, 11, 10))  # Tuesday
    assert not session.applies_on(date(2026, 10, 26))  # Monday before validity
    assert not session.applies_on(date(2026, 12, 7))  # Monday after


@pytest.mark.parametrize("field", ["max_visitors", "call_minutes", "calls_per_month"])
def test_negative_or_zero_limits_are_rejected(field: str) -> None:
    establishment = factories.EstablishmentFactory.build(**{field: 0})
    with pytest.raises(ValidationError) as excinfo:
        establishment.full_clean()
    assert field in excinfo.value.message_dict


def test_more_adults_than_visitors_is_rejected() -> None:
    establishment = factories.EstablishmentFactory.build(max_visitors=2, max_adults=3)
    with pytest.raises(ValidationError) as excinfo:
        establishment.full_clean()
    assert "max_adults" in excinfo.value.message_dict


def test_unknown_time_zone_is_rejected() -> None:
    establishment = factories.EstablishmentFactory.build(time_zone="Mars/Olympus")
    with pytest.raises(ValidationError) as excinfo:
        establishment.full_clean()
    assert "time_zone" in excinfo.value.message_dict


def test_rollout_stage_order() -> None:
    assert RolloutStage.next_after(RolloutStage.EQUIPMENT_DELIVERED) == RolloutStage.STAFF_TRAINING
    assert RolloutStage.next_after(RolloutStage.TEST_CALLS) == RolloutStage.LIVE
    assert RolloutStage.next_after(RolloutStage.LIVE) is None
    assert RolloutStage.next_after(RolloutStage.SUSPENDED) == RolloutStage.LIVE


def test_hq_membership_is_national_and_local_roles_need_an_establishment() -> None:
    user = factories.UserFactory()
    with pytest.raises(ValidationError):
        StaffMembership(
            user=user, establishment=factories.EstablishmentFactory(), role=StaffRole.HQ
        ).full_clean()
    with pytest.raises(ValidationError):
        StaffMembership(user=user, establishment=None, role=StaffRole.OFFICER).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        StaffMembership.objects.create(user=user, establishment=None, role=StaffRole.OFFICER)


def test_one_role_per_user_and_establishment() -> None:
    membership = factories.StaffMembershipFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        StaffMembership.objects.create(
            user=membership.user,
            establishment=membership.establishment,
            role=StaffRole.VISITS_ADMIN,
        )
