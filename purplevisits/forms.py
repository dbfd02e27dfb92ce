"""One way to render forms on every page (issue 17): the site's form renderer.

``FORM_RENDERER`` points here, so ``{{ form }}`` and ``{{ field.as_field_group }}``
use the site's templates: ``_partials/form.html`` (the fields, hidden ones first) and
``_partials/field.html`` (label, hint, the field's errors by it, the input; a fieldset
with a legend for radios, checkboxes and the three-part date of birth). The error
summary at the top of a page, ``_partials/error_summary.html``, links each error to its
field (``href="#id_…"``, and ``static/js/error-summary.js`` moves the focus there).

Dates of birth are asked GOV.UK's way, in three boxes (day, month, year):
``DateOfBirthWidget`` on a ``forms.DateField`` (``date_of_birth_field()``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import django.forms
from django import forms
from django.conf import settings
from django.forms.renderers import DjangoTemplates
from django.template.backends.django import DjangoTemplates as DjangoTemplatesBackend
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop


class SiteBoundField(forms.BoundField):
    def build_widget_attrs(
        self, attrs: dict[str, Any], widget: forms.Widget | None = None
    ) -> dict[str, Any]:
        attrs = super().build_widget_attrs(attrs, widget)
        # No placeholders beside a visible label (allauth sets them): the text vanishes
        # as you type, and hints are said in the hint. False leaves the attribute out.
        if self.label and (widget or self.field.widget).attrs.get("placeholder"):
            attrs["placeholder"] = False
        return attrs

    @property
    def summary_target(self) -> str:
        """The id the error summary links to: the input itself, or the first input of a
        group (radios, checkboxes, the three boxes of a date)."""
        if isinstance(self.field.widget, forms.MultiWidget) or (
            self.field.widget.use_fieldset and self.auto_id
        ):
            return f"{self.auto_id}_0"
        return str(self.id_for_label or self.auto_id)


class SiteFormRenderer(DjangoTemplates):
    """Django's template renderer, looking in the site's templates/ first."""

    form_template_name = "_partials/form.html"
    field_template_name = "_partials/field.html"
    bound_field_class = SiteBoundField

    @cached_property
    def engine(self) -> DjangoTemplatesBackend:
        django_forms = Path(django.forms.__file__).parent / "templates"
        site_dirs: list[Any] = list(settings.TEMPLATES[0]["DIRS"])  # type: ignore[call-overload]
        return DjangoTemplatesBackend(
            {
                "APP_DIRS": True,
                "DIRS": [*site_dirs, django_forms],
                "NAME": "purplevisits_forms",
                "OPTIONS": {},
            }
        )


SEPARATOR = "\x1f"  # between the three parts of a date that is not one


class DateOfBirthWidget(forms.MultiWidget):
    """Day, month and year in three boxes (GOV.UK's date input): numbers typed on any
    keyboard, no calendar to scroll back decades through. The value reaches the
    DateField as ``YYYY-MM-DD`` (its parser says what is wrong with it)."""

    template_name = "_partials/date_of_birth.html"
    use_fieldset = True
    parts = ("day", "month", "year")

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        base = {"inputmode": "numeric", "class": "date-part"}
        widgets: dict[str, forms.Widget | type[forms.Widget]] = {
            "day": forms.TextInput(attrs={**base, "maxlength": 2, "autocomplete": "bday-day"}),
            "month": forms.TextInput(attrs={**base, "maxlength": 2, "autocomplete": "bday-month"}),
            "year": forms.TextInput(
                attrs={**base, "maxlength": 4, "autocomplete": "bday-year", "class": "date-year"}
            ),
        }
        super().__init__(widgets, attrs)

    def decompress(self, value: Any) -> list[Any]:
        if isinstance(value, date):
            return [str(value.day), str(value.month), str(value.year)]
        if isinstance(value, str) and value.count("-") == 2:
            year, month, day = value.split("-")
            return [day.lstrip("0"), month.lstrip("0"), year]
        if isinstance(value, str) and value.count(SEPARATOR) == 2:
            return value.split(SEPARATOR)  # not a date: shown again as typed
        return [None, None, None]

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        """One string for the DateField: ``YYYY-MM-DD``, or the three parts as typed.

        A single ``name=YYYY-MM-DD`` (a form posted by a script, or before this widget)
        is read as it is."""
        if self.value_omitted_from_data(data, files, name) and name in data:
            return data.get(name)
        day, month, year = (
            str(part or "").strip() for part in super().value_from_datadict(data, files, name)
        )
        if not (day or month or year):
            return None
        if not (day.isdigit() and month.isdigit() and len(year) == 4 and year.isdigit()):
            return SEPARATOR.join((day, month, year))  # not a date: the field says so
        return f"{year}-{int(month):02d}-{int(day):02d}"

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return all(f"{name}_{part}" not in data for part in self.parts)

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        labels = (_("Day"), _("Month"), _("Year"))
        for subwidget, label in zip(context["widget"]["subwidgets"], labels, strict=True):
            subwidget["label"] = label
        return context


def date_of_birth_field(*, label: Any = None, **kwargs: Any) -> forms.DateField:
    """A date of birth in three boxes; a date that does not exist is an error."""
    kwargs.setdefault(
        "error_messages",
        {"invalid": _("Enter a real date of birth, for example 27 3 2007.")},
    )
    return forms.DateField(
        label=label or _("Date of birth"),
        widget=DateOfBirthWidget(),
        input_formats=["%Y-%m-%d"],
        help_text=kwargs.pop("help_text", _("For example, 27 3 2007")),
        **kwargs,
    )


# allauth ships no Welsh catalogue: these are the texts its forms put on our
# pages, listed here so that makemessages keeps them in ours (locale/cy), where Django
# finds them first. The English catalogue (locale/en_GB) gives the title-case labels
# ("Current Password") in sentence case.
ALLAUTH_TEXT = (
    gettext_noop("Email"),
    gettext_noop("Password"),
    gettext_noop("Password (again)"),
    gettext_noop("Current Password"),
    gettext_noop("New Password"),
    gettext_noop("New Password (again)"),
    gettext_noop("Forgot your password?"),
    gettext_noop("Code"),
    gettext_noop("Authenticator code"),
    gettext_noop("Incorrect code."),
    gettext_noop("The email address and/or password you specified are not correct."),
    gettext_noop("Too many failed login attempts. Try again later."),
    gettext_noop("This account is currently inactive."),
    gettext_noop("You must type the same password each time."),
    gettext_noop("A user is already registered with this email address."),
    gettext_noop("Please type your current password."),
    gettext_noop("The password reset token was invalid."),
)
