"""Scale-out for real: the web server queues, a Celery worker runs, PostgreSQL holds the rows and
Redis pub/sub carries the worker's events to the web server's SSE streams. A worker that dies
(one pool process, or the whole node) or a message that is lost does not lose the run: its lease
lapses, a sweep queues it again, and a worker resumes it from its recorded nodes."""

import os
import signal
import socket
import time
import uuid
from typing import Any

import pytest

from tests.executions.conftest import SIMPLE_MATH_NODE_EVENTS, SseEvent, http
from tests.services.conftest import ScaleOut

pytestmark = [pytest.mark.slow, pytest.mark.services]

RUN_EVENTS = [
    "workflow.started",
    *SIMPLE_MATH_NODE_EVENTS,
    "workflow.completed",
    "workflow.result",
]


def _of(execution_id: str, events: list[SseEvent]) -> list[SseEvent]:
    return [
        e
        for e in events
        if isinstance(e.data, dict)
        and (
            e.data.get("executionId") == execution_id
            or any(x["executionId"] == execution_id for x in e.data.get("executions", []))
        )
    ]


def _post_async(url: str, body: dict[str, Any]) -> None:
    status, headers, answer = http("POST", f"{url}/workflow/execute", {**body, "async": True})
    assert status == 202, answer
    assert headers["Location"] == f"/workflow/executions/{body['executionId']}"


