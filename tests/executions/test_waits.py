"""Runs that wait without a thread (workflows.waits): sleep, wait for a signal, subworkflows.

In-process with transaction=True: a woken run resumes on a pool thread with its own connection.
The sweep (executions.dispatch.sweep) is called by the test, as the heartbeat does every second.
"""

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from executions import dispatch, runtime, store
from executions.models import Execution, ExecutionCounter, NodeExecution, Signal
from executions.serializers import iso_ms
from tests import factories
from tests.executions.conftest import swept_to_end

in_process = pytest.mark.django_db(transaction=True)


def _workflow(nodes: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"id": "waiting", "name": "Waiting", "startNode": nodes[0]["id"], "nodes": nodes, **more}


def _log(node_id: str, message: str = "done", **more: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "procedure",
        "procedureName": "custom.log",
        "config": {"message": message},
        **more,
    }


def _run(workflow: dict[str, Any], input: dict[str, Any] | None = None) -> Execution:
    definition = factories.definition(workflow)
    output = runtime.execute(definition=definition, input=input or {})
    return Execution.objects.get(execution_id=output.body["executionId"])


def _object(column: Any) -> dict[str, Any]:
    """A JSON column's value that must be an object here (the column may hold null)."""
    assert isinstance(column, dict), column
    return column


@pytest.mark.slow
@in_process
def test_a_sleeping_run_holds_no_thread_and_wakes_when_due() -> None:
    execution = _run(
        _workflow(
            [
                {"id": "nap", "type": "sleep", "config": {"durationMs": 300}, "next": "after"},
                _log("after"),
            ]
        )
    )
    assert execution.status == "waiting"
    assert execution.lease_owner == ""
    nap = factories.node_run(execution, "nap")
    assert nap.status == "sleeping"
    assert nap.wake_at is not None
    assert execution.lease_expires_at == nap.wake_at
    assert ExecutionCounter.objects.stats()["waiting"] == 1
    assert dispatch.sweep(requeue=False) == []  # not due yet

    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    assert timezone.now() >= nap.wake_at
    nap.refresh_from_db()
    assert nap.status == "completed"
    assert nap.output == {"sleptUntil": iso_ms(nap.wake_at)}
    assert factories.node_run(ended, "after").status == "completed"
    assert ExecutionCounter.objects.stats()["waiting"] == 0


@in_process
def test_a_signal_wakes_the_waiting_node_and_its_payload_is_the_output() -> None:
    execution = _run(
        _workflow(
            [
                {"id": "ask", "type": "wait", "config": {"signal": "approval"}, "next": "after"},
                _log("after", "by {{ask.by}}"),
            ]
        )
    )
    ask = factories.node_run(execution, "ask")
    assert (execution.status, ask.status, ask.waiting_for) == (
        "waiting",
        "waiting",
        "signal:approval",
    )
    assert execution.lease_expires_at is None  # no timeout: only the signal wakes it

    assert runtime.signal(
        execution_id=execution.execution_id,
        name="approval",
        payload={"approved": True, "by": "ana"},
    )
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    assert factories.node_run(ended, "ask").output == {"approved": True, "by": "ana"}
    assert _object(factories.node_run(ended, "after").input)["message"] == "by ana"
    assert Signal.objects.get(execution=ended).taken_by == "ask#1"


@in_process
def test_a_signal_sent_before_the_node_waits_is_kept_for_it() -> None:
    execution = _run(
        _workflow(
            [
                {"id": "nap", "type": "sleep", "config": {"durationMs": 200}, "next": "ask"},
                {"id": "ask", "type": "wait", "config": {"signal": "go"}},
            ]
        )
    )
    runtime.signal(execution_id=execution.execution_id, name="go", payload={"n": 1})
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    assert factories.node_run(ended, "ask").output == {"n": 1}


@in_process
def test_a_wait_that_times_out_goes_to_its_on_error_branch() -> None:
    execution = _run(
        _workflow(
            [
                {
                    "id": "ask",
                    "type": "wait",
                    "config": {"signal": "approval", "timeoutMs": 200},
                    "onError": "expired",
                },
                _log("expired", "{{error.message}}"),
            ]
        )
    )
    assert execution.lease_expires_at == factories.node_run(execution, "ask").wake_at
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    ask = factories.node_run(ended, "ask")
    assert ask.status == "failed"
    assert _object(ask.error)["name"] == "TimeoutError"
    expired = _object(factories.node_run(ended, "expired").input)
    assert "waited 200 ms for signal 'approval'" in expired["message"]


