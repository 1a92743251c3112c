"""The API's run control (not in c4c): re-run from the start or from a node, cancel, attempts."""

import json
import time
from typing import Any

import pytest
from django.test import Client
from django_eventstream.utils import get_storage

from executions.conf import app_settings
from executions.dispatch import pool
from executions.live import events
from executions.models import Execution
from tests.executions.conftest import delay_definition, math_definition
from workflows.library import workflow_library

pytestmark = pytest.mark.django_db(transaction=True)


def retry_fast() -> dict[str, Any]:
    """The retry-workflow example with its backoff cut from 1 s + 2 s to 10 ms + 20 ms."""
    example = workflow_library().get("retry-workflow")
    assert example is not None
    definition = {**example.to_json_dict(), "id": "retry-fast"}
    [flaky] = [node for node in definition["nodes"] if node["id"] == "call-flaky"]
    flaky["retry"] = {"maxAttempts": 3, "initialIntervalMs": 10}
    return definition


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def post(client: Client, path: str, body: Any = None) -> Any:
    """A JSON POST; without a body, as `curl -X POST -H 'Content-Type: application/json'` sends
    it (the test client drops the content type of an empty body unless it is set in META)."""
    if body is None:
        return client.generic("POST", path, "", CONTENT_TYPE="application/json")
    return client.post(path, data=json.dumps(body), content_type="application/json")


def run(client: Client, definition: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = post(client, "/workflow/execute", {"workflow": definition, **body})
    assert response.status_code in (200, 202), response.content
    answer: dict[str, Any] = response.json()
    return answer


def detail(client: Client, execution_id: str) -> dict[str, Any]:
    response = client.get(f"/workflow/executions/{execution_id}")
    assert response.status_code == 200, response.content
    execution: dict[str, Any] = response.json()["execution"]
    return execution


def wait_until_ended(execution_id: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Execution.objects.filter(execution_id=execution_id).only("status").first()
        if row is not None and row.status != "running":
            return row.status
        time.sleep(0.02)
    raise AssertionError(f"{execution_id} still running after {timeout} s")


def started_nodes(execution_id: str) -> list[str]:
    """The nodes the execution's own stream says were started (run, not reused)."""
    sent = get_storage().get_events(events.execution_channel(execution_id), 0, limit=1000)
    return [json.loads(e.data)["nodeId"] for e in sent if e.type == "node.started"]


def test_rerun_from_the_start_runs_the_stored_definition_again(client: Client) -> None:
    # An inline definition: the library does not know it, so only the stored snapshot can run.
    original = run(client, math_definition("rerun-math"), input={"n": 1})

    response = post(client, f"/workflow/executions/{original['executionId']}/rerun")

    assert response.status_code == 202, response.content
    body = response.json()
    new_id = body["executionId"]
    assert new_id != original["executionId"]
    assert body["rerunOf"] == original["executionId"]
    assert "rerunFromNode" not in body
    assert body["workflowId"] == "rerun-math"
    assert response["Location"] == f"/workflow/executions/{new_id}" == body["location"]
    assert wait_until_ended(new_id) == "completed"
    rerun = detail(client, new_id)
    assert rerun["rerunOf"] == original["executionId"]
    assert rerun["outputs"] == original["outputs"]
    assert not any(node.get("reused") for node in rerun["nodeDetails"].values())
    assert started_nodes(new_id) == ["add", "multiply", "subtract"]
    assert Execution.objects.get(execution_id=new_id).input == {"n": 1}
    assert "rerunOf" not in detail(client, original["executionId"])


def test_rerun_from_a_node_reuses_the_nodes_before_it_and_runs_the_rest(client: Client) -> None:
    original = run(client, math_definition("rerun-from"))
    before = detail(client, original["executionId"])["nodeDetails"]

    response = post(
        client,
        f"/workflow/executions/{original['executionId']}/rerun",
        {"fromNode": "multiply"},
    )

    assert response.status_code == 202, response.content
    assert response.json()["rerunFromNode"] == "multiply"
    new_id = response.json()["executionId"]
    assert wait_until_ended(new_id) == "completed"
    rerun = detail(client, new_id)
    assert rerun["rerunFromNode"] == "multiply"
    nodes = rerun["nodeDetails"]
    assert nodes["add"]["reused"] is True
    assert nodes["add"]["output"] == before["add"]["output"]
    assert "reused" not in nodes["multiply"]
    assert "reused" not in nodes["subtract"]
    # Reused is not run: no node.started for it on the new run's stream.
    assert started_nodes(new_id) == ["multiply", "subtract"]
    assert rerun["outputs"] == original["outputs"]


@pytest.mark.parametrize(
    ("from_node", "message"),
    [("nope", "nope"), ("log", "log")],
)
def test_rerun_from_a_node_not_in_the_run_is_400(
    client: Client, from_node: str, message: str
) -> None:
    failed = post(client, "/workflow/execute", {"workflowId": "failing-workflow"}).json()
    assert failed["status"] == "failed"

    response = post(
        client, f"/workflow/executions/{failed['executionId']}/rerun", {"fromNode": from_node}
    )

    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert Execution.objects.count() == 1


def test_rerun_of_a_failed_run_from_its_failed_node_starts_a_new_run(client: Client) -> None:
    failed = post(client, "/workflow/execute", {"workflowId": "failing-workflow"}).json()

    response = post(
        client, f"/workflow/executions/{failed['executionId']}/rerun", {"fromNode": "add"}
    )

    assert response.status_code == 202, response.content
    new_id = response.json()["executionId"]
    # The same contract error: the node ran again, with the stored input.
    assert wait_until_ended(new_id) == "failed"
    assert started_nodes(new_id) == ["add"]
    assert detail(client, new_id)["rerunOf"] == failed["executionId"]


def test_rerun_of_an_unknown_execution_is_404(client: Client) -> None:
    response = post(client, "/workflow/executions/wf_exec_nope/rerun")
    assert response.status_code == 404
    assert response.json() == {"error": "Execution 'wf_exec_nope' not found"}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"fromNode": 3}, "fromNode"), ({"fromNode": ""}, "fromNode"), ({"from": "x"}, "from")],
)
def test_rerun_with_a_bad_body_is_400_naming_the_field(client: Client, body, field) -> None:
    original = run(client, math_definition("rerun-bad"))
    response = post(client, f"/workflow/executions/{original['executionId']}/rerun", body)
    assert response.status_code == 400
    assert field in response.json()["error"]


