"""Bulk cancel and re-run over a filter or named runs: counted, confirmed with the count's token,
done in the background with progress, refused when the runs changed since the count."""

import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from executions.models import Execution, ExecutionStatus
from tests import factories

# The bulk thread and the list reads run off the test's thread: rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

BATCH = "input.batch = 7"


def _count(client: Client, params: list[tuple[str, str]]) -> dict[str, Any]:
    response = client.get(f"/workflow/executions/bulk/count?{urlencode(params)}")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _post(client: Client, body: dict[str, Any]) -> Any:
    return client.post("/workflow/executions/bulk", body, content_type="application/json")


def _finished(client: Client, location: str, timeout: float = 20) -> dict[str, Any]:
    """The action's progress once it has ended, polled as the page polls it."""
    deadline = time.monotonic() + timeout
    while True:
        progress: dict[str, Any] = client.get(location).json()
        if progress["status"] != "running":
            return progress
        assert time.monotonic() < deadline, progress
        time.sleep(0.05)


def _statuses() -> dict[str, str]:
    return dict(Execution.objects.values_list("execution_id", "status"))


@pytest.fixture
def batch() -> None:
    """Three running runs and a completed one in batch 7; a running run of batch 8."""
    base = timezone.now() - timedelta(minutes=5)
    for i, (status, number) in enumerate(
        [("running", 7), ("running", 8), ("completed", 7), ("running", 7), ("running", 7)]
    ):
        factories.execution(
            execution_id=f"b{i}",
            status=status,
            started_at=base + timedelta(seconds=i),
            input={"batch": number},
        )


def test_a_bulk_cancel_over_a_filter_cancels_exactly_the_counted_runs(client, batch) -> None:
    counted = _count(client, [("action", "cancel"), ("where", BATCH)])
    assert (counted["count"], counted["running"], counted["finished"]) == (4, 3, 1)
    assert counted["filter"] == "input.batch = 7"
    response = _post(
        client, {"action": "cancel", "filter": {"where": BATCH}, "expect": counted["expect"]}
    )
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert accepted["count"] == 4
    assert accepted["bulkId"].startswith("bulk_")
    assert response["Location"] == accepted["location"]
    progress = _finished(client, accepted["location"])
    assert progress["status"] == "completed"
    assert (progress["done"], progress["succeeded"], progress["skipped"]) == (4, 3, 1)
    assert progress["filter"] == "input.batch = 7"
    assert _statuses() == {
        "b0": "cancelled",
        "b1": "running",
        "b2": "completed",
        "b3": "cancelled",
        "b4": "cancelled",
    }
    stats = client.get("/workflow/executions").json()["stats"]
    assert stats == {"total": 5, "completed": 1, "failed": 0, "running": 1, "waiting": 0}


def test_a_set_that_changed_since_the_count_is_refused_and_nothing_is_done(client, batch) -> None:
    counted = _count(client, [("action", "cancel"), ("status", "running"), ("where", BATCH)])
    assert counted["count"] == 3
    factories.execution(execution_id="late", status="running", input={"batch": 7})
    body = {
        "action": "cancel",
        "filter": {"status": ["running"], "where": [BATCH]},
        "expect": counted["expect"],
    }
    refused = _post(client, body)
    assert refused.status_code == 409
    assert refused.json()["count"] == 4
    assert "changed since they were counted (4 now)" in refused.json()["error"]
    assert list(_statuses().values()).count("cancelled") == 0

    # A run that ended under a status filter changes the set too.
    Execution.objects.filter(execution_id="late").update(status=ExecutionStatus.FAILED)
    assert _post(client, {**body, "expect": refused.json()["expect"]}).status_code == 409
    recounted = _count(client, [("action", "cancel"), ("status", "running"), ("where", BATCH)])
    accepted = _post(client, {**body, "expect": recounted["expect"]})
    assert accepted.status_code == 202
    assert _finished(client, accepted.json()["location"])["succeeded"] == 3


def test_named_runs_are_counted_and_cancelled_skipping_those_that_ended(client, batch) -> None:
    ids = [("executionId", "b2"), ("executionId", "b3")]
    counted = _count(client, [("action", "cancel"), *ids])
    assert (counted["count"], counted["running"]) == (2, 1)
    assert counted["filter"] == "executionId in (b2, b3)"
    response = _post(
        client, {"action": "cancel", "executionIds": ["b2", "b3"], "expect": counted["expect"]}
    )
    progress = _finished(client, response.json()["location"])
    assert (progress["succeeded"], progress["skipped"]) == (1, 1)
    assert (_statuses()["b2"], _statuses()["b3"]) == ("completed", "cancelled")


