"""Scale-out for real: the web server queues, a Celery worker runs, PostgreSQL holds the rows and
Redis pub/sub carries the worker's events to the web server's SSE streams."""

import time
import uuid
from typing import Any

import pytest

from tests.executions.conftest import SIMPLE_MATH_NODE_EVENTS, SseEvent, delay_definition, http
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
        "SELECT worker_id, status FROM executions_execution WHERE execution_id = %s", run
    )
    assert owner.startswith(f"{scale_out.worker.nodename}/"), owner
    assert status == "completed"
    assert scale_out.db.rows(
        "SELECT count(*) FROM executions_span s JOIN executions_execution e"
        " ON s.execution_id = e.id WHERE e.execution_id = %s",
        run,
    ) == [(len(execution["spans"]),)]
    scale_out.worker.wait_for_log("succeeded")


@pytest.mark.parametrize("broker_url", ["amqp"], indirect=True)
def test_worker_restart_fails_the_run_its_crashed_life_left_running(scale_out: ScaleOut, sse):
    """RabbitMQ hands the unacknowledged message to the restarted node at once: it must see the
    run already failed by the node's recovery and not run it a second time."""
    url = scale_out.web.url
    doomed = _new_id("doomed")
    stream = sse(f"{url}/workflow/executions-stream")
    _post_async(url, {"workflow": delay_definition(60_000), "executionId": doomed})
    stream.wait_for(
        lambda evs: any(e.event == "node.started" for e in _of(doomed, evs)), timeout=60
    )
    [(owner,)] = scale_out.db.rows(
        "SELECT worker_id FROM executions_execution WHERE execution_id = %s", doomed
    )
    assert owner.startswith(f"{scale_out.worker.nodename}/")

    scale_out.worker.crash()
    time.sleep(0.5)
    assert http("GET", f"{url}/workflow/executions/{doomed}")[2]["execution"]["status"] == "running"
    scale_out.worker.start()

    stream.wait_for(
        lambda evs: any(e.event == "workflow.failed" for e in _of(doomed, evs)), timeout=30
    )
    stream.wait_for(
        lambda evs: any(
            e.event == "executions.update" and e.data["executions"][0]["status"] == "failed"
            for e in _of(doomed, evs)
        )
    )
    _, _, detail = http("GET", f"{url}/workflow/executions/{doomed}")
    execution = detail["execution"]
    assert execution["status"] == "failed"
    assert execution["error"]["name"] == "InterruptedError"
    assert owner in execution["error"]["message"]
    assert execution["nodeDetails"]["wait"]["status"] == "failed"

    scale_out.worker.wait_for_log(f"Not running execution {doomed}")
    assert scale_out.db.rows(
        "SELECT status, worker_id FROM executions_execution WHERE execution_id = %s", doomed
    ) == [("failed", owner)]
    _, _, listing = http("GET", f"{url}/workflow/executions")
    assert listing["stats"] == {"total": 1, "completed": 0, "failed": 1, "running": 0}
