"""The schedules app's settings: every C4C_SCHEDULE_* name it reads, its default and what it is for.

Each is read once and kept until a setting changes (workflows.conf.setting), so a test's
`settings` override applies at once; a value out of range is refused, and never kept.
c4c_site.settings sets each from the environment; a project that installs the app sets only
what it wants to change.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from workflows.conf import AppSettings, setting


def _number(name: str, default: float, *, minimum: float) -> float:
    value = float(getattr(settings, name, default))
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, not {value:g}")
    return value


class SchedulesSettings(AppSettings):
    """Typed, documented reads of the project's settings; the default where one is not set."""

    @setting
    def C4C_SCHEDULE_MAX_CATCHUP(self) -> int:
        """The most slots one schedule fires in one go after downtime (catch-up "all"), and the
        most it keeps queued (overlap "queue"). Past it the oldest missed slots are dropped (a
        warning counts them) and a further queued slot is recorded as skipped."""
        return int(_number("C4C_SCHEDULE_MAX_CATCHUP", 100, minimum=1))

    @setting
    def C4C_SCHEDULE_GRACE_SECONDS(self) -> float:
        """How late a slot may be found and still count as on time: a slot older than this when
        a scheduler first sees it was missed (no process was running) and its schedule's
        catch-up policy decides whether it fires."""
        return _number("C4C_SCHEDULE_GRACE_SECONDS", 10, minimum=0)

    @setting
    def C4C_SCHEDULE_TICK_SECONDS(self) -> float:
        """How often each serving process looks for due slots: a slot fires within about this
        long of its time."""
        return _number("C4C_SCHEDULE_TICK_SECONDS", 0.5, minimum=0.05)

    @setting
    def C4C_SCHEDULE_RETRY_SECONDS(self) -> float:
        """How long a claimed slot whose run has not started (its process died just then, or the
        run pool was full) waits before any scheduler starts it again, with the same
        idempotency key so it still starts at most one run."""
        return _number("C4C_SCHEDULE_RETRY_SECONDS", 10, minimum=0.1)

    @setting
    def C4C_SCHEDULES_ENABLED(self) -> bool:
        """Whether serving processes run the scheduler (default true); false leaves it to
        `manage.py schedules run` processes, or turns schedules off."""
        return bool(getattr(settings, "C4C_SCHEDULES_ENABLED", True))


app_settings = SchedulesSettings()
