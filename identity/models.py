"""Visitors, their identity evidence, dependants and connections to prisoners.

Images live in private storage (settings.PRIVATE_MEDIA_ROOT) under random names and
are served only through views that check who is asking. Face encodings are stored
encrypted (Fernet) and decrypted only in memory.
"""

from __future__ import annotations

import uuid
from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from establishments.models import Prisoner


def private_upload_path(instance: models.Model, filename: str) -> str:
    # Never keep the uploaded name: it may carry personal data or path tricks.
    return f"{instance._meta.app_label}/{instance._meta.model_name}/{uuid.uuid4().hex}.jpg"


def age_on(born: date, day: date) -> int:
    """Age in whole years on ``day`` (a birthday on 29 February counts from 1 March)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class VerificationStatus(models.TextChoices):
    NOT_STARTED = "not_started", _("Not started")
    SUBMITTED = "submitted", _("Waiting for a check by prison staff")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Not approved")


class VisitorProfile(models.Model):
    """A family member or friend: the person behind a verified email address."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="visitor_profile"
    )
    legal_name = models.CharField(max_length=150)
    date_of_birth = models.DateField()
    phone = models.CharField(max_length=32)
    country_of_residence = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    # The language of their emails and reminders (settings.LANGUAGES): the one they
    # chose with the switch, or the one they used when they created their profile.
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en-gb")
    # None: not chosen yet; True: face checks allowed; False: manual verification only.
    biometric_consent = models.BooleanField(null=True, blank=True)
    consent_changed_at = models.DateTimeField(null=True, blank=True)
    consent_notice_version = models.CharField(max_length=20, blank=True)
    verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.NOT_STARTED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["legal_name"]

    def __str__(self) -> str:
        return self.legal_name

    @property
    def is_approved(self) -> bool:
        return self.verification_status == VerificationStatus.APPROVED

    @property
    def country_name(self) -> str:
        """Where they live, by name in the active language ("United Kingdom")."""
        from purplevisits.countries import country_name

        return country_name(self.country_of_residence)

    def age_on(self, day: date) -> int:
        return age_on(self.date_of_birth, day)


class FaceResult(models.TextChoices):
    PENDING = "pending", _("Being checked")
    MATCH = "match", _("Faces match")
    NO_MATCH = "no_match", _("Faces do not match")
    NO_FACE = "no_face", _("No face found")
    SEVERAL_FACES = "several_faces", _("More than one face")
    MANUAL = "manual", _("Manual check (no consent to face matching)")
    FAILED = "failed", _("Check failed")
    # A dependant's photo has nothing to be compared with: one clear face is the result.
    ONE_FACE = "one_face", _("One face found")


class ReviewStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class IdentityCheck(models.Model):
    """One submission of a photo ID and a selfie, and the staff decision on it."""

    profile = models.ForeignKey(VisitorProfile, on_delete=models.CASCADE, related_name="checks")
    id_image = models.FileField(upload_to=private_upload_path, blank=True)
    selfie_image = models.FileField(upload_to=private_upload_path, blank=True)
    face_result = models.CharField(
        max_length=16, choices=FaceResult.choices, default=FaceResult.PENDING
    )
    face_distance = models.FloatField(null=True, blank=True)
    face_tolerance = models.FloatField(null=True, blank=True)
    face_checked_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    images_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        indexes = [models.Index(fields=["status", "submitted_at"])]

    def __str__(self) -> str:
        return f"Identity check for {self.profile} ({self.get_status_display()})"


