"""Resume from checkpoints: a run taken over continues from what it recorded, per checkpoint kind.

Each run is recorded through the store as a process would leave it when it died, then resumed
by runtime.resume() in this thread, as the process that takes it over does. What ran again is
read from the resumed run's spans (one per procedure attempt) and its stored rows.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from executions import runtime, store
from executions.models import Execution, NodeExecution, Span
from tests import factories
from workflows.definitions import WorkflowDefinition
from workflows.observer import ErrorInfo

pytestmark = pytest.mark.django_db

DEAD_OWNER = "web-1:8000/4242/dead"


def _procedure(node_id: str, name: str, config: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "procedure", "procedureName": name, "config": config, **more}


def _definition(nodes: list[dict[str, Any]], **more: Any) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "id": "resumable",
            "name": "Resumable",
            "startNode": nodes[0]["id"],
            "nodes": nodes,
            **more,
        }
    )


def _ran(execution: Execution) -> list[str]:
    """The procedures the resumed run called, one entry per attempt, in order."""
    spans = Span.objects.filter(execution=execution, attributes__has_key="procedure.name")
    return [s.name for s in spans.order_by("start_time_us")]


def _taken_over(execution: Execution) -> Execution:
    """The run as the process that takes it over holds it."""
    taken = store.execution_take_over(
        execution=factories.lapse(execution), owner=store.process_owner()
    )
    assert taken is not None
    return taken


def _start(
    execution: Execution, definition: WorkflowDefinition, node_id: str, index: int, **more: Any
) -> NodeExecution:
    node = definition.node(node_id)
    assert node is not None
    return store.node_start(
        execution=execution,
        node=node,
        node_index=index,
        input={},
        started_at=timezone.now(),
        **more,
    )


def test_completed_nodes_are_replayed_not_run_and_their_rows_are_untouched(math_workflow) -> None:
    """The stored outputs (not what the procedures would return now) feed the rest of the run."""
    execution = factories.execution(
        status="running",
        workflow=math_workflow,
        nodes={"add": "completed", "multiply": "completed"},
        owner=DEAD_OWNER,
    )
    before = {row.node_id: row for row in NodeExecution.objects.filter(execution=execution)}

    result = runtime.resume(execution=_taken_over(execution), previous_owner=DEAD_OWNER)

    assert result.body["status"] == "completed"
    assert result.body["outputs"]["add"] == {"result": 0}  # factories' stored output, not 15
    assert _ran(execution) == ["math.subtract"]
    for node_id, row in before.items():
        after = factories.node_run(execution, node_id)
        assert (after.started_at, after.ended_at, after.output, after.attempt) == (
            row.started_at,
            row.ended_at,
            row.output,
            1,
        )


def test_a_stored_failure_goes_to_its_error_handler_again_without_running() -> None:
    definition = _definition(
        [
            _procedure("risky", "data.fetch", {"source": "users"}, next="done", onError="handle"),
            _procedure("handle", "custom.log", {"message": "handled {{error.message}}"}),
            _procedure("done", "custom.log", {"message": "not reached"}),
        ]
    )
    execution = factories.execution(
        status="running", workflow=definition, nodes={"risky": "failed"}, owner=DEAD_OWNER
    )

    result = runtime.resume(execution=_taken_over(execution))

    assert result.body["status"] == "completed"
    assert _ran(execution) == ["custom.log"]
    assert result.body["outputs"]["handle"]["message"] == "handled bad"
    assert "done" not in result.body["nodesExecuted"]


def test_the_interrupted_attempt_runs_again_as_the_next_attempt() -> None:
    """custom.flaky fails while ctx.attempt <= failTimes: attempt 2 was in flight, 3 succeeds."""
    definition = _definition(
        [_procedure("call", "custom.flaky", {"failTimes": 2}, retry={"maxAttempts": 3})]
    )
    execution = factories.execution(status="running", workflow=definition, owner=DEAD_OWNER)
    row = _start(execution, definition, "call", 0)
    store.node_attempt_fail(
        node=row,
        error=ErrorInfo(name="ConnectionError", message="attempt 1"),
        ended_at=timezone.now(),
        retry_at=timezone.now(),
    )
    store.node_attempt_start(node=row, attempt=2, started_at=timezone.now())

    result = runtime.resume(execution=_taken_over(execution), previous_owner=DEAD_OWNER)

    assert result.body["status"] == "completed"
    assert result.body["outputs"]["call"] == {"attempt": 3}
    assert _ran(execution) == ["custom.flaky"]
    stored = factories.node_run(execution, "call")
    assert (stored.status, stored.attempt) == ("completed", 3)
    attempts = factories.attempts_of(stored)
    assert [(a["number"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    assert attempts[1]["error"]["name"] == "InterruptedError"
    assert DEAD_OWNER in attempts[1]["error"]["message"]


@pytest.mark.slow
def test_a_backoff_wait_resumes_where_it_was_not_from_scratch() -> None:
    """Attempt 1 failed and attempt 2 was due in 0.4 s when the process died: the resumed run
    waits what is left of that, then runs attempt 2 (not attempt 1 again, and not at once)."""
    definition = _definition(
        [_procedure("call", "custom.flaky", {"failTimes": 1}, retry={"maxAttempts": 2})]
    )
    execution = factories.execution(status="running", workflow=definition, owner=DEAD_OWNER)
    row = _start(execution, definition, "call", 0)
    due = timezone.now() + timedelta(milliseconds=400)
    store.node_attempt_fail(
        node=row,
        error=ErrorInfo(name="ConnectionError", message="attempt 1"),
        ended_at=timezone.now(),
        retry_at=due,
    )

    result = runtime.resume(execution=_taken_over(execution))

    assert result.body["outputs"]["call"] == {"attempt": 2}
    attempts = factories.attempts_of(factories.node_run(execution, "call"))
    assert [(a["number"], a["status"]) for a in attempts] == [(1, "failed"), (2, "completed")]
    second_start = parse_datetime(attempts[1]["startTime"])
    assert second_start is not None
    assert due - timedelta(milliseconds=5) <= second_start < due + timedelta(milliseconds=500)


@pytest.mark.django_db(transaction=True)
def test_parallel_branches_resume_each_from_its_own_checkpoint() -> None:
    """transaction=True: each branch writes from its own thread and connection."""
    definition = _definition(
        [
            {"id": "fan", "type": "parallel", "config": {"branches": ["a", "b"]}, "next": "end"},
            _procedure("a", "math.add", {"a": 1, "b": 1}),
            _procedure("b", "math.multiply", {"a": 3, "b": 3}),
            _procedure("end", "custom.log", {"message": "joined"}),
        ]
    )
    execution = factories.execution(status="running", workflow=definition, owner=DEAD_OWNER)
    _start(execution, definition, "fan", 0)
    done = _start(execution, definition, "a", 1)
    store.node_complete(node=done, output={"result": 2}, ended_at=timezone.now())
    _start(execution, definition, "b", 2)

    result = runtime.resume(execution=_taken_over(execution))

    assert result.body["status"] == "completed"
    assert _ran(execution) == ["math.multiply", "custom.log"]
    assert result.body["outputs"]["a"] == {"result": 2}
    assert result.body["outputs"]["b"] == {"result": 9}
    fan = factories.node_run(execution, "fan")
    assert (fan.status, fan.attempt) == ("completed", 2)
    assert factories.node_run(execution, "a").attempt == 1


def test_a_run_taken_by_another_process_records_nothing_more_here(math_workflow) -> None:
    """Resumed by a process that then lost the lease: every write is refused, nothing is
    announced as finished, and the row stays the new owner's."""
    execution = factories.execution(
        status="running", workflow=math_workflow, nodes={"add": "completed"}, owner=DEAD_OWNER
    )
    mine = _taken_over(execution)
    thief = Execution.objects.get(pk=execution.pk)
    factories.lapse(thief)
    assert store.execution_take_over(execution=thief, owner="web-3:8000/9/new") is not None

    runtime.resume(execution=mine)

    row = Execution.objects.get(pk=execution.pk)
    assert (row.status, row.lease_owner) == ("running", "web-3:8000/9/new")
    assert list(NodeExecution.objects.filter(execution=row).values_list("node_id", flat=True)) == [
        "add"
    ]


def test_a_node_output_stored_cut_stops_the_resume_instead_of_feeding_the_marker_on(
    math_workflow, settings
) -> None:
    settings.C4C_MAX_PAYLOAD_BYTES = 100
    execution = factories.execution(status="running", workflow=math_workflow, owner=DEAD_OWNER)
    add = _start(execution, math_workflow, "add", 0)
    store.node_complete(node=add, output={"big": "x" * 500}, ended_at=timezone.now())

    result = runtime.resume(execution=_taken_over(execution))

    assert result.body["status"] == "failed"
    assert result.body["error"]["name"] == "CannotResume"
    assert "node add's output was stored cut" in result.body["error"]["message"]
    assert _ran(execution) == []
    assert Execution.objects.get(pk=execution.pk).status == "failed"


def test_a_rerun_of_a_run_whose_input_was_stored_cut_is_refused(math_workflow, settings) -> None:
    settings.C4C_MAX_PAYLOAD_BYTES = 100
    original = factories.execution(workflow=math_workflow, input={"big": "x" * 500})
    with pytest.raises(runtime.CannotResume, match="input stored cut"):
        runtime.rerun(execution_id=original.execution_id)
    assert Execution.objects.count() == 1
