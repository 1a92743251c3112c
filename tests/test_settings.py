"""Settings refuse unsafe production configuration and keep safe local defaults."""

import ast
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from c4c_site.settings import redis_options


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


def _setting(env: dict[str, str], expression: str) -> Any:
    """`expression` evaluated on c4c_site.settings imported under `env` (and no C4C_ vars)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C4C_", "EVENTSTREAM_"))}
    result = subprocess.run(
        [sys.executable, "-c", f"import c4c_site.settings as s; print(repr(({expression})))"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout)


def _refused(env: dict[str, str]) -> str:
    result = _import_settings(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_events_redis_url_keeps_user_password_and_database() -> None:
    assert redis_options("X", "redis://c4c:s3cr%40t@10.0.0.5:6380/3") == {
        "username": "c4c",
        "password": "s3cr@t",
        "host": "10.0.0.5",
        "port": 6380,
        "db": 3,
    }
    assert redis_options("X", "redis://:pw@localhost") == {"password": "pw", "host": "localhost"}


def test_events_redis_url_over_tls_or_a_socket_becomes_redis_keywords() -> None:
    tls = redis_options("X", "rediss://:pw@cache.example.com:6380/0?ssl_cert_reqs=required")
    assert tls["ssl"] is True
    assert tls["ssl_cert_reqs"] == "required"
    assert "connection_class" not in tls
    assert redis_options("X", "unix:///run/redis.sock?db=2") == {
        "unix_socket_path": "/run/redis.sock",
        "db": 2,
    }


@pytest.mark.parametrize(
    "url",
    ["http://:hunter2@host:6379/0", "redis://:hunter2@host:port/0", "redis://:hunter2@host/zero"],
)
def test_malformed_events_redis_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^C4C_EVENTS_REDIS_URL: ") as refused:
        redis_options("C4C_EVENTS_REDIS_URL", url)
    assert "hunter2" not in str(refused.value)


def test_events_redis_url_configures_django_eventstream_and_its_storage() -> None:
    env = {"C4C_EVENTS_REDIS_URL": "redis://:pw@127.0.0.1:6390/4"}
    expression = (
        "s.EVENTSTREAM_REDIS, s.EVENTSTREAM_STORAGE_CONNECTION, s.EVENTSTREAM_STORAGE_CLASS"
    )
    redis = {"password": "pw", "host": "127.0.0.1", "port": 6390, "db": 4}
    assert _setting(env, expression) == (redis, redis, "django_eventstream.storage.RedisStorage")


def test_without_variables_events_stay_in_process_and_runs_belong_to_this_host() -> None:
    expression = (
        "hasattr(s, 'EVENTSTREAM_REDIS'), s.EVENTSTREAM_STORAGE_CLASS, s.C4C_REPLAY_EVENTS, "
        "s.C4C_REPLAY_CHANNELS, s.C4C_REPLAY_BYTES, s.C4C_SERVER_ID, s.CELERY_TASK_DEFAULT_QUEUE"
    )
    assert _setting({}, expression) == (
        False,
        "executions.live.buffer.MemoryEventStorage",
        500,
        5_000,
        8 * 1024 * 1024,
        socket.gethostname(),
        "c4c",
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("EVENTSTREAM_REDIS_URL", "C4C_EVENTS_REDIS_URL"),
        ("EVENTSTREAM_REPLAY_BYTES", "C4C_REPLAY_BYTES"),
    ],
)
def test_a_renamed_variable_is_refused_with_its_new_name(old: str, new: str) -> None:
    assert _refused({old: "1"}).endswith(f"{old} was renamed {new}")


def test_replay_bounds_follow_their_variables_and_must_be_positive() -> None:
    env = {"C4C_REPLAY_EVENTS": "7", "C4C_REPLAY_CHANNELS": "8", "C4C_REPLAY_BYTES": "9"}
    expression = "s.C4C_REPLAY_EVENTS, s.C4C_REPLAY_CHANNELS, s.C4C_REPLAY_BYTES"
    assert _setting(env, expression) == (7, 8, 9)
    refused = _refused({"C4C_REPLAY_BYTES": "0"})
    assert refused.endswith("C4C_REPLAY_BYTES must be at least 1, not 0")


def test_server_id_follows_its_variable_and_may_not_contain_a_slash() -> None:
    assert _setting({"C4C_SERVER_ID": "web-1:8000"}, "s.C4C_SERVER_ID") == "web-1:8000"
    assert "must not contain '/'" in _refused({"C4C_SERVER_ID": "web/1"})


def test_celery_queue_is_the_celery_apps_default_queue() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("C4C_")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from c4c_site.celery import app; print(app.conf.task_default_queue)",
        ],
        env={**clean, "C4C_CELERY_QUEUE": "c4c-blue"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "c4c-blue"
