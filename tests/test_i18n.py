"""Cymraeg and English (issue 17): every string a person reads is marked, every marked
string has its Welsh, pages answer in the chosen language (the header's switch, the
browser's language, Welsh first in a Welsh establishment's portal), and emails, rule
messages, dates and country names follow the reader's language."""

from __future__ import annotations

import ast
import os
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from bookings import notifications
from bookings.rules import day_label, month_label, slot_label
from establishments.models import Country
from identity.models import VisitorProfile
from purplevisits.countries import country_choices, country_name
from tests import factories

BASE = Path(settings.BASE_DIR)


@pytest.fixture(autouse=True)
def _english_after_each_test():  # type: ignore[no-untyped-def]
    # A request answered in Welsh leaves Welsh active in this thread: leave English.
    yield
    translation.activate(settings.LANGUAGE_CODE)


TEMPLATES = BASE / "templates"
LOCALE = BASE / "locale"

# --- (a) every template text is marked ----------------------------------------------------

# Text that reads the same in both languages: each language's own name on the switch.
ALLOWED = {"English", "Cymraeg"}
_TRANSLATED = re.compile(
    r"{%\s*blocktranslate\b.*?%}.*?{%\s*endblocktranslate\s*%}|{%\s*translate\b.*?%}", re.S
)
_SKIPPED = re.compile(
    r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}|<!--.*?-->"
    r"|<script\b.*?</script>|<style\b.*?</style>"
    # Class names and the lang attribute, not words.
    r"|{%\s*block\s+(?:body_class|lang)\s*%}.*?{%\s*endblock\s*%}",
    re.S | re.I,
)
_READ_ATTRIBUTES = re.compile(
    r'\s(?:aria-label|placeholder|title|alt|data-[a-z-]*text)="([^"]*)"', re.I
)


def unmarked_text(source: str) -> list[str]:
    """What a person would read in a template that is not inside {% translate %} or
    {% blocktranslate %}: text nodes and the attributes people read."""
    text = _SKIPPED.sub(" ", source)
    text = _TRANSLATED.sub(" ", text)
    text = re.sub(r"{%.*?%}|{{.*?}}", " ", text, flags=re.S)
    found = [value for value in _READ_ATTRIBUTES.findall(text) if re.search(r"[^\W\d_]", value)]
    text = re.sub(r"<[^>]*>", "\n", text, flags=re.S)
    text = re.sub(r"&[a-z]+;|&#\d+;", " ", text)
    for chunk in text.split("\n"):
        chunk = " ".join(chunk.split())
        if re.search(r"[^\W\d_]", chunk) and chunk not in ALLOWED:
            found.append(chunk)
    return found


def test_the_template_check_finds_what_is_not_marked() -> None:
    source = (
        '{% load i18n %}<h1>{% translate "Done" %}</h1><p>Not marked</p>'
        '<img alt="A photo" src="x">{# a note #}{% comment %}notes{% endcomment %}'
        "<p>{% blocktranslate with n=x.y trimmed %}{{ n }} left{% endblocktranslate %}</p>"
        "<script>const a = 'words';</script>{% block body_class %}kiosk{% endblock %}"
        "<p>{{ value }} · – 12:30</p>"
    )
    assert unmarked_text(source) == ["A photo", "Not marked"]


def test_every_template_string_is_marked_for_translation() -> None:
    problems = []
    for path in sorted(TEMPLATES.rglob("*")):
        if not path.is_file() or path.suffix not in {".html", ".txt"}:
            continue
        if path.relative_to(TEMPLATES).parts[0] == "admin":  # Django admin's own pages
            continue
        for text in unmarked_text(path.read_text(encoding="utf-8")):
            problems.append(f"{path.relative_to(BASE)}: {text[:80]!r}")
    assert not problems, "Text not marked for translation:\n" + "\n".join(problems)


# --- (b) every marked string has its Welsh ----------------------------------------------

IGNORED = ["*/.venv/*", ".venv", "var", "node_modules", "tests", "bench", "docs", "deploy"]


