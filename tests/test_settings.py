"""Settings refuse unsafe production configuration and keep safe local defaults."""

import os
import subprocess
import sys

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


def test_debug_off_without_secret_key_refuses_to_start() -> None:
    result = _import_settings({"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "example.com"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_off_without_allowed_hosts_refuses_to_start() -> None:
    result = _import_settings({"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 50})
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


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
