"""The scheduler's tick starts the runs of the slots it claims, through the executions core: each
run's input says which schedule and slot started it, its idempotency key makes a second start
of the same slot answer the first run, and a slot whose scheduler died before starting it is
started by another. Runs really run (on this process's pool), so the database commits."""

from datetime import timedelta

import pytest

from executions import dispatch, runtime
from executions.models import Execution, ExecutionStatus
from schedules import store
from schedules.models import FireStatus, ScheduleFire
from schedules.scheduler import tick
from tests.executions.conftest import within
from tests.schedules.conftest import NOW, fires, schedule, started_fire

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("grace")]

MINUTE = timedelta(minutes=1)


def _ended(execution_id: str) -> bool:
    return Execution.objects.filter(
        execution_id=execution_id, status=ExecutionStatus.COMPLETED
    ).exists()


def test_a_tick_starts_the_due_slots_run_naming_its_schedule_and_slot() -> None:
    made = schedule("hourly-math", input={"note": "hello"})

    (fire,) = tick(now=NOW + MINUTE)

    assert fire.status == FireStatus.STARTED
    run = Execution.objects.get(execution_id=fire.execution_id)
    assert run.workflow_id == "simple-math-workflow"
    assert run.input == {
        "note": "hello",
        "startedBy": {"schedule": "hourly-math", "slot": "2025-06-02T09:01:00Z"},
    }
    assert run.idempotency_key == "schedule:hourly-math:2025-06-02T09:01:00Z"
    within(10, lambda: _ended(run.execution_id))
    assert ScheduleFire.objects.get(schedule=made).execution_id == run.execution_id


def test_a_second_tick_at_the_same_time_fires_nothing_more() -> None:
    schedule()
    first = tick(now=NOW + MINUTE)

    assert tick(now=NOW + MINUTE) == []
    within(10, lambda: _ended(first[0].execution_id))


def test_a_slot_whose_scheduler_died_before_its_run_started_is_started_once_by_another(
    settings,
) -> None:
    settings.C4C_SCHEDULE_RETRY_SECONDS = 10
    made = schedule()
    (claimed,) = store.slots_claim(schedule=made, now=NOW + MINUTE, owner="died")

    assert tick(now=NOW + MINUTE + timedelta(seconds=5)) == []  # not stalled long enough yet
    (started,) = tick(now=NOW + MINUTE + timedelta(seconds=11))
    again = store.fire_start(fire=claimed)  # the first scheduler, late after all

    assert started.pk == claimed.pk
    assert started.status == FireStatus.STARTED
    assert again.execution_id == started.execution_id
    assert Execution.objects.filter(idempotency_key__startswith="schedule:nightly:").count() == 1
    within(10, lambda: _ended(started.execution_id))


def test_a_queued_slot_starts_at_the_tick_after_the_previous_run_ends() -> None:
    made = schedule(overlap="queue")
    previous = started_fire(made, NOW)
    assert [fire.status for fire in tick(now=NOW + MINUTE)] == ["queued"]

    runtime.cancel(previous.execution_id)
    (released,) = tick(now=NOW + MINUTE + timedelta(seconds=1))

    assert released.slot == NOW + MINUTE
    assert released.status == FireStatus.STARTED
    within(10, lambda: _ended(released.execution_id))
    assert fires(made) == [("09:00:00", "started"), ("09:01:00", "started")]


def test_a_slot_of_a_workflow_no_longer_defined_fails_saying_so() -> None:
    schedule(workflow_id="gone-workflow")

    (fire,) = tick(now=NOW + MINUTE)

    assert fire.status == FireStatus.FAILED
    assert fire.note == "Workflow 'gone-workflow' is not defined"
    assert fire.execution_id == ""


def test_a_slot_whose_run_finds_the_pool_full_waits_pending_and_starts_later(
    monkeypatch, settings
) -> None:
    settings.C4C_SCHEDULE_RETRY_SECONDS = 10
    made = schedule()
    begin = dispatch.begin

    def full(record):
        raise dispatch.QueueFull("Run queue is full")

    monkeypatch.setattr(dispatch, "begin", full)
    (waiting,) = tick(now=NOW + MINUTE)
    assert waiting.status == FireStatus.PENDING

    monkeypatch.setattr(dispatch, "begin", begin)
    (started,) = tick(now=NOW + MINUTE + timedelta(seconds=11))

    assert started.status == FireStatus.STARTED
    within(10, lambda: _ended(started.execution_id))
    assert fires(made) == [("09:01:00", "started")]
