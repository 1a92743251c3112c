"""Waits outlive their server, for real (slow): a daphne process parks a run - sleeping, or
waiting for a signal - and dies by SIGKILL; another daphne process on the same database (another
port, another server id) wakes it from the rows alone, on time, and takes signals sent to it
over HTTP. On a live server: a subworkflow end to end over the API, and a cancel of the parent
cancelling the child that waits.
"""

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaphneServer
from tests.executions.conftest import http

pytestmark = pytest.mark.slow

# A lease of 2 s: a run a dead server held when it died is taken over within seconds.
ENV = {"C4C_LEASE_SECONDS": "2"}


def _log(node_id: str, message: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "procedure",
        "procedureName": "custom.log",
        "config": {"message": message},
    }


def _workflow(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"id": "waits-restart", "name": "Waits", "startNode": nodes[0]["id"], "nodes": nodes}


def _new_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def _start(url: str, execution_id: str, **body: Any) -> None:
    status, _, answer = http(
        "POST", f"{url}/workflow/execute", {**body, "executionId": execution_id, "async": True}
    )
    assert status == 202, answer


def _execution(url: str, execution_id: str) -> dict[str, Any]:
    status, _, body = http("GET", f"{url}/workflow/executions/{execution_id}")
    assert status == 200, body
    execution: dict[str, Any] = body["execution"]
    return execution


def _until(url: str, execution_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        execution = _execution(url, execution_id)
        if done(execution):
            return execution
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} did not get there in 60 s: {json.dumps(execution)}")


def _ended(execution: dict[str, Any]) -> bool:
    return execution["status"] in ("completed", "failed", "cancelled")


def _parked_at(node_id: str, status: str) -> Callable[[dict[str, Any]], bool]:
    def parked(execution: dict[str, Any]) -> bool:
        node = execution.get("nodeDetails", {}).get(node_id, {})
        return bool(execution["status"] == "waiting" and node.get("status") == status)

    return parked


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _signal(url: str, execution_id: str, name: str, payload: Any) -> dict[str, Any]:
    path = f"/workflow/executions/{execution_id}/signals/{name}"
    status, _, body = http("POST", f"{url}{path}", payload)
    assert status == 202, body
    answer: dict[str, Any] = body
    return answer


def test_a_sleeping_run_survives_kill_9_of_its_server_and_wakes_on_time_on_another(
    tmp_path: Path,
) -> None:
    """The sleep outlasts the restart (a server takes seconds to start: its duration is made
    from how long the first one took), so the second server is up before the run is due and
    its waking is timed, not the restart."""
    run = _new_id("sleeper")
    first = DaphneServer(tmp_path, env={**ENV, "C4C_SERVER_ID": "server-a"})
    began = time.monotonic()
    first.start()
    sleep_ms = 2000 + round((time.monotonic() - began) * 2000)
    try:
        _start(
            first.url,
            run,
            workflow=_workflow(
                {"id": "nap", "type": "sleep", "config": {"durationMs": sleep_ms}, "next": "up"},
                _log("up", "woke up"),
            ),
        )
        parked = _until(first.url, run, _parked_at("nap", "sleeping"))
    finally:
        first.crash()
    crashed = len(first.log())
    due = _time(parked["nodeDetails"]["nap"]["wakeAt"])
    assert parked["wakeAt"] == parked["nodeDetails"]["nap"]["wakeAt"]

    second = DaphneServer(tmp_path, env={**ENV, "C4C_SERVER_ID": "server-b"})
    assert second.port != first.port
    second.start()
    try:
        up_at = datetime.now(due.tzinfo)
        execution = _until(second.url, run, _ended)
    finally:
        second.stop()

    assert up_at < due, "the second server came up after the run was due: nothing to time"
    assert execution["status"] == "completed", execution.get("error")
    nap, up = execution["nodeDetails"]["nap"], execution["nodeDetails"]["up"]
    assert nap["status"] == "completed"
    assert _time(nap["output"]["sleptUntil"]) == due
    assert due <= _time(nap["endTime"]) < due + timedelta(seconds=1)
    assert due <= _time(up["startTime"]) < due + timedelta(seconds=1)
    log = second.log()  # both servers write to one file
    assert f"Woke execution {run}" in log[crashed:]
    assert log.count("woke up") == 1


