from __future__ import annotations

import zoneinfo
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from establishments import defaults


class EstablishmentKind(models.TextChoices):
    MALE = "male", _("Male adult")
    FEMALE = "female", _("Female")
    YOI = "yoi", _("Young offender institution")
    STC = "stc", _("Secure training centre")
    OPEN = "open", _("Open")


class Operator(models.TextChoices):
    PUBLIC = "public", _("Public")
    CONTRACTED = "contracted", _("Contracted (privately managed)")


class Country(models.TextChoices):
    ENGLAND = "england", _("England")
    WALES = "wales", _("Wales")


class RolloutStage(models.TextChoices):
    EQUIPMENT_DELIVERED = "equipment_delivered", _("Equipment delivered")
    STAFF_TRAINING = "staff_training", _("Staff training")
    TEST_CALLS = "test_calls", _("Test calls")
    LIVE = "live", _("Live")
    SUSPENDED = "suspended", _("Suspended")

    @classmethod
    def next_after(cls, stage: str) -> str | None:
        order: list[str] = [cls.EQUIPMENT_DELIVERED, cls.STAFF_TRAINING, cls.TEST_CALLS, cls.LIVE]
        if stage == cls.SUSPENDED:
            return cls.LIVE
        if stage not in order or stage == cls.LIVE:
            return None
        return order[order.index(stage) + 1]


class RequestMode(models.TextChoices):
    FAMILY = "family", _("Family requests (booked in the portal)")
    PRISONER = "prisoner", _("Prisoner requests (entered by staff, accepted by the family)")


def _validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a known time zone.") from None


class EstablishmentQuerySet(models.QuerySet["Establishment"]):
    def live(self) -> EstablishmentQuerySet:
        return self.filter(rollout_stage=RolloutStage.LIVE)


