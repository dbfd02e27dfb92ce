"""One form pattern on every page (issue 17): the site's form renderer, its error
summary, the three-box date of birth, and allauth's pages in the same pattern."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from django import forms
from django.conf import settings
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import translation

from purplevisits.forms import DateOfBirthWidget, SiteFormRenderer, date_of_birth_field
from tests import factories

TEMPLATES = Path(settings.BASE_DIR) / "templates"


@pytest.fixture(autouse=True)
def _english():  # type: ignore[no-untyped-def]
    # A request answered in Welsh leaves Welsh active in this thread.
    translation.activate("en-gb")
    yield
    translation.activate(settings.LANGUAGE_CODE)


class SampleForm(forms.Form):
    name = forms.CharField(label="Full name", help_text="As on your ID.")
    colour = forms.ChoiceField(
        label="Colour", choices=[("r", "Red"), ("b", "Blue")], widget=forms.RadioSelect
    )
    date_of_birth = date_of_birth_field()
    agree = forms.BooleanField(label="I agree")
    secret = forms.CharField(widget=forms.HiddenInput)

    def clean(self) -> dict:
        raise forms.ValidationError("The whole form is wrong.")


def _page(form: forms.Form) -> str:
    return Template(
        '{% include "_partials/error_summary.html" %}<form novalidate>{{ form }}</form>'
    ).render(Context({"form": form}))


def test_the_site_renderer_is_the_form_renderer() -> None:
    assert settings.FORM_RENDERER == "purplevisits.forms.SiteFormRenderer"
    assert isinstance(SampleForm().renderer, SiteFormRenderer)


def test_a_field_has_its_label_hint_and_error_beside_it_and_linked() -> None:
    html = _page(SampleForm(data={"name": "", "secret": "x"}))
    # The label without a colon, the hint and the error, each linked to the input.
    assert '<label for="id_name">Full name</label>' in html
    assert '<div class="hint" id="id_name_helptext">As on your ID.</div>' in html
    assert 'id="id_name_error"' in html
    (name_input,) = re.findall(r"<input[^>]*name=\"name\"[^>]*>", html)
    assert 'aria-invalid="true"' in name_input
    assert 'aria-describedby="id_name_helptext id_name_error"' in name_input
    # Radios and the date are groups: a fieldset and its legend.
    assert re.search(
        r'<fieldset aria-describedby="id_colour_error">\s*<legend class="label">Colour', html
    )
    assert '<legend class="label">Date of birth</legend>' in html


def test_the_error_summary_links_each_error_to_its_field() -> None:
    html = _page(SampleForm(data={"name": "", "date_of_birth_day": "31", "secret": "x"}))
    summary = html.split("</div>", 1)[0]
    assert 'role="alert"' in summary and "data-error-summary" in summary
    assert "The whole form is wrong." in summary
    hrefs = re.findall(r'href="#([^"]+)"', summary)
    assert hrefs == ["id_name", "id_colour_0", "id_date_of_birth_0", "id_agree"]
    for target in hrefs:  # every link has its field on the page
        assert f'id="{target}"' in html
    assert "js/error-summary.js" in html


def test_no_error_summary_without_errors() -> None:
    assert "error-summary" not in _page(SampleForm())


@pytest.mark.parametrize(
    ("day", "month", "year", "expected"),
    [
        ("7", "3", "1986", date(1986, 3, 7)),
        ("07", "03", "1986", date(1986, 3, 7)),
        (" 7 ", "3", "1986", date(1986, 3, 7)),
        ("31", "2", "1986", None),  # not a real date
        ("7", "", "1986", None),
        ("7", "3", "86", None),  # a two-digit year is ambiguous
        ("seven", "3", "1986", None),
    ],
)
def test_the_date_of_birth_is_asked_in_three_boxes(
    day: str, month: str, year: str, expected: date | None
) -> None:
    class Form(forms.Form):
        date_of_birth = date_of_birth_field()

    form = Form(
        data={"date_of_birth_day": day, "date_of_birth_month": month, "date_of_birth_year": year}
    )
    if expected is None:
        assert not form.is_valid()
        assert form.errors["date_of_birth"] == [
            "Enter a real date of birth, for example 27 3 2007."
        ]
        # What was typed is shown again, to correct.
        assert f'value="{day.strip()}"' in str(form["date_of_birth"]) or not day.strip()
    else:
        assert form.is_valid(), form.errors
        assert form.cleaned_data["date_of_birth"] == expected


def test_the_date_of_birth_boxes_are_labelled_and_numeric() -> None:
    class Form(forms.Form):
        date_of_birth = date_of_birth_field()

    html = str(Form(initial={"date_of_birth": date(1990, 7, 2)})["date_of_birth"].as_field_group())
    for index, (label, part, value) in enumerate(
        [("Day", "day", "2"), ("Month", "month", "7"), ("Year", "year", "1990")]
    ):
        assert f'<label for="id_date_of_birth_{index}">{label}</label>' in html
        (box,) = re.findall(rf'<input[^>]*name="date_of_birth_{part}"[^>]*>', html)
        assert 'inputmode="numeric"' in box and f'autocomplete="bday-{part}"' in box
        assert f'value="{value}"' in box
    empty = Form(data={})
    assert not empty.is_valid() and "date_of_birth" in empty.errors
    assert DateOfBirthWidget().value_omitted_from_data({}, {}, "date_of_birth")
    # One ISO date (a form posted by a script) is read as it is.
    assert Form(data={"date_of_birth": "1990-07-02"}).is_valid()


def test_no_placeholder_repeats_a_visible_label() -> None:
    class Form(forms.Form):
        email = forms.EmailField(
            label="Email", widget=forms.EmailInput(attrs={"placeholder": "Email address"})
        )

    assert "placeholder" not in str(Form()["email"])


def test_no_template_refreshes_its_page() -> None:
    found = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if re.search(r"http-equiv=[\"']?refresh", path.read_text(), re.I)
    ]
    assert not found


def test_the_old_form_partials_are_gone() -> None:
    assert not (TEMPLATES / "_partials" / "form_errors.html").exists()
    users = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if "_partials/form_errors.html" in path.read_text()
    ]
    assert not users


# --- allauth's pages ------------------------------------------------------------------

TITLE_CASE = ["Sign In", "Sign Up", "Sign Out", "Password Reset", "Change Password", "Two-Factor"]


def _assert_site_pattern(html: str) -> None:
    for words in TITLE_CASE:
        assert words not in html, words
    assert not re.search(r"<label[^>]*>[^<]*:\s*</label>", html), "a label ends with a colon"
    assert "placeholder=" not in html
    for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>", html):
        if "logout" not in form and "setlang" not in form:
            assert "novalidate" in form, form
    assert 'class="site-header"' in html  # the site's layout


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "account_login",
        "account_signup",
        "account_reset_password",
        "account_reset_password_done",
        "account_email_verification_sent",
    ],
)
def test_allauth_entrance_pages_look_like_the_site(client: Client, name: str) -> None:
    response = client.get(reverse(name))
    assert response.status_code == 200
    _assert_site_pattern(response.content.decode())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "account_change_password",
        "account_email",
        "mfa_index",
        "mfa_activate_totp",
        "mfa_view_recovery_codes",
        "mfa_generate_recovery_codes",
        "mfa_deactivate_totp",
    ],
)
def test_allauth_account_pages_look_like_the_site(client: Client, name: str) -> None:
    user = factories.UserFactory()
    if name != "mfa_activate_totp":
        from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

        factories.mfa_enabled(user)
        RecoveryCodes.activate(user)
    client.force_login(user)
    response = client.get(reverse(name), follow=True)  # through "enter your password again"
    assert response.status_code == 200, response
    _assert_site_pattern(response.content.decode())


@pytest.mark.django_db
def test_sign_in_errors_are_in_the_summary_not_browser_bubbles(client: Client) -> None:
    response = client.post(reverse("account_login"), {"login": "", "password": ""})
    html = response.content.decode()
    assert response.status_code == 200
    summary = html.split("data-error-summary", 1)[1].split("</div>", 1)[0]
    assert 'href="#id_login"' in summary and 'href="#id_password"' in summary
    assert 'id="id_login_error"' in html and 'id="id_password_error"' in html


@pytest.mark.django_db
def test_sign_up_in_welsh(client: Client) -> None:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "cy"
    html = client.get(reverse("account_signup")).content.decode()
    assert '<html lang="cy">' in html
    assert "<h1>Creu cyfrif</h1>" in html
