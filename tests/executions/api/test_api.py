"""The JSON API in-process: c4c shapes, every bad input, pinned query counts."""

import base64
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_eventstream.utils import get_storage

from executions import store
from executions.api.requests import ListQuery
from executions.cursors import encode_cursor
from executions.live import events
from executions.models import Execution, ExecutionCounter, ExecutionPage, NodeExecution
from executions.serializers import execution_detail
from tests import factories
from tests.executions.conftest import math_definition
from workflows.definitions import WorkflowDefinition


def post(client: Client, body: Any, **headers: str) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        "/workflow/execute", data=data, content_type="application/json", headers=headers
    )


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.mark.django_db(transaction=True)
def test_execute_inline_workflow_returns_c4c_result_and_is_listed(client: Client) -> None:
    response = post(client, {"workflow": math_definition(), "executionId": "api-1"})
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["executionId"] == "api-1"
    assert result["status"] == "completed"
    assert result["outputs"] == {
        "add": {"result": 15},
        "multiply": {"result": 6},
        "subtract": {"result": 12},
    }
    assert result["nodesExecuted"] == ["add", "multiply", "subtract"]
    assert isinstance(result["executionTime"], int)
    root = next(s for s in result["spans"] if s["name"] == "workflow.execute")
    children = [s for s in result["spans"] if s.get("parentSpanId") == root["spanId"]]
    assert [s["attributes"]["node.id"] for s in children] == ["add", "multiply", "subtract"]

    listing = client.get("/workflow/executions").json()
    assert listing["stats"] == {"total": 1, "completed": 1, "failed": 0, "running": 0, "waiting": 0}
    item = listing["executions"][0]
    assert item["executionId"] == "api-1"
    assert item["startTime"].endswith("Z")
    assert "nodeDetails" not in item
    assert item["nodeCount"] == 3
    summary = client.get("/workflow/executions?fields=summary").json()["executions"][0]
    assert summary["nodeDetails"]["add"]["output"] == {"result": 15}

    detail = client.get("/workflow/executions/api-1").json()["execution"]
    assert {n["status"] for n in detail["nodeDetails"].values()} == {"completed"}
    assert len(detail["spans"]) == len(result["spans"])


@pytest.mark.django_db(transaction=True)
def test_execute_answers_with_the_text_the_result_event_carried(client: Client) -> None:
    since = get_storage().get_current_id(events.execution_channel("api-text"))
    response = post(client, {"workflow": math_definition(), "executionId": "api-text"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    sent = get_storage().get_events(events.execution_channel("api-text"), since, limit=100)
    [result_event] = [e for e in sent if e.type == "workflow.result"]
    body = response.content.decode()
    assert result_event.data.endswith(f',"result":{body}}}')
    event = json.loads(result_event.data)
    assert list(event) == ["type", "workflowId", "executionId", "timestamp", "result"]
    assert event["result"] == response.json()


@pytest.mark.django_db(transaction=True)
def test_async_execute_answers_202_with_location_and_finishes(client: Client) -> None:
    response = post(client, {"workflow": math_definition(), "async": True})
    assert response.status_code == 202
    execution_id = response.json()["executionId"]
    assert response["Location"] == f"/workflow/executions/{execution_id}"
    from executions.dispatch import pool

    pool.submit(lambda: None).result(timeout=10)
    for _ in range(200):
        if Execution.objects.get(execution_id=execution_id).status != "running":
            break
        pool.submit(lambda: None).result(timeout=10)
    assert Execution.objects.get(execution_id=execution_id).status == "completed"


@pytest.mark.django_db(transaction=True)
def test_prefer_respond_async_header_answers_202(client: Client) -> None:
    response = post(client, {"workflow": math_definition()}, Prefer="respond-async")
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('"text"', "must be a JSON object, not str"),
        ({}, "needs workflowId or workflow"),
        ({"workflowId": "x", "input": [1]}, "input"),
        ({"workflowId": "x", "executionId": "has space"}, "executionId"),
        ({"workflowId": "x", "options": {"executionId": "has space"}}, "options.executionId"),
    ],
)
@pytest.mark.django_db
def test_bad_execute_body_is_400_naming_the_problem(client: Client, body, message) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert Execution.objects.count() == 0


