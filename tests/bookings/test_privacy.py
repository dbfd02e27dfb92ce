"""Privacy between families (issue 14, item 1): two unrelated families approved for the
same prisoner never see, nor can book, each other's people. A lead books only their own
group (identity.group) and dependants. Staff still see every visitor of a prisoner."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.core import mail
from django.urls import reverse

from bookings import services
from bookings.models import Booking, BookingVisitor
from bookings.rules import BookingRefused
from establishments.models import RequestMode
from identity import group
from identity.models import ConnectionStatus, GroupMember, GroupMemberStatus, VerificationStatus
from tests import factories
from tests.bookings.conftest import in_group, uk

pytestmark = pytest.mark.django_db

WED = date(2026, 11, 4)
SLOT = "2026-11-04T09:30:00Z"
KEY = "p" * 32


@pytest.fixture
def other_family(world):  # type: ignore[no-untyped-def]
    """An unrelated family, approved for the same prisoner: Tessa Walker and her son."""
    tessa = factories.ConnectionFactory(
        prisoner=world.prisoner,
        visitor=factories.VisitorProfileFactory(
            legal_name="Tessa Walker", user=factories.UserFactory(email="tessa@example.test")
        ),
    ).visitor
    factories.DependantFactory(lead_visitor=tessa, first_name="Rowan", last_name="Walker")
    return tessa


def book_page(client, world):  # type: ignore[no-untyped-def]
    url = reverse("bookings:book", args=[world.establishment.code])
    return client.get(url, {"connection": world.connection.pk, "slot": SLOT})


def test_the_booking_form_lists_only_the_leads_own_group(client, world, other_family) -> None:  # type: ignore[no-untyped-def]
    sam = in_group(
        world.profile,
        factories.ConnectionFactory(
            prisoner=world.prisoner, visitor=factories.VisitorProfileFactory(legal_name="Sam Jones")
        ).visitor,
    )
    client.force_login(world.user)
    content = book_page(client, world).content.decode()
    assert "Sam Jones" in content and f'name="visitors" value="{sam.pk}"' in content
    assert "Tessa" not in content and "Walker" not in content and "Rowan" not in content
    assert f'name="visitors" value="{other_family.pk}"' not in content
    # And the other way round: Tessa's form does not show Jo's group.
    client.force_login(other_family.user)
    tessa_connection = other_family.connections.get()
    url = reverse("bookings:book", args=[world.establishment.code])
    content = client.get(url, {"connection": tessa_connection.pk, "slot": SLOT}).content.decode()
    assert "Jo Jones" not in content and "Sam Jones" not in content
    assert "Rowan Walker" in content  # her own child


def test_a_tampered_post_naming_another_family_is_refused_and_says_nothing(  # type: ignore[no-untyped-def]
    client, world, other_family
) -> None:
    client.force_login(world.user)
    url = reverse("bookings:book", args=[world.establishment.code])
    data = {"connection": world.connection.pk, "slot": SLOT, "aup": "on"}
    someone = client.post(url, {**data, "visitors": [other_family.pk], "idempotency_key": KEY})
    nobody = client.post(url, {**data, "visitors": [987654], "idempotency_key": "q" * 32})
    assert someone.status_code == nobody.status_code == 400
    assert not Booking.objects.exists() and not BookingVisitor.objects.exists()
    assert len(mail.outbox) == 0

    # The same answer whether the id is another family's visitor or nobody at all.
    def refusal(response) -> str:  # type: ignore[no-untyped-def]
        text = response.content.decode()
        start = text.index('class="refusal"')
        return text[start : text.index("</p>", start)]

    assert refusal(someone) == refusal(nobody)
    assert "Tessa" not in someone.content.decode()
    # Another family's dependant, likewise.
    rowan = other_family.dependants.get()
    with pytest.raises(BookingRefused) as caught:
        services.booking_create(
            connection=world.connection,
            lead=world.profile,
            starts_at=uk(WED, 9, 30),
            dependant_ids=[rowan.pk],
            aup_accepted=True,
        )
    assert caught.value.code == "VISITOR_NOT_APPROVED"
    assert "Rowan" not in caught.value.message


def test_the_service_refuses_anyone_outside_the_group(world, other_family) -> None:  # type: ignore[no-untyped-def]
    """Approved for the prisoner is not enough: they must have agreed to be in the group,
    be approved themselves, and have their own approved connection to this prisoner."""

    def attempt(profile):  # type: ignore[no-untyped-def]
        with pytest.raises(BookingRefused) as caught:
            services.booking_create(
                connection=world.connection,
                lead=world.profile,
                starts_at=uk(WED, 9, 30),
                profile_ids=[profile.pk],
                aup_accepted=True,
            )
        assert caught.value.code == "VISITOR_NOT_APPROVED"
        assert not Booking.objects.exists()

    attempt(other_family)  # approved for the prisoner, not in the group
    invited = GroupMember.objects.create(lead=world.profile, member=other_family)
    attempt(other_family)  # invited, has not agreed
    invited.status = GroupMemberStatus.ACCEPTED
    invited.save()
    other_family.verification_status = VerificationStatus.SUBMITTED
    other_family.save()
    attempt(other_family)  # in the group, identity not approved
    other_family.verification_status = VerificationStatus.APPROVED
    other_family.save()
    other_family.connections.update(status=ConnectionStatus.REVOKED)
    attempt(other_family)  # in the group, no approved connection to this prisoner
    other_family.connections.update(status=ConnectionStatus.APPROVED)
    booking = services.booking_create(
        connection=world.connection,
        lead=world.profile,
        starts_at=uk(WED, 9, 30),
        profile_ids=[other_family.pk],
        aup_accepted=True,
    )
    assert set(booking.visitors.values_list("profile", flat=True)) == {
        world.profile.pk,
        other_family.pk,
    }


def test_a_prisoner_request_offers_only_the_leads_group(  # type: ignore[no-untyped-def]
    client, world, other_family, people
) -> None:
    world.establishment.request_mode = RequestMode.PRISONER
    world.establishment.save()
    booking = services.booking_request_create(
        connection=world.connection, starts_at=uk(WED, 9, 30), actor=people.visits_admin_x
    )
    client.force_login(world.user)
    url = reverse("bookings:respond", args=[booking.reference])
    page = client.get(url).content.decode()
    assert "Tessa" not in page and "Rowan" not in page
    response = client.post(url, {"answer": "accept", "aup": "on", "visitors": [other_family.pk]})
    assert response.status_code == 400
    assert "Tessa" not in response.content.decode()
    assert list(booking.visitors.values_list("profile", flat=True)) == [world.profile.pk]


def test_staff_still_see_every_visitor_of_the_prisoner(client, world, other_family, people) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.visits_admin_x)
    url = reverse("bookings:staff_request", args=[world.establishment.code])
    page = client.get(url, {"prison_number": "A1234BC"}).content.decode()
    assert "Jo Jones" in page and "Tessa Walker" in page


# --- The group page --------------------------------------------------------------------


def test_inviting_says_the_same_whether_or_not_the_address_has_an_account(  # type: ignore[no-untyped-def]
    client, world, other_family
) -> None:
    client.force_login(world.user)
    url = reverse("me_group")
    known = client.post(url, {"action": "invite", "email": "TESSA@example.test"}, follow=True)
    unknown = client.post(url, {"action": "invite", "email": "nobody@example.test"}, follow=True)
    assert known.status_code == unknown.status_code == 200

    def page(response, email: str) -> str:  # type: ignore[no-untyped-def]
        text = response.content.decode().replace(email, "X")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)

    # Nothing on the page tells them apart.
    assert page(known, "TESSA@example.test") == page(unknown, "nobody@example.test")
    assert "If X has an account" in page(known, "TESSA@example.test")
    assert "Tessa" not in known.content.decode()
    invitation = GroupMember.objects.get()
    assert (invitation.lead, invitation.member, invitation.status) == (
        world.profile,
        other_family,
        GroupMemberStatus.INVITED,
    )
    # The lead cannot probe the waiting invitation's id either.
    response = client.post(url, {"action": "remove", "item": invitation.pk})
    assert response.status_code == 400 and GroupMember.objects.exists()


def test_the_invited_adult_agrees_and_can_then_be_booked(client, world, other_family) -> None:  # type: ignore[no-untyped-def]
    invitation = group.group_member_invite(lead=world.profile, email="tessa@example.test")
    assert invitation is not None
    client.force_login(other_family.user)
    page = client.get(reverse("me_group")).content.decode()
    assert "Jo Jones would like to add you" in page
    response = client.post(reverse("me_group"), {"action": "accept", "item": invitation.pk})
    assert response.status_code == 302
    client.force_login(world.user)
    assert "Tessa Walker" in book_page(client, world).content.decode()
    assert "Tessa Walker" in client.get(reverse("me_group")).content.decode()
    # She leaves: gone from the form at once.
    client.force_login(other_family.user)
    client.post(reverse("me_group"), {"action": "leave", "item": invitation.pk})
    client.force_login(world.user)
    assert "Tessa Walker" not in book_page(client, world).content.decode()


def test_only_the_invited_person_can_answer_an_invitation(client, world, other_family) -> None:  # type: ignore[no-untyped-def]
    invitation = group.group_member_invite(lead=world.profile, email="tessa@example.test")
    stranger = factories.VisitorProfileFactory()
    with pytest.raises(group.GroupError):
        group.group_member_accept(member=stranger, invitation_id=invitation.pk)  # type: ignore[union-attr]
    with pytest.raises(group.GroupError):
        group.group_member_accept(member=world.profile, invitation_id=invitation.pk)  # type: ignore[union-attr]
    invitation.refresh_from_db()  # type: ignore[union-attr]
    assert invitation.status == GroupMemberStatus.INVITED  # type: ignore[union-attr]
    with pytest.raises(group.GroupError):
        group.group_member_invite(lead=world.profile, email="jo.jones@example.test")  # oneself


def test_bad_input_on_the_group_page_is_said_plainly(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.user)
    url = reverse("me_group")
    assert client.post(url, {"action": "invite", "email": "not an email"}).status_code == 400
    assert client.post(url, {"action": "accept", "item": "x"}).status_code == 400
    assert client.post(url, {"action": "explode"}).status_code == 400
    assert not GroupMember.objects.exists()
