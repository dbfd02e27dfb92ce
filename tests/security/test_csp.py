"""Content Security Policy: no inline code in our templates or in rendered pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from purplevisits.env import socket_sources
from tests.security.world import World, build_world

TEMPLATES = Path(settings.BASE_DIR) / "templates"
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.IGNORECASE)
STYLE_BLOCK = re.compile(r"<style\b", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


def inline_problems(html: str) -> list[str]:
    problems = []
    for attributes, body in SCRIPT.findall(html):
        is_data = re.search(r"""type\s*=\s*["']application/(ld\+)?json["']""", attributes)
        if body.strip() and not is_data:
            problems.append(f"inline <script>: {body.strip()[:60]!r}")
        if not body.strip() and "src" not in attributes.lower():
            problems.append("empty <script> without src")
    problems += [f"event handler: {m.group(0)[:60]!r}" for m in HANDLER.finditer(html)]
    problems += [f"style attribute: {m.group(0)[:60]!r}" for m in STYLE_ATTRIBUTE.finditer(html)]
    problems += ["<style> block" for _ in STYLE_BLOCK.finditer(html)]
    problems += ["javascript: URL" for _ in JAVASCRIPT_URL.finditer(html)]
    return problems


def test_the_scanner_finds_what_csp_would_block() -> None:
    assert inline_problems('<script>alert(1)</script><a onclick="x()">') == [
        "inline <script>: 'alert(1)'",
        "event handler: '<a onclick='",
    ]
    assert inline_problems('<p style="color:red">') and inline_problems("<style>p{}</style>")
    assert inline_problems('<a href="javascript:alert(1)">')
    assert not inline_problems('<script src="/static/js/a.js" type="module"></script>')
    assert not inline_problems('<script id="d" type="application/json">{"a": 1}</script>')


def template_files() -> list[Path]:
    # Emails' HTML (…/email/…) is read in mail clients, never served under the policy,
    # and must style inline (mail clients drop style sheets): not a page to scan.
    return sorted(
        p for p in TEMPLATES.rglob("*.html") if "email" not in p.relative_to(TEMPLATES).parts
    )


def test_there_are_templates_to_scan() -> None:
    assert len(template_files()) > 20


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_inline_code_or_style(path: Path) -> None:
    assert inline_problems(path.read_text()) == []


def test_the_policy_forbids_inline_code() -> None:
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    for name in ("script-src", "style-src", "default-src"):
        assert directives[name] == ["'self'"], name
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    # Sockets only to the site's own hosts: never a bare scheme.
    assert not {"ws:", "wss:", "*"} & set(directives["connect-src"])


def test_socket_sources_name_only_the_sites_hosts() -> None:
    hosts = ["visits.example.org", ".justice.example", "*", ""]
    assert socket_sources(hosts, debug=False) == [
        "wss://visits.example.org",
        "wss://*.justice.example",
    ]
    assert socket_sources(["127.0.0.1"], debug=True) == ["ws://127.0.0.1:*", "wss://127.0.0.1:*"]


def test_no_ipv6_literal_in_the_policy() -> None:
    """CSP's host grammar has no IPv6 form: Chromium logged `ws://[::1]:*` as an error on
    every page (issue 13, defect 10). 'self' still covers a page opened at [::1]."""
    assert socket_sources(["[::1]", "localhost"], debug=True) == [
        "ws://localhost:*",
        "wss://localhost:*",
    ]
    connect_src = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["connect-src"]
    assert not any("[" in source for source in connect_src)


def test_every_page_names_an_icon(client, db) -> None:  # type: ignore[no-untyped-def]
    """Browsers ask for /favicon.ico (a 404 in the console) unless the page names an icon."""
    from django.contrib.staticfiles import finders

    html = client.get("/").content.decode()
    assert 'rel="icon"' in html
    assert finders.find("img/favicon.svg")


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    return build_world()


PAGES = [
    ("anonymous", "/"),
    ("anonymous", "/accounts/login/"),
    ("anonymous", "/accounts/signup/"),
    ("anonymous", "/visits/xanadu/"),
    ("family_a", "/me/"),
    ("family_a", "/me/identity/"),
    ("family_a", "/me/connect/"),
    ("family_a", "/visits/"),
    ("family_a", "booking_detail"),
    ("family_a", "call_join"),
    ("terminal", "/calls/terminal/"),
    ("officer_x", "/staff/"),
    ("officer_x", "/staff/xanadu/dashboard/"),
    ("officer_x", "/staff/xanadu/bookings/"),
    ("visits_admin_x", "/staff/xanadu/identity/"),
    ("visits_admin_x", "/staff/xanadu/audit/"),
    ("visits_admin_x", "/staff/xanadu/prisoners/"),
    ("hq", "/hq/"),
    ("anonymous", "/no-such-page/"),
]


@pytest.mark.parametrize(("role", "path"), PAGES)
def test_rendered_pages_carry_the_policy_and_no_inline_code(
    world: World, role: str, path: str
) -> None:
    client = Client()
    if role != "anonymous":
        client.force_login(world.users[role])
    booking = world.objects["booking_a"]
    path = {
        "booking_detail": f"/visits/call/{booking.reference}/",  # type: ignore[attr-defined]
        "call_join": f"/calls/join/{booking.reference}/",  # type: ignore[attr-defined]
    }.get(path, path)
    response = client.get(path)
    assert response.status_code in (200, 404), (path, response.status_code)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert inline_problems(response.content.decode()) == []
