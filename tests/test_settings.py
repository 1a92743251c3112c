"""Settings refuse unsafe production configuration and keep safe local defaults."""

import importlib.util
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from unittest import mock

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

import c4c_site.settings
from c4c_site.settings import redis_options

_SETTINGS = Path(c4c_site.settings.__file__)
_OURS = ("DJANGO_", "C4C_", "EVENTSTREAM_", "DATABASE_URL")


def _settings(env: dict[str, str]) -> ModuleType:
    """c4c_site/settings.py run afresh under `env` and none of our variables from this process.

    Run in this process under another module name (django.conf.settings is untouched): a
    subprocess per case cost ~0.15 s each, a third of the fast suite's settings time.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    spec = importlib.util.spec_from_file_location("c4c_site._settings_under_test", _SETTINGS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        spec.loader.exec_module(module)
    return module


def _refused(env: dict[str, str]) -> str:
    """The message settings refuse to load with under `env`."""
    with pytest.raises(ImproperlyConfigured) as refused:
        _settings(env)
    return str(refused.value)


def test_default_database_is_sqlite_in_wal_with_immediate_transactions() -> None:
    db = settings.DATABASES["default"]
    if connection.vendor != "sqlite":
        pytest.skip("DATABASE_URL points at another database")
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["timeout"] >= 5


def test_first_run_on_loopback_is_debug_off_with_a_generated_private_key(tmp_path: Path) -> None:
    key_file = tmp_path / ".secret-key"
    values = vars(_settings({"DJANGO_SECRET_KEY_FILE": str(key_file)}))
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert len(values["SECRET_KEY"]) >= 50
    assert key_file.read_text().strip() == values["SECRET_KEY"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert values["SESSION_COOKIE_SECURE"] is False, "plain http on loopback keeps its session"
    assert list(tmp_path.iterdir()) == [key_file]


def test_generated_key_survives_restarts_so_sessions_do(tmp_path: Path) -> None:
    env = {"DJANGO_SECRET_KEY_FILE": str(tmp_path / ".secret-key")}
    assert _settings(env).SECRET_KEY == _settings(env).SECRET_KEY
    other = _settings({"DJANGO_SECRET_KEY_FILE": str(tmp_path / "another")})
    assert other.SECRET_KEY != _settings(env).SECRET_KEY


def test_secret_key_file_is_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".secret-key"], cwd=settings.BASE_DIR, check=False
    )
    assert ignored.returncode == 0


def test_debug_is_an_explicit_opt_in(tmp_path: Path) -> None:
    env = {"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY_FILE": str(tmp_path / "key")}
    assert _settings(env).DEBUG is True


def test_unwritable_key_file_refuses_to_start_naming_the_variable(tmp_path: Path) -> None:
    refused = _refused({"DJANGO_SECRET_KEY_FILE": str(tmp_path / "missing" / "key")})
    assert "set DJANGO_SECRET_KEY" in refused


def test_hosts_beyond_loopback_without_secret_key_refuse_to_start() -> None:
    refused = _refused({"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "example.com"})
    assert "DJANGO_SECRET_KEY must be set" in refused


def test_short_secret_key_refuses_to_start() -> None:
    assert "32+ characters" in _refused({"DJANGO_SECRET_KEY": "short"})


def test_empty_allowed_hosts_refuse_to_start() -> None:
    refused = _refused({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": ""})
    assert "DJANGO_ALLOWED_HOSTS must name at least one host" in refused


def test_hosts_beyond_loopback_get_secure_cookies() -> None:
    values = _settings({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "example.com"})
    assert values.SESSION_COOKIE_SECURE is True
    assert values.CSRF_COOKIE_SECURE is True


def test_debug_off_with_wildcard_host_refuses_to_start() -> None:
    refused = _refused(
        {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "*"}
    )
    assert "'*'" in refused


def test_debug_off_with_real_values_starts() -> None:
    values = _settings(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "x" * 50,
            "DJANGO_ALLOWED_HOSTS": "example.com",
        }
    )
    assert values.DEBUG is False
    assert values.ALLOWED_HOSTS == ["example.com"]


def test_malformed_boolean_is_refused() -> None:
    refused = _refused({"DJANGO_DEBUG": "maybe"})
    assert "DJANGO_DEBUG must be true or false" in refused


def test_run_threads_default_to_fewer_on_sqlite_than_on_postgresql() -> None:
    sqlite = _settings({"DATABASE_URL": "sqlite:////tmp/c4c-settings.sqlite3"})
    postgres = _settings({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/c4c"})
    assert sqlite.C4C_WORKER_THREADS == 4
    assert postgres.C4C_WORKER_THREADS == 8


def test_run_threads_follow_c4c_worker_threads() -> None:
    env = {"DATABASE_URL": "sqlite:////tmp/c4c-settings.sqlite3", "C4C_WORKER_THREADS": "6"}
    assert _settings(env).C4C_WORKER_THREADS == 6


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
    values = _settings(env)
    redis = {"password": "pw", "host": "127.0.0.1", "port": 6390, "db": 4}
    assert redis == values.EVENTSTREAM_REDIS
    assert redis == values.EVENTSTREAM_STORAGE_CONNECTION
    assert values.EVENTSTREAM_STORAGE_CLASS == "django_eventstream.storage.RedisStorage"


def test_without_variables_events_stay_in_process_and_runs_belong_to_this_host() -> None:
    s = _settings({})
    assert (
        hasattr(s, "EVENTSTREAM_REDIS"),
        s.EVENTSTREAM_STORAGE_CLASS,
        s.C4C_REPLAY_EVENTS,
        s.C4C_REPLAY_CHANNELS,
        s.C4C_REPLAY_BYTES,
        s.C4C_SERVER_ID,
        s.CELERY_TASK_DEFAULT_QUEUE,
    ) == (
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
    s = _settings(env)
    assert (s.C4C_REPLAY_EVENTS, s.C4C_REPLAY_CHANNELS, s.C4C_REPLAY_BYTES) == (7, 8, 9)
    refused = _refused({"C4C_REPLAY_BYTES": "0"})
    assert refused.endswith("C4C_REPLAY_BYTES must be at least 1, not 0")


def test_server_id_follows_its_variable_and_may_not_contain_a_slash() -> None:
    assert _settings({"C4C_SERVER_ID": "web-1:8000"}).C4C_SERVER_ID == "web-1:8000"
    assert "must not contain '/'" in _refused({"C4C_SERVER_ID": "web/1"})


@pytest.mark.slow
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
