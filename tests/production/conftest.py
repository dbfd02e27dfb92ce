"""The production topology on loopback, from the commands docker-compose.yml runs.

Every process is started as ``deploy/entrypoint.sh NAME`` (the image's ENTRYPOINT), the
proxy from ``deploy/caddy/Caddyfile`` with Debian's caddy and a certificate made here:
PostgreSQL and Redis are the machine's (a ``prod_`` database, Redis db 8), DEBUG=false.
Skipped unless PostgreSQL, Redis, caddy and chromium are all there (failed under CI
when PostgreSQL and Redis answer but a tool is missing).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.conftest import chromium_path, fake_video  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent.parent
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
VENV_BIN = ROOT / ".venv" / "bin"
HOST = "visits.localhost"
REDIS_DB = 8
CEILING = 120  # seconds: a ceiling for a loaded 2-core machine, not the expected time


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _servers() -> tuple[str, str] | None:
    """(PostgreSQL admin URL, Redis URL of db 8) when both answer, else None."""
    database = os.environ.get("DATABASE_URL", "")
    if not database.startswith(("postgres://", "postgresql://")):
        database = "postgres://postgres@127.0.0.1:5432/postgres"
    redis = os.environ.get("REDIS_URL", "") or "redis://127.0.0.1:6379/0"
    db_parts, redis_parts = urlsplit(database), urlsplit(redis)
    if not _answers(db_parts.hostname or "127.0.0.1", db_parts.port or 5432):
        return None
    if not _answers(redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379):
        return None
    return database, urlunsplit(redis_parts._replace(path=f"/{REDIS_DB}"))


def _need(what: str, ok: bool) -> None:
    if ok:
        return
    message = f"{what} is missing (make test installs it with apt-get as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate chain, server key) for HOST and loopback."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Purple Visits test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "site.pem",
        directory / "site.key",
    )
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


@dataclass
class Topology:
    env: dict[str, str]
    logs: Path
    site_url: str
    https_port: int
    ca: Path
    metrics_token: str
    web_ports: list[int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *command: str, **extra: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command or [str(ENTRYPOINT), name.split("-")[0]],
                cwd=ROOT,
                env={**self.env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def run(self, *args: str, timeout: float = 300, **extra: str) -> str:
        result = subprocess.run(
            [str(ENTRYPOINT), *args],
            cwd=ROOT,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"{args} failed: {result.stdout}\n{result.stderr}")
        return result.stdout

    def seed(self, *args: str) -> dict[str, str]:
        out = subprocess.run(
            [str(VENV_BIN / "python"), "-m", "tests.production.seed", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    def healthy(self, *args: str, **extra: str) -> bool:
        result = subprocess.run(
            [str(ENTRYPOINT), "healthcheck", *args],
            cwd=ROOT,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.returncode == 0

    def wait_healthy(self, *args: str, **extra: str) -> None:
        deadline = time.monotonic() + CEILING
        while not self.healthy(*args, **extra):
            for name, process in self.processes.items():
                if process.poll() is not None and not name.startswith("killed"):
                    raise AssertionError(f"{name} exited: {self.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"healthcheck {args} still failing after {CEILING} s")
            time.sleep(1)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    servers = _servers()
    if servers is None:
        pytest.skip("PostgreSQL and Redis do not both answer on this machine")
    admin_url, redis_url = servers
    _need("caddy", shutil.which("caddy") is not None)
    _need("chromium", shutil.which("chromium") is not None)
    import psycopg
    import redis

    base = tmp_path_factory.mktemp("production")
    logs = base / "logs"
    logs.mkdir()
    ca, cert, key = make_certificates(base)
    database = f"prod_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    redis.Redis.from_url(redis_url).flushdb()
    https_port, http_port = _free_port(), _free_port()
    site_url = f"https://{HOST}:{https_port}"
    web_ports = [_free_port(), _free_port()]
    token = secrets.token_urlsafe(32)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "PYTEST_CURRENT_TEST", "TESTING"}
    }
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        DJANGO_SETTINGS_MODULE="purplevisits.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        FACE_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        SITE_URL=site_url,
        ALLOWED_HOSTS=HOST,
        CSRF_TRUSTED_ORIGINS=site_url,
        TRUSTED_PROXY_COUNT="1",
        DATABASE_URL=urlunsplit(urlsplit(admin_url)._replace(path=f"/{database}")),
        DATABASE_POOL_SIZE="4",
        REDIS_URL=redis_url,
        RELAY_IN_PROCESS="false",
        METRICS_TOKEN=token,
        TURN_URLS=f"turn:{HOST}:3478",
        TURN_SECRET=secrets.token_urlsafe(32),
        VAR_DIR=str(base / "var"),
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        # Two cores for everything here: the face checks' CPU is not under test.
        FACE_CHECKS_ENABLED="false",
        WORKER_CONCURRENCY="1",
        LOG_LEVEL="WARNING",
        CELERY_LOG_LEVEL="WARNING",
        HOME=str(base / "home"),
    )
    (base / "home").mkdir()
    topology = Topology(env, logs, site_url, https_port, ca, token, web_ports)
    try:
        topology.run("migrate")  # the one-off job, before any process starts
        topology.run("collectstatic")  # what the image build runs
        for n, port in enumerate(web_ports, 1):
            topology.start(f"web-{n}", WEB_BIND="127.0.0.1", WEB_PORT=str(port))
        for n in (1, 2):
            # Two relay hosts of one process each (`runrelay --processes` has its own
            # tests: tests/calls/test_runrelay.py); the call must move between them.
            topology.start(f"relay-{n}", RELAY_ID=f"relay-{n}", RELAY_PROCESSES="1")
        topology.start("worker")
        topology.start("beat")
        topology.start(
            "caddy",
            "caddy",
            "run",
            "--config",
            str(CADDYFILE),
            "--adapter",
            "caddyfile",
            SITE_ADDRESS=HOST,
            HTTPS_PORT=str(https_port),
            HTTP_PORT=str(http_port),
            CADDY_TLS="tls-files",
            TLS_CERT_FILE=str(cert),
            TLS_KEY_FILE=str(key),
            WEB_UPSTREAMS=" ".join(f"127.0.0.1:{p}" for p in web_ports),
            XDG_DATA_HOME=str(base / "caddy-data"),
            XDG_CONFIG_HOME=str(base / "caddy-config"),
        )
        for port in web_ports:
            topology.wait_healthy("web", WEB_PORT=str(port))
        for n in (1, 2):
            topology.wait_healthy("relay", RELAY_ID=f"relay-{n}")
        topology.wait_healthy("worker")
        topology.wait_healthy("beat")
        yield topology
    finally:
        topology.stop()
        for name in topology.processes:
            if "Traceback" in topology.log(name):
                print(f"--- {name} log ---\n{topology.log(name)[-4000:]}")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        redis.Redis.from_url(redis_url).flushdb()