@in_process
def test_a_subworkflow_runs_as_a_linked_child_and_its_outputs_are_the_nodes_output() -> None:
    execution = _run(
        _workflow(
            [
                {
                    "id": "math",
                    "type": "subworkflow",
                    "config": {"workflowId": "simple-math-workflow", "input": {"x": "{{input.x}}"}},
                }
            ]
        ),
        {"x": 7},
    )
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    child = Execution.objects.get(parent=ended)
    assert (child.status, child.parent_node_id, child.input) == ("completed", "math", {"x": 7})
    output = _object(factories.node_run(ended, "math").output)
    assert output["executionId"] == child.execution_id
    assert output["outputs"]["add"] == {"result": 15}


@in_process
def test_a_failed_child_fails_the_subworkflow_node() -> None:
    execution = _run(
        _workflow(
            [
                {
                    "id": "child",
                    "type": "subworkflow",
                    "config": {"workflowId": "failing-workflow"},
                    "onError": "handled",
                },
                _log("handled", "{{error.message}}"),
            ]
        )
    )
    ended = swept_to_end(execution.execution_id)
    node = factories.node_run(ended, "child")
    assert node.status == "failed"
    assert _object(node.error)["name"] == "SubworkflowFailed"
    assert ended.status == "completed"


@in_process
def test_cancelling_a_parent_cancels_its_waiting_child() -> None:
    execution = _run(
        _workflow(
            [
                {
                    "id": "approval",
                    "type": "subworkflow",
                    "config": {"workflowId": "approval-workflow"},
                }
            ]
        )
    )
    deadline = time.monotonic() + 10
    while not Execution.objects.filter(parent=execution, status="waiting").exists():
        assert time.monotonic() < deadline, "the child never started waiting"
        time.sleep(0.02)
    runtime.cancel(execution.execution_id)
    child = Execution.objects.get(parent=execution)
    assert child.status == "cancelled"
    assert factories.node_run(child, "approve").status == "skipped"
    assert Execution.objects.get(pk=execution.pk).status == "cancelled"


@in_process
def test_signals_to_an_ended_execution_are_refused() -> None:
    done = factories.execution(status="completed")
    with pytest.raises(store.TransitionError):
        runtime.signal(execution_id=done.execution_id, name="go", payload={})
    with pytest.raises(store.ExecutionNotFound):
        runtime.signal(execution_id="nope", name="go", payload={})


@in_process
def test_a_signal_that_comes_while_the_run_parks_makes_it_due_at_once(monkeypatch) -> None:
    """The wake-up race: the wait node found no signal, then one came before the run was
    recorded as waiting, so its sender saw the run still running (woke=False). Parking finds it
    stored (store.execution_park) and makes the run due now instead of never."""
    node_park = store.node_park
    woke: list[bool] = []

    def park_then_signal(*, node: NodeExecution, parked: Any) -> NodeExecution:
        row = node_park(node=node, parked=parked)
        woke.append(
            runtime.signal(
                execution_id=node.execution.execution_id, name="go", payload={"late": True}
            )
        )
        return row

    monkeypatch.setattr(store, "node_park", park_then_signal)
    execution = _run(_workflow([{"id": "ask", "type": "wait", "config": {"signal": "go"}}]))

    assert woke == [False]
    assert execution.status == "waiting"
    assert execution.lease_expires_at is not None
    assert execution.lease_expires_at <= timezone.now()
    assert dispatch.sweep(requeue=False) == [execution.execution_id]
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    assert factories.node_run(ended, "ask").output == {"late": True}
    assert woke == [False]  # taken on resuming: it did not park again


