import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from purplevisits.env import (
    env_bool,
    env_int,
    env_json,
    env_list,
    env_str,
    parse_database_url,
    parse_redis_url,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("YES", True), ("1", True), ("off", False), ("0", False), ("", False)],
)
def test_env_bool(raw: str, expected: bool) -> None:
    assert env_bool("DEBUG", True, environ={"DEBUG": raw}) is expected


def test_env_bool_rejects_maybe_naming_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", True, environ={"DEBUG": "maybe"})


def test_env_bool_default() -> None:
    assert env_bool("DEBUG", True, environ={}) is True


def test_env_int() -> None:
    assert env_int("PORT", 1, environ={"PORT": " 42 "}) == 42
    assert env_int("PORT", 7, environ={}) == 7
    with pytest.raises(ImproperlyConfigured, match="PORT='4x' is not a whole number"):
        env_int("PORT", 1, environ={"PORT": "4x"})
    with pytest.raises(ImproperlyConfigured, match="above the maximum"):
        env_int("PORT", 1, maximum=10, environ={"PORT": "11"})
    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env_int("PORT", 1, minimum=0, environ={"PORT": "-1"})


def test_env_list_and_str() -> None:
    assert env_list("HOSTS", environ={"HOSTS": "a.example, b.example,,"}) == [
        "a.example",
        "b.example",
    ]
    assert env_list("HOSTS", ["x"], environ={}) == ["x"]
    assert env_str("NAME", "d", environ={}) == "d"
    with pytest.raises(ImproperlyConfigured, match="SECRET must be set"):
        env_str("SECRET", environ={})


def test_env_json() -> None:
    assert env_json("ICE", [], environ={"ICE": '[{"urls": "stun:x"}]'}) == [{"urls": "stun:x"}]
    with pytest.raises(ImproperlyConfigured, match="ICE is not valid JSON"):
        env_json("ICE", [], environ={"ICE": "[{"})


def test_database_urls(tmp_path: Path) -> None:
    pg = parse_database_url(
        "DATABASE_URL",
        "postgres://u:p%40ss@db.example:6543/prod?sslmode=require",
        base_dir=tmp_path,
    )
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql",
        "prod",
        "u",
        "p@ss",
        "db.example",
        "6543",
    )
    assert pg["OPTIONS"] == {"sslmode": "require"}
    lite = parse_database_url("DATABASE_URL", "sqlite:///var/x.db", base_dir=tmp_path)
    assert lite["NAME"] == str(tmp_path / "var/x.db")
    absolute = parse_database_url("DATABASE_URL", "sqlite:////srv/x.db", base_dir=tmp_path)
    assert absolute["NAME"] == "/srv/x.db"


@pytest.mark.parametrize(
    "url", ["nonsense", "mysql://h/db", "postgres://host", "postgres://h:notaport/db", "sqlite://"]
)
def test_bad_database_urls_name_the_variable(url: str, tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        parse_database_url("DATABASE_URL", url, base_dir=tmp_path)


def test_redis_url() -> None:
    assert parse_redis_url("REDIS_URL", "redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL='http://x' is not a Redis URL"):
        parse_redis_url("REDIS_URL", "http://x")


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    environment.update(env)
    environment.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL='nonsense' is not a database URL"),
        ({"REDIS_URL": "nonsense"}, "REDIS_URL='nonsense' is not a Redis URL"),
        ({"DEBUG": "false", "ALLOWED_HOSTS": "visits.example"}, "SECRET_KEY must be set"),
        ({"WEB_THREADS": "0"}, "WEB_THREADS"),
        ({"DATABASE_PREPARE_THRESHOLD": "-1"}, "DATABASE_PREPARE_THRESHOLD"),
        ({"SCHEDULE_CACHE_SECONDS": "lots"}, "SCHEDULE_CACHE_SECONDS"),
    ],
)
def test_bad_environment_stops_start_up(env: dict[str, str], message: str) -> None:
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


SHOW_DATABASE = (
    "import json; from django.conf import settings; "
    "print(json.dumps([settings.DATABASES['default']['OPTIONS'], settings.WEB_THREADS]))"
)


@pytest.mark.parametrize(
    ("env", "options"),
    [
        ({}, {"server_side_binding": True, "prepare_threshold": 5}),
        (
            {"DATABASE_PREPARE_THRESHOLD": "20"},
            {"server_side_binding": True, "prepare_threshold": 20},
        ),
        ({"DATABASE_PREPARE_THRESHOLD": "0"}, {}),
    ],
)
def test_postgresql_prepares_repeated_statements_unless_told_not_to(  # type: ignore[no-untyped-def]
    env, options
) -> None:
    result = run_manage(
        "shell",
        "-c",
        SHOW_DATABASE,
        DATABASE_URL="postgres://u@127.0.0.1:1/x",
        DATABASE_POOL_SIZE="0",
        WEB_THREADS="6",
        **env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [options, 6]


def test_sqlite_has_no_prepared_statement_options() -> None:
    result = run_manage("shell", "-c", SHOW_DATABASE)
    assert result.returncode == 0, result.stderr
    database_options, threads = json.loads(result.stdout.splitlines()[-1])
    assert "server_side_binding" not in database_options and threads == 4


def test_production_settings_pass_the_deployment_checklist() -> None:
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="kq3#v8Lz!pW2mT6yR9sB4nD7fH1jX5cG0aE-uY8iO3wQ2zV6xN",
        ALLOWED_HOSTS="visits.example.org",
        SITE_URL="https://visits.example.org",
        FACE_ENCRYPTION_KEY="Jk1TrUJ9cXv5o2sYH4mB7nQ8wE3rT6yU1iO0pA9sD2f=",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout
