"""Waits scaled out, for real (slow, services): a daphne web process queues to a Celery worker
process on Redis, both on one PostgreSQL database (tests/services/conftest.py). A run that parks
frees its worker; when it is due (its sleep ended, its signal came) a sweep queues it again
(requeue: no process runs it itself) and a worker claims it and resumes it from its rows.
"""

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.executions.conftest import http
from tests.services.conftest import BROKERS, ScaleOut, require

# The scale-out fixtures, by name (they live beside tests/services, out of this folder's reach).
from tests.services.conftest import postgres as postgres
from tests.services.conftest import scale_out as scale_out

pytestmark = [pytest.mark.slow, pytest.mark.services]

UNFINISHED = ("running", "waiting")


@pytest.fixture
def broker_url() -> str:
    """Redis only (tests/services runs the scale-out on RabbitMQ too)."""
    url, port, name = BROKERS["redis"]
    require(port, name)
    return url


def _execution(url: str, execution_id: str) -> dict[str, Any]:
    status, _, body = http("GET", f"{url}/workflow/executions/{execution_id}")
    assert status == 200, body
    execution: dict[str, Any] = body["execution"]
    return execution


def _until(
    url: str, execution_id: str, what: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        execution = _execution(url, execution_id)
        if done(execution):
            return execution
        time.sleep(0.1)
    raise AssertionError(f"{execution_id}: {what} within 60 s")


def _waiting_at(node_id: str) -> Callable[[dict[str, Any]], bool]:
    def waiting(execution: dict[str, Any]) -> bool:
        node = execution.get("nodeDetails", {}).get(node_id, {})
        return bool(execution["status"] == "waiting" and node.get("status") == "waiting")

    return waiting


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("PPid:")).split()[1])


def test_a_sleep_and_a_wait_complete_through_celery_workers(scale_out: ScaleOut) -> None:
    url, run = scale_out.web.url, f"celery-waits-{uuid.uuid4().hex[:10]}"
    status, _, answer = http(
        "POST",
        f"{url}/workflow/execute",
        {
            "workflow": {
                "id": "celery-waits",
                "name": "Celery waits",
                "startNode": "nap",
                "nodes": [
                    {"id": "nap", "type": "sleep", "config": {"durationMs": 1500}, "next": "ask"},
                    {"id": "ask", "type": "wait", "config": {"signal": "go"}, "next": "done"},
                    {
                        "id": "done",
                        "type": "procedure",
                        "procedureName": "custom.log",
                        "config": {"message": "went on with {{ask.n}}"},
                    },
                ],
            },
            "executionId": run,
            "async": True,
        },
    )
    assert status == 202, answer

    waits = _until(url, run, "the run waited for its signal", _waiting_at("ask"))
    nap = waits["nodeDetails"]["nap"]
    assert nap["status"] == "completed"
    due = _time(nap["wakeAt"])
    assert due <= _time(nap["endTime"]) < due + timedelta(seconds=5)

    status, _, sent = http("POST", f"{url}/workflow/executions/{run}/signals/go", {"n": 7})
    assert (status, sent["woke"]) == (202, True)
    execution = _until(url, run, "the run ended", lambda e: e["status"] not in UNFINISHED)

    assert execution["status"] == "completed", execution.get("error")
    assert execution["nodeDetails"]["ask"]["output"] == {"n": 7}
    assert execution["outputs"]["done"]["message"] == "went on with 7"
    [(owner,)] = scale_out.db.rows(
        "SELECT lease_owner FROM executions_execution WHERE execution_id = %s", run
    )
    assert scale_out.worker.process is not None
    assert _parent_pid(int(owner.split("/")[1])) == scale_out.worker.process.pid
    # Each walk ends with the run's status: parked twice (sleep, wait), then completed.
    worker_log = scale_out.worker.log()
    assert worker_log.count("succeeded in") >= 3, worker_log
    assert worker_log.count(": 'waiting'") >= 2, worker_log
    assert ": 'completed'" in worker_log
    woken = scale_out.web.log() + worker_log
    assert woken.count(f"Woke execution {run}") >= 2
