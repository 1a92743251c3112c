"""Schedules declared in code (workflows.schedules) copied into the table, source "code".

Run by each scheduler before its first tick, so a deployment's code is what its table says:

- a declared schedule not in the table is created, enabled as declared (examples: disabled);
- one already there takes the declaration's workflow, cron, zone, input and policies, and keeps
  its enabled state: turning a schedule on or off in the admin or on the page survives restarts;
- a code schedule no longer declared is disabled, its history kept (delete it in the admin);
- a schedule made in the admin under a declared id is left alone, with a warning.

Several processes starting at once may sync at once: each write is the store's, and a creation
that loses the race to another process is that process's.
"""

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.checks import CheckMessage, Error
from django.db import IntegrityError

from workflows.library import workflow_library
from workflows.schedules import ScheduleDeclaration, schedule_declarations

from . import store
from .models import Schedule, ScheduleSource

logger = logging.getLogger(__name__)

DECLARED_FIELDS = ("workflow_id", "cron", "timezone", "input", "overlap", "catch_up")


def sync(
    declarations: Iterable[ScheduleDeclaration] | None = None, *, now: datetime | None = None
) -> list[Schedule]:
    """Make the table hold the declared schedules (all of this process's, by default); returns
    the schedules it created or changed."""
    declared = list(schedule_declarations().all() if declarations is None else declarations)
    changed = []
    existing = {
        schedule.schedule_id: schedule
        for schedule in Schedule.objects.filter(schedule_id__in=[d.schedule_id for d in declared])
    }
    for declaration in declared:
        schedule = existing.get(declaration.schedule_id)
        if schedule is not None and schedule.source != ScheduleSource.CODE:
            logger.warning(
                "Schedule %s is declared in code but was made in the admin: left as it is",
                declaration.schedule_id,
            )
            continue
        if schedule is None:
            schedule = Schedule(
                schedule_id=declaration.schedule_id,
                source=ScheduleSource.CODE,
                enabled=declaration.enabled,
            )
        elif all(getattr(schedule, name) == getattr(declaration, name) for name in DECLARED_FIELDS):
            continue
        for name in DECLARED_FIELDS:
            setattr(schedule, name, getattr(declaration, name))
        try:
            changed.append(store.schedule_save(schedule=schedule, now=now))
        except IntegrityError:
            logger.info("Schedule %s was created by another process", declaration.schedule_id)
    gone = Schedule.objects.filter(source=ScheduleSource.CODE, enabled=True).exclude(
        schedule_id__in=[d.schedule_id for d in declared]
    )
    for schedule in gone:
        logger.warning("Schedule %s is no longer declared in code: disabled", schedule)
        changed.append(store.schedule_set_enabled(schedule=schedule, enabled=False, now=now))
    return changed


def check_declarations(**kwargs: Any) -> list[CheckMessage]:
    """A declared schedule naming a workflow no app defines stops `check` (and `migrate`)."""
    library = workflow_library()
    return [
        Error(
            f"Schedule '{declaration.schedule_id}' starts workflow '{declaration.workflow_id}', "
            "which is not defined",
            hint="Register the workflow (register_workflow, or a JSON file in "
            "C4C_WORKFLOW_DIRS), or correct the schedule's workflow_id.",
            id="schedules.E001",
        )
        for declaration in schedule_declarations().all()
        if library.get(declaration.workflow_id) is None
    ]