class Dependant(models.Model):
    """A child or other person added by a lead visitor; approved like any visitor."""

    lead_visitor = models.ForeignKey(
        VisitorProfile, on_delete=models.CASCADE, related_name="dependants"
    )
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    date_of_birth = models.DateField()
    photo = models.FileField(upload_to=private_upload_path, blank=True)
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    face_result = models.CharField(
        max_length=16, choices=FaceResult.choices, default=FaceResult.PENDING
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["first_name"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def age_on(self, day: date) -> int:
        return age_on(self.date_of_birth, day)


class EnrolmentSource(models.TextChoices):
    SELFIE = "selfie", _("Selfie")
    ID_PHOTO = "id_photo", _("Photo ID")
    PHOTO = "photo", _("Photo")  # a dependant's photo, a prisoner's enrolment photo
    # The visitor's own camera at the check on a call's join page (issue 16): kept
    # only when every frame matched their selfie, deleted after
    # IDENTITY_PRECALL_ENCODING_DAYS.
    PRECALL = "precall", _("Camera check before a call")


class FaceEnrolment(models.Model):
    """An approved face encoding, encrypted at rest. Exactly one owner per row.

    A visitor has one from their selfie and, when the face on their photo ID matched
    it, one from the ID as well, and one from the pre-call camera check when they
    chose it (the mean of frames that each matched the selfie): the face checks
    compare a face with the nearest of them (a turned head, or their own webcam and
    lighting, is often nearer one than another). Dependants and prisoners have one."""

    profile = models.ForeignKey(
        VisitorProfile, null=True, blank=True, on_delete=models.CASCADE, related_name="faces"
    )
    dependant = models.OneToOneField(
        Dependant, null=True, blank=True, on_delete=models.CASCADE, related_name="face"
    )
    prisoner = models.OneToOneField(
        Prisoner, null=True, blank=True, on_delete=models.CASCADE, related_name="face"
    )
    source = models.CharField(
        max_length=16, choices=EnrolmentSource.choices, default=EnrolmentSource.SELFIE
    )
    encoding_encrypted = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "source"],
                condition=Q(profile__isnull=False),
                name="faceenrolment_one_per_profile_and_source",
            ),
            models.CheckConstraint(
                condition=(
                    Q(profile__isnull=False, dependant__isnull=True, prisoner__isnull=True)
                    | Q(profile__isnull=True, dependant__isnull=False, prisoner__isnull=True)
                    | Q(profile__isnull=True, dependant__isnull=True, prisoner__isnull=False)
                ),
                name="faceenrolment_exactly_one_owner",
            ),
        ]

    def __str__(self) -> str:
        owner = self.profile or self.dependant or self.prisoner
        return f"Face enrolment of {owner}"


class Relationship(models.TextChoices):
    PARTNER = "partner", _("Partner or spouse")
    PARENT = "parent", _("Parent or carer")
    CHILD = "child", _("Son or daughter")
    SIBLING = "sibling", _("Brother or sister")
    GRANDPARENT = "grandparent", _("Grandparent")
    OTHER_FAMILY = "other_family", _("Other family")
    FRIEND = "friend", _("Friend")


class ConnectionStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the prison to approve")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Not approved")
    REVOKED = "revoked", _("Revoked")


class Connection(models.Model):
    """A visitor's approval to call one prisoner."""

    visitor = models.ForeignKey(
        VisitorProfile, on_delete=models.CASCADE, related_name="connections"
    )
    prisoner = models.ForeignKey(Prisoner, on_delete=models.CASCADE, related_name="connections")
    relationship = models.CharField(max_length=20, choices=Relationship.choices)
    status = models.CharField(
        max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.PENDING
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["visitor", "prisoner"],
                condition=Q(status__in=["pending", "approved"]),
                name="connection_one_open_per_visitor_and_prisoner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.visitor} → {self.prisoner.prison_number} ({self.get_status_display()})"

    @property
    def is_approved(self) -> bool:
        return self.status == ConnectionStatus.APPROVED


class GroupMemberStatus(models.TextChoices):
    INVITED = "invited", _("Invited (waiting for them to agree)")
    ACCEPTED = "accepted", _("In the group")


class GroupMember(models.Model):
    """Another adult visitor in a lead visitor's own group: someone the lead may book
    onto their calls. The lead invites them by email; they must agree (their own
    account), and at booking time be verified and approved for that prisoner.

    A booking's party is only ever the lead, their dependants and these people: one
    family never sees another family's visitors (DOMAIN.md, privacy between families).
    """

    lead = models.ForeignKey(VisitorProfile, on_delete=models.CASCADE, related_name="group_members")
    member = models.ForeignKey(
        VisitorProfile, on_delete=models.CASCADE, related_name="group_memberships"
    )
    status = models.CharField(
        max_length=16, choices=GroupMemberStatus.choices, default=GroupMemberStatus.INVITED
    )
    invited_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["invited_at"]
        constraints = [
            models.UniqueConstraint(fields=["lead", "member"], name="groupmember_once_per_lead"),
            models.CheckConstraint(
                condition=~Q(lead=models.F("member")), name="groupmember_not_oneself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} in {self.lead}'s group ({self.get_status_display()})"