def po_entries(path: Path) -> list[dict[str, object]]:
    """The entries of a .po file: msgid, msgid_plural, msgstr forms, fuzzy, obsolete."""
    entries: list[dict[str, object]] = []
    entry: dict[str, object] = {}
    field = ""

    def close() -> None:
        nonlocal entry
        if "msgid" in entry:
            entries.append(entry)
        entry = {}

    def unquote(text: str) -> str:
        return str(ast.literal_eval(text.strip()))

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            close()
            continue
        if line.startswith("#~"):
            entry["obsolete"] = True
            continue
        if line.startswith("#,"):
            entry["fuzzy"] = "fuzzy" in line
            continue
        if line.startswith("#"):
            continue
        match = re.match(r'^(msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")$', line)
        if match:
            if match.group(1) == "msgid" and "msgid" in entry:
                close()
            field = match.group(1)
            entry[field] = unquote(match.group(2))
        elif line.startswith('"'):
            entry[field] = str(entry.get(field, "")) + unquote(line)
    close()
    return entries


def missing_translations(entries: list[dict[str, object]]) -> list[str]:
    missing = []
    for entry in entries:
        if entry.get("obsolete") or entry["msgid"] == "":
            continue
        forms = [value for key, value in entry.items() if str(key).startswith("msgstr")]
        if entry.get("fuzzy") or not forms or any(form == "" for form in forms):
            missing.append(str(entry["msgid"]))
    return missing


def test_the_po_check_counts_empty_and_fuzzy_entries_as_missing(tmp_path: Path) -> None:
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Call"\nmsgstr "Galwad"\n\n'
        'msgid "Visit"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Booking"\nmsgstr "Archeb"\n\n'
        'msgid "One call"\nmsgid_plural "%d calls"\nmsgstr[0] "Un alwad"\nmsgstr[1] ""\n\n'
        '#~ msgid "Gone"\n#~ msgstr ""\n',
        encoding="utf-8",
    )
    assert missing_translations(po_entries(po)) == ["Visit", "Booking", "One call"]


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_marked_string_has_its_welsh(
    domain: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings
) -> None:  # type: ignore[no-untyped-def]
    """makemessages into a copy of locale/: a msgid that the committed catalogue lacks,
    or has without Welsh (empty or fuzzy), fails."""
    if not (shutil.which("xgettext") and shutil.which("msgmerge")):
        if os.environ.get("CI"):
            pytest.fail("GNU gettext (xgettext, msgmerge) is needed: apt-get install gettext")
        pytest.skip("GNU gettext is not installed (apt-get install gettext)")
    committed = LOCALE / "cy" / "LC_MESSAGES" / f"{domain}.po"
    copy = tmp_path / "locale"
    (copy / "cy" / "LC_MESSAGES").mkdir(parents=True)
    if committed.exists():
        shutil.copy(committed, copy / "cy" / "LC_MESSAGES" / f"{domain}.po")
    settings.LOCALE_PATHS = [copy]
    # makemessages writes beside the first "locale" folder it meets: run from the
    # repository itself it would rewrite the committed catalogue. So it walks a tree of
    # links to the sources without locale/, and writes only into the copy.
    sources = tmp_path / "src"
    sources.mkdir()
    skipped = {"locale", ".git", *(name for name in IGNORED if "/" not in name)}
    for entry in BASE.iterdir():
        if entry.name not in skipped:
            (sources / entry.name).symlink_to(entry)
    monkeypatch.chdir(sources)
    before = committed.read_bytes() if committed.exists() else b""
    call_command(
        "makemessages",
        locale=["cy"],
        domain=domain,
        ignore_patterns=IGNORED,
        symlinks=True,
        verbosity=0,
    )
    assert (committed.read_bytes() if committed.exists() else b"") == before, (
        "the check must not rewrite the committed catalogue"
    )
    generated = copy / "cy" / "LC_MESSAGES" / f"{domain}.po"
    assert generated.exists()
    entries = po_entries(generated)
    assert len(entries) > 1, "makemessages found no strings"
    missing = missing_translations(entries)
    assert not missing, f"{len(missing)} {domain} strings without Welsh:\n" + "\n".join(
        missing[:60]
    )


# --- (c) pages in Welsh, the switch, Welsh portals ----------------------------------------


def _lang(response) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r'<html lang="([^"]+)"', response.content.decode())
    assert match, "no <html lang>"
    return match.group(1)


@pytest.mark.django_db
def test_the_browsers_language_is_the_first_guess(client: Client) -> None:
    welsh = client.get("/", HTTP_ACCEPT_LANGUAGE="cy")
    assert _lang(welsh) == "cy"
    assert "Galwadau fideo" in welsh.content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8")
    assert _lang(english) == "en-GB"
    assert "Video calls with someone in prison" in english.content.decode()


@pytest.mark.django_db
def test_every_page_has_the_switch_and_the_choice_is_remembered(client: Client) -> None:
    page = client.get("/me/", HTTP_ACCEPT_LANGUAGE="en-GB", follow=True).content.decode()
    link = re.search(r'<a class="language-switch" href="([^"]+)"[^>]*>Cymraeg</a>', page)
    assert link, "no link to Cymraeg in the header"
    href = link.group(1).replace("&amp;", "&")
    assert "language=cy" in href
    response = client.get(href)  # a plain link: it comes back to the page it was on
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fme%2F"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "cy"
    # Remembered: the browser still asks for English, the choice wins.
    again = client.get("/", HTTP_ACCEPT_LANGUAGE="en-GB")
    assert _lang(again) == "cy"
    assert ">English<" in again.content.decode()
    # The same works as a form (POST).
    client.post(reverse("set_language"), {"language": "en-gb", "next": "/"})
    assert _lang(client.get("/", HTTP_ACCEPT_LANGUAGE="cy")) == "en-GB"


@pytest.mark.django_db
def test_the_switch_never_sends_anyone_to_another_site(client: Client) -> None:
    response = client.post(
        reverse("set_language"), {"language": "cy", "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.django_db
def test_a_visitors_choice_is_kept_for_their_emails(client: Client) -> None:
    profile = factories.VisitorProfileFactory()
    assert profile.language == "en-gb"
    client.force_login(profile.user)
    client.post(reverse("set_language"), {"language": "cy", "next": "/me/"})
    profile.refresh_from_db()
    assert profile.language == "cy"
    client.post(reverse("set_language"), {"language": "xx", "next": "/me/"})
    profile.refresh_from_db()
    assert profile.language == "cy"  # a language not offered changes nothing


@pytest.mark.django_db
def test_a_new_profile_takes_the_language_in_use() -> None:
    from identity.services import profile_save

    user = factories.UserFactory()
    with translation.override("cy"):
        profile_save(
            user=user,
            legal_name="Siân Jones",
            date_of_birth=date(1980, 1, 1),
            phone="07700 900123",
            country_of_residence="GB",
        )
    assert VisitorProfile.objects.get(user=user).language == "cy"


@pytest.mark.django_db
def test_a_welsh_portal_shows_welsh_first_until_the_visitor_chooses(client: Client) -> None:
    wales = factories.EstablishmentFactory(code="berwyn", name="HMP Berwyn", country=Country.WALES)
    england = factories.EstablishmentFactory(code="leeds", name="HMP Leeds")
    path = reverse("bookings:portal", args=[wales.code])
    assert _lang(client.get(path, HTTP_ACCEPT_LANGUAGE="en-GB")) == "cy"
    english_portal = reverse("bookings:portal", args=[england.code])
    assert _lang(client.get(english_portal, HTTP_ACCEPT_LANGUAGE="en-GB")) == "en-GB"
    client.post(reverse("set_language"), {"language": "en-gb", "next": path})
    assert _lang(client.get(path, HTTP_ACCEPT_LANGUAGE="cy")) == "en-GB"


@pytest.mark.django_db
def test_the_javascript_catalogue_is_welsh_in_welsh(client: Client) -> None:
    response = client.get(reverse("javascript-catalog"), HTTP_ACCEPT_LANGUAGE="cy")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Galwad wedi" in body  # "Call paused…" in Welsh
    assert "Yn cysylltu" in body  # "Connecting…"


# --- emails, rule messages, dates, countries ----------------------------------------------


@pytest.mark.django_db
def test_booking_emails_are_in_the_lead_visitors_language(settings) -> None:  # type: ignore[no-untyped-def]
    settings.BOOKINGS_SITE_URL = "https://visits.example.org/"
    booking = factories.BookingFactory(connection__visitor__language="cy")
    translation.activate("en-gb")
    message = notifications.build_booking_email(booking, notifications.CONFIRMED)
    assert "galwad fideo" in message.subject.lower()
    assert "Mae eich galwad fideo wedi" in message.body
    with translation.override("cy"):
        assert notifications.booking_email_content(booking, notifications.CONFIRMED).subject
    booking.lead_visitor.language = "en-gb"
    english = notifications.build_booking_email(booking, notifications.CONFIRMED)
    assert "Your video call with" in english.subject
    assert translation.get_language() == "en-gb"  # nothing leaks out


@pytest.mark.django_db
def test_identity_emails_are_in_the_visitors_language() -> None:
    from identity import emails

    check = factories.IdentityCheckFactory(profile__language="cy")
    emails.send_identity_decision(check_id=check.pk, approved=True, reason="")
    assert len(mail.outbox) == 1
    assert "Purple Visits" in mail.outbox[0].subject
    assert "chymeradwyo" in mail.outbox[0].subject  # "…wedi'i chymeradwyo"


def test_rule_messages_name_days_and_months_in_the_active_language() -> None:
    day = date(2031, 12, 2)
    moment = datetime(2031, 12, 2, 14, 30)
    assert day_label(day) == "2 December 2031"
    assert month_label(day) == "December 2031"
    assert slot_label(moment) == "Tuesday 2 December 2031 at 14:30"
    with translation.override("cy"):
        assert day_label(day) == "2 Rhagfyr 2031"
        assert month_label(day) == "Rhagfyr 2031"
        assert slot_label(moment) == "Dydd Mawrth 2 Rhagfyr 2031 am 14:30"


def test_one_list_of_countries_named_in_the_active_language() -> None:
    assert country_name("gb") == "United Kingdom"
    assert country_name("ZZ") == "ZZ"
    codes = [code for code, _name in country_choices()]
    assert codes[:2] == ["GB", "IE"] and len(codes) == len(set(codes)) > 240
    with translation.override("cy"):
        assert country_name("GB") == "Y Deyrnas Unedig"
        assert country_name("DE") == "Yr Almaen"
        assert dict(country_choices())["FR"] == "Ffrainc"


@pytest.mark.django_db
def test_staff_see_where_a_visitor_lives_by_name() -> None:
    profile = factories.VisitorProfileFactory(country_of_residence="IE")
    translation.activate("en-gb")
    assert profile.country_name == "Ireland"
    with translation.override("cy"):
        assert profile.country_name == "Iwerddon"


def test_a_call_sockets_messages_follow_the_pages_language() -> None:
    from purplevisits.i18n import language_from_scope

    assert language_from_scope({"cookies": {settings.LANGUAGE_COOKIE_NAME: "cy"}}) == "cy"
    assert language_from_scope({"headers": [(b"accept-language", b"cy,en;q=0.5")]}) == "cy"
    chosen = {
        "cookies": {settings.LANGUAGE_COOKIE_NAME: "en-gb"},
        "headers": [(b"accept-language", b"cy")],
    }
    assert language_from_scope(chosen) == "en-gb"
    assert language_from_scope({"headers": [(b"accept-language", b"fr")]}) == "en-gb"
    assert language_from_scope({}) == "en-gb"


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_compiled_catalogue_matches_the_po_file(domain: str) -> None:
    """locale/cy/LC_MESSAGES/*.mo is what Django reads: it must hold every Welsh string of
    the .po (run `manage.py compilemessages -l cy --ignore=.venv` after editing one)."""
    import gettext

    folder = LOCALE / "cy" / "LC_MESSAGES"
    with (folder / f"{domain}.mo").open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    stale = []
    for entry in po_entries(folder / f"{domain}.po"):
        if entry.get("obsolete") or entry["msgid"] == "" or "msgid_plural" in entry:
            continue
        if catalogue.gettext(str(entry["msgid"])) != entry.get("msgstr"):
            stale.append(str(entry["msgid"]))
    assert not stale, "Recompile the catalogue; stale entries:\n" + "\n".join(stale[:20])


# --- (d) live socket labels follow each viewer's language -------------------------------


async def _call_socket(user, call_id, language: str):  # type: ignore[no-untyped-def]
    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from calls.routing import websocket_urlpatterns

    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/calls/{call_id}/")
    communicator.scope["user"] = user
    communicator.scope["session"] = await sync_to_async(factories.socket_session)(user)
    communicator.scope["cookies"] = {settings.LANGUAGE_COOKIE_NAME: language}
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _next(communicator, kind: str, status: str | None = None) -> dict:  # type: ignore[no-untyped-def, type-arg]
    while True:
        message = await communicator.receive_json_from(timeout=10)
        if message["type"] == kind and status in (None, message.get("status")):
            return message


@pytest.mark.django_db(transaction=True)
async def test_call_socket_labels_are_in_each_viewers_language() -> None:
    """One state push, built in Welsh (a Welsh officer paused the call), reaches a
    family reading English and a monitor reading Welsh: each reads their own language;
    so does the monitor's alert, whatever language its sender used."""
    from asgiref.sync import sync_to_async

    from calls import selectors, services
    from calls.models import Call, CallStatus, PauseReason
    from purplevisits.realtime import call_group, group_send_now
    from tests.calls.conftest import make_setup

    setup = await sync_to_async(make_setup)()
    call = await sync_to_async(services.call_open)(booking=setup.booking)
    family = await _call_socket(setup.family, call.pk, "en-gb")
    monitor = await _call_socket(setup.officer, call.pk, "cy")
    first_family, first_monitor = await _next(family, "state"), await _next(monitor, "state")
    assert first_family["status_label"] == "Waiting to start"
    assert first_monitor["status_label"] == "Yn aros i ddechrau"

    def paused_payload_in_welsh() -> dict:  # type: ignore[type-arg]
        Call.objects.filter(pk=call.pk).update(
            status=CallStatus.PAUSED, pause_reason=PauseReason.STAFF
        )
        with translation.override("cy"):
            return selectors.call_state_payload(selectors.call_with_booking(str(call.pk)))

    payload = await sync_to_async(paused_payload_in_welsh)()
    assert payload["status_label"].startswith("Wedi")  # built in Welsh
    await sync_to_async(group_send_now)(call_group(call.pk), {"type": "call.state", **payload})
    english = await _next(family, "state", "paused")
    welsh = await _next(monitor, "state", "paused")
    assert english["status_label"] == "Paused: paused by staff"
    assert {p["label"] for p in english["participants"]} == {"Family", "Prison laptop"}
    with translation.override("cy"):
        expected = (
            str(translation.gettext("Paused")) + ": " + translation.gettext("paused by staff")
        )
    assert welsh["status_label"] == expected != english["status_label"]
    assert "Gliniadur y carchar" in {p["label"] for p in welsh["participants"]}

    await sync_to_async(group_send_now)(
        call_group(call.pk),
        {"type": "call.alert", "kind": "unapproved_face", "side": "family", "label": "English"},
    )
    alert = await _next(monitor, "alert")
    assert alert["label"] == "Wyneb heb ei gymeradwyo ar y camera (ochr y teulu)"

    # A call event's line for the monitor, sent in English, is read again in Welsh.
    def english_event() -> dict:  # type: ignore[type-arg]
        from calls.models import CallEvent

        event = CallEvent.objects.create(call=call, kind="paused", role="monitor", reason="staff")
        with translation.override("en-gb"):
            return selectors.call_event_payload(event)

    sent = await sync_to_async(english_event)()
    assert sent["text"] == "Paused (Staff): paused by staff"
    await sync_to_async(group_send_now)(call_group(call.pk), {"type": "call.event", "event": sent})
    event = await _next(monitor, "event")
    with translation.override("cy"):
        gettext = translation.gettext
        wanted = f"{gettext('Paused')} ({gettext('Staff')}): {gettext('paused by staff')}"
        assert event["text"] == wanted
    assert event["text"] != sent["text"] and event["id"] == sent["id"]
    await family.disconnect()
    await monitor.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("language", "label"), [("en-gb", "Waiting to start"), ("cy", None)])
async def test_dashboard_socket_labels_follow_the_officers_language(
    client: Client, language: str, label: str | None
) -> None:
    import json

    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.utils import timezone

    from calls.models import CallStatus
    from purplevisits.asgi import application

    def world() -> tuple[str, bytes]:
        establishment = factories.EstablishmentFactory()
        factories.CallFactory(
            booking__connection__prisoner__establishment=establishment,
            booking__starts_at=timezone.now().replace(second=0, microsecond=0),
            status=CallStatus.WAITING,
        )
        officer = factories.StaffMembershipFactory(establishment=establishment).user
        client.force_login(officer)
        cookie = f"sessionid={client.cookies['sessionid'].value}; django_language={language}"
        return establishment.code, cookie.encode()

    code, cookie = await sync_to_async(world)()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/staff/{code}/dashboard/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)],
    )
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from(timeout=10)
    with translation.override(language):
        wanted = label or translation.gettext("Waiting to start")
    assert [tile["status_label"] for tile in snapshot["calls"]] == [wanted]
    await communicator.send_to(text_data=json.dumps({"type": "nonsense"}))
    error = await communicator.receive_json_from(timeout=10)
    with translation.override(language):
        assert error["message"] == translation.gettext("Unknown message type.")
    if language == "cy":
        assert error["message"] != "Unknown message type."
    await communicator.disconnect()
