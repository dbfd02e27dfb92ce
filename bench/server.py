"""Starting the service for a bench: production settings, loopback only, bounded waits.

The benches measure what a prison would run, so the servers they start have
``DEBUG=false`` (Django's debug mode records every query and serves the debug error
page) with a throw-away secret key; plain HTTP on 127.0.0.1 needs no HTTPS redirect.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import secrets
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One secret key and one face-encryption key for the whole bench run, in this process
# too: the bench seeds sessions and data with them and the servers it starts read them.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
os.environ.setdefault(
    "FACE_ENCRYPTION_KEY", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
)


def server_environment(
    database_url: str, *, redis_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a bench's daphne / worker / relay: production settings."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "purplevisits.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SITE_URL": "http://127.0.0.1",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


_static_collected = False


def collect_static(env: dict[str, str]) -> None:
    """Production settings serve hashed static names from a manifest: build it once."""
    global _static_collected
    if not _static_collected:
        subprocess.run(
            [str(ROOT / ".venv/bin/python"), "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        _static_collected = True


def start_daphne(
    env: dict[str, str], port: int, *, log: Path | None = None, wait: bool = True
) -> subprocess.Popen[bytes]:
    """daphne on 127.0.0.1:``port``; output to ``log`` (else discarded)."""
    collect_static(env)
    command = [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(port)]
    command.append("purplevisits.asgi:application")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
    else:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    return wait_until_serving(process, port) if wait else process


def wait_until_serving(
    process: subprocess.Popen[bytes], port: int, timeout: float = 30
) -> subprocess.Popen[bytes]:
    """Return the server once /healthz answers on 127.0.0.1:port (``timeout`` s at most)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
            conn.getresponse().read()
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the server on port {port} did not start within {timeout:.0f} s")


def start_celery_worker(env: dict[str, str], *, log: Path | None = None) -> subprocess.Popen[bytes]:
    """A Celery worker (solo pool, nice 10) for a bench whose servers use Redis: the
    emails and other tasks run there, off the request path, as in production."""
    command = ["nice", "-n", "10", str(ROOT / ".venv/bin/celery"), "-A", "purplevisits"]
    command += ["worker", "-P", "solo", "-l", "warning"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    finally:
        if log is not None:
            output.close()  # type: ignore[union-attr]


def postgres_admin_url(bench_database: str) -> str | None:
    """``DATABASE_URL`` when it is PostgreSQL (the bench creates ``bench_database`` on
    that server); otherwise say why the bench is skipped and return None."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url
    print(f"skipped: set DATABASE_URL to a PostgreSQL server (the bench creates {bench_database})")
    return None


def loopback_redis_url(name: str = "REDIS_URL") -> str | None:
    """``REDIS_URL`` from the environment, refused unless it is on this machine."""
    from urllib.parse import urlsplit

    url = os.environ.get(name) or None
    if url and urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"{name} must be on loopback")
    return url


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (Linux /proc); 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU of this machine's PostgreSQL (Linux /proc): every ``postgres`` process, with
    the backends that have exited counted in the postmaster's reaped children. 0 where
    PostgreSQL runs elsewhere or /proc is missing."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
        except OSError:
            continue
        if head.split("(", 1)[-1] != "postgres":
            continue
        fields = rest.split()
        total += sum(int(fields[n]) for n in (11, 12, 13, 14))
    return total / os.sysconf("SC_CLK_TCK")


def signed_in_session(user: object, *, staff: bool = False) -> str:
    """A database session for ``user`` as signing in makes it (needs Django set up)."""
    from django.contrib.sessions.backends.db import SessionStore

    from purplevisits.middleware import IS_STAFF, LAST_ACTIVITY, SESSION_STARTED
    from purplevisits.session_rules import mark_mfa_passed

    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)  # type: ignore[attr-defined]
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()  # type: ignore[attr-defined]
    # What purplevisits.signals records at sign-in, so no request has to.
    store[SESSION_STARTED] = store[LAST_ACTIVITY] = time.time()
    store[IS_STAFF] = staff
    if staff:  # as if the TOTP step was done in this session (session_rules)
        mark_mfa_passed(store, user)
    store.create()
    return store.session_key or ""


def machine_speed() -> float:
    """Seconds for a fixed pure-Python loop, printed next to a bench's figures.

    The host is shared: the same loop took 0.22–1.09 s on different days and hours
    here, and a bench's figures move with it. Compare runs made back to back."""
    started = time.perf_counter()
    total = 0
    for number in range(5_000_000):
        total += number * number
    return time.perf_counter() - started


def add_processes_argument(parser: argparse.ArgumentParser) -> None:
    """``--processes``: how many daphne processes a bench starts (1..8)."""
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        choices=range(1, 9),
        metavar="N",
        help="daphne processes, 1..8 (ports --port, --port+1, …; clients spread over them "
        "as a load balancer would). Default: one per core",
    )
