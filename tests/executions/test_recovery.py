"""Recovery by lease: the sweep takes over runs whose process died - whatever its name, host or
pid - and they continue from their checkpoints.

In-process, transaction=True: the resumed run is a pool thread with its own connection, which
must see the rows the test wrote. For real (slow): `kill -9` of a daphne server mid-run, and a
server on another port with another server id finishes the run.
"""

import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django_eventstream.utils import get_storage

from executions import dispatch, store
from executions.live import events
from executions.models import Execution, ExecutionCounter, Span
from tests import factories
from tests.conftest import DaphneServer
from tests.executions.conftest import BATCHED_EVENTS, http, within
from workflows.observer import ErrorInfo

in_process = pytest.mark.django_db(transaction=True)

DEAD_OWNER = "web-1:8000/4242/dead"


def _ended(execution_id: str, timeout: float = 15) -> Execution:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Execution.objects.get(execution_id=execution_id)
        if row.status != "running":
            return row
        time.sleep(0.02)
    raise AssertionError(f"{execution_id} still running after {timeout}s")


def _died_in_multiply(workflow: Any, execution_id: str) -> Execution:
    """A run whose process died while `multiply` ran, after `add` completed."""
    return factories.execution(
        status="running",
        workflow=workflow,
        execution_id=execution_id,
        nodes={"add": "completed", "multiply": "running"},
        owner=DEAD_OWNER,
    )


def _events(channel: str, since: int) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, json.loads(e.data)) for e in get_storage().get_events(channel, since)]


@in_process
def test_sweep_resumes_a_run_whose_process_died_and_runs_only_what_was_not_done(
    math_workflow,
) -> None:
    execution = _died_in_multiply(math_workflow, "orphan")
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
    # (Its spans go out as span.ended between them: tests/executions/live/test_span_events.py.)
    # The row ends before its last spans are saved and its end announced: wait for that.
    channel = events.execution_channel("orphan")
    within(5, lambda: any(name == "workflow.result" for name, _ in _events(channel, since)))
    announced = [
        (name, data.get("nodeId"))
        for name, data in _events(channel, since)
        if name not in BATCHED_EVENTS
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


def _dead_process_spans(execution: Execution) -> tuple[str, str]:
    """What a process that died in `multiply` saved of its trace, through the store as it does:
    `add`'s node span and its procedure's under the root it noted, and a first attempt of
    `multiply`'s procedure under `multiply`'s node span, still open (never saved)."""
    trace_id, root, multiply = "a" * 32, "1" * 16, "3" * 16
    start = int(execution.started_at.timestamp() * 1_000_000)

    def span(span_id: str, parent: str, name: str, at_ms: int, length_ms: int) -> Span:
        return Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            start_time_us=start + at_ms * 1_000,
            end_time_us=start + (at_ms + length_ms) * 1_000,
            status_code="OK",
        )

    store.spans_add(
        execution=execution,
        spans=[
            span("2" * 16, root, "workflow.node.procedure", 1, 10),
            span("4" * 16, "2" * 16, "math.add", 2, 5),
            span("5" * 16, multiply, "math.multiply", 20, 5),
        ],
        root=(trace_id, root),
    )
    return trace_id, root


