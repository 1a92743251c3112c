"""The schedules settings: read from Django's settings (c4c_site.settings sets them from the
environment), the default where unset; a value too small stops with its name."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from schedules.conf import app_settings
from tests.test_settings import _refused, _settings


def test_defaults_hold_when_nothing_is_set() -> None:
    loaded = _settings({})

    assert loaded.C4C_SCHEDULE_MAX_CATCHUP == 100
    assert loaded.C4C_SCHEDULE_TICK_SECONDS <= 1  # a slot fires within about a second
    assert loaded.C4C_SCHEDULES_ENABLED


def test_the_environment_sets_them() -> None:
    loaded = _settings({"C4C_SCHEDULE_MAX_CATCHUP": "7", "C4C_SCHEDULES_ENABLED": "false"})

    assert loaded.C4C_SCHEDULE_MAX_CATCHUP == 7
    assert loaded.C4C_SCHEDULES_ENABLED is False


def test_the_app_reads_the_setting(settings) -> None:
    settings.C4C_SCHEDULE_GRACE_SECONDS = 3

    assert app_settings.C4C_SCHEDULE_GRACE_SECONDS == 3


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("C4C_SCHEDULE_MAX_CATCHUP", "lots", "C4C_SCHEDULE_MAX_CATCHUP must be a whole number"),
        ("C4C_SCHEDULE_MAX_CATCHUP", "0", "C4C_SCHEDULE_MAX_CATCHUP must be at least 1"),
        ("C4C_SCHEDULE_GRACE_SECONDS", "soon", "C4C_SCHEDULE_GRACE_SECONDS must be a number"),
        ("C4C_SCHEDULES_ENABLED", "maybe", "C4C_SCHEDULES_ENABLED must be true or false"),
    ],
)
def test_a_malformed_value_is_refused_naming_it(name: str, value: str, message: str) -> None:
    assert message in _refused({name: value})


def test_a_setting_too_small_is_refused_naming_it(settings) -> None:
    settings.C4C_SCHEDULE_TICK_SECONDS = 0

    with pytest.raises(ImproperlyConfigured, match="C4C_SCHEDULE_TICK_SECONDS must be at least"):
        _ = app_settings.C4C_SCHEDULE_TICK_SECONDS