class Establishment(models.Model):
    code = models.SlugField(
        max_length=64,
        unique=True,
        help_text="Short name used in web addresses, e.g. 'askham-grange'.",
    )
    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=EstablishmentKind.choices)
    operator = models.CharField(max_length=16, choices=Operator.choices, default=Operator.PUBLIC)
    country = models.CharField(max_length=16, choices=Country.choices, default=Country.ENGLAND)
    time_zone = models.CharField(
        max_length=64, default=defaults.TIME_ZONE, validators=[_validate_time_zone]
    )
    rollout_stage = models.CharField(
        max_length=24, choices=RolloutStage.choices, default=RolloutStage.EQUIPMENT_DELIVERED
    )
    rollout_stage_changed_at = models.DateTimeField(default=timezone.now)
    request_mode = models.CharField(
        max_length=16, choices=RequestMode.choices, default=RequestMode.FAMILY
    )

    calls_per_month = models.PositiveSmallIntegerField(
        default=defaults.CALLS_PER_MONTH,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text="Calls each prisoner may have in a calendar month.",
    )
    call_minutes = models.PositiveSmallIntegerField(
        default=defaults.CALL_MINUTES, validators=[MinValueValidator(5), MaxValueValidator(180)]
    )
    changeover_minutes = models.PositiveSmallIntegerField(
        default=defaults.CHANGEOVER_MINUTES,
        validators=[MaxValueValidator(120)],
        help_text="Gap between two calls on the same terminal.",
    )
    min_notice_days = models.PositiveSmallIntegerField(
        default=defaults.MIN_NOTICE_DAYS, validators=[MaxValueValidator(60)]
    )
    max_days_ahead = models.PositiveSmallIntegerField(
        default=defaults.MAX_DAYS_AHEAD, validators=[MinValueValidator(1), MaxValueValidator(180)]
    )
    max_visitors = models.PositiveSmallIntegerField(
        default=defaults.MAX_VISITORS, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    max_adults = models.PositiveSmallIntegerField(
        default=defaults.MAX_ADULTS, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    adult_age = models.PositiveSmallIntegerField(
        default=defaults.ADULT_AGE, validators=[MinValueValidator(16), MaxValueValidator(21)]
    )
    join_window_minutes = models.PositiveSmallIntegerField(
        default=defaults.JOIN_WINDOW_MINUTES, validators=[MaxValueValidator(60)]
    )
    request_response_hours = models.PositiveSmallIntegerField(
        default=defaults.REQUEST_RESPONSE_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(336)],
        help_text="How long a family has to accept a prisoner-requested call.",
    )

    face_match_tolerance = models.FloatField(
        default=defaults.FACE_MATCH_TOLERANCE,
        validators=[MinValueValidator(0.3), MaxValueValidator(0.8)],
        help_text="Largest face distance counted as the same person (lower is stricter).",
    )
    face_checks_to_confirm = models.PositiveSmallIntegerField(
        default=defaults.FACE_CHECKS_TO_CONFIRM,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Consecutive checks that must see an unapproved face before a call pauses.",
    )
    face_checks_per_second = models.FloatField(
        default=defaults.FACE_CHECKS_PER_SECOND,
        validators=[MinValueValidator(0.2), MaxValueValidator(10)],
    )
    face_auto_resume_seconds = models.PositiveSmallIntegerField(
        default=defaults.FACE_AUTO_RESUME_SECONDS,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text="Seconds clear of unapproved faces before a paused call resumes by itself.",
    )
    face_resume_staff_only = models.BooleanField(
        default=False, help_text="Only staff may resume a call paused by a face check."
    )
    face_check_children_under = models.PositiveSmallIntegerField(
        default=defaults.FACE_CHECK_CHILDREN_UNDER,
        validators=[MaxValueValidator(18)],
        help_text=(
            "Children younger than this are not face-checked on calls; the lead visitor "
            "must stay in view. 0: every child is checked."
        ),
    )

    # Where it is, for the home page's search ("Cardiff", "Caerdydd").
    town = models.CharField(max_length=60, blank=True, help_text="Town or city, e.g. 'Wrexham'.")
    town_cy = models.CharField(
        max_length=60,
        blank=True,
        help_text="The town's Welsh name if it has one, e.g. 'Wrecsam' (found by search too).",
    )

    # The visits team's contact details, on the help page and the portal.
    visits_phone = models.CharField(
        max_length=40,
        blank=True,
        validators=[
            RegexValidator(r"^\+?[0-9 ()-]{7,40}\Z", "Enter a phone number, like 01234 567890.")
        ],
        help_text="The visits team's phone number, e.g. '01978 523000'.",
    )
    visits_email = models.EmailField(blank=True, help_text="The visits team's email address.")
    visits_hours = models.TextField(
        max_length=500,
        blank=True,
        help_text="When the visits team answers, e.g. 'Monday to Friday, 9am to 4pm'.",
    )
    visits_hours_cy = models.TextField(
        max_length=500,
        blank=True,
        help_text="The same in Welsh, for Welsh pages (empty: the English is shown).",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EstablishmentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_adults__lte=models.F("max_visitors")),
                name="establishment_adults_within_visitors",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        adults, visitors = self.max_adults, self.max_visitors
        if adults is not None and visitors is not None and adults > visitors:
            errors["max_adults"] = "Cannot be more than the maximum number of visitors."
        notice, ahead = self.min_notice_days, self.max_days_ahead
        if notice is not None and ahead is not None and notice >= ahead:
            errors["max_days_ahead"] = "Must be later than the minimum notice."
        if errors:
            raise ValidationError(errors)

    @property
    def is_live(self) -> bool:
        return self.rollout_stage == RolloutStage.LIVE

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def slot_step_minutes(self) -> int:
        return self.call_minutes + self.changeover_minutes

    @property
    def has_contact(self) -> bool:
        return bool(self.visits_phone or self.visits_email or self.visits_hours)

    @property
    def phone_href(self) -> str:
        """The phone number for a ``tel:`` link (digits and a leading +)."""
        phone = self.visits_phone.strip()
        return ("+" if phone.startswith("+") else "") + "".join(c for c in phone if c.isdigit())

    def town_in(self, language: str) -> str:
        return self.town_cy if language == "cy" and self.town_cy else self.town

    def visits_hours_in(self, language: str) -> str:
        if language == "cy" and self.visits_hours_cy:
            return self.visits_hours_cy
        return self.visits_hours


class RolloutStageChange(models.Model):
    """Append-only history of an establishment's rollout stage."""

    establishment = models.ForeignKey(
        Establishment, on_delete=models.CASCADE, related_name="stage_changes"
    )
    from_stage = models.CharField(max_length=24, choices=RolloutStage.choices, blank=True)
    to_stage = models.CharField(max_length=24, choices=RolloutStage.choices)
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.establishment}: {self.from_stage or '—'} → {self.to_stage}"