@in_process
def test_a_run_taken_over_saves_the_root_span_its_dead_process_never_did(math_workflow) -> None:
    execution = _died_in_multiply(math_workflow, "rootless")
    trace_id, root = _dead_process_spans(execution)
    factories.lapse(execution)
    since = get_storage().get_current_id(events.execution_channel("rootless"))

    assert dispatch.sweep(requeue=False) == ["rootless"]
    assert _ended("rootless").status == "completed"

    dead = {s.span_id: s for s in Span.objects.filter(execution=execution, trace_id=trace_id)}
    stood_in = dead[root]
    assert (stood_in.name, stood_in.parent_span_id, stood_in.status_code) == (
        "workflow.execute",
        "",
        "ERROR",
    )
    assert DEAD_OWNER in stood_in.status_message
    assert stood_in.attributes["workflow.interrupted"] is True
    assert stood_in.attributes["workflow.execution_id"] == "rootless"
    saved = [s for s in dead.values() if s.span_id != root]
    assert stood_in.start_time_us == min(s.start_time_us for s in saved)
    assert stood_in.end_time_us == max(s.end_time_us for s in saved)
    # multiply's open node span, which its first attempt's span hangs from, stands under the root.
    multiply = dead["3" * 16]
    assert (multiply.name, multiply.parent_span_id, multiply.status_code) == (
        "workflow.interrupted",
        root,
        "ERROR",
    )
    assert all(s.parent_span_id in dead for s in dead.values() if s.span_id != root)
    # A run this short saves its spans and notes its trace once, after its end is written: the
    # result leaves after them.
    channel = events.execution_channel("rootless")
    within(5, lambda: any(name == "workflow.result" for name, _ in _events(channel, since)))
    # The resumed part is a trace of its own, with its root, as a woken run's is.
    execution.refresh_from_db()
    assert execution.trace_id != trace_id
    assert Span.objects.filter(
        execution=execution, trace_id=execution.trace_id, parent_span_id="", name="workflow.execute"
    ).exists()
    shown = [
        span["spanId"]
        for name, data in _events(channel, since)
        if name == "span.ended"
        for span in data["spans"]
    ]
    assert {root, "3" * 16} <= set(shown)


@pytest.mark.django_db
def test_a_run_that_noted_its_root_and_saved_it_needs_no_stand_in(math_workflow) -> None:
    execution = factories.execution(
        status="running", workflow=math_workflow, nodes={"add": "completed"}
    )
    trace_id, root = _dead_process_spans(execution)
    assert (execution.trace_id, execution.root_span_id) == (trace_id, root)
    store.spans_record(
        execution=execution,
        spans=[
            Span(
                trace_id=trace_id,
                span_id=root,
                name="workflow.execute",
                start_time_us=0,
                end_time_us=1,
            )
        ],
    )
    error = ErrorInfo(name="InterruptedError", message="stopped", stack="")
    assert store.span_root_lost(execution=execution, error=error) == []


@in_process
def test_a_run_whose_owner_keeps_its_lease_is_left_alone(math_workflow) -> None:
    factories.execution(status="running", workflow=math_workflow, owner=DEAD_OWNER)
    assert dispatch.sweep(requeue=False) == []
    assert Execution.objects.get().lease_owner == DEAD_OWNER


@in_process
def test_a_queued_run_nobody_claimed_in_time_is_run_by_the_sweep(math_workflow) -> None:
    """Its Celery message was lost: the claim deadline passed with no worker taking it."""
    queued = factories.started_run(workflow=math_workflow, execution_id="lost-message", owner="")
    factories.lapse(queued)

    assert dispatch.sweep(requeue=False) == ["lost-message"]

    assert _ended("lost-message").status == "completed"


@in_process
def test_finished_runs_are_never_taken_over(math_workflow) -> None:
    for status in ("completed", "failed", "cancelled"):
        factories.lapse(factories.execution(status=status, workflow=math_workflow))
    assert dispatch.sweep(requeue=False) == []


# The long-running example, its delays scaled to a few seconds; a lease of 2 s.
CRASH_ENV = {"C4C_DELAY_SCALE": "0.1", "C4C_LEASE_SECONDS": "2"}


def _rows(db_path: Path, query: str, execution_id: str) -> list[dict[str, Any]]:
    """Rows of the run as the servers wrote them (`query` joins `e`, its execution)."""
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(query, (execution_id,)).fetchall()]


def _node_rows(db_path: Path, execution_id: str) -> dict[str, dict[str, Any]]:
    """The run's node rows (latest visit per node)."""
    rows = _rows(
        db_path,
        "SELECT n.node_id, n.status, n.started_at, n.attempt, n.attempts"
        " FROM executions_nodeexecution n JOIN executions_execution e"
        " ON n.execution_id = e.id WHERE e.execution_id = ? ORDER BY n.sequence",
        execution_id,
    )
    return {
        row["node_id"]: {**row, "attempts": json.loads(row["attempts"] or "null")} for row in rows
    }