def _new_id(name: str) -> str:
    """Unique per run: Redis pub/sub is shared by every test run on this Redis."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def test_async_run_executes_on_a_worker_and_streams_to_the_web_server(scale_out: ScaleOut, sse):
    url = scale_out.web.url
    run = _new_id("scaled")
    stream = sse(f"{url}/workflow/executions-stream")

    _post_async(url, {"workflowId": "simple-math-workflow", "executionId": run})

    # The run's last event is the list update that reports it completed.
    stream.wait_for(
        lambda evs: any(
            e.event == "executions.update" and e.data["executions"][0]["status"] == "completed"
            for e in _of(run, evs)
        ),
        timeout=60,
    )
    seen = _of(run, stream.events)
    assert [e.event for e in seen if e.event != "executions.update"] == RUN_EVENTS
    assert seen[-1].event == "executions.update"
    assert seen[-1].data["executions"][0]["status"] == "completed"

    _, _, detail = http("GET", f"{url}/workflow/executions/{run}")
    execution = detail["execution"]
    assert execution["status"] == "completed"
    assert execution["outputs"]["subtract"] == {"result": 12}
    assert {n: d["status"] for n, d in execution["nodeDetails"].items()} == {
        "add": "completed",
        "multiply": "completed",
        "subtract": "completed",
    }
    root = next(s for s in execution["spans"] if s["name"] == "workflow.execute")
    assert root["attributes"]["workflow.execution_id"] == run
    assert sum(s["name"].startswith("workflow.node.") for s in execution["spans"]) == 3

    [(owner, status)] = scale_out.db.rows(
        "SELECT lease_owner, status FROM executions_execution WHERE execution_id = %s", run
    )
    # A worker pool process's own lease: the worker's host, the process, its boot token.
    assert owner.startswith(f"{socket.gethostname()}/"), owner
    assert status == "completed"
    assert scale_out.db.rows(
        "SELECT count(*) FROM executions_span s JOIN executions_execution e"
        " ON s.execution_id = e.id WHERE e.execution_id = %s",
        run,
    ) == [(len(execution["spans"]),)]
    scale_out.worker.wait_for_log("succeeded")


# log -> short delay -> the node that is in flight when its worker dies -> log
RESUMABLE: dict[str, Any] = {
    "id": "resumable",
    "name": "Resumable",
    "startNode": "begin",
    "nodes": [
        {
            "id": "begin",
            "type": "procedure",
            "procedureName": "custom.log",
            "config": {"message": "resumable begins"},
            "next": "short",
        },
        {
            "id": "short",
            "type": "procedure",
            "procedureName": "custom.delay",
            "config": {"ms": 200},
            "next": "long",
        },
        {
            "id": "long",
            "type": "procedure",
            "procedureName": "custom.delay",
            "config": {"ms": 3000},
            "next": "end",
        },
        {
            "id": "end",
            "type": "procedure",
            "procedureName": "custom.log",
            "config": {"message": "resumable ends"},
        },
    ],
}


def _nodes(scale_out: ScaleOut, execution_id: str) -> dict[str, tuple[Any, ...]]:
    rows = scale_out.db.rows(
        "SELECT n.node_id, n.status, n.started_at, n.attempt, n.attempts"
        " FROM executions_nodeexecution n JOIN executions_execution e ON n.execution_id = e.id"
        " WHERE e.execution_id = %s",
        execution_id,
    )
    return {row[0]: row[1:] for row in rows}


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s")


def _run_until_long_node(
    scale_out: ScaleOut, name: str, workflow: dict[str, Any] = RESUMABLE
) -> tuple[str, dict[str, tuple[Any, ...]]]:
    run = _new_id(name)
    _post_async(scale_out.web.url, {"workflow": workflow, "executionId": run})
    _until(
        lambda: _nodes(scale_out, run).get("long", ("",))[0] == "running",
        60,
        "the long node started",
    )
    return run, _nodes(scale_out, run)


def _finished_as_resumed(scale_out: ScaleOut, run: str, before: dict[str, tuple[Any, ...]]) -> None:
    """Completed on another process: begin and short untouched, long ran again as attempt 2."""
    _until(
        lambda: scale_out.db.rows(
            "SELECT status FROM executions_execution"
            " WHERE execution_id = %s AND status != 'running'",
            run,
        ),
        60,
        "the run ended",
    )
    [(status, outputs)] = scale_out.db.rows(
        "SELECT status, outputs FROM executions_execution WHERE execution_id = %s", run
    )
    assert status == "completed"
    assert outputs["end"]["message"] == "resumable ends"
    after = _nodes(scale_out, run)
    for node_id in ("begin", "short"):
        assert after[node_id][:3] == before[node_id][:3] == ("completed", before[node_id][1], 1)
    long_status, _, long_attempt, attempts = after["long"]
    assert (long_status, long_attempt) == ("completed", 2)
    assert [a["status"] for a in attempts] == ["failed", "completed"]
    assert attempts[0]["error"]["name"] == "InterruptedError"


def test_a_killed_pool_process_loses_its_run_and_a_worker_resumes_it(scale_out: ScaleOut):
    """An OOM kill of the one pool process running the run: the node lives on, the run's lease
    lapses, it is queued again and a pool process resumes it."""
    run, before = _run_until_long_node(scale_out, "oom")
    [(owner,)] = scale_out.db.rows(
        "SELECT lease_owner FROM executions_execution WHERE execution_id = %s", run
    )
    pool_pid = int(owner.split("/")[1])
    assert scale_out.worker.process is not None
    assert pool_pid != scale_out.worker.process.pid

    os.kill(pool_pid, signal.SIGKILL)

    _finished_as_resumed(scale_out, run, before)
    [(new_owner,)] = scale_out.db.rows(
        "SELECT lease_owner FROM executions_execution WHERE execution_id = %s", run
    )
    assert new_owner != owner


def test_a_crashed_worker_node_s_run_is_finished_by_another_node(scale_out: ScaleOut, sse):
    url = scale_out.web.url
    stream = sse(f"{url}/workflow/executions-stream")
    run, before = _run_until_long_node(scale_out, "node-crash")

    scale_out.worker.crash()
    time.sleep(0.5)
    assert http("GET", f"{url}/workflow/executions/{run}")[2]["execution"]["status"] == "running"
    scale_out.another_worker("b").start()

    _finished_as_resumed(scale_out, run, before)
    stream.wait_for(
        lambda evs: any(e.event == "workflow.completed" for e in _of(run, evs)), timeout=30
    )
    # The resumed run announced only what it newly did: no second start of the run or of the
    # nodes done before the crash.
    announced = [
        (e.event, e.data.get("nodeId")) for e in _of(run, stream.events) if "nodeId" in e.data
    ]
    assert announced.count(("node.started", "begin")) == 1
    assert announced.count(("node.started", "long")) == 2
    assert [e.event for e in _of(run, stream.events)].count("workflow.started") == 1


# RESUMABLE with a long node that would take a minute: a cancel must stop it, not wait it out.
ENDLESS = {
    **RESUMABLE,
    "id": "endless",
    "name": "Endless",
    "nodes": [
        {**node, "config": {"ms": 60_000}} if node["id"] == "long" else node
        for node in RESUMABLE["nodes"]
    ],
}


def test_a_cancel_sent_to_the_web_server_stops_the_run_on_its_worker(scale_out: ScaleOut):
    """The web process records the cancel; the worker's pool process running the run sees it
    (its cancel check, or its lease renewal refused), stops the node in flight and ends its task,
    long before the minute the node would have taken."""
    url = scale_out.web.url
    run, _ = _run_until_long_node(scale_out, "cancel", ENDLESS)

    status, _, answer = http("POST", f"{url}/workflow/executions/{run}/cancel")

    assert status == 200, answer
    assert answer["execution"]["status"] == "cancelled"
    # The task's line: "Task executions.run_execution[...] succeeded in 0.6s: 'cancelled'".
    scale_out.worker.wait_for_log(": 'cancelled'", timeout=20)
    nodes = {node_id: row[0] for node_id, row in _nodes(scale_out, run).items()}
    assert nodes == {"begin": "completed", "short": "completed", "long": "skipped"}
    assert scale_out.db.rows(
        "SELECT status FROM executions_execution WHERE execution_id = %s", run
    ) == [("cancelled",)]


def test_a_lost_message_is_sent_again_and_the_run_completes(scale_out: ScaleOut):
    """The broker lost the queued message (restarted without persistence) before any worker
    took it: the run's claim deadline passes and the sweep queues it again."""
    scale_out.worker.stop()
    run = _new_id("lost")
    _post_async(scale_out.web.url, {"workflowId": "simple-math-workflow", "executionId": run})
    assert scale_out.purge_queue() == 1

    scale_out.worker.start()

    _until(
        lambda: scale_out.db.rows(
            "SELECT 1 FROM executions_execution WHERE execution_id = %s AND status = 'completed'",
            run,
        ),
        60,
        "the run completed",
    )
