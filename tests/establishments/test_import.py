from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from establishments.models import Establishment, RolloutStage, RolloutStageChange

pytestmark = pytest.mark.django_db

HEADER = "name,kind,operator,country,rollout_stage_2020_07\n"


def write(tmp_path: Path, text: str, name: str = "estate.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_shipped_estate_imports_and_is_idempotent(capsys) -> None:  # type: ignore[no-untyped-def]
    import csv

    from establishments.management.commands.load_establishments import DEFAULT_CSV

    with DEFAULT_CSV.open() as handle:
        rows = list(csv.DictReader(handle))
    call_command("load_establishments")
    first = Establishment.objects.count()
    assert first == len(rows) == 109
    live = sum(row["rollout_stage_2020_07"] == "live" for row in rows)
    assert Establishment.objects.filter(rollout_stage=RolloutStage.LIVE).count() == live
    berwyn = Establishment.objects.get(code="berwyn")
    assert (berwyn.kind, berwyn.country, berwyn.rollout_stage) == ("male", "wales", "live")
    history = RolloutStageChange.objects.count()
    call_command("load_establishments")
    assert Establishment.objects.count() == first
    assert RolloutStageChange.objects.count() == history
    assert "0 created, 0 updated, 109 unchanged" in capsys.readouterr().out


def test_reimport_updates_changed_rows_and_records_stage(tmp_path: Path) -> None:
    call_command(
        "load_establishments", write(tmp_path, HEADER + "Leeds,male,public,England,setting_up\n")
    )
    leeds = Establishment.objects.get(code="leeds")
    assert leeds.rollout_stage == RolloutStage.EQUIPMENT_DELIVERED
    call_command(
        "load_establishments", write(tmp_path, HEADER + "Leeds,male,contracted,England,live\n")
    )
    leeds.refresh_from_db()
    assert (leeds.operator, leeds.rollout_stage) == ("contracted", "live")
    assert list(leeds.stage_changes.values_list("to_stage", flat=True)) == [
        "live",
        "equipment_delivered",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name,kind,operator\nLeeds,male,public\n", "line 1: missing column(s): country"),
        (
            HEADER + "Leeds,male,public,England,live\nHull,dungeon,public,England,live\n",
            "line 3: unknown kind 'dungeon'",
        ),
        (
            HEADER + "Leeds,male,public,England,live\nleeds,male,public,England,live\n",
            "line 3: duplicate name 'leeds' (first on line 2)",
        ),
        (HEADER + "Leeds,male,public,Scotland,live\n", "line 2: unknown country 'Scotland'"),
        (HEADER + "Leeds,male,public,England,closed\n", "line 2: unknown rollout stage"),
        (HEADER + ",male,public,England,live\n", "line 2: the name is empty"),
        (HEADER + "Leeds,male,public,England,live,extra\n", "line 2: more fields than columns"),
        (HEADER, "no establishments"),
        ("", "line 1: the file is empty"),
    ],
)
def test_malformed_csv_names_the_line_and_writes_nothing(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(CommandError) as excinfo:
        call_command("load_establishments", write(tmp_path, body))
    assert message in str(excinfo.value)
    assert "Nothing was imported" in str(excinfo.value)
    assert Establishment.objects.count() == 0


def test_binary_and_missing_files_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "estate.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("load_establishments", str(binary))
    with pytest.raises(CommandError, match="no such file"):
        call_command("load_establishments", str(tmp_path / "missing.csv"))
    assert Establishment.objects.count() == 0


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("w") as handle:
        handle.write(HEADER)
        handle.write(("x" * 1000 + "\n") * 6000)
    with pytest.raises(CommandError, match="larger than 5 MB"):
        call_command("load_establishments", str(path))


def test_a_bad_line_after_good_ones_leaves_existing_data_untouched(tmp_path: Path) -> None:
    call_command(
        "load_establishments", write(tmp_path, HEADER + "Leeds,male,public,England,live\n")
    )
    with pytest.raises(CommandError):
        call_command(
            "load_establishments",
            write(
                tmp_path,
                HEADER + "Leeds,female,public,England,live\nHull,nope,public,England,live\n",
            ),
        )
    assert Establishment.objects.get(code="leeds").kind == "male"
    assert Establishment.objects.count() == 1


def test_seed_demo_is_idempotent(capsys, settings) -> None:  # type: ignore[no-untyped-def]
    from establishments.models import Prisoner, StaffMembership, Terminal

    settings.DEBUG = True  # the demo exists only in a demonstration setup

    call_command("seed_demo")
    counts = (Terminal.objects.count(), Prisoner.objects.count(), StaffMembership.objects.count())
    call_command("seed_demo")
    assert (
        Terminal.objects.count(),
        Prisoner.objects.count(),
        StaffMembership.objects.count(),
    ) == counts
    out = capsys.readouterr().out
    assert "officer@demo.purplevisits.test" in out
    assert "family@demo.purplevisits.test" in out
    demo = Establishment.objects.get(code="askham-grange")
    assert demo.is_live and demo.terminals.count() == 2 and demo.visit_sessions.exists()


def test_demo_staff_have_two_factor_with_the_printed_secret(capsys, settings) -> None:  # type: ignore[no-untyped-def]
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import validate_totp_code

    from establishments.demo import DEMO_TOTP_SECRET, demo_code

    settings.DEBUG = True
    call_command("seed_demo")
    settings.DEBUG = False
    assert DEMO_TOTP_SECRET in capsys.readouterr().out
    staff = Authenticator.objects.filter(type=Authenticator.Type.TOTP).values_list(
        "user__email", flat=True
    )
    assert set(staff) == {
        "admin@demo.purplevisits.test",
        "officer@demo.purplevisits.test",
        "visits@demo.purplevisits.test",
        "hq@demo.purplevisits.test",
    }
    assert validate_totp_code(DEMO_TOTP_SECRET, demo_code())
    with pytest.raises(CommandError, match="only in a DEBUG"):
        call_command("demo_code")
    settings.DEBUG = True
    call_command("demo_code")
    assert capsys.readouterr().out.strip() == demo_code()


def test_seed_demo_gives_a_joinable_call_once(settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from bookings.models import Booking

    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    booking = Booking.objects.get()
    assert booking.status == "confirmed"
    assert booking.lead_visitor.user.email == "family@demo.purplevisits.test"
    assert booking.terminal.user.email == "laptop1@demo.purplevisits.test"
    opens = booking.starts_at - timedelta(minutes=booking.establishment.join_window_minutes)
    assert opens <= timezone.now() < booking.ends_at


def test_seed_demo_refuses_without_debug_and_creates_nothing(settings, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 #5: with DEBUG=false the public demo superuser must never be created."""
    from django.contrib.auth.models import User
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from establishments.demo import seed_demo

    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG=true"):
        call_command("seed_demo")
    # As `manage.py seed_demo` it is a clear message on stderr and a non-zero exit.
    # (run_from_argv closes the database connections at the end: not the test's.)
    from django.db import connections

    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "seed_demo"])
    assert exited.value.code != 0
    assert "only with DEBUG=true" in capsys.readouterr().err
    # The function itself refuses too (a shell or script cannot go round the command).
    with pytest.raises(ImproperlyConfigured):
        seed_demo()
    assert not User.objects.exists()
    assert not Establishment.objects.filter(code="askham-grange").exists()
