"""A project that installs the apps and sets none of their settings gets the documented defaults;
one that forgets the event storage, or names a Celery app that is not one, is stopped by
`manage.py check`, not by its first stream or run."""

import os
import socket
import subprocess
import sys

import pytest
from celery import Celery, current_app
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.core.signals import setting_changed
from django.db import connection

from executions.conf import app_settings
from executions.dispatch import celery_app
from workflows.conf import app_settings as workflow_settings

EXECUTIONS_DEFAULTS = {
    "C4C_MAX_PAYLOAD_BYTES": 64 * 1024,
    "C4C_DISPATCH": "inline",
    "C4C_MAX_QUEUED": 1_000,
    "C4C_REPLAY_EVENTS": 500,
    "C4C_REPLAY_CHANNELS": 5_000,
    "C4C_REPLAY_BYTES": 8 * 1024 * 1024,
    "C4C_CELERY_APP": "",
}
WORKFLOWS_DEFAULTS = {
    "C4C_WORKFLOW_DIRS": (),
    "C4C_MAX_STEPS": 10_000,
    "C4C_DELAY_SCALE": 1.0,
    "C4C_MAX_EXPANDED_BYTES": 1024 * 1024,
    "C4C_MAX_DEFINITION_BYTES": 1024 * 1024,
}


def _unset(settings, names) -> None:
    """Unset each setting, and say so as Django's override_settings does for a value it sets:
    pytest-django's `del settings.X` sends no setting_changed, so no app hears of it."""
    for name in names:
        if hasattr(settings, name):
            delattr(settings, name)
            setting_changed.send(sender=None, setting=name, value=None, enter=True)


def test_executions_settings_fall_back_to_their_documented_defaults(settings) -> None:
    _unset(settings, [*EXECUTIONS_DEFAULTS, "C4C_WORKER_THREADS", "C4C_SERVER_ID"])
    for name, default in EXECUTIONS_DEFAULTS.items():
        assert getattr(app_settings, name) == default, name
    assert socket.gethostname() == app_settings.C4C_SERVER_ID


def test_workflows_settings_fall_back_to_their_documented_defaults(settings) -> None:
    _unset(settings, WORKFLOWS_DEFAULTS)
    for name, default in WORKFLOWS_DEFAULTS.items():
        assert getattr(workflow_settings, name) == default, name


def test_a_projects_settings_are_read_once_and_again_when_a_setting_changes(
    settings, tmp_path
) -> None:
    settings.C4C_MAX_PAYLOAD_BYTES = 1_000
    settings.C4C_WORKFLOW_DIRS = [str(tmp_path)]
    assert app_settings.C4C_MAX_PAYLOAD_BYTES == 1_000
    assert (tmp_path,) == workflow_settings.C4C_WORKFLOW_DIRS
    # Kept as a plain attribute: no call reads it again.
    assert vars(app_settings)["C4C_MAX_PAYLOAD_BYTES"] == 1_000
    settings.C4C_MAX_PAYLOAD_BYTES = 2_000
    assert app_settings.C4C_MAX_PAYLOAD_BYTES == 2_000
    _unset(settings, ["C4C_WORKFLOW_DIRS"])
    assert not workflow_settings.C4C_WORKFLOW_DIRS


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_worker_threads_default_to_fewer_on_sqlites_single_writer_read_again_for_another_engine(
    settings,
) -> None:
    _unset(settings, ["C4C_WORKER_THREADS"])
    on_sqlite = connection.vendor == "sqlite"
    threads = app_settings.C4C_WORKER_THREADS
    assert threads == (4 if on_sqlite else 8)
    engine = "django.db.backends.postgresql" if on_sqlite else "django.db.backends.sqlite3"
    settings.DATABASES = {
        **settings.DATABASES,
        "default": {**settings.DATABASES["default"], "ENGINE": engine},
    }
    threads = app_settings.C4C_WORKER_THREADS
    assert threads == (8 if on_sqlite else 4)


def test_check_fails_without_an_event_storage(settings) -> None:
    call_command("check")
    _unset(settings, ["EVENTSTREAM_STORAGE_CLASS"])
    with pytest.raises(SystemCheckError, match=r"executions\.E001"):
        call_command("check")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("c4c_site.nowhere.app", "cannot be imported"),
        ("c4c_site.celery.Celery.nothing", "cannot be imported"),
        ("c4c_site.settings.C4C_DISPATCH", "is a str, not a Celery app"),
    ],
)
def test_check_fails_when_the_celery_app_names_no_celery_app(settings, path, problem) -> None:
    settings.C4C_DISPATCH = "celery"
    settings.C4C_CELERY_APP = path
    with pytest.raises(SystemCheckError, match=rf"executions\.E002.*{problem}"):
        call_command("check")


def test_runs_are_sent_with_the_named_celery_app_or_else_the_current_one(settings) -> None:
    from c4c_site.celery import app

    assert isinstance(app, Celery)
    settings.C4C_DISPATCH = "celery"
    call_command("check")
    assert celery_app() is app
    settings.C4C_CELERY_APP = ""
    assert celery_app() is current_app


# What a web process loads before its first request (c4c_site.asgi also starts sweeping and
# scheduling on the database, which a test must not do to the developer's).
_WEB_PROCESS = """
import sys, django
django.setup()
from django.urls import get_resolver
get_resolver()._populate()
import executions.dispatch, executions.startup, schedules.startup
print(sorted(m for m in sys.modules if 'celery' in m))
"""


# A plain script reads a default before it configures Django's settings.
_SCRIPT = """
from django.conf import settings
from workflows.conf import app_settings
before = app_settings.C4C_MAX_STEPS
settings.configure(C4C_MAX_STEPS=5)
print(before, app_settings.C4C_MAX_STEPS)
"""


@pytest.mark.slow
def test_a_default_read_before_the_settings_are_configured_is_not_kept() -> None:
    read = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.split() == ["10000", "5"]


@pytest.mark.slow
def test_a_web_process_on_inline_dispatch_never_loads_celery() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", _WEB_PROCESS],
        env={**os.environ, "C4C_DISPATCH": "inline", "DJANGO_SETTINGS_MODULE": "c4c_site.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
