"""Issue 15: the production shape, run for real on loopback (tests/production/conftest.py).

Over https through the TLS proxy, in Chromium trusting the test CA: a family books and
joins, the laptop joins, the officer watches both sides, a killed relay's call moves to
the other relay and goes on, the officer pauses and ends the call. Every page's CSS and
JavaScript answer 200, the booking email links to the https site, /healthz and
/metrics answer.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.test_call import FRAMES_DECODED
from tests.e2e.test_dashboard import assert_sees_and_hears_both_sides
from tests.production.conftest import CEILING, HOST, Topology

pytestmark = pytest.mark.e2e


def https_get(topology: Topology, path: str, **headers: str) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(topology.ca))
    conn = http.client.HTTPSConnection(
        "127.0.0.1", topology.https_port, timeout=30, context=context
    )
    # SNI and Host are the site's name; the certificate is checked against it.
    conn.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", topology.https_port), 30),
        server_hostname=HOST,
    )
    conn.request("GET", path, headers={"Host": f"{HOST}:{topology.https_port}", **headers})
    response = conn.getresponse()
    return response.status, response.read().decode(errors="replace")


def trust_ca(home: Path, ca: Path) -> bool:
    """Add the test CA to Chromium's NSS store under ``home``; False without certutil."""
    certutil = shutil.which("certutil")
    if certutil is None:
        return False
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    subprocess.run([certutil, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(
        [certutil, "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "pv-test-ca", "-i", str(ca)],
        check=True,
    )
    return True


def wait_for(predicate, what: str, timeout: float = CEILING):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def frames_grow(page, by: int = 30) -> None:  # type: ignore[no-untyped-def]
    start = page.evaluate(FRAMES_DECODED)
    wait_for(lambda: page.evaluate(FRAMES_DECODED) >= start + by, f"{by} more frames decoded")


def test_the_production_shape_over_https(topology: Topology, fake_video, chromium_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    # /healthz through the proxy; /metrics only with its token.
    status, body = https_get(topology, "/healthz")
    assert status == 200 and '"status": "ok"' in body, body
    assert https_get(topology, "/metrics")[0] == 401
    assert https_get(topology, "/metrics", Authorization="Bearer wrong")[0] == 401

    people = topology.seed("seed")
    code = people["code"]
    home = Path(topology.env["HOME"])
    trusted = trust_ca(home, topology.ca)
    site = topology.site_url
    bad_assets: list[str] = []
    assets: list[str] = []

    def watch(page):  # type: ignore[no-untyped-def]
        def on_response(response):  # type: ignore[no-untyped-def]
            if response.request.resource_type in {"stylesheet", "script"}:
                assets.append(response.url)
                if response.status != 200:
                    bad_assets.append(f"{response.status} {response.url}")

        page.on("response", on_response)
        return page

    manager = sync_playwright().start()
    browsers = []
    try:

        def launch(video: Path):  # type: ignore[no-untyped-def]
            args = [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                "--autoplay-policy=no-user-gesture-required",
            ]
            browser = manager.chromium.launch(
                executable_path=chromium_path,
                headless=True,
                args=args,
                env={**os.environ, "HOME": str(home)},
            )
            browsers.append(browser)
            return browser

        def context(browser, session: str | None = None):  # type: ignore[no-untyped-def]
            # Trusted through the NSS store when certutil is there; otherwise (said in
            # the test output) Playwright's ignore_https_errors.
            ctx = browser.new_context(
                viewport={"width": 800, "height": 700}, ignore_https_errors=not trusted
            )
            if session:
                ctx.add_cookies(
                    [
                        {
                            "name": "sessionid",
                            "value": session,
                            "domain": HOST,
                            "path": "/",
                            "secure": True,
                            "httpOnly": True,
                            "sameSite": "Lax",
                        }
                    ]
                )
            return ctx

        print(f"certificate trusted through NSS: {trusted}")
        red = launch(fake_video("color=red", seconds=2))
        blue = launch(fake_video("color=blue", seconds=2))

        # The family signs in and books through the pages.
        family = watch(context(red).new_page())
        family.goto(f"{site}/accounts/login/?next=/visits/{code}/")
        assert family.evaluate("window.isSecureContext") is True
        family.fill("input[name=login]", people["family_email"])
        family.fill("input[name=password]", people["family_password"])
        family.locator("form button[type=submit], form input[type=submit]").last.click()
        family.wait_for_url(f"**/visits/{code}/")
        family.locator("input[name=slot]:not([disabled])").first.check()
        family.get_by_role("button", name="Continue").click()
        family.wait_for_url(f"**/visits/{code}/book/**")
        family.get_by_label("I accept the acceptable use policy for this call").check()
        family.get_by_role("button", name="Book the call").click()
        family.wait_for_url("**/visits/call/**")
        assert family.locator("h1").inner_text() == "Your call is booked"
        reference = family.url.rstrip("/").rsplit("/", 1)[-1]

        # The confirmation email (sent by the Celery worker) links to the https site.
        email = wait_for(
            lambda: reference in topology.log("worker") and topology.log("worker"),
            "the booking email in the worker's output",
        )
        links = re.findall(r"https?://[^\s\"'<>]+", email)
        to_the_call = [link for link in links if reference in link]
        assert to_the_call and all(link.startswith(f"{site}/") for link in to_the_call), links
        assert not [link for link in links if "127.0.0.1" in link or "localhost:8000" in link]

        # The call's time comes (moved to now), the family joins.
        topology.seed("now", reference)
        family.goto(f"{site}/calls/join/{reference}/")
        policy = family.get_by_label("I have read the acceptable use policy")
        if policy.count():
            policy.check()
        family.get_by_role("button", name="Join call").click()
        family.wait_for_url("**/calls/*/", timeout=60_000)

        terminal = watch(context(blue, people["terminal_session"]).new_page())
        terminal.goto(f"{site}/calls/terminal/")
        terminal.get_by_role("button", name="Start call").click()
        terminal.wait_for_url("**/calls/terminal/call/*/", timeout=60_000)
        family.get_by_text("You are connected").wait_for(timeout=CEILING * 1000)
        frames_grow(family, 5)
        frames_grow(terminal, 5)

        call = topology.seed("call", reference)
        assert call["status"] == "live" and call["relay_id"] in {"relay-1", "relay-2"}
        officer = watch(context(red, people["officer_session"]).new_page())
        officer.goto(f"{site}/staff/{code}/calls/{call['id']}/")
        officer.locator("#monitor-status").get_by_text("live").wait_for(timeout=60_000)
        assert_sees_and_hears_both_sides(
            officer, "window.pvMonitor", {"family": "#video-family", "prisoner": "#video-prisoner"}
        )

        status, text = https_get(
            topology, "/metrics", Authorization=f"Bearer {topology.metrics_token}"
        )
        assert status == 200
        from prometheus_client.parser import text_string_to_metric_families

        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family_ in text_string_to_metric_families(text)
            for s in family_.samples
        }
        assert samples[("purplevisits_calls_live", ())] == 1
        assert samples[("purplevisits_relays_live", ())] == 2
        assert samples[("purplevisits_relay_calls", (("relay", call["relay_id"]),))] == 1
        assert samples[("purplevisits_request_seconds_count", ())] > 10
        assert ("purplevisits_celery_queue_length", (("queue", "celery"),)) in samples
        assert any(name == "purplevisits_relay_cpu_seconds_total" for name, _ in samples)

        # The call's relay dies: the call moves to the other relay and goes on.
        dead = call["relay_id"]
        process = topology.processes.pop(dead)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        topology.processes[f"killed-{dead}"] = process
        moved = wait_for(
            lambda: (c := topology.seed("call", reference))["relay_id"] not in {dead, ""} and c,
            "the call on the other relay",
        )
        assert moved["status"] == "live"
        frames_grow(family)
        frames_grow(terminal)
        assert_sees_and_hears_both_sides(
            officer, "window.pvMonitor", {"family": "#video-family", "prisoner": "#video-prisoner"}
        )

        # The officer pauses, then ends the call.
        officer.get_by_role("button", name="Pause").click()
        family.get_by_text("Call paused by prison staff.").wait_for(timeout=60_000)
        terminal.get_by_text("Call paused by prison staff.").wait_for(timeout=60_000)
        officer.get_by_label("Reason for ending the call").fill("End of the production test")
        officer.get_by_role("button", name="End call").click()
        family.get_by_text("Prison staff ended the call").wait_for(timeout=60_000)
        terminal.get_by_text("Prison staff ended the call").wait_for(timeout=60_000)
        ended = topology.seed("call", reference)
        assert (ended["status"], ended["end_reason"]) == ("ended", "terminated")

        assert not bad_assets, bad_assets
        assert any(url.endswith(".css") for url in assets), assets
        assert any(url.endswith(".js") for url in assets), assets
        # Hashed names from the manifest (production storage), served by whitenoise.
        # (The JavaScript catalogue, /jsi18n/, is a view, not a static file.)
        static = [url for url in assets if urlparse(url).path.startswith("/static/")]
        assert static, assets
        plain = [url for url in static if not re.search(r"\.[0-9a-f]{12}\.(css|js)$", url)]
        assert not plain, plain
    finally:
        for browser in browsers:
            browser.close()
        manager.stop()
