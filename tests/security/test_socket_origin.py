"""The WebSocket Origin check: scheme, host and port (issue 12 finding 7)."""

from __future__ import annotations

import logging

import pytest

from purplevisits.socket_origin import origin_refusal
from purplevisits.socket_origin import parse_origin as parse
from tests.security.sockets import browser_socket, next_of
from tests.security.world import World, build_world


def scope(origin: str | None, host: str | None, scheme: str = "ws", **headers: str) -> dict:
    pairs = [(b"origin", origin), (b"host", host)] + [
        (name.replace("_", "-").encode(), value) for name, value in headers.items()
    ]
    return {
        "type": "websocket",
        "scheme": scheme,
        "path": "/ws/calls/x/",
        "headers": [(name, value.encode("latin1")) for name, value in pairs if value is not None],
    }


@pytest.fixture
def site(settings):  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["visits.example.org", "127.0.0.1", "localhost"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.USE_X_FORWARDED_HOST = False
    return settings


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        # the request's own origin
        ("http://127.0.0.1:8000", "127.0.0.1:8000", "ws", True),
        ("http://localhost", "localhost", "ws", True),
        ("http://localhost:80", "localhost", "ws", True),  # default port, said or not
        ("https://visits.example.org", "visits.example.org", "wss", True),
        ("https://visits.example.org:443", "visits.example.org", "wss", True),
        ("HTTPS://Visits.Example.org", "visits.example.org", "wss", True),
        # the tester's case: an https site and http://127.0.0.1:9
        ("http://127.0.0.1:9", "visits.example.org", "wss", False),
        ("http://127.0.0.1:9", "127.0.0.1:8000", "ws", False),  # same host, other port
        ("http://visits.example.org", "visits.example.org", "wss", False),  # scheme
        ("https://visits.example.org:8443", "visits.example.org", "wss", False),  # port
        ("https://visits.example.org", "visits.example.org", "ws", False),
        ("https://evil.example", "visits.example.org", "wss", False),
        ("https://visits.example.org.evil.example", "visits.example.org", "wss", False),
        # the host must be one of ALLOWED_HOSTS even when it matches itself
        ("https://evil.example", "evil.example", "wss", False),
        # not an origin at all
        (None, "visits.example.org", "wss", False),
        ("null", "visits.example.org", "wss", False),
        ("", "visits.example.org", "wss", False),
        ("file://", "visits.example.org", "wss", False),
        ("https://visits.example.org/path", "visits.example.org", "wss", False),
        ("https://user@visits.example.org", "visits.example.org", "wss", False),
        ("https://visits.example.org:" + "9" * 5000, "visits.example.org", "wss", False),
        ("https://[::1", "visits.example.org", "wss", False),
        ("https://visits.example.org", None, "wss", False),
    ],
)
def test_origin_must_match_scheme_host_and_port(site, origin, host, scheme, allowed) -> None:  # type: ignore[no-untyped-def]
    assert (origin_refusal(scope(origin, host, scheme)) is None) is allowed


def test_origins_are_parsed_to_scheme_host_and_port() -> None:
    assert parse("https://Visits.Example.org") == ("https", "visits.example.org", 443)
    assert parse("http://[::1]:8000") == ("http", "[::1]", 8000)
    assert parse("http://localhost:0") is None
    assert parse("ws://localhost") is None
    assert parse("null") is None


def test_ipv6_hosts(site) -> None:  # type: ignore[no-untyped-def]
    site.ALLOWED_HOSTS = ["[::1]"]
    assert origin_refusal(scope("http://[::1]:8000", "[::1]:8000")) is None
    assert origin_refusal(scope("http://[::1]:8001", "[::1]:8000")) is not None


