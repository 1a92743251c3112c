"""Builders for the schedules tests: schedules made through the store, as the page and the admin
make them, at a fixed `now` so their slots are known; and a run a fire started, for overlap."""

from datetime import UTC, datetime
from typing import Any

import pytest

from schedules import store
from schedules.models import FireStatus, Schedule, ScheduleFire
from tests import factories

# A Monday, 09:00:00 UTC: every test's clock unless it says otherwise.
NOW = datetime(2025, 6, 2, 9, 0, 0, tzinfo=UTC)


def schedule(
    schedule_id: str = "nightly",
    *,
    cron: str = "* * * * *",
    workflow_id: str = "simple-math-workflow",
    now: datetime = NOW,
    **fields: Any,
) -> Schedule:
    """A schedule saved through the store at `now` (so its next slot is the first after it)."""
    return store.schedule_save(
        schedule=Schedule(schedule_id=schedule_id, workflow_id=workflow_id, cron=cron, **fields),
        now=now,
    )


def next_slot(made: Schedule) -> datetime:
    """The schedule's next slot (an enabled schedule with a cron that fires always has one)."""
    assert made.next_slot is not None
    return made.next_slot


def started_fire(made: Schedule, slot: datetime, *, status: str = "running") -> ScheduleFire:
    """A fire of `made` whose run is `status` (running: the schedule's previous run goes on),
    as fire_start leaves it, made here without running the workflow on the pool."""
    run = factories.execution(status=status)
    return ScheduleFire.objects.create(
        schedule=made, slot=slot, status=FireStatus.STARTED, execution_id=run.execution_id
    )


def fires(made: Schedule) -> list[tuple[str, str]]:
    """(slot ISO, status) of each fire of `made`, oldest first."""
    rows = ScheduleFire.objects.filter(schedule=made).order_by("slot")
    return [(row.slot.strftime("%H:%M:%S"), row.status) for row in rows]


@pytest.fixture
def grace(settings: Any) -> Any:
    """The grace and the catch-up bound these tests count with."""
    settings.C4C_SCHEDULE_GRACE_SECONDS = 10
    settings.C4C_SCHEDULE_MAX_CATCHUP = 100
    return settings
