"""Settings refuse unsafe production configuration and keep safe local defaults."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings


def _import_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "-c", "import c4c_site.settings"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_default_database_is_sqlite_in_wal_with_immediate_transactions() -> None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("DATABASE_URL points at another database")
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["timeout"] >= 5


def _settings_of(env: dict[str, str]) -> dict[str, Any]:
    """The security settings a process started with `env` (and no DJANGO_* of ours) gets."""
    code = (
        "import json, c4c_site.settings as s; print(json.dumps({n: getattr(s, n) for n in "
        "['DEBUG', 'SECRET_KEY', 'ALLOWED_HOSTS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE']}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_first_run_on_loopback_is_debug_off_with_a_generated_private_key(tmp_path: Path) -> None:
    key_file = tmp_path / ".secret-key"
    values = _settings_of({"DJANGO_SECRET_KEY_FILE": str(key_file)})
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert len(values["SECRET_KEY"]) >= 50
    assert key_file.read_text().strip() == values["SECRET_KEY"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert values["SESSION_COOKIE_SECURE"] is False, "plain http on loopback keeps its session"
    assert list(tmp_path.iterdir()) == [key_file]


def test_generated_key_survives_restarts_so_sessions_do(tmp_path: Path) -> None:
    env = {"DJANGO_SECRET_KEY_FILE": str(tmp_path / ".secret-key")}
    assert _settings_of(env)["SECRET_KEY"] == _settings_of(env)["SECRET_KEY"]
    other = _settings_of({"DJANGO_SECRET_KEY_FILE": str(tmp_path / "another")})
    assert other["SECRET_KEY"] != _settings_of(env)["SECRET_KEY"]


def test_secret_key_file_is_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".secret-key"], cwd=settings.BASE_DIR, check=False
    )
    assert ignored.returncode == 0


def test_debug_is_an_explicit_opt_in(tmp_path: Path) -> None:
    env = {"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY_FILE": str(tmp_path / "key")}
    assert _settings_of(env)["DEBUG"] is True


def test_unwritable_key_file_refuses_to_start_naming_the_variable(tmp_path: Path) -> None:
    result = _import_settings({"DJANGO_SECRET_KEY_FILE": str(tmp_path / "missing" / "key")})
    assert result.returncode != 0
    assert "set DJANGO_SECRET_KEY" in result.stderr


def test_hosts_beyond_loopback_without_secret_key_refuse_to_start() -> None:
    result = _import_settings({"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "example.com"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_short_secret_key_refuses_to_start() -> None:
    result = _import_settings({"DJANGO_SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "32+ characters" in result.stderr


def test_empty_allowed_hosts_refuse_to_start() -> None:
    result = _import_settings({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": ""})
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS must name at least one host" in result.stderr


def test_hosts_beyond_loopback_get_secure_cookies() -> None:
    values = _settings_of({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "example.com"})
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True


def test_debug_off_with_wildcard_host_refuses_to_start() -> None:
    result = _import_settings(
        {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "*"}
    )
    assert result.returncode != 0
    assert "'*'" in result.stderr


def test_debug_off_with_real_values_starts() -> None:
    result = _import_settings(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "x" * 50,
            "DJANGO_ALLOWED_HOSTS": "example.com",
        }
    )
    assert result.returncode == 0, result.stderr


def test_malformed_boolean_is_refused() -> None:
    result = _import_settings({"DJANGO_DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be true or false" in result.stderr


def _worker_threads(env: dict[str, str]) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "C4C_WORKER_THREADS"}}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import c4c_site.settings as s; print(s.C4C_WORKER_THREADS)",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout)


def test_run_threads_default_to_fewer_on_sqlite_than_on_postgresql() -> None:
    assert _worker_threads({"DATABASE_URL": "sqlite:////tmp/c4c-settings.sqlite3"}) == 4
    assert _worker_threads({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/c4c"}) == 8


def test_run_threads_follow_c4c_worker_threads() -> None:
    env = {"DATABASE_URL": "sqlite:////tmp/c4c-settings.sqlite3", "C4C_WORKER_THREADS": "6"}
    assert _worker_threads(env) == 6
