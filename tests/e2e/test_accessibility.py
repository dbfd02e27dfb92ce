"""axe-core on every page, for every role, in both languages, at 375 and 1280 px
(issue 17): no violations of the WCAG 2.0, 2.1 and 2.2 A and AA rules.

axe-core comes from the npm registry at the version pinned in tests/e2e/axe/
(``make test`` runs ``npm ci`` there). One browser per role; each page is loaded once
per language and checked at both widths (the viewport is resized, then axe runs again).
Nothing scrolls sideways at 375 px either, except a region marked as a wide table
(``data-wide``, which scrolls inside itself).

Known and excluded: Django admin's own pages (``/admin/``), which are Django's markup,
not ours; staff reach the parts of it they need from the staff pages.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from tests import factories

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
WIDTHS = (375, 1280)
NARROWEST = 320  # nothing scrolls sideways here either (checked without axe)
LANGUAGES = ("en-gb", "cy")
# Django admin's own pages are excluded: known, not ours to fix (see the docstring).
KNOWN_EXCLUDED = ("/admin/",)

RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                          resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => ({target: n.target.join(" "),
                                            summary: n.failureSummary})),
  }));
}"""

# What makes the page wider than the screen: elements past its right edge that no
# scrolling region of their own (overflow other than visible) contains.
SIDEWAYS = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.right <= width + 1 || clipped(el)) continue;
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (typeof el.className === "string" && el.className
        ? "." + el.className.trim().split(/\\s+/).join(".") : "");
    out.push(name + " right=" + Math.round(r.right));
    if (out.length > 5) break;
  }
  if (!out.length) {
    // Text running out of its box (a long word): find it through the text nodes.
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node && out.length < 5; node = walker.nextNode()) {
      if (!node.textContent.trim() || clipped(node.parentElement)) continue;
      range.selectNodeContents(node);
      if (range.getBoundingClientRect().right > width + 1) {
        out.push(JSON.stringify(node.textContent.trim().slice(0, 60)) + " in " +
                 node.parentElement.tagName.toLowerCase());
      }
    }
  }
  return out.length ? out : ["(page scrollWidth " + document.documentElement.scrollWidth + ")"];
}"""


@dataclass
class Site:
    """The demo data (establishments/demo.py) and a few more things to show."""

    code: str
    users: dict[str, Any]
    future_booking: object
    soon_booking: object
    call: object
    check_id: int
    connection_id: int
    dependant_id: int
    prison_number: str
    extra: dict[str, str] = field(default_factory=dict)


def _site() -> Site:
    from django.contrib.auth.models import User

    from establishments.demo import DEMO_ESTABLISHMENT_CODE, seed_demo
    from establishments.models import Establishment
    from identity.models import (
        Connection,
        EnrolmentSource,
        FaceEnrolment,
        IdentityCheck,
        ReviewStatus,
        VisitorProfile,
    )

    debug, settings.DEBUG = settings.DEBUG, True
    try:
        seed_demo()
    finally:
        settings.DEBUG = debug
    # Room in the month's allowance for the booking form after two calls are booked.
    Establishment.objects.filter(code=DEMO_ESTABLISHMENT_CODE).update(calls_per_month=31)
    establishment = Establishment.objects.get(code=DEMO_ESTABLISHMENT_CODE)
    users = {
        key: User.objects.get(email=f"{key}@demo.purplevisits.test")
        for key in ("family", "officer", "visits", "hq", "laptop1", "waiting")
    }
    soon = establishment.bookings.get()
    family = users["family"].visitor_profile  # type: ignore[attr-defined]
    # Face matching with a selfie encoding: the join page shows its optional tick box
    # (frames of the camera check as face data, issue 16).
    VisitorProfile.objects.filter(pk=family.pk).update(biometric_consent=True)
    FaceEnrolment.objects.create(
        profile=family, source=EnrolmentSource.SELFIE, encoding_encrypted=b"not-used-here"
    )
    connection = Connection.objects.get(visitor=family)
    starts = timezone.localtime(timezone.now() + timedelta(days=9)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    future = factories.BookingFactory(
        connection=connection,
        terminal=soon.terminal,
        starts_at=starts,
        aup_accepted_at=timezone.now(),
    )
    call = factories.CallFactory(booking=soon)
    dependant = factories.DependantFactory(
        lead_visitor=users["waiting"].visitor_profile,  # type: ignore[attr-defined]
        first_name="Rhys",
        last_name="Waiting",
        status=ReviewStatus.PENDING,
    )
    pending = Connection.objects.get(visitor__user=users["waiting"])
    check = IdentityCheck.objects.get(profile__user=users["waiting"])
    return Site(
        code=establishment.code,
        users=users,
        future_booking=future,
        soon_booking=soon,
        call=call,
        check_id=check.pk,
        connection_id=pending.pk,
        dependant_id=dependant.pk,
        prison_number="A1234BC",
    )


def _optional(name: str) -> list[str]:
    """Pages another part of issue 17 adds (help, privacy…), once they exist."""
    try:
        return [reverse(name)]
    except NoReverseMatch:
        return []


def pages_for(role: str, site: Site) -> list[str]:
    code = site.code
    staff = f"/staff/{code}"
    if role == "anonymous":
        return [
            "/",
            "/accounts/login/",
            "/accounts/signup/",
            "/accounts/password/reset/",
            "submit:/accounts/login/",  # the error summary
            "submit:/accounts/signup/",
            f"/visits/{code}/",
            "/no-such-page/",
            *_optional("help"),
            *_optional("privacy"),
            *_optional("accessibility"),
            *_optional("cookies"),
            *_optional("feedback"),
        ]
    if role == "family":
        ref = site.future_booking.reference  # type: ignore[attr-defined]
        return [
            "/",
            "/me/",
            "/me/details/",
            "submit:/me/connect/",
            "/me/consent/",
            "/me/identity/",
            "/me/dependants/add/",
            "/me/connect/",
            "/me/group/",
            "/me/delete/",
            "/visits/",
            f"/visits/{code}/",
            "book",  # the booking form, reached from the portal (below)
            f"/visits/call/{ref}/",
            f"/visits/call/{ref}/cancel/",
            f"/visits/{code}/?move={ref}",
            f"/calls/join/{ref}/",  # not open yet
            f"/calls/join/{site.soon_booking.reference}/",  # type: ignore[attr-defined]
            "/accounts/password/change/",
            "/accounts/email/",
        ]
    if role == "laptop":
        return ["/calls/terminal/"]
    common = [
        "/staff/",
        "/accounts/2fa/",
        "/accounts/password/change/",
    ]
    if role == "hq":
        return [*common, "/hq/"]
    officer = [
        *common,
        f"{staff}/dashboard/",
        f"{staff}/bookings/",
        f"{staff}/bookings/week/",
        f"{staff}/bookings/requests/",
        f"{staff}/calls/{site.call.pk}/",  # type: ignore[attr-defined]
    ]
    if role == "officer":
        return officer
    ref = site.future_booking.reference  # type: ignore[attr-defined]
    return [
        *officer,
        f"{staff}/bookings/blocked-dates/",
        f"{staff}/bookings/request/",
        f"{staff}/bookings/request/?prison_number=A1234BC",
        f"{staff}/test-calls/",
        f"{staff}/prisoners/",
        f"{staff}/audit/",
        f"{staff}/bookings/{ref}/cancel/",
        f"{staff}/bookings/{ref}/move/",
        f"{staff}/identity/",
        f"{staff}/identity/checks/{site.check_id}/",
        f"{staff}/identity/connections/{site.connection_id}/",
        f"{staff}/identity/dependants/{site.dependant_id}/",
        f"{staff}/prisoners/{site.prison_number}/photo/",
    ]


def _context(browser, base_url: str, user, language: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 800})
    cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base_url}]
    if user is not None:
        client = Client()
        client.force_login(user)
        cookies.append(
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}
        )
    context.add_cookies(cookies)
    return context


def _open(page, base_url: str, path: str, site: Site) -> str:  # type: ignore[no-untyped-def]
    if path == "book":
        page.goto(f"{base_url}/visits/{site.code}/")
        page.locator("input[name=slot]:not([disabled])").first.check()
        page.locator("form button[type=submit]").last.click()
        page.wait_for_url("**/book/**")
        page.wait_for_load_state()
        return page.url.removeprefix(base_url)
    if path.startswith("submit:"):  # the page with its form sent empty: the errors
        path = path.removeprefix("submit:")
        page.goto(base_url + path)
        with page.expect_navigation():
            page.locator("main form[method=post] [type=submit]").last.click()
        assert page.locator("[data-error-summary]").count() == 1, path
        return path + " (errors)"
    response = page.goto(base_url + path)
    expected = 404 if path == "/no-such-page/" else 200
    assert response is not None and response.status == expected, (
        path,
        response and response.status,
    )
    return path


def audit(browser, base_url: str, user, paths: list[str], site: Site) -> list[str]:  # type: ignore[no-untyped-def]
    """Every violation (and sideways scroll) on these pages, as readable lines."""
    axe_source = AXE.read_text()
    problems: list[str] = []
    for language in LANGUAGES:
        context = _context(browser, base_url, user, language)
        context.add_init_script(axe_source)
        page = context.new_page()
        for path in paths:
            assert not path.startswith(KNOWN_EXCLUDED)
            shown = _open(page, base_url, path, site)
            lang = page.evaluate("document.documentElement.lang")
            if lang.lower() != language:
                problems.append(f"{shown} [{language}]: <html lang={lang!r}>")
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                page.wait_for_timeout(50)  # one frame for layout; axe reads the layout
                for violation in page.evaluate(RUN_AXE, TAGS):
                    targets = "; ".join(
                        f"{n['target']} ({n['summary'].splitlines()[-1].strip()})"
                        for n in violation["nodes"]
                    )
                    problems.append(
                        f"{shown} [{language} {width}px] {violation['id']}: "
                        f"{violation['help']}: {targets}"
                    )
                if width <= 375:
                    wide = page.evaluate(SIDEWAYS)
                    if wide:
                        problems.append(f"{shown} [{language} {width}px] sideways: {wide}")
            page.set_viewport_size({"width": NARROWEST, "height": 800})
            page.wait_for_timeout(50)
            wide = page.evaluate(SIDEWAYS)
            if wide:
                problems.append(f"{shown} [{language} {NARROWEST}px] sideways: {wide}")
            page.set_viewport_size({"width": WIDTHS[0], "height": 800})
        context.close()
    return problems


@pytest.fixture(scope="session")
def axe_installed() -> None:
    if not AXE.exists():
        message = "axe-core is not installed (make test runs npm ci in tests/e2e/axe)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


ROLES = ["anonymous", "family", "laptop", "officer", "visits", "hq"]


@pytest.mark.parametrize("role", ROLES)
def test_no_wcag_violations_on_any_page(  # type: ignore[no-untyped-def]
    role: str, axe_installed, live_server_url, launch_browser
) -> None:
    site = _site()
    user = None if role == "anonymous" else site.users["laptop1" if role == "laptop" else role]
    browser = launch_browser()
    problems = audit(browser, live_server_url, user, pages_for(role, site), site)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_the_audit_finds_a_violation(axe_installed, launch_browser) -> None:  # type: ignore[no-untyped-def]
    """The check can fail: an image without a text alternative and a tiny-contrast
    paragraph are both reported."""
    browser = launch_browser()
    page = browser.new_page()
    page.set_content(
        '<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        '<p style="color:#ddd;background:#fff">Some very pale words</p>'
        "</main></body></html>"
    )
    page.add_script_tag(content=AXE.read_text())
    found = {v["id"] for v in page.evaluate(RUN_AXE, TAGS)}
    assert {"image-alt", "color-contrast"} <= found, json.dumps(sorted(found))
