"""Screenshots of the family's journey in Welsh on a 375 px phone: docs/screenshots/cy-*.png.

    .venv/bin/python docs/screenshots/make.py [--chromium /usr/bin/chromium] [--port 8765]

Builds a throw-away site in a temporary folder (its own SQLite database: the project's
var/ is not touched), loads the estate and the demo data (`seed_demo`: the demo family,
approved, with a call that opens within minutes), serves it with daphne on loopback,
signs in as the demo family with Welsh chosen (the language cookie), and photographs:
home, your calls, join, then (the demo call cancelled, so the monthly allowance is
free) the portal and the booking page. Each PNG is the page at 375 px wide (long
pages cut at 2,000 px), reduced to a 64-colour palette so that it stays under 150 KB.

Needs Playwright's Python package (in requirements-dev) and a Chromium binary; it never
downloads a browser (no `playwright install`).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
PYTHON = sys.executable
FAMILY = "family@demo.purplevisits.test"
PASSWORD = "purple-visits-demo"  # noqa: S105 - the public demo accounts' password
WIDTH = 375
MAX_BYTES = 150 * 1024
# Long pages (the estate, four weeks of times) are cut after this many pixels.
MAX_HEIGHT = 2000


CANCEL_DEMO_CALL = (
    "from bookings.models import Booking; "
    f"Booking.objects.filter(lead_visitor__user__email={FAMILY!r}).update(status='cancelled')"
)


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)  # noqa: S603


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - loopback only
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def _small_png(raw: bytes) -> bytes:
    """The screenshot as a palette PNG (screens are flat colours: 64 are plenty)."""
    from PIL import Image

    image = Image.open(io.BytesIO(raw)).convert("RGB")
    for colours in (64, 32, 16):
        out = io.BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(
            out, "PNG", optimize=True
        )
        if out.tell() <= MAX_BYTES:
            break
    return out.getvalue()


def _shoot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("networkidle")
    path = OUT / f"cy-{name}.png"
    height = min(MAX_HEIGHT, int(page.evaluate("document.documentElement.scrollHeight")))
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": height}
    path.write_bytes(_small_png(page.screenshot(full_page=True, clip=clip)))
    size = path.stat().st_size
    print(f"{path.relative_to(ROOT)}: {size // 1024} KB ({page.url})")
    if size > MAX_BYTES:
        print(f"  warning: larger than {MAX_BYTES // 1024} KB", file=sys.stderr)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()

    from playwright.sync_api import sync_playwright

    port = _free_port(options.port)
    site = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="pv-screenshots-") as var:
        env = {
            **os.environ,
            "VAR_DIR": var,
            "DEBUG": "true",
            "SITE_URL": site,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        for name in ("DATABASE_URL", "REDIS_URL"):
            env.pop(name, None)
        _manage(env, "migrate", "--noinput", "--verbosity", "0")
        _manage(env, "load_establishments")
        _manage(env, "seed_demo")
        server = subprocess.Popen(  # noqa: S603 - our own daphne, on loopback
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["purplevisits.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(f"{site}/healthz")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=options.chromium)
                context = browser.new_context(
                    viewport={"width": WIDTH, "height": 812},
                    device_scale_factor=1,
                    locale="cy-GB",
                    extra_http_headers={"Accept-Language": "cy"},
                )
                context.add_cookies([{"name": "django_language", "value": "cy", "url": site}])
                page = context.new_page()

                page.goto(f"{site}/")
                _shoot(page, "home")

                page.goto(f"{site}/accounts/login/")
                page.fill("input[name=login]", FAMILY)
                page.fill("input[name=password]", PASSWORD)
                page.locator("form button[type=submit]").last.click()
                page.wait_for_load_state("networkidle")

                page.goto(f"{site}/visits/")
                _shoot(page, "my-bookings")

                join = page.locator("a[href^='/calls/join/']")
                if join.count():
                    page.goto(site + (join.first.get_attribute("href") or ""))
                else:  # the join link shows from 10 minutes before: open it by reference
                    match = re.search(r"/visits/call/([0-9a-f-]{36})/", page.content())
                    if match is None:
                        raise SystemExit("the demo family has no call to join")
                    page.goto(f"{site}/calls/join/{match.group(1)}/")
                _shoot(page, "join")

                # The demo call uses this month's allowance: cancel it so that the portal
                # offers free times to book.
                _manage(env, "shell", "-c", CANCEL_DEMO_CALL)
                page.goto(f"{site}/visits/askham-grange/")
                _shoot(page, "portal")
                free = page.locator("input[name=slot]:not([disabled])")
                if free.count():
                    free.first.check()
                    page.locator("form.slot-form button[type=submit]").first.click()
                    page.wait_for_load_state("networkidle")
                    _shoot(page, "booking")
                else:
                    print("no free time on the portal: no booking screenshot", file=sys.stderr)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