def test_rerun_without_json_content_type_is_415(client: Client) -> None:
    original = run(client, math_definition("rerun-415"))
    response = client.post(
        f"/workflow/executions/{original['executionId']}/rerun", data="", content_type="text/plain"
    )
    assert response.status_code == 415
    assert Execution.objects.count() == 1


def test_rerun_while_the_original_runs_is_409_and_after_a_cancel_is_accepted(
    client: Client,
) -> None:
    running = run(client, delay_definition(60_000), **{"async": True})
    execution_id = running["executionId"]

    refused = post(client, f"/workflow/executions/{execution_id}/rerun")

    assert refused.status_code == 409
    assert "still running" in refused.json()["error"]
    assert post(client, f"/workflow/executions/{execution_id}/cancel").status_code == 200
    accepted = post(client, f"/workflow/executions/{execution_id}/rerun")
    assert accepted.status_code == 202, accepted.content
    new_id = accepted.json()["executionId"]
    assert post(client, f"/workflow/executions/{new_id}/cancel").status_code == 200
    assert wait_until_ended(new_id) == "cancelled"


def test_cancel_of_a_queued_run_means_it_never_starts(client: Client) -> None:
    """Every pool thread busy: the next async run waits in the queue; cancelled there, it is
    answered as cancelled at once and never runs a node, and the busy threads are freed by
    their own cancels."""
    busy = [
        run(client, delay_definition(60_000), **{"async": True})["executionId"]
        for _ in range(app_settings.C4C_WORKER_THREADS)
    ]
    queued = run(client, math_definition("queued"), **{"async": True})["executionId"]

    response = post(client, f"/workflow/executions/{queued}/cancel")

    assert response.status_code == 200, response.content
    assert response.json()["execution"]["status"] == "cancelled"
    started = time.monotonic()
    for execution_id in busy:
        assert post(client, f"/workflow/executions/{execution_id}/cancel").status_code == 200
    # The pool drains: the queued job is taken and ends at once without running anything.
    pool.submit(lambda: None).result(timeout=10)
    assert time.monotonic() - started < 5
    row = Execution.objects.get(execution_id=queued)
    assert row.status == "cancelled"
    assert not row.nodes.exists()
    assert started_nodes(queued) == []
    assert all(wait_until_ended(execution_id) == "cancelled" for execution_id in busy)


def test_cancel_of_an_ended_run_is_409(client: Client) -> None:
    done = run(client, math_definition("done"))
    response = post(client, f"/workflow/executions/{done['executionId']}/cancel")
    assert response.status_code == 409
    assert "completed" in response.json()["error"]


def test_node_details_list_every_attempt_of_a_retried_node(client: Client) -> None:
    result = run(client, retry_fast())
    assert result["status"] == "completed"

    nodes = detail(client, result["executionId"])["nodeDetails"]

    attempts = nodes["call-flaky"]["attempts"]
    assert [(a["number"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    for attempt in attempts[:2]:
        assert attempt["error"]["name"] == "ConnectionError"
        assert attempt["startTime"] <= attempt["endTime"] <= attempt["retryAt"]
    assert "error" not in attempts[2]
    assert "retryAt" not in attempts[2]
    assert attempts[0]["retryAt"] <= attempts[1]["startTime"]
    assert nodes["call-flaky"]["output"] == {"attempt": 3}
    assert nodes["call-flaky"]["startTime"] == attempts[0]["startTime"]
    # A node that ran once has no attempt list: its own times and error are the attempt's.
    assert "attempts" not in nodes["start"]
