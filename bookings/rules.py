"""The booking rules of DOMAIN.md: each refusal has a code and a plain message.

A refusal names the rule and says what the family (or the visits admin) can do next.
"""

from __future__ import annotations

from datetime import date, datetime

from django.utils.formats import date_format
from django.utils.translation import gettext as _


class RuleCode:
    ESTABLISHMENT_NOT_LIVE = "ESTABLISHMENT_NOT_LIVE"
    PRISONER_UNAVAILABLE = "PRISONER_UNAVAILABLE"
    NO_ALLOWANCE = "NO_ALLOWANCE"
    OUTSIDE_WINDOW = "OUTSIDE_WINDOW"
    DATE_BLOCKED = "DATE_BLOCKED"
    SLOT_FULL = "SLOT_FULL"
    VISITOR_NOT_APPROVED = "VISITOR_NOT_APPROVED"
    TOO_MANY_VISITORS = "TOO_MANY_VISITORS"
    NO_ADULT = "NO_ADULT"
    ALREADY_BOOKED = "ALREADY_BOOKED"
    # Beyond the DOMAIN.md table: a time that is not one of the establishment's slots,
    # a family booking where the prisoner asks for calls, a missing policy
    # acceptance, a booking that can no longer change, and a lock that timed out.
    SLOT_NOT_OFFERED = "SLOT_NOT_OFFERED"
    REQUESTS_ONLY = "REQUESTS_ONLY"
    AUP_NOT_ACCEPTED = "AUP_NOT_ACCEPTED"
    NOT_CHANGEABLE = "NOT_CHANGEABLE"
    BUSY = "BUSY"


class BookingRefused(Exception):
    """A booking (or a change to one) that the rules do not allow. Nothing was written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def day_label(day: date) -> str:
    """'1 December' (with the year when it is not this year's), in the active language."""
    from django.utils import timezone

    return date_format(day, "j F" if day.year == timezone.localdate().year else "j F Y")


def month_label(month: date) -> str:
    """'December' (with the year when it is not this year's), in the active language."""
    from django.utils import timezone

    return date_format(month, "F" if month.year == timezone.localdate().year else "F Y")


def slot_label(moment_local: datetime) -> str:
    """'Tuesday 1 December at 14:30', in the active language."""
    return _("%(weekday)s %(day)s at %(time)s") % {
        "weekday": date_format(moment_local, "l"),
        "day": day_label(moment_local.date()),
        "time": date_format(moment_local, "H:i"),
    }


def next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)
