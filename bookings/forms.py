"""Forms check shape only (types, lengths, choices); the rules live in services."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from bookings.models import CancelReason, MoveReason
from bookings.selectors import REQUEST_STATES, parse_slot_key
from bookings.services import STAFF_CANCEL_REASONS
from establishments.models import BlockedDateReason

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(24)


class SlotField(forms.CharField):
    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def clean(self, value: object) -> datetime | None:  # type: ignore[override]
        text = super().clean(value)
        if not text:
            return None
        moment = parse_slot_key(text)
        if moment is None:
            raise forms.ValidationError(_("Choose one of the times listed."), code="invalid")
        return moment


class IdList(forms.Field):
    """A list of positive ids from checkboxes; anything else is an error, not ignored."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: object) -> list[int]:
        if not value:
            return []
        if not isinstance(value, list | tuple) or len(value) > 20:
            raise forms.ValidationError(_("Choose who will join from the list."))
        ids: list[int] = []
        for item in value:
            # isdigit() alone accepts '²' and other digits int() refuses (found by
            # bench/fuzz.py: a 500 on the booking post).
            if (
                not isinstance(item, str)
                or not (item.isascii() and item.isdigit())
                or len(item) > 18
            ):
                raise forms.ValidationError(_("Choose who will join from the list."))
            ids.append(int(item))
        return ids


class BookingForm(forms.Form):
    connection = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    slot = SlotField(widget=forms.HiddenInput)
    visitors = IdList(required=False)
    dependants = IdList(required=False)
    aup = forms.BooleanField(
        required=False, label=_("I accept the acceptable use policy for this call")
    )
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def clean_idempotency_key(self) -> str:
        key: str = self.cleaned_data["idempotency_key"]
        if not IDEMPOTENCY_KEY.match(key):
            raise forms.ValidationError(_("This form has expired. Please start again."))
        return key


class AcceptRequestForm(forms.Form):
    visitors = IdList(required=False)
    dependants = IdList(required=False)
    aup = forms.BooleanField(
        required=False, label=_("I accept the acceptable use policy for this call")
    )


class StaffCancelForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[("", _("Choose a reason"))]
        + [(value, CancelReason(value).label) for value in STAFF_CANCEL_REASONS],
        label=_("Reason"),
    )
    note = forms.CharField(
        max_length=300,
        required=False,
        label=_("Note for the family (optional, required for 'Other')"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class MoveForm(forms.Form):
    slot = SlotField(label=_("New time"))


class StaffMoveForm(MoveForm):
    reason = forms.ChoiceField(
        choices=[("", _("Choose a reason"))] + list(MoveReason.choices),
        label=_("Reason (the family is told)"),
    )
    note = forms.CharField(
        max_length=300,
        required=False,
        label=_("Note for the family (optional, required for 'Other')"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class BlockedDateForm(forms.Form):
    date = forms.DateField(
        label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}), help_text=_("UK date.")
    )
    reason = forms.ChoiceField(choices=BlockedDateReason.choices, label=_("Reason"))
    note = forms.CharField(max_length=200, required=False, label=_("Note for families (optional)"))


class PrisonerLookupForm(forms.Form):
    prison_number = forms.CharField(
        max_length=7, label=_("Prison number"), help_text=_("For example A1234BC.")
    )

    def clean_prison_number(self) -> str:
        value: str = self.cleaned_data["prison_number"].strip().upper()
        if not re.match(r"^[A-Z][0-9]{4}[A-Z]{2}\Z", value):
            raise forms.ValidationError(
                _("A prison number is a letter, four digits and two letters.")
            )
        return value


class PrisonerRequestForm(forms.Form):
    prison_number = forms.CharField(max_length=7, widget=forms.HiddenInput)
    connection = forms.TypedChoiceField(coerce=int, label=_("Visitor the prisoner asked for"))
    slot = SlotField(label=_("Time"))
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: object, connections: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["connection"].choices = [("", _("Choose a visitor")), *connections]  # type: ignore[attr-defined]

    def clean_idempotency_key(self) -> str:
        key: str = self.cleaned_data["idempotency_key"]
        if not IDEMPOTENCY_KEY.match(key):
            raise forms.ValidationError(_("This form has expired. Please start again."))
        return key


class RequestFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[("", _("All requests")), *REQUEST_STATES.items()],
    )