def _span_rows(db_path: Path, execution_id: str) -> list[dict[str, Any]]:
    rows = _rows(
        db_path,
        "SELECT s.span_id, s.parent_span_id, s.status_code, s.status_message, s.attributes"
        " FROM executions_span s JOIN executions_execution e ON s.execution_id = e.id"
        " WHERE e.execution_id = ?",
        execution_id,
    )
    return [{**row, "attributes": json.loads(row["attributes"])} for row in rows]


def _finished(url: str, execution_id: str) -> dict[str, Any] | None:
    execution: dict[str, Any] = http("GET", f"{url}/workflow/executions/{execution_id}")[2][
        "execution"
    ]
    return None if execution["status"] == "running" else execution


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout}s")


@pytest.mark.slow
def test_a_run_survives_kill_9_of_its_server_and_finishes_on_another(tmp_path: Path) -> None:
    """Server A (port p, id server-a) dies mid-run; server B (another port, id server-b) serves
    the same database: the run completes there. Nodes done before the crash keep their start
    times and one attempt, each interrupted node ran again as attempt 2 only after A was gone,
    and each logging node ran exactly once across both servers."""
    first = DaphneServer(tmp_path, env={**CRASH_ENV, "C4C_SERVER_ID": "server-a"})
    first.start()
    try:
        status, _, body = http(
            "POST",
            f"{first.url}/workflow/execute",
            {"workflowId": "long-running-workflow", "executionId": "survivor", "async": True},
        )
        assert status == 202, body
        _wait_for(
            lambda: (
                _node_rows(first.db_path, "survivor").get("slow-b", {}).get("status") == "running"
            ),
            30,
            "the fan-out started",
        )
        before = _node_rows(first.db_path, "survivor")
    finally:
        first.crash()
    crashed_at = time.time()
    done_before = {n: row for n, row in before.items() if row["status"] == "completed"}
    assert {"start", "warm-up", "fetch-data"} <= set(done_before)

    second = DaphneServer(tmp_path, env={**CRASH_ENV, "C4C_SERVER_ID": "server-b"})
    assert second.port != first.port
    second.start()
    try:
        execution = _wait_for(
            lambda: _finished(second.url, "survivor"), 60, "the run finished on the 2nd server"
        )
        # Its spans are saved after its row ends: both parts' roots, A's stood in for by B.
        spans = _wait_for(
            lambda: (
                (rows := _span_rows(second.db_path, "survivor"))
                and sum(not row["parent_span_id"] for row in rows) == 2
                and rows
            ),
            10,
            "the roots of both parts of the run",
        )
    finally:
        second.stop()

    assert execution["status"] == "completed", execution.get("error")
    assert execution["outputs"]["crunch"] == {"result": 105}
    after = _node_rows(second.db_path, "survivor")
    assert all(row["status"] == "completed" for row in after.values())
    for node_id, row in done_before.items():
        assert (after[node_id]["started_at"], after[node_id]["attempt"]) == (
            row["started_at"],
            1,
        ), node_id
    interrupted = [n for n, row in before.items() if row["status"] == "running"]
    assert "slow-b" in interrupted
    for node_id in interrupted:
        attempts = after[node_id]["attempts"]
        assert [a["status"] for a in attempts[-2:]] == ["failed", "completed"], node_id
        assert attempts[-2]["error"]["name"] == "InterruptedError"
        resumed = datetime.fromisoformat(attempts[-1]["startTime"]).timestamp()
        assert resumed > crashed_at, node_id
    # The trace is a tree again: A's root is saved, failed, and every span hangs from one saved.
    ids = {row["span_id"] for row in spans}
    assert all(row["parent_span_id"] in ids for row in spans if row["parent_span_id"])
    lost_root = next(
        row
        for row in spans
        if not row["parent_span_id"] and row["attributes"].get("workflow.interrupted")
    )
    assert lost_root["status_code"] == "ERROR"
    assert "server-a" in lost_root["status_message"]
    log = first.log()
    assert log.count("Long-running workflow started") == 1
    assert log.count("Long-running workflow finished: 105") == 1
    assert "Took over execution survivor from server-a/" in log
