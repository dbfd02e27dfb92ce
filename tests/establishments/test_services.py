import pytest

from establishments import services
from establishments.models import RolloutStage, RolloutStageChange, StaffRole
from establishments.selectors import establishments_for_role, has_role_at
from tests import factories

pytestmark = pytest.mark.django_db


def test_advance_stage_records_history_until_live() -> None:
    establishment = factories.EstablishmentFactory(rollout_stage=RolloutStage.EQUIPMENT_DELIVERED)
    user = factories.UserFactory()
    stages = []
    while services.establishment_advance_stage(establishment=establishment, changed_by=user):
        stages.append(establishment.rollout_stage)
    assert stages == [RolloutStage.STAFF_TRAINING, RolloutStage.TEST_CALLS, RolloutStage.LIVE]
    history = list(
        RolloutStageChange.objects.filter(establishment=establishment)
        .order_by("pk")
        .values_list("from_stage", "to_stage", "changed_by")
    )
    assert history == [
        ("equipment_delivered", "staff_training", user.pk),
        ("staff_training", "test_calls", user.pk),
        ("test_calls", "live", user.pk),
    ]
    establishment.refresh_from_db()
    assert establishment.rollout_stage == RolloutStage.LIVE


def test_setting_the_same_stage_records_nothing() -> None:
    establishment = factories.EstablishmentFactory(rollout_stage=RolloutStage.LIVE)
    assert services.establishment_set_stage(establishment=establishment, stage="live") is False
    assert not RolloutStageChange.objects.filter(establishment=establishment).exists()


def test_role_ladder(people, establishment_x, establishment_y) -> None:  # type: ignore[no-untyped-def]
    assert has_role_at(people.officer_x, establishment_x, StaffRole.OFFICER)
    assert not has_role_at(people.officer_x, establishment_x, StaffRole.VISITS_ADMIN)
    assert has_role_at(people.visits_admin_x, establishment_x, StaffRole.OFFICER)
    assert not has_role_at(people.officer_x, establishment_y, StaffRole.OFFICER)
    assert not has_role_at(people.family_a, establishment_x, StaffRole.OFFICER)
    # HQ is national and read-only: no local role anywhere.
    assert not establishments_for_role(people.hq, StaffRole.OFFICER).exists()
