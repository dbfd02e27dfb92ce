import re

import pytest
from django.urls import reverse

from establishments.models import (
    Establishment,
    Prisoner,
    RolloutStage,
    RolloutStageChange,
    StaffMembership,
    Terminal,
    VisitSession,
)
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):  # type: ignore[no-untyped-def]
    user = factories.UserFactory(email="root@example.test")
    user.is_staff = user.is_superuser = True
    user.save()
    factories.mfa_enabled(user)  # staff pages need two-factor authentication
    client.force_login(user)
    return client


def inline_management(prefix: str, total: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def establishment_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "HMP Admin Test",
        "code": "admin-test",
        "kind": "male",
        "operator": "public",
        "country": "england",
        "time_zone": "Europe/London",
        "rollout_stage": "staff_training",
        "request_mode": "family",
        "calls_per_month": "1",
        "call_minutes": "30",
        "changeover_minutes": "15",
        "min_notice_days": "2",
        "max_days_ahead": "28",
        "join_window_minutes": "10",
        "request_response_hours": "48",
        "max_visitors": "3",
        "max_adults": "3",
        "adult_age": "18",
        "face_match_tolerance": "0.6",
        "face_checks_to_confirm": "2",
        "face_checks_per_second": "2",
        "face_auto_resume_seconds": "10",
        "face_check_children_under": "12",
    }
    for prefix in ("terminals", "visit_sessions", "blocked_dates", "stage_changes"):
        data.update(inline_management(prefix))
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:establishments_establishment_changelist",
        "admin:establishments_establishment_add",
        "admin:establishments_prisoner_changelist",
        "admin:establishments_prisoner_add",
        "admin:establishments_terminal_changelist",
        "admin:establishments_visitsession_changelist",
        "admin:establishments_blockeddate_changelist",
        "admin:establishments_staffmembership_changelist",
        "admin:establishments_staffmembership_add",
        "admin:establishments_rolloutstagechange_changelist",
    ],
)
def test_admin_pages_render(admin_client_, url_name: str) -> None:  # type: ignore[no-untyped-def]
    factories.PrisonerFactory()
    response = admin_client_.get(reverse(url_name))
    assert response.status_code == 200


