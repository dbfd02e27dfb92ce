"""Access-control matrix: every URL pattern and websocket route, for every role.

The rows are generated from the URL configuration (``get_resolver()``) and from
``purplevisits.routing``; each must have an explicit decision below, so a new URL
without a decision fails ``test_every_url_has_a_decision``. To decide a new URL, add
one line to ``DECISIONS`` (or reuse a preset such as ``STAFF_AT_X``).

Two more dimensions cover sessions the staff rules refuse (purplevisits/session_rules.py):
"staff without two-factor passed" (officer X has an authenticator app, but this
session did not do the TOTP step) and "idle-expired staff" (officer X's session unused
for longer than STAFF_IDLE_SECONDS). Both are signed out and sent to sign in on every
URL but ``SESSION_RULES_EXEMPT``, and refused (4401) by every websocket route.

Cells: an HTTP status (200, 403, 404, 400...), or a redirect: ``LOGIN`` (to sign in),
``TERMINAL`` (a laptop account is sent back to its own page), ``ADMIN_LOGIN`` (Django
admin's own sign-in, for anyone who is not a superuser), or ``to("/path/")``.
The sample arguments come from tests/security/world.py: establishment X is the one in
every staff URL, the booking, call, check, dependant and connection are family A's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client

from purplevisits.routing import websocket_urlpatterns
from tests import factories
from tests.security.urlwalk import all_routes
from tests.security.world import ROLES, World, build_world

Cell = int | str

LOGIN = "302:/accounts/login/"
TERMINAL = "302:/calls/terminal/"
ADMIN_LOGIN = "302:/admin/login/"


def to(path: str) -> str:
    return f"302:{path}"


@dataclass(frozen=True)
class Decision:
    cells: dict[str, Cell]
    method: str = "get"


def row(
    anonymous: Cell,
    family_a: Cell,
    family_b: Cell,
    terminal: Cell,
    officer_x: Cell,
    visits_admin_x: Cell,
    officer_y: Cell,
    hq: Cell,
    *,
    method: str = "get",
) -> Decision:
    values = (anonymous, family_a, family_b, terminal, officer_x, visits_admin_x, officer_y, hq)
    return Decision(dict(zip(ROLES, values, strict=True)), method=method)


# --- Presets ------------------------------------------------------------------------------
# Anyone; a terminal account is always kept on its own page.
PUBLIC = row(200, 200, 200, TERMINAL, 200, 200, 200, 200)
# Any signed-in person (their own account pages).
SIGNED_IN = row(LOGIN, 200, 200, TERMINAL, 200, 200, 200, 200)
# Family A's own booking/call/check/dependant: others learn nothing (404).
FAMILY_A_OWN = row(LOGIN, 200, 404, TERMINAL, 404, 404, 404, 404)
# Visitor-only pages: staff have no visitor profile and are sent to fill details.
VISITOR_ONLY = row(LOGIN, 200, 200, TERMINAL, *[to("/me/details/")] * 4)
# Staff pages at X, officer or above; HQ watches every establishment read-only.
STAFF_AT_X = row(LOGIN, 403, 403, TERMINAL, 200, 200, 404, 200)
# Establishment staff pages at X (bookings lists): HQ is not establishment staff.
STAFF_OF_X = row(LOGIN, 403, 403, TERMINAL, 200, 200, 404, 403)
# Identity images at X: only a visits admin there; everyone else gets a bare 404.
IMAGE_VISITS_ADMIN_AT_X = row(LOGIN, 404, 404, TERMINAL, 404, 200, 404, 404)
# Staff pages at X that need the visits-admin role (HQ cannot act: 403).
VISITS_ADMIN_AT_X = row(LOGIN, 403, 403, TERMINAL, 403, 200, 404, 403)
# Django admin: superusers only (none of these roles is one).
ADMIN_SITE = row(*[ADMIN_LOGIN] * 3, TERMINAL, *[ADMIN_LOGIN] * 4)
# Allauth pages that need a signed-in user.
ACCOUNT_SIGNED_IN = row(LOGIN, 200, 200, TERMINAL, 200, 200, 200, 200)
# Sign-in style pages: signed-in people are sent on to their home.
SIGNED_OUT_ONLY = row(200, to("/me/"), to("/me/"), TERMINAL, *[to("/staff/")] * 4)

DECISIONS: dict[str, Decision] = {
    # purplevisits
    "healthz": PUBLIC,
    # Prometheus: only with "Authorization: Bearer METRICS_TOKEN"; no token set, no page
    # (tests/test_metrics.py covers the token). A laptop account stays on its page.
    "metrics": row(404, 404, 404, TERMINAL, 404, 404, 404, 404),
    "home": PUBLIC,
    # The pages a public service must have (establishments/pages.py): anyone; the
    # feedback form posts with CSRF, bounded fields and an hourly limit (tests/test_pages.py).
    "help": PUBLIC,
    "privacy": PUBLIC,
    "accessibility": PUBLIC,
    "cookies": PUBLIC,
    "feedback": PUBLIC,
    "feedback_sent": PUBLIC,
    # Cymraeg / English: the JavaScript messages (every page loads them, the laptop's
    # call page too) and the switch (back to "next", else the start page).
    "javascript-catalog": row(*[200] * 8),
    "set_language": row(*[to("/")] * 8),
    # allauth (public sign-in, sign-up, reset and confirm pages; account pages)
    "account_login": SIGNED_OUT_ONLY,
    "account_signup": SIGNED_OUT_ONLY,
    # A laptop account may sign out (TerminalAccountMiddleware lets it).
    "account_logout": row(to("/"), 200, 200, 200, 200, 200, 200, 200),
    "account_inactive": PUBLIC,
    "account_email_verification_sent": PUBLIC,
    "account_reset_password": PUBLIC,
    "account_reset_password_done": PUBLIC,
    "account_reset_password_from_key": PUBLIC,
    "account_reset_password_from_key_done": PUBLIC,
    "account_confirm_email": PUBLIC,
    "account_confirm_login_code": row(
        LOGIN, to("/me/"), to("/me/"), TERMINAL, *[to("/staff/")] * 4
    ),
    "account_reauthenticate": ACCOUNT_SIGNED_IN,
    "account_email": ACCOUNT_SIGNED_IN,
    "account_change_password": ACCOUNT_SIGNED_IN,
    "account_set_password": row(
        LOGIN,
        *[to("/accounts/password/change/")] * 2,
        TERMINAL,
        *[to("/accounts/password/change/")] * 4,
    ),
    "mfa_index": ACCOUNT_SIGNED_IN,
    "mfa_authenticate": row(LOGIN, to("/me/"), to("/me/"), TERMINAL, *[to("/staff/")] * 4),
    # Families have no authenticator: they are asked to re-authenticate first.
    "mfa_reauthenticate": row(
        LOGIN, *[to("/accounts/reauthenticate/")] * 2, TERMINAL, 200, 200, 200, 200
    ),
    "mfa_activate_totp": row(
        LOGIN,
        *[to("/accounts/reauthenticate/")] * 2,
        TERMINAL,
        *[to("/accounts/reauthenticate/")] * 4,
    ),
    "mfa_deactivate_totp": row(LOGIN, 404, 404, TERMINAL, *[to("/accounts/reauthenticate/")] * 4),
    "mfa_generate_recovery_codes": row(
        LOGIN,
        *[to("/accounts/reauthenticate/")] * 2,
        TERMINAL,
        *[to("/accounts/reauthenticate/")] * 4,
    ),
    # No recovery codes were generated in this world.
    "mfa_view_recovery_codes": row(LOGIN, 404, 404, TERMINAL, 404, 404, 404, 404),
    "mfa_download_recovery_codes": row(LOGIN, 404, 404, TERMINAL, 404, 404, 404, 404),
    # identity: the visitor's own pages
    "me": SIGNED_IN,
    "me_profile": SIGNED_IN,
    "me_delete": SIGNED_IN,
    "me_consent": VISITOR_ONLY,
    "me_identity": VISITOR_ONLY,
    "me_dependant_add": VISITOR_ONLY,
    "me_connect": VISITOR_ONLY,
    "me_group": VISITOR_ONLY,
    "me_check_image": FAMILY_A_OWN,
    "me_dependant_photo": FAMILY_A_OWN,
    "me_dependant_image": FAMILY_A_OWN,
    # The join page's camera check (JSON): always the signed-in visitor's own profile
    # (no id in the URL); without ?check= there is no such check (404); staff have no
    # profile (403).
    "me_precall_frames": row(LOGIN, 404, 404, TERMINAL, 403, 403, 403, 403),
    # identity: staff
    "staff_home": row(LOGIN, 404, 404, TERMINAL, 200, 200, 200, 200),
    "identity_staff_queue": VISITS_ADMIN_AT_X,
    "identity_staff_check": VISITS_ADMIN_AT_X,
    "identity_staff_check_image": IMAGE_VISITS_ADMIN_AT_X,
    "identity_staff_dependant": VISITS_ADMIN_AT_X,
    "identity_staff_dependant_photo": IMAGE_VISITS_ADMIN_AT_X,
    "identity_staff_connection": VISITS_ADMIN_AT_X,
    # bookings: families
    "bookings:my_bookings": SIGNED_IN,
    "bookings:portal": PUBLIC,
    # Without a chosen slot the booking form is a bad request; staff book by request.
    "bookings:book": row(LOGIN, 400, 400, TERMINAL, *[to("/visits/")] * 4),
    "bookings:detail": FAMILY_A_OWN,
    "bookings:calendar": FAMILY_A_OWN,
    "bookings:cancel": FAMILY_A_OWN,
    "bookings:respond": FAMILY_A_OWN,
    # Without a new time: to the portal's list marked for moving the call.
    "bookings:move": row(LOGIN, to("/visits/"), 404, TERMINAL, 404, 404, 404, 404),
    # bookings: staff
    "bookings:staff_day": STAFF_OF_X,
    "bookings:staff_week": STAFF_OF_X,
    "bookings:staff_requests": STAFF_OF_X,
    "bookings:staff_blocked_dates": VISITS_ADMIN_AT_X,
    "bookings:staff_request": VISITS_ADMIN_AT_X,
    "bookings:staff_cancel": VISITS_ADMIN_AT_X,
    "bookings:staff_move": VISITS_ADMIN_AT_X,
    # calls
    "calls:join": FAMILY_A_OWN,
    "calls:room": row(LOGIN, to("/calls/join/"), 404, TERMINAL, 404, 404, 404, 404),
    "calls:terminal": row(LOGIN, 403, 403, 200, 403, 403, 403, 403),
    "calls:terminal_start": row(
        LOGIN, 403, 403, to("/calls/terminal/call/"), 403, 403, 403, 403, method="post"
    ),
    "calls:terminal_room": row(LOGIN, 403, 403, 200, 403, 403, 403, 403),
    # monitoring
    "monitoring:national": row(LOGIN, 403, 403, TERMINAL, 403, 403, 403, 200),
    "monitoring:dashboard": STAFF_AT_X,
    "monitoring:audit_log": VISITS_ADMIN_AT_X,
    "monitoring:audit_csv": VISITS_ADMIN_AT_X,
    "monitoring:alert_acknowledge": row(
        LOGIN,
        403,
        403,
        403,
        *[to("/staff/xanadu/dashboard/")] * 2,
        404,
        403,
        method="post",
    ),
    "monitoring:alert_snapshot": STAFF_AT_X,
    # Acknowledging every alert of one call: officers and visits admins at X only.
    "monitoring:call_alerts_acknowledge": row(
        LOGIN,
        403,
        403,
        403,
        *[to("/staff/xanadu/dashboard/")] * 2,
        404,
        403,
        method="post",
    ),
    # HQ sees the call's status read-only; officers elsewhere learn nothing.
    "monitoring:call_detail": STAFF_AT_X,
    # Officers and visits admins at X act and return to the call page; every other
    # signed-in role is refused (and the refusal logged).
    "monitoring:call_control": row(
        LOGIN, 403, 403, 403, *[to("/staff/xanadu/calls/")] * 2, 403, 403, method="post"
    ),
    "monitoring:test_calls": VISITS_ADMIN_AT_X,
    "identity_staff_prisoner_photo": VISITS_ADMIN_AT_X,
    "identity_staff_prisoners": VISITS_ADMIN_AT_X,
    "identity_staff_prisoner_photo_remove": row(
        LOGIN, 403, 403, 403, 403, to("/staff/xanadu/prisoners/"), 404, 403, method="post"
    ),
    # Django admin's sign-in and sign-out pages. Admin has no sign-in of its own: its
    # login page sends everyone to the site's (allauth, two-factor, rate limits).
    "admin_login": row(*[LOGIN] * 3, TERMINAL, *[LOGIN] * 4),
    "admin:login": row(*[LOGIN] * 3, TERMINAL, *[LOGIN] * 4),
    "admin:logout": row(*[to("/admin/")] * 3, TERMINAL, *[to("/admin/")] * 4),
}

# Whole families of URLs decided by one rule: every page of Django admin goes through
# ``admin_view``, which sends anyone but a superuser to admin's sign-in (new models
# registered in admin are covered by the same rule).
RULES: list[tuple[str, Decision]] = [
    ("admin:", ADMIN_SITE),
    ("unnamed admin:", ADMIN_SITE),
]

# Every websocket route, with the close code (or "accept") per role.
WS_DECISIONS: dict[str, dict[str, int | str]] = {}


def decision_for(key: str) -> Decision | None:
    if key in DECISIONS:
        return DECISIONS[key]
    for prefix, decision in RULES:
        if key.startswith(prefix):
            return decision
    return None


def matches(cell: Cell, status: int, location: str) -> bool:
    if isinstance(cell, int):
        return status == cell
    expected_status, _, prefix = cell.partition(":")
    return status == int(expected_status) and location.startswith(prefix)


@pytest.fixture
def world(db, settings, tmp_path) -> World:  # type: ignore[no-untyped-def]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path, "base_url": None},
        },
    }
    built = build_world()
    jpeg = ContentFile(b"\xff\xd8\xff\xe0" + b"0" * 64 + b"\xff\xd9")
    o = built.objects
    o["check_a"].id_image.save("id.jpg", jpeg)  # type: ignore[attr-defined]
    o["dependant_a"].photo.save("kid.jpg", jpeg)  # type: ignore[attr-defined]
    o["alert_x"].snapshot.save("snap.jpg", jpeg)  # type: ignore[attr-defined]
    return built


def test_every_url_has_a_decision() -> None:
    undecided = [f"{r.key}  ({r.route})" for r in all_routes() if decision_for(r.key) is None]
    assert not undecided, "URLs without an access decision:\n" + "\n".join(undecided)


def test_no_decision_is_stale() -> None:
    keys = {r.key for r in all_routes()}
    assert not set(DECISIONS) - keys


@pytest.mark.parametrize("role", ROLES)
def test_http_matrix(world: World, role: str) -> None:
    client = Client()
    if role != "anonymous":
        client.force_login(world.users[role])
    samples = world.sample_kwargs()
    wrong = []
    for route in all_routes():
        decision = decision_for(route.key)
        assert decision is not None, route.key
        path = route.path(samples)
        with transaction.atomic():
            response = getattr(client, decision.method)(path)
            transaction.set_rollback(True)
        location = response.get("Location", "")
        cell = decision.cells[role]
        if not matches(cell, response.status_code, location):
            wrong.append(
                f"{route.key} {decision.method.upper()} {path}: expected {cell}, "
                f"got {response.status_code} {location}"
            )
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def test_superuser_reaches_every_admin_page(world: World, admin_user) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(admin_user)
    samples = world.sample_kwargs()
    wrong = []
    for route in all_routes():
        if not route.key.startswith(("admin:", "unnamed admin:")) or route.key in (
            "admin:logout",
            "admin:view_on_site",
        ):
            continue
        path = route.path(samples)
        with transaction.atomic():
            response = client.get(path)
            transaction.set_rollback(True)
        location = response.get("Location", "")
        if response.status_code >= 500 or location.startswith("/admin/login/"):
            wrong.append(f"{route.key} {path}: {response.status_code} {location}")
    assert not wrong, "\n".join(wrong)


# --- Websocket routes ------------------------------------------------------------------
ACCEPT = "accept"
# HQ is read-only and national: it sees the dashboards but does not watch calls.
# "accept", or the close code the socket is refused with (SIGNALLING.md's codes).
WS_DECISIONS.update(
    {
        "ws/calls/<uuid:call_id>/": dict(
            zip(ROLES, (4401, ACCEPT, 4403, ACCEPT, ACCEPT, ACCEPT, 4403, 4403), strict=True)
        ),
        "ws/staff/<slug:code>/dashboard/": dict(
            zip(ROLES, (4401, 4403, 4403, 4403, ACCEPT, ACCEPT, 4403, ACCEPT), strict=True)
        ),
    }
)


def ws_path(route: str, samples: dict[str, str]) -> str:
    import re

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: samples[m.group(1)], route)


def test_every_websocket_route_has_a_decision() -> None:
    routes = {str(pattern.pattern) for pattern in websocket_urlpatterns}
    assert routes == set(WS_DECISIONS)


@pytest.fixture
def ws_world(transactional_db, settings) -> World:  # type: ignore[no-untyped-def]
    return build_world()


def _cookie_for(user: object) -> bytes:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def ws_outcome(path: str, cookie: bytes | None) -> int | str:
    from purplevisits.asgi import application

    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    if not connected:
        return int(code or 1000)
    try:
        output = await communicator.receive_output(timeout=3)
    except Exception:  # noqa: BLE001 - silence after accepting means accepted
        output = {"type": "websocket.send"}
    await communicator.disconnect()
    if output["type"] == "websocket.close":
        return int(output.get("code", 1000))
    return ACCEPT


@pytest.mark.parametrize("role", ROLES)
async def test_websocket_matrix(ws_world: World, role: str) -> None:
    samples = ws_world.sample_kwargs()
    cookie = None
    if role != "anonymous":
        cookie = await database_sync_to_async(_cookie_for)(ws_world.users[role])
    wrong = []
    for pattern in websocket_urlpatterns:
        route = str(pattern.pattern)
        path = ws_path(route, samples)
        got = await ws_outcome(path, cookie)
        expected = WS_DECISIONS[route][role]
        if got != expected:
            wrong.append(f"{path}: expected {expected}, got {got}")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


# --- Sessions the staff rules refuse: every URL and every websocket route ---------------
SESSION_ROLES = ("staff_without_two_factor_passed", "idle_expired_staff")
# Where such a session is left alone (a health probe never signs anyone out).
SESSION_RULES_EXEMPT: dict[str, Cell] = {"healthz": 200}


def sign_in_refused(client: Client, user: object, role: str) -> None:
    if role == "staff_without_two_factor_passed":
        factories.login_without_two_factor(client, user)
    else:
        client.force_login(user)  # type: ignore[arg-type]
        factories.make_idle(client)


@pytest.mark.parametrize("role", SESSION_ROLES)
def test_http_matrix_refuses_sessions_that_break_staff_rules(world: World, role: str) -> None:
    officer = world.users["officer_x"]
    samples = world.sample_kwargs()
    wrong = []
    for route in all_routes():
        decision = decision_for(route.key)
        assert decision is not None, route.key
        path = route.path(samples)
        # Each request signs the session out: a new one for every URL.
        client = Client()
        sign_in_refused(client, officer, role)
        with transaction.atomic():
            response = getattr(client, decision.method)(path)
            transaction.set_rollback(True)
        location = response.get("Location", "")
        cell = SESSION_RULES_EXEMPT.get(route.key, LOGIN)
        signed_out = "_auth_user_id" not in client.session
        if not matches(cell, response.status_code, location) or (
            route.key not in SESSION_RULES_EXEMPT and not signed_out
        ):
            wrong.append(
                f"{route.key} {decision.method.upper()} {path}: expected {cell} and signed "
                f"out, got {response.status_code} {location} (signed out: {signed_out})"
            )
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def _refused_cookie_for(user: object, role: str) -> bytes:
    client = Client()
    sign_in_refused(client, user, role)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.parametrize("role", SESSION_ROLES)
async def test_websocket_matrix_refuses_sessions_that_break_staff_rules(
    ws_world: World, role: str
) -> None:
    samples = ws_world.sample_kwargs()
    officer = ws_world.users["officer_x"]
    # The same officer with a good session is accepted on every route (WS_DECISIONS).
    assert all(decision["officer_x"] == ACCEPT for decision in WS_DECISIONS.values())
    cookie = await database_sync_to_async(_refused_cookie_for)(officer, role)
    wrong = []
    for pattern in websocket_urlpatterns:
        path = ws_path(str(pattern.pattern), samples)
        got = await ws_outcome(path, cookie)
        if got != 4401:
            wrong.append(f"{path}: expected 4401, got {got}")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)
