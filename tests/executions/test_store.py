"""The store: one door for writes, guarded transitions, counters kept in step, bounded payloads."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import store
from executions.models import Execution, ExecutionCounter, NodeExecution, Span
from executions.payloads import TRUNCATED_KEY
from executions.serializers import iso_ms
from tests import factories
from workflows.observer import ErrorInfo

pytestmark = pytest.mark.django_db


def test_start_records_running_row_with_definition_snapshot(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    row = Execution.objects.get(execution_id=execution.execution_id)
    assert row.status == "running"
    assert row.definition["startNode"] == "add"
    assert [n["id"] for n in row.definition["nodes"]] == ["add", "multiply", "subtract"]
    assert row.lease_owner == store.process_owner()
    assert row.lease_expires_at is not None
    lease = (row.lease_expires_at - timezone.now()).total_seconds()
    assert 25 < lease <= 30
    assert execution.pk == row.pk
    assert ExecutionCounter.objects.stats() == {
        "total": 1,
        "completed": 0,
        "failed": 0,
        "running": 1,
        "waiting": 0,
    }


def test_duplicate_execution_id_is_refused_without_touching_counters(math_workflow) -> None:
    factories.execution(status="running", workflow=math_workflow, execution_id="exec-1")
    with pytest.raises(store.DuplicateExecution, match="exec-1"):
        factories.execution(status="running", workflow=math_workflow, execution_id="exec-1")
    assert Execution.objects.count() == 1
    assert ExecutionCounter.objects.stats()["total"] == 1


def test_finished_execution_moves_counters_in_the_same_write(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    store.execution_finish(
        execution=execution, result=factories.run_result(execution, outputs={"add": {"result": 15}})
    )
    row = Execution.objects.get()
    assert row.status == "completed"
    assert row.outputs == {"add": {"result": 15}}
    assert row.execution_time_ms is not None
    assert ExecutionCounter.objects.stats() == {
        "total": 1,
        "completed": 1,
        "failed": 0,
        "running": 0,
        "waiting": 0,
    }


def test_finished_execution_never_returns_to_running(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    store.execution_finish(
        execution=execution, result=factories.run_result(execution, status="failed")
    )
    with pytest.raises(store.TransitionError, match="is failed"):
        store.execution_finish(execution=execution, result=factories.run_result(execution))
    with pytest.raises(store.TransitionError):
        store.node_start(
            execution=execution,
            node=math_workflow.nodes[0],
            node_index=0,
            input={},
            started_at=timezone.now(),
        )
    assert Execution.objects.get().status == "failed"


def test_cancelled_execution_is_not_overwritten_by_a_late_success(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    node = store.node_start(
        execution=execution,
        node=math_workflow.nodes[0],
        node_index=0,
        input={"a": 1},
        started_at=timezone.now(),
    )
    store.execution_cancel(execution_id=execution.execution_id)
    with pytest.raises(store.TransitionError, match="cancelled"):
        store.node_complete(node=node, output={"result": 2}, ended_at=timezone.now())
    with pytest.raises(store.TransitionError, match="cancelled"):
        store.execution_finish(execution=execution, result=factories.run_result(execution))
    row = Execution.objects.get()
    assert row.status == "cancelled"
    assert NodeExecution.objects.get().status == "skipped"
    assert ExecutionCounter.objects.stats() == {
        "total": 1,
        "completed": 0,
        "failed": 0,
        "running": 0,
        "waiting": 0,
    }


def test_a_run_cancelled_a_month_after_it_started_records_its_time(math_workflow) -> None:
    """2**31 ms is under 25 days: a run that waits longer (a durable sleep, an approval) must
    still record its time, on PostgreSQL's bigint as on SQLite."""
    month_ago = timezone.now() - timedelta(days=30)
    execution = factories.execution(status="running", workflow=math_workflow, started_at=month_ago)

    cancelled = store.execution_cancel(execution_id=execution.execution_id)

    assert cancelled.execution_time_ms is not None
    assert cancelled.execution_time_ms >= 30 * 24 * 3600 * 1000
    assert Execution.objects.get().execution_time_ms == cancelled.execution_time_ms


def test_cancel_of_unknown_or_finished_execution_is_refused(math_workflow) -> None:
    with pytest.raises(store.ExecutionNotFound):
        store.execution_cancel(execution_id="nope")
    execution = factories.execution(status="running", workflow=math_workflow)
    store.execution_finish(execution=execution, result=factories.run_result(execution))
    with pytest.raises(store.TransitionError, match="cannot be cancelled"):
        store.execution_cancel(execution_id=execution.execution_id)