def test_a_bulk_rerun_starts_new_runs_of_the_finished_ones_through_the_pool(client, db) -> None:
    for i, status in enumerate(["completed", "failed", "running"]):
        factories.execution(execution_id=f"r{i}", status=status, input={"a": 1, "b": 2})
    counted = _count(client, [("action", "rerun"), ("workflowId", "simple-math-workflow")])
    assert (counted["count"], counted["running"]) == (3, 1)
    response = _post(
        client,
        {
            "action": "rerun",
            "filter": {"workflowId": "simple-math-workflow"},
            "expect": counted["expect"],
        },
    )
    assert response.status_code == 202
    progress = _finished(client, response.json()["location"])
    assert (progress["succeeded"], progress["skipped"], progress["failed"]) == (2, 1, 0)
    started = Execution.objects.filter(execution_id__in=progress["startedRuns"])
    assert sorted(str(original) for original in started.values_list("rerun_of", flat=True)) == [
        "r0",
        "r1",
    ]


@override_settings(C4C_BULK_MAX_RERUNS=2)
def test_more_runs_than_one_action_takes_are_refused_with_the_setting_named(client, batch) -> None:
    response = client.get("/workflow/executions/bulk/count?action=rerun&where=input.batch%3D7")
    assert response.status_code == 422
    assert "at most 2 runs (C4C_BULK_MAX_RERUNS)" in response.json()["error"]
    refused = _post(client, {"action": "rerun", "filter": {"where": BATCH}, "expect": "x"})
    assert refused.status_code == 422


@override_settings(C4C_SEARCH_SCAN_ROWS=2)
def test_a_filter_checked_row_by_row_over_too_many_runs_is_refused(client, batch) -> None:
    response = client.get(f"/workflow/executions/bulk/count?{urlencode({'action': 'cancel'})}")
    assert response.status_code == 200  # no row-by-row condition: any number, up to the cap
    response = client.get("/workflow/executions/bulk/count?action=cancel&minDuration=1")
    assert response.status_code == 422
    assert "narrow it by time, status or workflow" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "cancel", "expect": "t"}, "give either filter or executionIds"),
        (
            {"action": "cancel", "filter": {}, "executionIds": ["a"], "expect": "t"},
            "give either filter or executionIds",
        ),
        ({"action": "delete", "filter": {}, "expect": "t"}, "action: Input should be 'cancel'"),
        ({"action": "cancel", "filter": {}}, "expect: Field required"),
        (
            {"action": "cancel", "filter": {"where": "input.a ="}, "expect": "t"},
            "filter.where: expected a JSON value",
        ),
        (
            {"action": "cancel", "filter": {"minDuration": 5, "maxDuration": 1}, "expect": "t"},
            "minDuration: 5 ms is more than maxDuration",
        ),
        ({"action": "cancel", "executionIds": [], "expect": "t"}, "executionIds: List should"),
    ],
)
def test_a_malformed_bulk_request_is_a_400_naming_the_problem(client, body, message) -> None:
    response = _post(client, body)
    assert response.status_code == 400
    assert message in response.json()["error"], response.json()


def test_count_refuses_ids_and_filter_together_and_needs_an_action(client) -> None:
    both = client.get("/workflow/executions/bulk/count?action=cancel&executionId=a&status=failed")
    assert both.status_code == 400
    assert "either executionId or filter parameters" in both.json()["error"]
    assert client.get("/workflow/executions/bulk/count").status_code == 400


def test_bulk_needs_json_and_unknown_actions_are_404(client) -> None:
    response = client.post("/workflow/executions/bulk", "action=cancel", content_type="text/plain")
    assert response.status_code == 415
    missing = client.get("/workflow/executions/bulk/bulk_0_nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Bulk action 'bulk_0_nothing' not found"}


def test_an_empty_selection_completes_at_once(client) -> None:
    counted = _count(client, [("action", "cancel"), ("where", BATCH)])
    assert counted["count"] == 0
    response = _post(
        client, {"action": "cancel", "filter": {"where": BATCH}, "expect": counted["expect"]}
    )
    assert response.status_code == 202
    assert client.get(response.json()["location"]).json()["status"] == "completed"


@pytest.mark.parametrize("where", ["executionId", "options"])
def test_no_run_may_be_named_bulk_the_path_of_bulk_actions(client, db, where: str) -> None:
    body: dict[str, Any] = {"workflowId": "simple-math-workflow"}
    if where == "options":
        body["options"] = {"executionId": "bulk"}
    else:
        body["executionId"] = "bulk"

    response = client.post("/workflow/execute", body, content_type="application/json")

    assert response.status_code == 400
    assert "executionId 'bulk' is reserved" in response.json()["error"]
    assert not Execution.objects.exists()
