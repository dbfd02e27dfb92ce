"""A lead visitor's own group: the other adults they may book onto their calls.

Writes (``group_member_*``) and reads (``group_*``) of identity.models.GroupMember. A
lead invites another adult by the email address of that adult's own account; the adult
agrees (or says no) on their own group page. Nothing here tells the lead whether an
address has an account: the answer to an invitation is the same either way, so the
page cannot be used to find out who uses the service (DOMAIN.md, privacy between
families). Whether a member may join a particular call (verified, approved for that
prisoner) is checked when booking (bookings.services.check_party).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from identity.models import (
    ConnectionStatus,
    GroupMember,
    GroupMemberStatus,
    VerificationStatus,
    VisitorProfile,
)

# At most this many adults in one lead's group: a group is a family.
MAX_GROUP_MEMBERS = 10
# At most this many invitations waiting for an answer. Further invitations are not
# made, and the lead is told the same as for any invitation: saying "too many waiting"
# would tell them which of the addresses they tried have accounts.
MAX_PENDING_INVITATIONS = 10


class GroupError(Exception):
    """A refused group action, with a message a person can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- Reads ---------------------------------------------------------------------------


def group_of(lead: VisitorProfile) -> QuerySet[GroupMember]:
    """The people who agreed to be in the lead's group, with their profiles. Invitations
    still waiting are not listed: they would show which addresses have accounts."""
    return (
        GroupMember.objects.filter(lead=lead, status=GroupMemberStatus.ACCEPTED)
        .select_related("member")
        .order_by("member__legal_name", "pk")
    )


def group_memberships(member: VisitorProfile) -> QuerySet[GroupMember]:
    """The groups ``member`` is in or is invited to, with the lead's profile."""
    return (
        GroupMember.objects.filter(member=member)
        .select_related("lead")
        .order_by("lead__legal_name", "pk")
    )


def group_companions(lead_id: int, prisoner_id: int) -> QuerySet[VisitorProfile]:
    """The lead's group members who can join a call with ``prisoner_id`` now: agreed to
    be in the group, identity approved, an approved connection to that prisoner."""
    return (
        VisitorProfile.objects.filter(
            group_memberships__lead=lead_id,
            group_memberships__status=GroupMemberStatus.ACCEPTED,
            verification_status=VerificationStatus.APPROVED,
            connections__prisoner=prisoner_id,
            connections__status=ConnectionStatus.APPROVED,
        )
        .exclude(pk=lead_id)
        .distinct()
        .order_by("legal_name", "pk")
    )


# --- Writes --------------------------------------------------------------------------

INVITED_MESSAGE = gettext_noop(
    "If {email} has an account, they will see your invitation on their group page. "
    "They join your group when they agree."
)


@transaction.atomic
def group_member_invite(*, lead: VisitorProfile, email: str) -> GroupMember | None:
    """Invite the visitor whose account has ``email``; None when there is nobody to
    invite (the caller says the same thing either way: see INVITED_MESSAGE)."""
    address = email.strip()
    if not address or "@" not in address or len(address) > 254:
        raise GroupError("BAD_EMAIL", _("Enter the email address they use to sign in."))
    if address.casefold() == (lead.user.email or "").casefold():
        raise GroupError("SELF", _("You are always on your own calls: enter someone else's email."))
    if group_of(lead).count() >= MAX_GROUP_MEMBERS:
        raise GroupError(
            "GROUP_FULL",
            _("Your group has %(count)d people in it. Remove someone first.")
            % {"count": MAX_GROUP_MEMBERS},
        )
    member = (
        VisitorProfile.objects.filter(
            user__emailaddress__email__iexact=address, user__emailaddress__verified=True
        )
        .exclude(pk=lead.pk)
        .first()
    )
    if member is None:
        return None
    waiting = GroupMember.objects.filter(lead=lead, status=GroupMemberStatus.INVITED)
    if waiting.count() >= MAX_PENDING_INVITATIONS and not waiting.filter(member=member).exists():
        return None
    try:
        with transaction.atomic():
            invitation, _created = GroupMember.objects.get_or_create(lead=lead, member=member)
    except IntegrityError:  # invited twice at once: the first one stands
        invitation = GroupMember.objects.get(lead=lead, member=member)
    return invitation


@transaction.atomic
def group_member_accept(*, member: VisitorProfile, invitation_id: int) -> GroupMember:
    """The invited adult agrees to be in the lead's group."""
    changed = GroupMember.objects.filter(
        pk=invitation_id, member=member, status=GroupMemberStatus.INVITED
    ).update(status=GroupMemberStatus.ACCEPTED, accepted_at=timezone.now())
    invitation = GroupMember.objects.filter(pk=invitation_id, member=member).first()
    if invitation is None or (not changed and invitation.status != GroupMemberStatus.ACCEPTED):
        raise GroupError("NO_INVITATION", _("That invitation has been withdrawn."))
    return invitation


@transaction.atomic
def group_member_leave(*, member: VisitorProfile, invitation_id: int) -> None:
    """The adult declines an invitation, or leaves a group they are in."""
    deleted, _rows = GroupMember.objects.filter(pk=invitation_id, member=member).delete()
    if not deleted:
        raise GroupError("NO_INVITATION", _("That invitation has been withdrawn."))


@transaction.atomic
def group_member_remove(*, lead: VisitorProfile, group_member_id: int) -> None:
    """The lead takes someone out of their group. Calls already booked keep their
    people; new bookings cannot include them. Only members who agreed: the lead never
    sees the ids of invitations still waiting, and must not learn them by trying."""
    deleted, _rows = GroupMember.objects.filter(
        pk=group_member_id, lead=lead, status=GroupMemberStatus.ACCEPTED
    ).delete()
    if not deleted:
        raise GroupError("NOT_IN_GROUP", _("That person is not in your group."))
