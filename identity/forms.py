"""Forms of the identity pages. Photos are checked and re-encoded here (identity.images);
everything else is validated again by the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.base import ContentFile

from establishments.models import Establishment
from identity.countries import COUNTRIES, FIRST
from identity.images import ImageRejected, clean_photo
from identity.models import Relationship
from purplevisits.text import single_line

PHOTO_ACCEPT = "image/jpeg,image/png"


def _country_choices() -> list[tuple[str, str]]:
    names = dict(COUNTRIES)
    first = [(code, names[code]) for code in FIRST]
    rest = [(code, name) for code, name in COUNTRIES if code not in FIRST]
    return [("", "Choose a country"), *first, *rest]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class PhotoField(forms.FileField):
    """A photo upload; ``clean`` returns the re-encoded JPEG as a ContentFile."""

    def __init__(self, *args: Any, capture: str | None = None, **kwargs: Any) -> None:
        attrs = {"accept": PHOTO_ACCEPT}
        if capture:
            attrs["capture"] = capture
        kwargs.setdefault("widget", forms.ClearableFileInput(attrs=attrs))
        kwargs.setdefault(
            "error_messages", {"required": "Choose a photo.", "empty": "The file is empty."}
        )
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> ContentFile | None:
        upload = super().clean(data, initial)
        if upload is None or upload is False:
            return None
        try:
            return clean_photo(upload, size=upload.size)
        except ImageRejected as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None


class ProfileForm(forms.Form):
    legal_name = forms.CharField(
        label="Full legal name",
        max_length=150,
        validators=[single_line],
        help_text="As it is written on your passport or driving licence.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    date_of_birth = forms.DateField(
        label="Date of birth", widget=DateInput(attrs={"autocomplete": "bday"})
    )
    phone = forms.CharField(
        label="Phone number",
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    country_of_residence = forms.ChoiceField(label="Country you live in", choices=_country_choices)

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        digits = [c for c in phone if c.isdigit()]
        if len(digits) < 7 or any(c not in "0123456789 +-()" for c in phone):
            raise forms.ValidationError(
                "Enter a phone number, like 07700 900123 or +44 7700 900123."
            )
        return phone


class ConsentForm(forms.Form):
    consent = forms.ChoiceField(
        label="How should we check your face?",
        choices=[
            ("yes", "Yes, a computer may compare my face with my photo ID and on calls"),
            ("no", "No, I want prison staff to check my photos by hand instead"),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose one of the options."},
    )


class IdentityForm(forms.Form):
    id_photo = PhotoField(
        label="Photo of your ID",
        help_text="Your passport's photo page or the front of your driving licence, with all "
        "four corners showing. JPEG or PNG, up to 10 MB.",
    )
    selfie = PhotoField(
        label="Selfie",
        capture="user",
        help_text="A photo of your face, looking at the camera, with nobody else in it.",
    )


class DependantForm(forms.Form):
    # Names reach email subjects ("Amy is approved"): one line only.
    first_name = forms.CharField(label="First name", max_length=80, validators=[single_line])
    last_name = forms.CharField(label="Last name", max_length=80, validators=[single_line])
    date_of_birth = forms.DateField(label="Date of birth", widget=DateInput())
    photo = PhotoField(
        label="Photo of their face",
        help_text="Looking at the camera, with nobody else in it. JPEG or PNG, up to 10 MB.",
    )


class DependantPhotoForm(forms.Form):
    photo = PhotoField(label="New photo of their face")


class ConnectionForm(forms.Form):
    prison_number = forms.CharField(
        label="Prison number",
        max_length=12,
        help_text="A letter, four digits and two letters, for example A1234BC.",
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "spellcheck": "false"}),
    )
    last_name = forms.CharField(label="Their last name", max_length=80, validators=[single_line])
    date_of_birth = forms.DateField(label="Their date of birth", widget=DateInput())
    establishment = forms.ModelChoiceField(
        label="Prison",
        queryset=Establishment.objects.order_by("name"),
        empty_label="Choose the prison",
        to_field_name="code",
    )
    relationship = forms.ChoiceField(
        label="They are my…", choices=[("", "Choose"), *Relationship.choices]
    )


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label="Decision",
        choices=[("approve", "Approve"), ("reject", "Reject")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose approve or reject."},
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=1000,
        help_text="Required when rejecting: the visitor sees it, so say what they can do.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Give a reason: the visitor sees it.")
        return data


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label="Reason for revoking",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Give a reason: the visitor sees it."},
    )


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password


class PrisonerPhotoForm(forms.Form):
    photo = PhotoField(
        label="Photo of the prisoner's face",
        help_text="Only the prisoner in view, facing the camera. JPEG or PNG.",
        capture="user",
    )
