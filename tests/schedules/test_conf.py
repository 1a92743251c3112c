"""The schedules settings: a Django setting wins, else the environment variable, else the
default; a malformed or too small value stops with its name."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from schedules.conf import app_settings


def test_defaults_hold_when_nothing_is_set(monkeypatch) -> None:
    monkeypatch.delenv("C4C_SCHEDULE_MAX_CATCHUP", raising=False)

    assert app_settings.C4C_SCHEDULE_MAX_CATCHUP == 100
    assert app_settings.C4C_SCHEDULE_TICK_SECONDS <= 1  # a slot fires within about a second
    assert app_settings.C4C_SCHEDULES_ENABLED


def test_the_environment_sets_what_settings_do_not(monkeypatch) -> None:
    monkeypatch.setenv("C4C_SCHEDULE_MAX_CATCHUP", "7")
    monkeypatch.setenv("C4C_SCHEDULES_ENABLED", "false")

    assert app_settings.C4C_SCHEDULE_MAX_CATCHUP == 7
    assert not app_settings.C4C_SCHEDULES_ENABLED


def test_a_setting_wins_over_the_environment(monkeypatch, settings) -> None:
    monkeypatch.setenv("C4C_SCHEDULE_GRACE_SECONDS", "99")
    settings.C4C_SCHEDULE_GRACE_SECONDS = 3

    assert app_settings.C4C_SCHEDULE_GRACE_SECONDS == 3


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("C4C_SCHEDULE_MAX_CATCHUP", "lots", "C4C_SCHEDULE_MAX_CATCHUP must be a number"),
        ("C4C_SCHEDULE_MAX_CATCHUP", "0", "C4C_SCHEDULE_MAX_CATCHUP must be at least 1"),
        ("C4C_SCHEDULES_ENABLED", "maybe", "C4C_SCHEDULES_ENABLED must be true or false"),
    ],
)
def test_a_malformed_value_is_refused_naming_it(monkeypatch, name, value, message) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured, match=message):
        getattr(app_settings, name)