def test_a_waiting_run_survives_kill_9_and_takes_signals_sent_before_and_after_it(
    tmp_path: Path,
) -> None:
    """Two runs on the first server: one waits for `approval` (sent to the second server after
    the kill), the other sleeps before waiting for `go`, which is sent to the first server while
    it sleeps, before the kill: the second server finds it kept."""
    waiting, early = _new_id("waiting"), _new_id("early")
    first = DaphneServer(tmp_path, env={**ENV, "C4C_SERVER_ID": "server-a"})
    first.start()
    try:
        _start(
            first.url,
            waiting,
            workflow=_workflow(
                {"id": "ask", "type": "wait", "config": {"signal": "approval"}, "next": "done"},
                _log("done", "approved by {{ask.by}}"),
            ),
        )
        _start(
            first.url,
            early,
            workflow=_workflow(
                {"id": "nap", "type": "sleep", "config": {"durationMs": 2000}, "next": "ask"},
                {"id": "ask", "type": "wait", "config": {"signal": "go"}},
            ),
        )
        _until(first.url, waiting, _parked_at("ask", "waiting"))
        _until(first.url, early, _parked_at("nap", "sleeping"))
        sent = _signal(first.url, early, "go", {"sent": "before the kill"})
        # Kept, not woken: the run sleeps, and no node waits for "go" yet.
        assert sent == {"executionId": early, "signal": "go", "woke": False}
    finally:
        first.crash()

    second = DaphneServer(tmp_path, env={**ENV, "C4C_SERVER_ID": "server-b"})
    second.start()
    try:
        assert _execution(second.url, waiting)["status"] == "waiting"
        answer = _signal(second.url, waiting, "approval", {"approved": True, "by": "ana"})
        approved = _until(second.url, waiting, _ended)
        kept = _until(second.url, early, _ended)
    finally:
        second.stop()

    assert answer == {"executionId": waiting, "signal": "approval", "woke": True}
    assert approved["status"] == "completed", approved.get("error")
    assert approved["nodeDetails"]["ask"]["output"] == {"approved": True, "by": "ana"}
    assert approved["outputs"]["done"]["message"] == "approved by ana"
    assert kept["status"] == "completed", kept.get("error")
    assert kept["nodeDetails"]["ask"]["output"] == {"sent": "before the kill"}
    assert _time(kept["nodeDetails"]["ask"]["startTime"]) >= _time(
        kept["nodeDetails"]["nap"]["wakeAt"]
    )


def test_a_subworkflow_runs_as_a_linked_child_over_the_api(shared_server: DaphneServer) -> None:
    """sleep-and-compose-workflow: a sleep, then simple-math-workflow as a child execution."""
    url, parent = shared_server.url, _new_id("compose")
    _start(url, parent, workflowId="sleep-and-compose-workflow")

    execution = _until(url, parent, _ended)

    assert execution["status"] == "completed", execution.get("error")
    math = execution["nodeDetails"]["math"]
    child_id = math["output"]["executionId"]
    assert math["output"]["outputs"]["subtract"] == {"result": 12}
    child = _execution(url, child_id)
    assert (child["status"], child["workflowId"]) == ("completed", "simple-math-workflow")
    assert (child["parentExecutionId"], child["parentNodeId"]) == (parent, "math")
    assert execution["outputs"]["report"]["message"] == f"Child {child_id} computed 12"
    listed = http("GET", f"{url}/workflow/executions?limit=200")[2]["executions"]
    assert [row.get("parentExecutionId") for row in listed if row["executionId"] == child_id] == [
        parent
    ]


def test_cancelling_a_parent_over_http_cancels_the_child_it_waits_for(
    shared_server: DaphneServer,
) -> None:
    url, parent = shared_server.url, _new_id("parent")
    _start(
        url,
        parent,
        workflow=_workflow(
            {"id": "approval", "type": "subworkflow", "config": {"workflowId": "approval-workflow"}}
        ),
    )
    waits = _until(url, parent, _parked_at("approval", "waiting"))
    kind, _, child_id = waits["nodeDetails"]["approval"]["waitingFor"].partition(":")
    assert kind == "execution"
    _until(url, child_id, _parked_at("approve", "waiting"))

    status, _, body = http("POST", f"{url}/workflow/executions/{parent}/cancel", {})

    assert status == 200, body
    assert body["execution"]["status"] == "cancelled"
    assert body["execution"]["nodeDetails"]["approval"]["status"] == "skipped"
    child = _execution(url, child_id)
    assert child["status"] == "cancelled"
    assert child["nodeDetails"]["approve"]["status"] == "skipped"
    assert child["parentExecutionId"] == parent
    refused = http("POST", f"{url}/workflow/executions/{child_id}/signals/approval", {})
    assert refused[0] == 409
