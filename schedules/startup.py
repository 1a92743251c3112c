"""Start the scheduler in a serving process: called next to executions.startup.start_sweeping
(c4c_site.asgi for each daphne process, c4c_site.celery when a worker node is ready), never from
management commands or tests. C4C_SCHEDULES_ENABLED=false leaves it off."""


def start_scheduling() -> None:
    from .conf import app_settings
    from .scheduler import scheduler

    if app_settings.C4C_SCHEDULES_ENABLED:
        scheduler.start()