def test_change_page_renders_with_inlines_and_history(admin_client_) -> None:  # type: ignore[no-untyped-def]
    establishment = factories.EstablishmentFactory()
    factories.TerminalFactory(establishment=establishment, name="Laptop A")
    factories.VisitSessionFactory(establishment=establishment)
    RolloutStageChange.objects.create(
        establishment=establishment, from_stage="test_calls", to_stage="live"
    )
    response = admin_client_.get(
        reverse("admin:establishments_establishment_change", args=[establishment.pk])
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert "Laptop A" in content and "Rollout stage history" in content


def test_add_establishment_with_inlines_records_initial_stage(admin_client_) -> None:  # type: ignore[no-untyped-def]
    data = establishment_form()
    data.update(inline_management("terminals", 1))
    data.update({"terminals-0-name": "Laptop 1", "terminals-0-is_active": "on"})
    data.update(inline_management("visit_sessions", 1))
    data.update(
        {
            "visit_sessions-0-weekday": "1",
            "visit_sessions-0-start_time": "14:00",
            "visit_sessions-0-end_time": "16:00",
        }
    )
    response = admin_client_.post(reverse("admin:establishments_establishment_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    establishment = Establishment.objects.get(code="admin-test")
    assert Terminal.objects.filter(establishment=establishment).count() == 1
    assert VisitSession.objects.filter(establishment=establishment, weekday=1).count() == 1
    assert list(establishment.stage_changes.values_list("to_stage", flat=True)) == [
        "staff_training"
    ]


def test_changing_stage_in_the_form_is_recorded(admin_client_) -> None:  # type: ignore[no-untyped-def]
    establishment = factories.EstablishmentFactory(
        code="admin-test", name="HMP Admin Test", rollout_stage=RolloutStage.STAFF_TRAINING
    )
    response = admin_client_.post(
        reverse("admin:establishments_establishment_change", args=[establishment.pk]),
        establishment_form(rollout_stage="suspended"),
    )
    assert response.status_code == 302
    change = establishment.stage_changes.get()
    assert (change.from_stage, change.to_stage, change.note) == (
        "staff_training",
        "suspended",
        "Changed in admin",
    )


def errors_of(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(
        re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    )


def test_session_ending_before_start_is_a_field_error(admin_client_) -> None:  # type: ignore[no-untyped-def]
    data = establishment_form()
    data.update(inline_management("visit_sessions", 1))
    data.update(
        {
            "visit_sessions-0-weekday": "1",
            "visit_sessions-0-start_time": "16:00",
            "visit_sessions-0-end_time": "14:00",
        }
    )
    response = admin_client_.post(reverse("admin:establishments_establishment_add"), data)
    assert response.status_code == 200
    assert "The session must end after it starts." in errors_of(response)
    assert not Establishment.objects.filter(code="admin-test").exists()


def test_negative_visitors_is_a_field_error(admin_client_) -> None:  # type: ignore[no-untyped-def]
    response = admin_client_.post(
        reverse("admin:establishments_establishment_add"), establishment_form(max_visitors="-1")
    )
    assert response.status_code == 200
    assert "greater than or equal to" in errors_of(response)
    assert not Establishment.objects.filter(code="admin-test").exists()


def test_bad_prison_number_is_a_field_error(admin_client_) -> None:  # type: ignore[no-untyped-def]
    establishment = factories.EstablishmentFactory()
    response = admin_client_.post(
        reverse("admin:establishments_prisoner_add"),
        {
            "prison_number": "12345",
            "first_name": "Sam",
            "last_name": "Smith",
            "date_of_birth": "1980-01-01",
            "establishment": establishment.pk,
            "status": "active",
        },
    )
    assert response.status_code == 200
    assert "A prison number is a letter, four digits and two letters" in errors_of(response)
    assert not Prisoner.objects.exists()


def test_prisoners_are_searchable_by_number_and_name(admin_client_) -> None:  # type: ignore[no-untyped-def]
    factories.PrisonerFactory(prison_number="A1111AA", last_name="Needle")
    factories.PrisonerFactory(prison_number="B2222BB", last_name="Haystack")
    url = reverse("admin:establishments_prisoner_changelist")
    by_number = admin_client_.get(url, {"q": "A1111AA"}).content.decode()
    by_name = admin_client_.get(url, {"q": "haystack"}).content.decode()
    assert "Needle" in by_number and "Haystack" not in by_number
    assert "Haystack" in by_name and "Needle" not in by_name


def test_advance_action_moves_and_records(admin_client_) -> None:  # type: ignore[no-untyped-def]
    training = factories.EstablishmentFactory(rollout_stage=RolloutStage.STAFF_TRAINING)
    live = factories.EstablishmentFactory(rollout_stage=RolloutStage.LIVE)
    response = admin_client_.post(
        reverse("admin:establishments_establishment_changelist"),
        {"action": "advance_rollout_stage", "_selected_action": [training.pk, live.pk]},
        follow=True,
    )
    assert response.status_code == 200
    training.refresh_from_db()
    live.refresh_from_db()
    assert training.rollout_stage == RolloutStage.TEST_CALLS
    assert live.rollout_stage == RolloutStage.LIVE
    assert "Already live, not moved" in response.content.decode()
    assert training.stage_changes.get().changed_by.email == "root@example.test"


def test_stage_history_cannot_be_edited_in_admin(admin_client_) -> None:  # type: ignore[no-untyped-def]
    change = RolloutStageChange.objects.create(
        establishment=factories.EstablishmentFactory(), from_stage="", to_stage="live"
    )
    assert (
        admin_client_.get(reverse("admin:establishments_rolloutstagechange_add")).status_code == 403
    )
    response = admin_client_.post(
        reverse("admin:establishments_rolloutstagechange_delete", args=[change.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert RolloutStageChange.objects.filter(pk=change.pk).exists()


def test_hq_membership_needs_no_establishment_in_admin(admin_client_) -> None:  # type: ignore[no-untyped-def]
    user = factories.UserFactory()
    response = admin_client_.post(
        reverse("admin:establishments_staffmembership_add"), {"user": user.pk, "role": "hq"}
    )
    assert response.status_code == 302
    assert StaffMembership.objects.get(user=user).establishment is None


def test_visits_team_contact_is_set_in_admin_and_shown_to_families(admin_client_, client) -> None:  # type: ignore[no-untyped-def]
    establishment = factories.EstablishmentFactory(name="HMP Contact", code="contact")
    url = reverse("admin:establishments_establishment_change", args=[establishment.pk])
    page = admin_client_.get(url).content.decode()
    assert "Visits team contact" in page and 'name="visits_phone"' in page
    data = establishment_form(
        name="HMP Contact",
        code="contact",
        rollout_stage="live",
        town="Wrexham",
        town_cy="Wrecsam",
        visits_phone="01978 523000",
        visits_email="visits@contact.example",
        visits_hours="Monday to Friday, 9am to 4pm",
        visits_hours_cy="Dydd Llun i ddydd Gwener, 9am i 4pm",
    )
    response = admin_client_.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    establishment.refresh_from_db()
    assert (establishment.visits_phone, establishment.town_cy) == ("01978 523000", "Wrecsam")
    help_page = client.get("/help/?prison=contact").content.decode()
    assert 'href="tel:01978523000"' in help_page
    assert 'href="mailto:visits@contact.example"' in help_page
    assert "Monday to Friday, 9am to 4pm" in help_page


def test_a_bad_visits_team_phone_is_refused_in_admin(admin_client_) -> None:  # type: ignore[no-untyped-def]
    establishment = factories.EstablishmentFactory(name="HMP Contact", code="contact")
    url = reverse("admin:establishments_establishment_change", args=[establishment.pk])
    data = establishment_form(
        name="HMP Contact", code="contact", visits_phone="call me", visits_email="nope"
    )
    response = admin_client_.post(url, data)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Enter a phone number" in content and "Enter a valid email address" in content
    establishment.refresh_from_db()
    assert establishment.visits_phone == ""


def test_feedback_is_read_in_admin_and_never_edited(admin_client_) -> None:  # type: ignore[no-untyped-def]
    from establishments.models import Feedback

    feedback = Feedback.objects.create(topic="website", message="<script>alert(1)</script> hi")
    changelist = admin_client_.get(reverse("admin:establishments_feedback_changelist"))
    content = changelist.content.decode()
    assert changelist.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; hi" in content
    assert "<script>alert(1)" not in content
    assert admin_client_.get(reverse("admin:establishments_feedback_add")).status_code == 403
    change = admin_client_.get(
        reverse("admin:establishments_feedback_change", args=[feedback.pk])
    ).content.decode()
    assert 'name="message"' not in change and 'name="read"' in change
    admin_client_.post(
        reverse("admin:establishments_feedback_changelist"),
        {"action": "mark_read", "_selected_action": [feedback.pk]},
    )
    feedback.refresh_from_db()
    assert feedback.read is True
