import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record
from calls.models import CallEvent, CallStatus, EndReason, PauseReason
from tests import factories

pytestmark = pytest.mark.django_db


def audit_url(establishment, name="monitoring:audit_log"):  # type: ignore[no-untyped-def]
    return reverse(name, args=[establishment.code])


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", 302),
        ("family_a", 403),
        ("officer_x", 403),
        ("visits_admin_x", 200),
        ("officer_y", 404),
        ("visits_admin_y", 404),
        ("hq", 403),
    ],
)
@pytest.mark.parametrize("view", ["monitoring:audit_log", "monitoring:audit_csv"])
def test_audit_log_access(
    client, people, establishment_x, who: str, expected: int, view: str
) -> None:  # type: ignore[no-untyped-def]
    if who != "anonymous":
        client.force_login(getattr(people, who))
    response = client.get(audit_url(establishment_x, view))
    assert response.status_code == expected


def test_audit_log_lists_only_this_establishment_and_filters(
    client, people, establishment_x, establishment_y
) -> None:  # type: ignore[no-untyped-def]
    audit_record(
        actor=people.officer_x,
        action=AuditAction.CALL_PAUSE,
        establishment=establishment_x,
        reason="Stranger on camera",
    )
    audit_record(
        actor=people.visits_admin_x,
        action=AuditAction.CONNECTION_REVOKE,
        establishment=establishment_x,
        reason="Safeguarding",
    )
    audit_record(
        actor=people.officer_y,
        action=AuditAction.CALL_TERMINATE,
        establishment=establishment_y,
        reason="Elsewhere",
    )
    client.force_login(people.visits_admin_x)
    content = client.get(audit_url(establishment_x)).content.decode()
    assert "Stranger on camera" in content and "Safeguarding" in content
    assert "Elsewhere" not in content
    filtered = client.get(audit_url(establishment_x), {"action": "call_pause"}).content.decode()
    assert "Stranger on camera" in filtered and "Safeguarding" not in filtered
    by_actor = client.get(audit_url(establishment_x), {"actor": "visits.x"}).content.decode()
    assert "Safeguarding" in by_actor and "Stranger on camera" not in by_actor


def test_bad_filters_get_a_clear_error_and_no_rows(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    audit_record(
        actor=people.officer_x,
        action=AuditAction.CALL_PAUSE,
        establishment=establishment_x,
        reason="visible",
    )
    client.force_login(people.visits_admin_x)
    response = client.get(
        audit_url(establishment_x),
        {"since": "2026-05-02", "until": "2026-05-01", "action": "rm -rf"},
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert "There is a problem" in content
    assert "The end date must be on or after the start date." in content
    assert "Select a valid choice" in content
    assert "visible" not in content
    csv_response = client.get(
        audit_url(establishment_x, "monitoring:audit_csv"), {"since": "not-a-date"}
    )
    assert csv_response.status_code == 400
    assert "since" in csv_response.content.decode()


def test_csv_export_has_every_column_and_defuses_formulas(client, people, establishment_x) -> None:  # type: ignore[no-untyped-def]
    audit_record(
        actor=people.officer_x,
        action=AuditAction.CALL_TERMINATE,
        establishment=establishment_x,
        reason='=HYPERLINK("http://evil")',
    )
    audit_record(
        actor=people.visits_admin_x,
        action=AuditAction.ID_IMAGE_VIEW,
        establishment=establishment_x,
        reason="Review",
    )
    client.force_login(people.visits_admin_x)
    response = client.get(audit_url(establishment_x, "monitoring:audit_csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["when", "who", "establishment", "action", "target", "reason", "detail"]
    assert len(rows) == 3
    by_action = {row[3]: row for row in rows[1:]}
    assert by_action["Terminated a call"][1] == "officer.x@example.test"
    assert by_action["Terminated a call"][5] == '\'=HYPERLINK("http://evil")'
    assert by_action["Viewed an identity image"][2] == "HMP Xanadu"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", 302),
        ("family_a", 403),
        ("officer_x", 403),
        ("visits_admin_x", 403),
        ("hq", 200),
    ],
)
def test_national_dashboard_is_for_hq_only(client, people, who: str, expected: int) -> None:  # type: ignore[no-untyped-def]
    if who != "anonymous":
        client.force_login(getattr(people, who))
    assert client.get(reverse("monitoring:national")).status_code == expected


def make_call(establishment, country, minutes, *, days_ago=1, end_reason=EndReason.TIME_UP):  # type: ignore[no-untyped-def]
    started = timezone.now() - timedelta(days=days_ago)
    call = factories.CallFactory(
        booking__connection__prisoner__establishment=establishment,
        booking__connection__visitor__country_of_residence=country,
    )
    call.status = CallStatus.ENDED
    call.started_at = started
    call.ended_at = started + timedelta(minutes=minutes)
    call.end_reason = end_reason
    call.save()
    return call


def test_national_figures_over_a_fixture_month(
    client, people, establishment_x, establishment_y, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    from monitoring.selectors import national_figures

    make_call(establishment_x, "GB", 30)
    make_call(establishment_x, "PK", 30, days_ago=8)
    terminated = make_call(establishment_y, "GB", 12, days_ago=20, end_reason=EndReason.TERMINATED)
    CallEvent.objects.create(
        call=terminated, kind="paused", role="system", reason=PauseReason.UNAPPROVED_FACE
    )
    CallEvent.objects.create(
        call=terminated, kind="paused", role="monitor", reason=PauseReason.STAFF
    )
    # Booked but never started: not a call made.
    factories.CallFactory(booking__connection__prisoner__establishment=establishment_x)

    figures = national_figures(weeks=6)
    assert figures.calls == 3
    assert figures.hours == round((30 + 30 + 12) / 60, 1)
    assert figures.countries == [("GB", "United Kingdom", 2), ("PK", "Pakistan", 1)]
    assert (figures.pauses, figures.face_pauses, figures.terminations) == (2, 1, 1)
    rows = {row.establishment.code: row for row in figures.establishments}
    assert (rows["xanadu"].calls, rows["xanadu"].countries, rows["xanadu"].hours) == (2, 2, 1.0)
    assert (rows["yardley"].calls, rows["yardley"].pauses, rows["yardley"].terminations) == (
        1,
        2,
        1,
    )
    assert sum(week.calls for week in figures.weeks) == 3
    assert len(figures.weeks) == 6

    client.force_login(people.hq)
    with django_assert_max_num_queries(15):
        content = client.get(reverse("monitoring:national")).content.decode()
    assert "Pakistan" in content and "HMP Yardley" in content
    assert "<svg" in content and 'role="img"' in content