@in_process
def test_a_child_that_ends_while_its_parent_parks_makes_the_parent_due_at_once(
    monkeypatch,
) -> None:
    """The same race for a subworkflow node: its child ended (here: cancelled) after the node
    found it unfinished and before the parent was recorded as waiting."""
    node_park = store.node_park

    def park_then_end_child(*, node: NodeExecution, parked: Any) -> NodeExecution:
        row = node_park(node=node, parked=parked)
        kind, _, child = parked.waiting_for.partition(":")
        if kind == "execution":
            runtime.cancel(child)
        return row

    monkeypatch.setattr(store, "node_park", park_then_end_child)
    execution = _run(
        _workflow(
            [
                {
                    "id": "child",
                    "type": "subworkflow",
                    "config": {"workflowId": "approval-workflow"},
                    "onError": "handled",
                },
                _log("handled", "{{error.message}}"),
            ]
        )
    )

    assert execution.status == "waiting"
    assert execution.lease_expires_at is not None
    assert execution.lease_expires_at <= timezone.now()
    ended = swept_to_end(execution.execution_id)
    assert ended.status == "completed"
    assert _object(factories.node_run(ended, "child").error)["name"] == "SubworkflowFailed"
    assert Execution.objects.get(parent=ended).status == "cancelled"


@in_process
@pytest.mark.parametrize(
    "parked",
    [
        {"id": "nap", "type": "sleep", "config": {"durationMs": 60_000}, "next": "after"},
        {"id": "nap", "type": "wait", "config": {"signal": "never"}, "next": "after"},
    ],
    ids=["sleep", "wait"],
)
@pytest.mark.slow
def test_a_workflow_timeout_fails_a_parked_run_at_its_deadline(parked: dict[str, Any]) -> None:
    execution = _run(_workflow([parked, _log("after")], timeoutMs=700))
    assert execution.status == "waiting"
    deadline = execution.lease_expires_at  # due at the deadline, not at the node's own time
    assert deadline is not None
    # The deadline counts from when the walk began, a moment after the row's start.
    late = deadline - (execution.started_at + timedelta(milliseconds=700))
    assert timedelta(0) <= late < timedelta(milliseconds=500)

    ended = swept_to_end(execution.execution_id)

    assert ended.status == "failed"
    assert _object(ended.error)["name"] == "TimeoutError"
    assert "timed out after 700 ms" in _object(ended.error)["message"]
    assert ended.ended_at is not None
    assert deadline <= ended.ended_at < deadline + timedelta(seconds=1)
    # The node in flight fails with the run, as a procedure would.
    nap = factories.node_run(ended, "nap")
    assert nap.status == "failed"
    assert _object(nap.error)["message"] == _object(ended.error)["message"]
    assert not NodeExecution.objects.filter(execution=ended, node_id="after").exists()


@pytest.mark.slow
@in_process
def test_a_workflow_timeout_fails_a_parallel_node_waiting_for_its_sleeping_branch() -> None:
    execution = _run(
        _workflow(
            [
                _log("first", "first", next="fan"),
                {"id": "fan", "type": "parallel", "config": {"branches": ["nap", "quick"]}},
                {"id": "nap", "type": "sleep", "config": {"durationMs": 60_000}},
                _log("quick", "quick"),
            ],
            timeoutMs=500,
        )
    )
    assert factories.node_run(execution, "fan").status == "waiting"

    ended = swept_to_end(execution.execution_id)

    assert (ended.status, _object(ended.error)["name"]) == ("failed", "TimeoutError")
    rows = NodeExecution.objects.filter(execution=ended).values_list("node_id", "status")
    assert dict(rows) == {
        "first": "completed",
        "fan": "failed",
        "nap": "failed",
        "quick": "completed",
    }


@pytest.mark.slow
@in_process
def test_a_parallel_node_waits_for_its_sleeping_branch_then_completes() -> None:
    execution = _run(
        _workflow(
            [
                {
                    "id": "fan",
                    "type": "parallel",
                    "config": {"branches": ["nap", "quick"]},
                    "next": "joined",
                },
                {"id": "nap", "type": "sleep", "config": {"durationMs": 300}},
                _log("quick", "quick"),
                _log("joined", "joined"),
            ]
        )
    )
    fan = factories.node_run(execution, "fan")
    assert execution.status == "waiting"
    assert (fan.status, fan.waiting_for) == ("waiting", "branches:nap")
    assert factories.node_run(execution, "quick").status == "completed"
    assert factories.node_run(execution, "nap").status == "sleeping"

    ended = swept_to_end(execution.execution_id)

    assert ended.status == "completed"
    fan.refresh_from_db()
    assert fan.status == "completed"
    assert fan.output == {"branches": {"nap": "completed", "quick": "completed"}}
    assert factories.node_run(ended, "quick").attempt == 1  # done before the wait: not run again
    assert factories.node_run(ended, "joined").status == "completed"
    assert ended.nodes_executed.index("joined") > ended.nodes_executed.index("nap")
