"""Runs that wait without a thread (workflows.waits): sleep, wait for a signal, subworkflows.

In-process with transaction=True: a woken run resumes on a pool thread with its own connection.
The sweep (executions.dispatch.sweep) is called by the test, as the heartbeat does every second.
"""

import time
from typing import Any

import pytest
from django.utils import timezone

from executions import dispatch, runtime, store
from executions.models import Execution, ExecutionCounter, NodeExecution, Signal
from tests import factories

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


def _settled(execution_id: str, timeout: float = 15) -> Execution:
    """Sweep until the run has ended or parked again (not running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatch.sweep(requeue=False)
        row = Execution.objects.get(execution_id=execution_id)
        if row.status in ("completed", "failed", "cancelled"):
            return row
        time.sleep(0.02)
    raise AssertionError(f"{execution_id} did not end in {timeout}s")


def _node(execution: Execution, node_id: str) -> NodeExecution:
    return NodeExecution.objects.get(execution=execution, node_id=node_id)


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
    nap = _node(execution, "nap")
    assert nap.status == "sleeping"
    assert nap.wake_at is not None
    assert execution.lease_expires_at == nap.wake_at
    assert ExecutionCounter.objects.stats()["waiting"] == 1
    assert dispatch.sweep(requeue=False) == []  # not due yet

    ended = _settled(execution.execution_id)
    assert ended.status == "completed"
    assert timezone.now() >= nap.wake_at
    nap.refresh_from_db()
    assert nap.status == "completed"
    assert nap.output == {"sleptUntil": nap.wake_at.isoformat(timespec="milliseconds")}
    assert _node(ended, "after").status == "completed"
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
    ask = _node(execution, "ask")
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
    ended = _settled(execution.execution_id)
    assert ended.status == "completed"
    assert _node(ended, "ask").output == {"approved": True, "by": "ana"}
    assert _node(ended, "after").input["message"] == "by ana"
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
    ended = _settled(execution.execution_id)
    assert ended.status == "completed"
    assert _node(ended, "ask").output == {"n": 1}


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
    assert execution.lease_expires_at == _node(execution, "ask").wake_at
    ended = _settled(execution.execution_id)
    assert ended.status == "completed"
    ask = _node(ended, "ask")
    assert ask.status == "failed"
    assert ask.error["name"] == "TimeoutError"
    assert "waited 200 ms for signal 'approval'" in _node(ended, "expired").input["message"]


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
    ended = _settled(execution.execution_id)
    assert ended.status == "completed"
    child = Execution.objects.get(parent=ended)
    assert (child.status, child.parent_node_id, child.input) == ("completed", "math", {"x": 7})
    output = _node(ended, "math").output
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
    ended = _settled(execution.execution_id)
    node = _node(ended, "child")
    assert node.status == "failed"
    assert node.error["name"] == "SubworkflowFailed"
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
    assert _node(child, "approve").status == "skipped"
    assert Execution.objects.get(pk=execution.pk).status == "cancelled"


@in_process
def test_signals_to_an_ended_execution_are_refused() -> None:
    done = factories.execution(status="completed")
    with pytest.raises(store.TransitionError):
        runtime.signal(execution_id=done.execution_id, name="go", payload={})
    with pytest.raises(store.ExecutionNotFound):
        runtime.signal(execution_id="nope", name="go", payload={})