@pytest.mark.django_db
def test_unknown_workflow_is_404(client: Client) -> None:
    response = post(client, {"workflowId": "does-not-exist"})
    assert response.status_code == 404
    assert response.json() == {"error": "Workflow 'does-not-exist' not found"}


@pytest.mark.django_db
def test_invalid_inline_definition_is_400_with_every_error(client: Client) -> None:
    broken = math_definition()
    broken["startNode"] = "nope"
    broken["nodes"][0]["procedureName"] = "no.such.proc"
    response = post(client, {"workflow": broken})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any("Start node nope" in e for e in errors)
    assert any("no.such.proc" in e for e in errors)
    assert Execution.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/workflow/execute", "text/plain"),
        ("/workflow/execute", "application/x-www-form-urlencoded"),
        ("/workflow/validate", "text/plain"),
        ("/workflow/executions/any/cancel", "multipart/form-data; boundary=x"),
    ],
)
def test_post_without_json_content_type_is_415_and_runs_nothing(
    client: Client, path: str, content_type: str
) -> None:
    """What a page on another site can make a browser send: refused before anything runs."""
    body = json.dumps({"workflowId": "simple-math-workflow", "executionId": "forged"})
    response = client.post(path, data=body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"].startswith("Content-Type must be application/json, not ")
    assert not Execution.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_duplicate_execution_id_is_409_and_first_run_untouched(client: Client) -> None:
    assert post(client, {"workflow": math_definition(), "executionId": "dup"}).status_code == 200
    response = post(client, {"workflow": math_definition(), "executionId": "dup"})
    assert response.status_code == 409
    assert "dup" in response.json()["error"]
    assert Execution.objects.get().status == "completed"


@pytest.mark.django_db(transaction=True)
def test_input_of_wrong_type_fails_the_execution_naming_the_field(client: Client) -> None:
    definition = {
        "id": "adder",
        "startNode": "add",
        "nodes": [{"id": "add", "type": "procedure", "procedureName": "math.add"}],
    }
    response = post(client, {"workflow": definition, "input": {"a": "ten", "b": 1}})
    assert response.status_code == 200
    result = response.json()
    assert result["status"] == "failed"
    assert "a" in result["error"]["message"]
    row = Execution.objects.get()
    assert row.status == "failed"
    assert row.nodes.get().status == "failed"


@pytest.mark.django_db
def test_unknown_execution_is_404_in_c4c_shape(client: Client) -> None:
    response = client.get("/workflow/executions/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"error": "Execution 'does-not-exist' not found"}


@pytest.mark.django_db
def test_definitions_and_validate_speak_c4c(client: Client) -> None:
    listing = client.get("/workflow/definitions").json()["workflows"]
    assert listing
    assert all({"id", "name", "version", "nodeCount"} <= set(w) for w in listing)
    assert client.get("/workflow/definitions/does-not-exist").json() == {
        "error": "Workflow 'does-not-exist' not found"
    }
    ok = client.post(
        "/workflow/validate", data=json.dumps(math_definition()), content_type="application/json"
    )
    assert ok.json() == {"valid": True, "errors": []}
    broken = math_definition()
    broken["startNode"] = "nope"
    bad = client.post(
        "/workflow/validate",
        data=json.dumps({"workflow": broken}),
        content_type="application/json",
    ).json()
    assert bad["valid"] is False
    assert "Start node nope not found" in bad["errors"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("status=bogus", "status"),
        ("cursor=zzz", "cursor"),
        ("fields=everything", "fields"),
    ],
)
@pytest.mark.django_db
def test_bad_list_query_is_400(client: Client, query: str, field: str) -> None:
    response = client.get(f"/workflow/executions?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]


def _recorded(
    definition: WorkflowDefinition, count: int, *, step: timedelta = timedelta(seconds=1)
) -> list[Execution]:
    """`count` running runs e0, e1, ... with every node done, started `step` apart (0: together)."""
    base = timezone.now()
    done = {node.id: "completed" for node in definition.nodes}
    return [
        factories.execution(
            status="running",
            workflow=definition,
            execution_id=f"e{i}",
            started_at=base + step * i,
            nodes=done,
            spans=1,
        )
        for i in range(count)
    ]


def _page(query: ListQuery) -> ExecutionPage:
    """The read GET /workflow/executions makes for `query`."""
    return Execution.objects.page(
        query.filters(),
        limit=query.limit,
        shape=query.shape(),
        after=query.position(),
        offset=query.offset,
    )


def _ids(page: ExecutionPage) -> list[str]:
    return [e.execution_id for e in page.executions]


LIST_QUERIES = [
    pytest.param({}, 2, id="first-page"),
    pytest.param({"status": ["running"]}, 2, id="status"),
    pytest.param({"status": ["running", "failed"]}, 2, id="statuses"),
    pytest.param({"workflowId": "math-three"}, 2, id="workflowId"),
    pytest.param({"startedAfter": "2000-01-01T00:00:00Z"}, 2, id="startedAfter"),
    pytest.param({"startedBefore": "2999-01-01T00:00:00Z"}, 2, id="startedBefore"),
    pytest.param({"offset": 3}, 2, id="offset"),
    pytest.param({"cursor": 27}, 2, id="cursor"),
    pytest.param({"fields": "summary"}, 3, id="summary-without-spans"),
    pytest.param({"fields": "full"}, 4, id="full"),
]
NODES_READ = {"list": 0, "summary": 3, "full": 3}
SPANS_READ = {"list": 0, "summary": 0, "full": 1}


@pytest.mark.parametrize(("params", "queries"), LIST_QUERIES)
@pytest.mark.django_db
def test_list_query_count_is_fixed_for_every_filter(
    math_workflow, django_assert_num_queries, params: dict[str, Any], queries: int
) -> None:
    made = _recorded(math_workflow, 30)
    if "cursor" in params:
        params = {**params, "cursor": encode_cursor(made[params["cursor"]])}
    query = ListQuery.model_validate({"limit": 20, **params})
    # The page, its nodes and spans only in the shapes that carry them, the stats: no COUNT,
    # no N+1.
    with django_assert_num_queries(queries):
        page = _page(query)
        ExecutionCounter.objects.stats()
    assert len(page.rows) == 20
    assert all(len(row.nodes) == NODES_READ[query.fields] for row in page.rows)
    assert all(len(row.spans) == SPANS_READ[query.fields] for row in page.rows)


@pytest.mark.django_db
def test_detail_query_count_is_fixed(math_workflow, django_assert_num_queries) -> None:
    _recorded(math_workflow, 3)
    with django_assert_num_queries(3):
        rows = Execution.objects.detail("e1")
    assert rows is not None
    body = execution_detail(rows.execution, rows.nodes, rows.spans)
    assert body["executionId"] == "e1"
    assert len(body["spans"]) == 1
    assert body["nodeCount"] == 3
    assert list(body["nodeDetails"]) == ["add", "multiply", "subtract"]


@pytest.mark.django_db
def test_detail_of_an_unknown_execution_is_none(django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        assert Execution.objects.detail("nope") is None


@pytest.mark.django_db(transaction=True)
def test_summary_fields_leave_out_spans_and_nothing_else(math_workflow, client: Client) -> None:
    _recorded(math_workflow, 3)
    full = client.get("/workflow/executions?fields=full").json()["executions"]
    summary = client.get("/workflow/executions?fields=summary").json()["executions"]
    assert len(full) == 3
    assert all(len(item["spans"]) == 1 for item in full)
    assert summary == [{k: v for k, v in item.items() if k != "spans"} for item in full]


@pytest.mark.django_db
def test_default_page_is_50_and_limit_goes_to_200(math_workflow, client: Client) -> None:
    assert ListQuery().limit == 50
    assert client.get("/workflow/executions?limit=200").status_code == 200


@pytest.mark.django_db
def test_cursor_pages_walk_runs_sharing_a_start_without_gaps_or_repeats(math_workflow) -> None:
    made = _recorded(math_workflow, 7, step=timedelta(0))
    seen: list[str] = []
    page = _page(ListQuery(limit=3))
    while True:
        seen += _ids(page)
        if page.older is None:
            break
        page = _page(ListQuery(limit=3, cursor=page.older))
    assert seen == [e.execution_id for e in reversed(made)]


@pytest.mark.django_db
def test_list_counts_nodes_in_sql_without_reading_definitions(math_workflow) -> None:
    _recorded(math_workflow, 2)
    with CaptureQueriesContext(connection) as queries:
        page = _page(ListQuery())
    assert [e.node_count for e in page.executions] == [3, 3]
    execution_reads = [q["sql"] for q in queries if 'FROM "executions_execution"' in q["sql"]]
    assert len(execution_reads) == 1
    columns = execution_reads[0].split(" FROM ")[0].removeprefix("SELECT ").split(", ")
    assert '"executions_definitionsnapshot"."definition"' not in columns
    assert '"executions_execution"."input"' not in columns
    assert '"executions_execution"."status"' in columns


def _plan(query: ListQuery) -> str:
    """SQLite's plan for the executions read of `query`'s page."""
    with CaptureQueriesContext(connection) as queries:
        _page(query)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {queries[0]['sql']}")
        return " | ".join(str(row[-1]) for row in cursor.fetchall())


@pytest.mark.django_db
def test_cursor_reads_an_index_range_not_the_whole_index(math_workflow) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL picks plans by table size")
    cursor = encode_cursor(_recorded(math_workflow, 3)[1])
    plain = _plan(ListQuery(cursor=cursor))
    assert "SEARCH executions_execution USING INDEX exec_started_idx (started_at<?)" in plain
    by_status = _plan(ListQuery(cursor=cursor, status=["running"]))
    assert "exec_status_started_idx (status=? AND started_at<?)" in by_status


@pytest.mark.django_db
def test_list_filters_and_cursor_pagination(math_workflow) -> None:
    made = _recorded(math_workflow, 5)
    store.execution_finish(execution=made[1], result=factories.run_result(made[1], status="failed"))
    assert _ids(_page(ListQuery(status=["failed"]))) == ["e1"]
    first = _page(ListQuery(limit=2))
    assert _ids(first) == ["e4", "e3"]
    second = _page(ListQuery(limit=2, cursor=first.older))
    assert _ids(second) == ["e2", "e1"]
    assert _ids(_page(ListQuery(started_after=made[2].started_at))) == ["e4", "e3"]
    assert _ids(_page(ListQuery(started_before=made[2].started_at))) == ["e1", "e0"]
    assert _ids(_page(ListQuery(workflow_id="other"))) == []
    assert NodeExecution.objects.count() == 15


@pytest.mark.django_db(transaction=True)
def test_list_endpoint_pages_with_next_cursor_and_filters(math_workflow, client: Client) -> None:
    made = _recorded(math_workflow, 5)
    store.execution_finish(execution=made[1], result=factories.run_result(made[1], status="failed"))

    def listed(query: str) -> dict[str, Any]:
        response = client.get(f"/workflow/executions?{query}")
        assert response.status_code == 200, response.content
        listing: dict[str, Any] = response.json()
        return listing

    first = listed("limit=2")
    assert [e["executionId"] for e in first["executions"]] == ["e4", "e3"]
    assert first["stats"] == {"total": 5, "completed": 0, "failed": 1, "running": 4, "waiting": 0}
    second = listed(f"limit=2&cursor={first['nextCursor']}")
    assert [e["executionId"] for e in second["executions"]] == ["e2", "e1"]
    last = listed(f"limit=2&cursor={second['nextCursor']}")
    assert [e["executionId"] for e in last["executions"]] == ["e0"]
    assert "nextCursor" not in last
    failed = listed("status=failed,cancelled&workflowId=math-three")
    assert [e["executionId"] for e in failed["executions"]] == ["e1"]


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("startedAfter=0001-01-01T00:00:00%2B01:00", "startedAfter: 0001-01-01T00:00:00+01:00 is "),
        ("startedBefore=9999-12-31T23:59:59-01:00", "startedBefore: 9999-12-31T23:59:59-01:00 is "),
        (f"cursor={_cursor('0001-01-01T00:00:00+01:00|5')}", "cursor: 0001-01-01T00:00:00+01:00 "),
        (f"cursor={_cursor('9999-12-31T23:59:59-01:00|5')}", "cursor: 9999-12-31T23:59:59-01:00 "),
        (f"cursor={_cursor('2025-01-01T00:00:00|5')}", "cursor: the time needs a UTC offset"),
        (f"cursor={_cursor('2025-01-01T00:00:00Z|99999999999999999999')}", "cursor: not a cursor"),
    ],
    ids=["after-year-1", "before-year-9999", "cursor-year-1", "cursor-year-9999", "naive", "pk"],
)
@pytest.mark.django_db
def test_times_the_database_cannot_hold_are_a_400_naming_the_parameter(
    client: Client, query: str, message: str
) -> None:
    response = client.get(f"/workflow/executions?{query}")
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


@pytest.mark.parametrize(
    "query",
    [
        "startedAfter=0001-01-01T00:00:00Z",
        "startedBefore=9999-12-31T23:59:59.999999Z",
        "startedAfter=0001-01-01T00:00:00",
        f"cursor={_cursor('9999-12-31T23:59:59.999999+00:00|1')}",
    ],
    ids=["after-year-1-utc", "before-year-9999-utc", "after-naive-is-utc", "cursor-year-9999"],
)
@pytest.mark.django_db(transaction=True)
def test_times_at_the_calendar_edges_in_utc_are_served(
    math_workflow, client: Client, query: str
) -> None:
    _recorded(math_workflow, 1)
    response = client.get(f"/workflow/executions?{query}")
    assert response.status_code == 200, response.content
    assert [e["executionId"] for e in response.json()["executions"]] == ["e0"]


@pytest.mark.django_db(transaction=True)
def test_cli_exec_runs_through_the_same_service_and_is_listed(client: Client, capsys) -> None:
    from c4c_site.cli import main

    code = main(
        ["exec", "simple-math-workflow", "--input", "{}", "--json", "--execution-id", "cli-1"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["outputs"]["subtract"] == {"result": 12}
    listing = client.get("/workflow/executions").json()
    assert [e["executionId"] for e in listing["executions"]] == ["cli-1"]


def test_cli_exec_refuses_input_that_is_not_an_object(capsys) -> None:
    from c4c_site.cli import main

    assert main(["exec", "simple-math-workflow", "--input", "[1]"]) == 2
    assert "--input must be a JSON object" in capsys.readouterr().err


def test_a_command_run_in_process_leaves_the_logging_setup_alone(capsys) -> None:
    """Setting Django up again would bind the console log handler to this test's captured
    stderr: closed when the test ends, so every later log line would fail to be written."""
    from c4c_site.cli import main

    def streams() -> list[object]:
        return [getattr(handler, "stream", None) for handler in logging.getLogger().handlers]

    before = streams()
    assert main(["workflows"]) == 0
    assert streams() == before


@pytest.mark.django_db
def test_workflow_and_status_filter_reads_the_index_of_both(math_workflow) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL picks plans by table size")
    query = ListQuery(workflow_id="rare", status=["completed"])
    assert "exec_wf_status_started_idx (workflow_id=? AND status=?)" in _plan(query)