def test_node_runs_are_recorded_with_output_duration_and_error(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    started = timezone.now()
    add = store.node_start(
        execution=execution,
        node=math_workflow.nodes[0],
        node_index=0,
        input={"a": 10, "b": 5},
        started_at=started,
    )
    store.node_complete(
        node=add, output={"result": 15}, ended_at=started + timedelta(milliseconds=3)
    )
    multiply = store.node_start(
        execution=execution,
        node=math_workflow.nodes[1],
        node_index=1,
        input={},
        started_at=started,
    )
    store.node_fail(
        node=multiply,
        error=ErrorInfo(name="ValueError", message="a: field required"),
        ended_at=started + timedelta(milliseconds=1),
    )
    rows = {n.node_id: n for n in NodeExecution.objects.all()}
    assert rows["add"].status == "completed"
    assert rows["add"].output == {"result": 15}
    assert rows["add"].duration_ms == pytest.approx(3.0)
    assert rows["add"].procedure_name == "math.add"
    assert rows["multiply"].status == "failed"
    assert rows["multiply"].error is not None
    assert rows["multiply"].error["message"] == "a: field required"


def test_each_visit_of_a_node_in_a_loop_is_a_row_of_its_own(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    node = math_workflow.nodes[0]
    first = store.node_start(
        execution=execution, node=node, node_index=0, input={"n": 1}, started_at=timezone.now()
    )
    store.node_complete(node=first, output={"n": 1}, ended_at=timezone.now())
    again = store.node_start(
        execution=execution,
        node=node,
        node_index=3,
        visit=2,
        input={"n": 2},
        started_at=timezone.now(),
    )
    store.node_complete(node=again, output={"n": 2}, ended_at=timezone.now())
    rows = NodeExecution.objects.order_by("visit")
    assert [(r.visit, r.sequence, r.input, r.output) for r in rows] == [
        (1, 0, {"n": 1}, {"n": 1}),
        (2, 3, {"n": 2}, {"n": 2}),
    ]
    assert factories.node_run(execution, "add").pk == again.pk


def test_a_finished_node_run_never_starts_again(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    node = math_workflow.nodes[0]
    first = store.node_start(
        execution=execution, node=node, node_index=0, input={}, started_at=timezone.now()
    )
    store.node_complete(node=first, output={"n": 1}, ended_at=timezone.now())
    with pytest.raises(store.TransitionError, match="node add is completed"):
        store.node_start(
            execution=execution, node=node, node_index=0, input={}, started_at=timezone.now()
        )
    assert NodeExecution.objects.get().output == {"n": 1}


def test_one_attempt_leaves_no_attempt_list(math_workflow) -> None:
    """The common node pays nothing for attempts: its row says attempt 1, nothing more."""
    execution = factories.execution(
        status="running", workflow=math_workflow, nodes={"add": "completed"}
    )
    row = factories.node_run(execution, "add")
    assert (row.attempt, row.attempts) == (1, None)


def test_every_attempt_of_a_retried_node_is_recorded_with_its_due_time(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    t0 = timezone.now()
    ms = timedelta(milliseconds=1)
    node = store.node_start(
        execution=execution, node=math_workflow.nodes[0], node_index=0, input={}, started_at=t0
    )
    store.node_attempt_fail(
        node=node,
        error=ErrorInfo(name="ConnectionError", message="first"),
        ended_at=t0 + 10 * ms,
        retry_at=t0 + 210 * ms,
    )
    stored = factories.node_run(execution, "add")
    assert (stored.status, stored.attempt) == ("running", 1)
    assert factories.attempts_of(stored)[-1]["retryAt"] == iso_ms(t0 + 210 * ms)
    store.node_attempt_start(node=node, attempt=2, started_at=t0 + 210 * ms)
    store.node_complete(node=node, output={"result": 15}, ended_at=t0 + 220 * ms)

    row = factories.node_run(execution, "add")
    assert (row.status, row.attempt, row.output) == ("completed", 2, {"result": 15})
    assert row.started_at == t0
    assert row.attempts == [
        {
            "number": 1,
            "status": "failed",
            "startTime": iso_ms(t0),
            "endTime": iso_ms(t0 + 10 * ms),
            "error": {"name": "ConnectionError", "message": "first", "stack": ""},
            "retryAt": iso_ms(t0 + 210 * ms),
        },
        {
            "number": 2,
            "status": "completed",
            "startTime": iso_ms(t0 + 210 * ms),
            "endTime": iso_ms(t0 + 220 * ms),
        },
    ]


def test_an_interrupted_attempt_is_recorded_failed_when_the_next_begins(math_workflow) -> None:
    execution = factories.execution(
        status="running", workflow=math_workflow, nodes={"add": "running"}
    )
    row = factories.node_run(execution, "add")
    row.execution = execution
    resumed_at = timezone.now()
    why = ErrorInfo(name="InterruptedError", message="its process died")
    store.node_attempt_start(node=row, attempt=2, started_at=resumed_at, interrupted=why)

    stored = factories.node_run(execution, "add")
    assert stored.attempt == 2
    attempts = factories.attempts_of(stored)
    assert [(a["number"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "running"),
    ]
    assert attempts[0]["error"]["name"] == "InterruptedError"
    assert attempts[0]["endTime"] == iso_ms(resumed_at)


def test_an_idempotency_key_starts_one_run(math_workflow) -> None:
    first = factories.execution(status="running", workflow=math_workflow)
    store_key = store.execution_start(
        execution_id="keyed",
        definition=math_workflow,
        input={},
        started_at=timezone.now(),
        idempotency_key="key-1",
    )
    with pytest.raises(store.DuplicateExecution, match="'keyed'") as refused:
        store.execution_start(
            execution_id="another",
            definition=math_workflow,
            input={},
            started_at=timezone.now(),
            idempotency_key="key-1",
        )
    assert refused.value.execution_id == "keyed"
    assert Execution.objects.by_idempotency_key("key-1") == store_key
    assert Execution.objects.by_idempotency_key("key-2") is None
    assert first.idempotency_key is None
    assert ExecutionCounter.objects.stats()["total"] == 2


def test_a_run_the_broker_never_took_is_deleted_and_its_id_is_free_again(math_workflow) -> None:
    queued = factories.execution(
        status="running", workflow=math_workflow, execution_id="unqueued", owner=""
    )
    assert store.execution_discard(execution=queued)
    assert not Execution.objects.exists()
    assert ExecutionCounter.objects.stats()["total"] == 0
    factories.execution(status="running", workflow=math_workflow, execution_id="unqueued")


def test_a_claimed_run_is_not_deleted_as_unqueued(math_workflow) -> None:
    queued = factories.execution(status="running", workflow=math_workflow, owner="")
    assert store.execution_claim(execution_id=queued.execution_id, owner="w/1/a") is not None
    assert not store.execution_discard(execution=queued)
    assert Execution.objects.get().lease_owner == "w/1/a"


def test_completing_a_node_that_is_not_running_is_refused(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    node = store.node_start(
        execution=execution,
        node=math_workflow.nodes[0],
        node_index=0,
        input={},
        started_at=timezone.now(),
    )
    store.node_complete(node=node, output=1, ended_at=timezone.now())
    with pytest.raises(store.TransitionError):
        store.node_fail(node=node, error=ErrorInfo("E", "late"), ended_at=timezone.now())
    assert NodeExecution.objects.get().status == "completed"


def test_large_output_is_stored_as_a_truncation_marker(math_workflow, settings) -> None:
    settings.C4C_MAX_PAYLOAD_BYTES = 1_000
    execution = factories.execution(
        status="running", workflow=math_workflow, input={"blob": "x" * 5_000}
    )
    node = store.node_start(
        execution=execution,
        node=math_workflow.nodes[0],
        node_index=0,
        input={},
        started_at=timezone.now(),
    )
    store.node_complete(node=node, output=["y" * 10] * 1_000, ended_at=timezone.now())
    row = Execution.objects.get()
    assert row.input[TRUNCATED_KEY] is True
    assert row.input["originalBytes"] > 5_000
    output = NodeExecution.objects.get().output
    assert output is not None
    assert output[TRUNCATED_KEY] is True


def test_values_json_cannot_hold_are_stored_readably(math_workflow) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    execution = factories.execution(
        status="running", workflow=math_workflow, input={"when": timezone.now(), "tags": {"a"}}
    )
    node = store.node_start(
        execution=execution,
        node=math_workflow.nodes[0],
        node_index=0,
        input={},
        started_at=timezone.now(),
    )
    store.node_complete(
        node=node, output={"o": Opaque(), "nan": float("nan")}, ended_at=timezone.now()
    )
    assert Execution.objects.get().input["tags"] == ["a"]
    output = NodeExecution.objects.get().output
    assert output == {"o": "<Opaque: Opaque()>", "nan": "nan"}


def test_spans_are_saved_in_bulk_and_trace_id_noted(math_workflow) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    spans = [
        Span(
            trace_id="a" * 32,
            span_id="1" * 16,
            name="workflow.execute",
            start_time_us=1,
            end_time_us=9,
        ),
        Span(
            trace_id="a" * 32,
            span_id="2" * 16,
            parent_span_id="1" * 16,
            name="workflow.node.procedure",
            start_time_us=2,
            end_time_us=5,
        ),
    ]
    saved = store.spans_record(execution=execution, spans=spans)
    assert [s.name for s in saved] == ["workflow.execute", "workflow.node.procedure"]
    assert Span.objects.filter(execution=execution).count() == 2
    assert Execution.objects.get().trace_id == "a" * 32
