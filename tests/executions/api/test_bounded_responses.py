"""Bounded reads: the default list page is light, every body stays under C4C_MAX_RESPONSE_BYTES.

The default page carries what c4c's executions page reads (apps/workflow/src/app/executions in
the c4c repository: id, workflow id and name, status, start and end, executionTime,
nodesExecuted, and the stats) and reads nothing else; `fields=summary` and `fields=full` give the
heavy parts to a client that asks. A page that would pass the bound ends early with a cursor
that goes on from there; an execution that would pass it is sent lighter and says so.
"""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_eventstream.utils import get_storage

from executions.live import events
from executions.models import Execution
from tests import factories
from tests.executions.conftest import math_definition

# The keys c4c's executions page reads from each list item (its ExecutionRecord).
C4C_LIST_KEYS = {
    "executionId",
    "workflowId",
    "workflowName",
    "status",
    "startTime",
    "endTime",
    "executionTime",
    "nodesExecuted",
}
HEAVY_KEYS = {"spans", "nodeDetails", "outputs"}
ALL_DONE = {"add": "completed", "multiply": "completed", "subtract": "completed"}


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def _runs(count: int, *, spans: int = 2) -> list[Execution]:
    now = timezone.now()
    return [
        factories.execution(
            workflow=math_definition(),
            execution_id=f"bounded-{i:03d}",
            started_at=now - timedelta(seconds=count - i),
            nodes=ALL_DONE,
            spans=spans,
        )
        for i in range(count)
    ]