def test_csrf_trusted_origins_are_allowed_exactly(site) -> None:  # type: ignore[no-untyped-def]
    site.CSRF_TRUSTED_ORIGINS = ["https://app.example.net", "https://*.example.com:8443"]
    host = "visits.example.org"
    assert origin_refusal(scope("https://app.example.net", host, "wss")) is None
    assert origin_refusal(scope("https://app.example.net:443", host, "wss")) is None
    assert origin_refusal(scope("http://app.example.net", host, "wss")) is not None
    assert origin_refusal(scope("https://app.example.net:444", host, "wss")) is not None
    assert origin_refusal(scope("https://other.example.net", host, "wss")) is not None
    # A wildcard covers the domain and its subdomains, on its own port only.
    assert origin_refusal(scope("https://a.example.com:8443", host, "wss")) is None
    assert origin_refusal(scope("https://example.com:8443", host, "wss")) is None
    assert origin_refusal(scope("https://a.example.com", host, "wss")) is not None
    assert origin_refusal(scope("https://aexample.com:8443", host, "wss")) is not None


def test_the_proxy_header_counts_only_when_the_setting_names_it(site) -> None:  # type: ignore[no-untyped-def]
    # TLS ends at the proxy: daphne sees ws, the browser's page is https.
    host = "visits.example.org"
    behind = scope("https://visits.example.org", host, "ws", x_forwarded_proto="https")
    spoofed = scope("http://visits.example.org", host, "ws", x_forwarded_proto="https")
    assert origin_refusal(behind) is not None  # setting unset: the header is ignored
    assert origin_refusal(spoofed) is None  # ... and the request's own scheme counts
    site.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_refusal(behind) is None
    assert origin_refusal(spoofed) is not None
    assert origin_refusal(scope("http://visits.example.org", host, "ws")) is None
    plain = scope("http://visits.example.org", host, "ws", x_forwarded_proto="http")
    assert origin_refusal(plain) is None
    # Only the dashed header counts (an underscore spelling could pass a proxy).
    underscored = scope("https://visits.example.org", host, "ws")
    underscored["headers"].append((b"x_forwarded_proto", b"https"))
    assert origin_refusal(underscored) is not None


def test_forwarded_host_counts_only_with_its_setting(site) -> None:  # type: ignore[no-untyped-def]
    forwarded = scope("https://visits.example.org", "10.0.0.5:8000", "wss")
    forwarded["headers"].append((b"x-forwarded-host", b"visits.example.org"))
    assert origin_refusal(forwarded) is not None
    site.USE_X_FORWARDED_HOST = True
    assert origin_refusal(forwarded) is None


# --- through the whole stack --------------------------------------------------------------


@pytest.fixture
def world(transactional_db) -> World:  # type: ignore[no-untyped-def]
    return build_world()


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        (b"http://localhost:9", b"localhost", "ws"),
        (b"http://localhost", b"localhost", "wss"),  # an https site and an http page
        (b"https://evil.example", b"localhost", "ws"),
        (None, b"localhost", "ws"),
    ],
)
async def test_a_foreign_origin_is_refused_and_logged(
    world: World, caplog, origin, host, scheme
) -> None:  # type: ignore[no-untyped-def]
    call = world.objects["call_a"]
    communicator = await browser_socket(
        f"/ws/calls/{call.pk}/",  # type: ignore[attr-defined]
        world.users["family_a"],
        origin=origin,
        host=host,
        scheme=scheme,
    )
    with caplog.at_level(logging.INFO, logger="purplevisits.security"):
        connected, _ = await communicator.connect(timeout=10)
    assert not connected  # closed before accepting: daphne answers 403
    events = [r for r in caplog.records if getattr(r, "event", "") == "websocket_origin_refused"]
    assert len(events) == 1
    assert events[0].path == f"/ws/calls/{call.pk}/"  # type: ignore[attr-defined]


async def test_the_sites_own_origin_is_accepted(world: World) -> None:
    call = world.objects["call_a"]
    family = await browser_socket(
        f"/ws/calls/{call.pk}/",  # type: ignore[attr-defined]
        world.users["family_a"],
        origin=b"http://localhost:8000",
        host=b"localhost:8000",
    )
    connected, _ = await family.connect(timeout=10)
    assert connected
    assert (await next_of(family, "state"))["status"]
    await family.disconnect()