class Terminal(models.Model):
    """A secure laptop on which a prisoner takes calls."""

    establishment = models.ForeignKey(
        Establishment, on_delete=models.CASCADE, related_name="terminals"
    )
    name = models.CharField(max_length=60, help_text="e.g. 'Visits hall laptop 1'.")
    location = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="terminal",
        help_text="The laptop's own sign-in: it can only list and join this terminal's calls.",
    )

    class Meta:
        ordering = ["establishment__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["establishment", "name"], name="terminal_unique_name_per_establishment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.establishment.name})"


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class VisitSession(models.Model):
    """A weekly period in which calls are offered, e.g. Tuesdays 14:00–16:00."""

    establishment = models.ForeignKey(
        Establishment, on_delete=models.CASCADE, related_name="visit_sessions"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField()
    end_time = models.TimeField()
    valid_from = models.DateField(null=True, blank=True)
    valid_to = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["establishment__name", "weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=models.F("start_time")),
                name="visitsession_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(valid_to__gte=models.F("valid_from")),
                name="visitsession_valid_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}–{self.end_time:%H:%M}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            errors["end_time"] = "The session must end after it starts."
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            errors["valid_to"] = "Must be on or after 'valid from'."
        if errors:
            raise ValidationError(errors)

    def applies_on(self, day: date) -> bool:
        if day.weekday() != self.weekday:
            return False
        if self.valid_from and day < self.valid_from:
            return False
        return not (self.valid_to and day > self.valid_to)


class BlockedDateReason(models.TextChoices):
    LOCKDOWN = "lockdown", _("Lockdown")
    STAFF_SHORTAGE = "staff_shortage", _("Staff shortage")
    NETWORK_WORK = "network_work", _("Network work")
    OTHER = "other", _("Other")


class BlockedDate(models.Model):
    """A day on which an establishment offers no calls."""

    establishment = models.ForeignKey(
        Establishment, on_delete=models.CASCADE, related_name="blocked_dates"
    )
    date = models.DateField()
    reason = models.CharField(max_length=20, choices=BlockedDateReason.choices)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["establishment", "date"], name="blockeddate_unique_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.date:%d %b %Y} ({self.get_reason_display()})"


prison_number_validator = RegexValidator(
    r"^[A-Z][0-9]{4}[A-Z]{2}\Z",
    _("A prison number is a letter, four digits and two letters, e.g. A1234BC."),
)


class PrisonerStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    RELEASED = "released", _("Released")
    TRANSFERRED = "transferred", _("Transferred")


class Prisoner(models.Model):
    prison_number = models.CharField(
        max_length=7, unique=True, validators=[prison_number_validator]
    )
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    date_of_birth = models.DateField()
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, related_name="prisoners"
    )
    location = models.CharField(max_length=60, blank=True, help_text="Wing or cell location.")
    status = models.CharField(
        max_length=16, choices=PrisonerStatus.choices, default=PrisonerStatus.ACTIVE
    )
    video_calls_restricted_until = models.DateField(
        null=True, blank=True, help_text="No video calls up to and including this date."
    )

    class Meta:
        ordering = ["last_name", "first_name"]
        indexes = [models.Index(fields=["last_name", "first_name"])]

    def __str__(self) -> str:
        return f"{self.prison_number} {self.first_name} {self.last_name}"

    def clean_fields(self, exclude: object = None) -> None:
        # Normalise before the format validator runs: people type "a1234bc ".
        if self.prison_number:
            self.prison_number = self.prison_number.strip().upper()
        super().clean_fields(exclude=exclude)  # type: ignore[arg-type]

    def clean(self) -> None:
        if self.date_of_birth and self.date_of_birth >= timezone.localdate():
            raise ValidationError({"date_of_birth": "Date of birth must be in the past."})

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class StaffRole(models.TextChoices):
    OFFICER = "officer", _("Officer")
    VISITS_ADMIN = "visits_admin", _("Visits admin")
    HQ = "hq", _("Headquarters (read-only, national)")


class StaffMembership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_memberships"
    )
    establishment = models.ForeignKey(
        Establishment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="staff_memberships",
        help_text="Leave empty for headquarters staff, who see every establishment.",
    )
    role = models.CharField(max_length=16, choices=StaffRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "establishment"],
                condition=Q(establishment__isnull=False),
                name="staffmembership_one_role_per_establishment",
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(establishment__isnull=True),
                name="staffmembership_one_national_membership",
            ),
            models.CheckConstraint(
                condition=(Q(role="hq") & Q(establishment__isnull=True))
                | (~Q(role="hq") & Q(establishment__isnull=False)),
                name="staffmembership_hq_is_national",
            ),
        ]

    def __str__(self) -> str:
        where = self.establishment.name if self.establishment else "all establishments"
        return f"{self.user} — {self.get_role_display()} ({where})"

    def clean(self) -> None:
        if self.role == StaffRole.HQ and self.establishment_id:
            raise ValidationError(
                {"establishment": "Headquarters staff see every establishment: leave this empty."}
            )
        if self.role and self.role != StaffRole.HQ and not self.establishment_id:
            raise ValidationError(
                {"establishment": "Officers and visits admins need an establishment."}
            )


class FeedbackTopic(models.TextChoices):
    BOOKING = "booking", _("Booking a call")
    CALL = "call", _("A call")
    IDENTITY = "identity", _("Proving who I am")
    WEBSITE = "website", _("This website")
    OTHER = "other", _("Something else")


class Feedback(models.Model):
    """What someone told us with the footer's feedback form (read in Django admin)."""

    topic = models.CharField(max_length=16, choices=FeedbackTopic.choices)
    message = models.TextField(max_length=2000)
    establishment = models.ForeignKey(
        Establishment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feedback",
    )
    reply_to = models.EmailField(blank=True, help_text="Only if they asked for a reply.")
    language = models.CharField(max_length=8, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "feedback"

    def __str__(self) -> str:
        return f"{self.get_topic_display()} ({self.created_at:%d %b %Y %H:%M})"
