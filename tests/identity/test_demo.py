import pytest
from django.core.management import call_command

from identity.models import Connection, Dependant, IdentityCheck, VisitorProfile
from identity.selectors import identity_checks_to_review

pytestmark = pytest.mark.django_db


def test_demo_family_is_approved_and_a_check_waits_for_review(capsys, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True  # the demo exists only in a demonstration setup
    call_command("seed_demo")
    counts = (
        VisitorProfile.objects.count(),
        IdentityCheck.objects.count(),
        Connection.objects.count(),
        Dependant.objects.count(),
    )
    call_command("seed_demo")
    assert counts == (
        VisitorProfile.objects.count(),
        IdentityCheck.objects.count(),
        Connection.objects.count(),
        Dependant.objects.count(),
    )
    family = VisitorProfile.objects.get(user__email="family@demo.purplevisits.test")
    assert family.verification_status == "approved"
    connection = family.connections.get(prisoner__prison_number="A1234BC")
    assert connection.status == "approved"
    assert family.dependants.get().status == "approved"
    waiting = identity_checks_to_review(connection.prisoner.establishment)
    assert [c.profile.user.email for c in waiting] == ["waiting@demo.purplevisits.test"]
    assert "waiting@demo.purplevisits.test" in capsys.readouterr().out