def _get(client: Client, url: str) -> tuple[bytes, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.content, json.loads(response.content)


@pytest.mark.django_db(transaction=True)
def test_the_default_page_carries_what_c4cs_list_reads_and_nothing_heavy(client: Client) -> None:
    _runs(3)
    _, body = _get(client, "/workflow/executions")
    assert body["stats"] == {"total": 3, "completed": 3, "failed": 0, "running": 0, "waiting": 0}
    assert [item["executionId"] for item in body["executions"]] == [
        "bounded-002",
        "bounded-001",
        "bounded-000",
    ]
    for item in body["executions"]:
        assert set(item) >= C4C_LIST_KEYS, item
        assert not HEAVY_KEYS & set(item), item
        assert item["nodesExecuted"] == ["add", "multiply", "subtract"]
        assert item["nodeCount"] == 3


@pytest.mark.django_db(transaction=True)
def test_the_default_page_reads_no_node_span_input_or_output_column(client: Client) -> None:
    _runs(5)
    with CaptureQueriesContext(connection) as queries:
        _get(client, "/workflow/executions?limit=5")
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert "nodeexecution" not in sql
    assert "executions_span" not in sql
    for column in ('"input"', '"outputs"', '"definition"', '"output"'):
        assert column not in sql, column


@pytest.mark.django_db(transaction=True)
def test_summary_and_full_give_the_heavy_parts_to_a_client_that_asks(client: Client) -> None:
    _runs(2, spans=3)
    _, listed = _get(client, "/workflow/executions")
    _, summary = _get(client, "/workflow/executions?fields=summary")
    _, full = _get(client, "/workflow/executions?fields=full")
    for row, with_nodes, with_spans in zip(
        listed["executions"], summary["executions"], full["executions"], strict=True
    ):
        assert "spans" not in with_nodes
        assert with_nodes["nodeDetails"]["add"]["input"] == {"n": 0}
        assert with_nodes["nodeDetails"]["add"]["output"] == {"result": 0}
        assert with_nodes["outputs"]["subtract"] == {"result": 2}
        assert len(with_spans["spans"]) == 3
        assert {k: v for k, v in with_spans.items() if k != "spans"} == with_nodes
        assert {k: v for k, v in with_nodes.items() if k in row} == row


@pytest.mark.django_db(transaction=True)
def test_a_page_past_the_bound_ends_early_and_its_cursor_goes_on_from_there(
    client: Client, settings
) -> None:
    made = _runs(12, spans=4)
    settings.C4C_MAX_RESPONSE_BYTES = 6000
    seen: list[str] = []
    url = "/workflow/executions?fields=full&limit=200"
    pages = 0
    while True:
        content, body = _get(client, url)
        pages += 1
        assert len(content) <= 6000
        items = body["executions"]
        assert items
        assert all(len(item["spans"]) == 4 for item in items)
        seen += [item["executionId"] for item in items]
        if "nextCursor" not in body:
            assert "cutShort" not in body
            break
        assert body["cutShort"] is True
        url = f"/workflow/executions?fields=full&limit=200&cursor={body['nextCursor']}"
    assert pages > 2
    assert seen == [row.execution_id for row in reversed(made)]


@pytest.mark.django_db(transaction=True)
def test_under_a_bound_that_cuts_the_full_page_the_default_page_stays_whole(
    client: Client, settings
) -> None:
    _runs(6, spans=4)
    settings.C4C_MAX_RESPONSE_BYTES = 4000
    _, full = _get(client, "/workflow/executions?fields=full&limit=3")
    assert full["cutShort"] is True
    assert len(full["executions"]) < 3
    _, rows = _get(client, "/workflow/executions?limit=3")
    assert "cutShort" not in rows
    assert [item["executionId"] for item in rows["executions"]] == [
        "bounded-005",
        "bounded-004",
        "bounded-003",
    ]
    _, rest = _get(client, f"/workflow/executions?limit=3&cursor={rows['nextCursor']}")
    assert len(rest["executions"]) == 3
    assert "nextCursor" not in rest


@pytest.mark.django_db(transaction=True)
def test_an_execution_past_the_bound_is_sent_lighter_and_says_what_it_leaves_out(
    client: Client, settings
) -> None:
    [run] = _runs(1, spans=40)
    _, whole = _get(client, f"/workflow/executions/{run.execution_id}")
    assert "tooLarge" not in whole["execution"]
    size = len(json.dumps(whole["execution"], separators=(",", ":")))
    settings.C4C_MAX_RESPONSE_BYTES = size // 2
    content, body = _get(client, f"/workflow/executions/{run.execution_id}")
    assert len(content) <= size // 2
    execution = body["execution"]
    assert execution["tooLarge"] == {"bytes": size, "limit": size // 2, "leftOut": ["spans"]}
    assert "spans" not in execution
    assert execution["nodeDetails"]["add"]["output"] == {"result": 0}
    assert execution["status"] == "completed"


@pytest.mark.django_db(transaction=True)
def test_an_execution_far_past_the_bound_keeps_its_identity_and_status(
    client: Client, settings
) -> None:
    [run] = _runs(1, spans=0)
    settings.C4C_MAX_RESPONSE_BYTES = 400
    content, body = _get(client, f"/workflow/executions/{run.execution_id}")
    assert len(content) <= 400
    execution = body["execution"]
    assert execution["executionId"] == run.execution_id
    assert execution["status"] == "completed"
    assert execution["tooLarge"]["limit"] == 400
    assert {"spans", "outputs"} <= set(execution["tooLarge"]["leftOut"])
    assert not HEAVY_KEYS & set(execution) - {"nodeDetails"}


@pytest.mark.django_db(transaction=True)
def test_a_first_item_larger_than_the_whole_bound_is_listed_lighter(
    client: Client, settings
) -> None:
    _runs(2, spans=40)
    settings.C4C_MAX_RESPONSE_BYTES = 3000
    content, body = _get(client, "/workflow/executions?fields=full&limit=2")
    assert len(content) <= 3000
    [first] = body["executions"]
    assert first["executionId"] == "bounded-001"
    assert "spans" in first["tooLarge"]["leftOut"]
    assert "spans" not in first
    assert body["cutShort"] is True
    _, rest = _get(client, f"/workflow/executions?fields=full&cursor={body['nextCursor']}")
    assert [item["executionId"] for item in rest["executions"]] == ["bounded-000"]


def _execute(client: Client, definition: dict[str, Any], execution_id: str) -> tuple[bytes, Any]:
    response = client.post(
        "/workflow/execute",
        data=json.dumps({"workflow": definition, "executionId": execution_id}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.content, json.loads(response.content)


@pytest.mark.django_db(transaction=True)
def test_a_run_result_past_the_bound_is_answered_and_announced_without_its_spans(
    client: Client, settings
) -> None:
    definition = math_definition()
    _, whole = _execute(client, definition, "result-whole")
    assert "tooLarge" not in whole
    size = len(json.dumps(whole, separators=(",", ":")))
    settings.C4C_MAX_RESPONSE_BYTES = size - 200
    since = get_storage().get_current_id(events.execution_channel("result-cut"))

    content, result = _execute(client, definition, "result-cut")

    assert len(content) <= size - 200
    assert result["status"] == "completed"
    assert result["spans"] == []
    assert result["outputs"] == whole["outputs"]
    assert result["tooLarge"]["leftOut"] == ["spans"]
    sent = get_storage().get_events(events.execution_channel("result-cut"), since, limit=100)
    [announced] = [json.loads(e.data) for e in sent if e.type == "workflow.result"]
    assert announced["result"] == result


@pytest.mark.django_db(transaction=True)
def test_a_run_result_far_past_the_bound_keeps_its_identity_and_status(
    client: Client, settings
) -> None:
    settings.C4C_MAX_RESPONSE_BYTES = 100  # less than even its identity takes: the lightest
    _, result = _execute(client, math_definition(), "result-tiny")
    assert (result["executionId"], result["status"]) == ("result-tiny", "completed")
    assert (result["spans"], result["outputs"]) == ([], {})
    assert result["tooLarge"]["leftOut"] == ["spans", "outputs"]
