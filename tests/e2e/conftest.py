"""Browser tests: a real daphne server (HTTP + WebSocket) and Debian's Chromium.

The server runs in a forked process on the test database, so tests that use it need
committed data (``transactional_db``). Chromium gets a fake camera that plays a y4m
file made with ffmpeg from the face fixtures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from channels.testing.live import make_application
from daphne.testing import DaphneProcess
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from tests.factories import use_private_storage

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FACES = Path(__file__).resolve().parent.parent / "fixtures" / "faces"


def _require(tool: str, path: str | None) -> str:
    if path and os.path.exists(path):
        return path
    message = f"{tool} is not installed (make test installs it with apt-get as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _allow_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls
    # that tests make between browser steps are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _server_setup() -> None:
    """In the forked server: drop the parent's database sockets.

    The connection settings already name the test database (pytest-django set them
    before the fork), so channels' set_database_connection is not needed.
    """
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.connection = None  # closing would end the parent's session too
    # If earlier async tests started asgiref's single-thread executor, the child
    # inherits one whose worker thread does not exist here, and every
    # database_sync_to_async in a consumer would hang: start a fresh one.
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return _require("chromium", CHROMIUM)


@pytest.fixture
def live_server_url(transactional_db: None, settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Base URL of a daphne server running this test's database."""
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    process = DaphneProcess(
        "127.0.0.1",
        partial(make_application, static_wrapper=ASGIStaticFilesHandler),
        setup=_server_setup,
    )
    process.start()
    if not process.ready.wait(timeout=30):
        process.terminate()
        raise RuntimeError("daphne did not start within 30 s")
    try:
        yield f"http://127.0.0.1:{process.port.value}"
    finally:
        process.terminate()
        process.join(10)


@pytest.fixture(scope="session")
def fake_video(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """fake_video("obama.jpg", "biden.jpg", seconds=3) → a y4m showing each image in turn."""
    ffmpeg = _require("ffmpeg", shutil.which("ffmpeg"))
    directory = tmp_path_factory.mktemp("y4m")

    def make(*images: str, seconds: float = 3.0, fps: int = 15) -> Path:
        out = directory / ("-".join(Path(i).stem for i in images) + f"-{seconds}s.y4m")
        if out.exists():
            return out
        inputs: list[str] = []
        for image in images:
            source = image if image.startswith("color=") else str(FACES / image)
            if image.startswith("color="):
                inputs += ["-f", "lavfi", "-t", str(seconds), "-i", f"{image}:s=640x480:r={fps}"]
            else:
                inputs += ["-loop", "1", "-t", str(seconds), "-framerate", str(fps), "-i", source]
        scale = (
            "scale=640:480:force_original_aspect_ratio=decrease,"
            f"pad=640:480:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps}"
        )
        chains = ";".join(f"[{n}:v]{scale}[v{n}]" for n in range(len(images)))
        joined = "".join(f"[v{n}]" for n in range(len(images)))
        graph = f"{chains};{joined}concat=n={len(images)}:v=1:a=0[out]"
        subprocess.run(
            [
                ffmpeg,
                "-y",
                "-loglevel",
                "error",
                *inputs,
                "-filter_complex",
                graph,
                "-map",
                "[out]",
                "-pix_fmt",
                "yuv420p",
                str(out),
            ],
            check=True,
            timeout=120,
        )
        return out

    return make


@pytest.fixture
def launch_browser(chromium_path: str) -> Iterator[Callable[..., object]]:
    """launch_browser(video=path) → a Playwright Browser with a fake camera and microphone."""
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    browsers: list[object] = []

    def launch(video: Path | None = None) -> object:
        args = [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--autoplay-policy=no-user-gesture-required",
        ]
        if video is not None:
            args.append(f"--use-file-for-fake-video-capture={video}")
        browser = manager.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--headless=new", *args]
        )
        browsers.append(browser)
        return browser

    try:
        yield launch
    finally:
        for browser in browsers:
            browser.close()  # type: ignore[attr-defined]
        manager.stop()


@pytest.fixture
def private_media_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Private files in a temporary folder, set before the live server forks so that it
    stores uploads (photos, camera-check frames) there too."""
    return use_private_storage(settings, tmp_path)
