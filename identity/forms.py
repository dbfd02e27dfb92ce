"""Forms of the identity pages. Photos are checked and re-encoded here (identity.images);
everything else is validated again by the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _

from establishments.models import Establishment
from identity.images import ImageRejected, clean_photo
from identity.models import Relationship
from purplevisits.countries import country_choices
from purplevisits.forms import date_of_birth_field
from purplevisits.text import single_line

PHOTO_ACCEPT = "image/jpeg,image/png"


def _country_choices() -> list[tuple[str, str]]:
    """Every country, named in the page's language (purplevisits/countries.py)."""
    return [("", str(_("Choose a country"))), *country_choices()]


class PhotoField(forms.FileField):
    """A photo upload; ``clean`` returns the re-encoded JPEG as a ContentFile."""

    def __init__(self, *args: Any, capture: str | None = None, **kwargs: Any) -> None:
        attrs = {"accept": PHOTO_ACCEPT}
        if capture:
            attrs["capture"] = capture
        kwargs.setdefault("widget", forms.ClearableFileInput(attrs=attrs))
        kwargs.setdefault(
            "error_messages", {"required": _("Choose a photo."), "empty": _("The file is empty.")}
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
        label=_("Full legal name"),
        max_length=150,
        validators=[single_line],
        help_text=_("As it is written on your passport or driving licence."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    date_of_birth = date_of_birth_field()
    phone = forms.CharField(
        label=_("Phone number"),
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    country_of_residence = forms.ChoiceField(
        label=_("Country you live in"), choices=_country_choices
    )

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        digits = [c for c in phone if c.isdigit()]
        if len(digits) < 7 or any(c not in "0123456789 +-()" for c in phone):
            raise forms.ValidationError(
                _("Enter a phone number, like 07700 900123 or +44 7700 900123.")
            )
        return phone


class ConsentForm(forms.Form):
    consent = forms.ChoiceField(
        label=_("How should we check your face?"),
        choices=[
            ("yes", _("Yes, a computer may compare my face with my photo ID and on calls")),
            ("no", _("No, I want prison staff to check my photos by hand instead")),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose one of the options.")},
    )


class IdentityForm(forms.Form):
    id_photo = PhotoField(
        label=_("Photo of your ID"),
        help_text=_(
            "Your passport's photo page or the front of your driving licence, with all "
            "four corners showing. JPEG or PNG, up to 10 MB."
        ),
    )
    selfie = PhotoField(
        label=_("Selfie"),
        capture="user",
        help_text=_("A photo of your face, looking at the camera, with nobody else in it."),
    )


class DependantForm(forms.Form):
    # Names reach email subjects ("Amy is approved"): one line only.
    first_name = forms.CharField(label=_("First name"), max_length=80, validators=[single_line])
    last_name = forms.CharField(label=_("Last name"), max_length=80, validators=[single_line])
    date_of_birth = date_of_birth_field()
    photo = PhotoField(
        label=_("Photo of their face"),
        help_text=_("Looking at the camera, with nobody else in it. JPEG or PNG, up to 10 MB."),
    )


class DependantPhotoForm(forms.Form):
    photo = PhotoField(label=_("New photo of their face"))


class ConnectionForm(forms.Form):
    prison_number = forms.CharField(
        label=_("Prison number"),
        max_length=12,
        help_text=_("A letter, four digits and two letters, for example A1234BC."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "spellcheck": "false"}),
    )
    last_name = forms.CharField(label=_("Their last name"), max_length=80, validators=[single_line])
    date_of_birth = date_of_birth_field(label=_("Their date of birth"))
    establishment = forms.ModelChoiceField(
        label=_("Prison"),
        queryset=Establishment.objects.order_by("name"),
        empty_label=_("Choose the prison"),
        to_field_name="code",
    )
    relationship = forms.ChoiceField(
        label=_("They are my…"), choices=[("", _("Choose")), *Relationship.choices]
    )


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=[("approve", _("Approve")), ("reject", _("Reject"))],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose approve or reject.")},
    )
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=1000,
        help_text=_("Required when rejecting: the visitor sees it, so say what they can do."),
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Give a reason: the visitor sees it."))
        return data


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for revoking"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Give a reason: the visitor sees it.")},
    )


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("That is not your password."))
        return password


class PrisonerPhotoForm(forms.Form):
    photo = PhotoField(
        label=_("Photo of the prisoner's face"),
        help_text=_("Only the prisoner in view, facing the camera. JPEG or PNG."),
        capture="user",
    )
