"""Recovery by lease: the sweep takes over runs whose process died - whatever its name, host or
pid - and they continue from their checkpoints on this process's pool.

transaction=True: the resumed run is a pool thread with its own connection, which must see the
rows this test wrote.
"""

import json
import time
from typing import Any

import pytest
from django_eventstream.utils import get_storage

from executions import dispatch, store
from executions.live import events
from executions.models import Execution, ExecutionCounter
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_OWNER = "web-1:8000/4242/dead"


def _ended(execution_id: str, timeout: float = 15) -> Execution:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Execution.objects.get(execution_id=execution_id)
        if row.status != "running":
            return row
        time.sleep(0.02)
    raise AssertionError(f"{execution_id} still running after {timeout}s")


def _events(channel: str, since: int) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, json.loads(e.data)) for e in get_storage().get_events(channel, since)]


def test_sweep_resumes_a_run_whose_process_died_and_runs_only_what_was_not_done(
    math_workflow,
) -> None:
    execution = factories.execution(
        status="running",
        workflow=math_workflow,
        execution_id="orphan",
        nodes={"add": "completed", "multiply": "running"},
        owner=DEAD_OWNER,
    )
    add_before = factories.node_run(execution, "add")
    factories.lapse(execution)
    since = get_storage().get_current_id(events.execution_channel("orphan"))

    assert dispatch.sweep(requeue=False) == ["orphan"]
    row = _ended("orphan")

    assert row.status == "completed"
    assert row.lease_owner == store.process_owner()
    assert row.nodes_executed == ["add", "multiply", "subtract"]
    assert row.outputs["subtract"] == {"result": 12}
    add = factories.node_run(row, "add")
    assert (add.started_at, add.ended_at, add.attempt, add.attempts) == (
        add_before.started_at,
        add_before.ended_at,
        1,
        None,
    )
    multiply = factories.node_run(row, "multiply")
    assert (multiply.status, multiply.attempt) == ("completed", 2)
    attempts = factories.attempts_of(multiply)
    assert [(a["number"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "completed"),
    ]
    assert DEAD_OWNER in attempts[0]["error"]["message"]
    # It announces what it newly did, and nothing about the node it did not run again.
    announced = [
        (name, data.get("nodeId"))
        for name, data in _events(events.execution_channel("orphan"), since)
    ]
    assert announced == [
        ("node.started", "multiply"),
        ("node.completed", "multiply"),
        ("node.started", "subtract"),
        ("node.completed", "subtract"),
        ("workflow.completed", None),
        ("workflow.result", None),
    ]
    assert ExecutionCounter.objects.stats()["completed"] == 1


def test_a_run_whose_owner_keeps_its_lease_is_left_alone(math_workflow) -> None:
    factories.execution(status="running", workflow=math_workflow, owner=DEAD_OWNER)
    assert dispatch.sweep(requeue=False) == []
    assert Execution.objects.get().lease_owner == DEAD_OWNER


def test_a_queued_run_nobody_claimed_in_time_is_run_by_the_sweep(math_workflow) -> None:
    """Its Celery message was lost: the claim deadline passed with no worker taking it."""
    queued = factories.started_run(workflow=math_workflow, execution_id="lost-message", owner="")
    factories.lapse(queued)

    assert dispatch.sweep(requeue=False) == ["lost-message"]

    assert _ended("lost-message").status == "completed"


def test_finished_runs_are_never_taken_over(math_workflow) -> None:
    for status in ("completed", "failed", "cancelled"):
        factories.lapse(factories.execution(status=status, workflow=math_workflow))
    assert dispatch.sweep(requeue=False) == []
