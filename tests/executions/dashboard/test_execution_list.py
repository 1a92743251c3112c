import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions.cursors import Position
from executions.dashboard.views import PAGE_SIZE, ListFilters
from executions.models import DefinitionSnapshot, Execution
from tests import factories
from tests.workflows.helpers import C4C_SIMPLE_MATH


def test_root_redirects_to_executions(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/executions"


def test_list_shows_stats_and_newest_first(client, db):
    now = timezone.now()
    old = factories.execution(status="completed", started_at=now - timedelta(minutes=5))
    new = factories.execution(status="failed", started_at=now - timedelta(minutes=1))
    running = factories.execution(status="running", started_at=now - timedelta(seconds=5))

    response = client.get("/executions")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(running.execution_id) < html.index(new.execution_id)
    assert html.index(new.execution_id) < html.index(old.execution_id)
    stats = response.context["stats"]
    assert stats == {"total": 3, "completed": 1, "failed": 1, "running": 1, "waiting": 0}
    assert 'data-stat="total">3<' in html
    # Status is shown as glyph and word, never colour alone.
    assert "✕</span> Failed" in html
    assert "◔</span> Running" in html


def test_list_row_shows_relative_start_with_exact_time_on_hover(client, db):
    execution = factories.execution(started_at=timezone.now() - timedelta(hours=2))
    html = client.get("/executions").content.decode()
    assert f'datetime="{execution.started_at.isoformat()}"' in html
    assert "2\xa0hours ago" in html
    assert execution.started_at.strftime("%Y-%m-%d %H:%M:%S") in html
    assert "1.2 s" in html  # duration
    assert '0<span class="muted">/3</span>' in html  # nodes executed of defined


def test_list_filters_by_status_and_workflow(client, db):
    failed = factories.execution(status="failed")
    completed = factories.execution(status="completed")
    other = factories.execution(
        status="failed", workflow={"id": "other", "name": "Other", "startNode": "a", "nodes": []}
    )

    html = client.get("/executions", {"status": "failed"}).content.decode()
    assert failed.execution_id in html
    assert other.execution_id in html
    assert completed.execution_id not in html

    html = client.get(
        "/executions", {"status": "failed", "workflow": "simple-math-workflow"}
    ).content.decode()
    assert failed.execution_id in html
    assert other.execution_id not in html


def test_unknown_status_filter_is_a_400_naming_the_parameter(client, db):
    response = client.get("/executions", {"status": "exploded"})
    assert response.status_code == 400
    assert "status must be one of" in response.content.decode()


def test_malformed_cursor_is_a_400_not_a_crash(client, db):
    response = client.get("/executions", {"after": "not-a-cursor!!"})
    assert response.status_code == 400
    assert "after: not a cursor this server made" in response.content.decode()


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("0001-01-01T00:00:00+01:00|5", "is outside 0001-01-01..9999-12-31 in UTC"),
        ("9999-12-31T23:59:59-01:00|5", "is outside 0001-01-01..9999-12-31 in UTC"),
        ("2025-01-01T00:00:00|5", "the time needs a UTC offset"),
        (f"2025-01-01T00:00:00+00:00|{2**63}", "not a cursor this server made"),
    ],
    ids=["year-1-east", "year-9999-west", "naive", "pk-too-large"],
)
def test_cursor_the_database_cannot_use_is_a_400_naming_it(client, db, direction, raw, problem):
    factories.execution()
    response = client.get("/executions", {direction: _cursor(raw)})
    assert response.status_code == 400
    assert f"{direction}: " in response.content.decode()
    assert problem in response.content.decode()


def test_cursors_at_the_calendar_edges_page_normally(client, db):
    made = factories.execution()
    for raw in ("0001-01-01T00:00:00+00:00|1", "9999-12-31T23:59:59.999999+00:00|1"):
        page = client.get("/executions", {"after": _cursor(raw)}).context["page"]
        assert [e.pk for e in page.executions] == ([made.pk] if raw.startswith("9999") else [])


def test_pagination_walks_older_and_back_without_gaps(client, db):
    now = timezone.now()
    same_instant = now - timedelta(minutes=10)
    made = [
        factories.execution(started_at=same_instant if i % 3 == 0 else now - timedelta(seconds=i))
        for i in range(PAGE_SIZE + 7)
    ]
    expected = sorted(made, key=lambda e: (e.started_at, e.pk), reverse=True)

    first = client.get("/executions").context["page"]
    assert [e.pk for e in first.executions] == [e.pk for e in expected[:PAGE_SIZE]]
    assert first.older
    assert not first.newer

    second = client.get("/executions", {"after": first.older}).context["page"]
    assert [e.pk for e in second.executions] == [e.pk for e in expected[PAGE_SIZE:]]
    assert second.newer
    assert not second.older

    back = client.get("/executions", {"before": second.newer}).context["page"]
    assert [e.pk for e in back.executions] == [e.pk for e in expected[:PAGE_SIZE]]
    assert not back.newer


@pytest.mark.parametrize(
    "query",
    [{}, {"status": "failed"}, {"workflow": "simple-math-workflow"}, {"status": "running"}],
    ids=["all", "status", "workflow", "status-running"],
)
def test_list_reads_in_bounded_queries(client, db, django_assert_num_queries, query):
    for status in ("completed", "failed", "running"):
        for _ in range(5):
            factories.execution(status=status, spans=3, nodes={"add": "completed"})
    # One for the page of executions, one for the counters; no COUNT, no N+1.
    with django_assert_num_queries(2):
        response = client.get("/executions", query)
    assert response.status_code == 200
    # Fifteen runs of one workflow, five per status: only a status filter narrows them.
    assert len(response.context["page"].executions) == (5 if "status" in query else 15)


def test_older_and_newer_pages_read_in_bounded_queries(client, db, django_assert_num_queries):
    now = timezone.now()
    for i in range(PAGE_SIZE + 5):
        factories.execution(started_at=now - timedelta(seconds=i))
    older = client.get("/executions").context["page"].older
    with django_assert_num_queries(2):
        second = client.get("/executions", {"after": older}).context["page"]
    with django_assert_num_queries(2):
        client.get("/executions", {"before": second.newer})


def test_rows_show_node_counts_without_reading_definitions(client, db):
    four = {
        **C4C_SIMPLE_MATH,
        "nodes": [*C4C_SIMPLE_MATH["nodes"], {"id": "x", "type": "procedure"}],
    }
    factories.execution(workflow=four)
    odd = factories.execution()
    # No store write can produce this snapshot (nodes not a list): an older version's row.
    snapshot = DefinitionSnapshot.of({**C4C_SIMPLE_MATH, "nodes": {"not": "a list"}})
    snapshot.save()
    Execution.objects.filter(pk=odd.pk).update(snapshot=snapshot)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/executions").content.decode()
    assert '0<span class="muted">/4</span>' in html
    assert '0<span class="muted">/0</span>' in html
    page_read = next(q["sql"] for q in queries if 'FROM "executions_execution"' in q["sql"])
    columns = page_read.split(" FROM ")[0].removeprefix("SELECT ").split(", ")
    assert '"executions_definitionsnapshot"."definition"' not in columns


@pytest.mark.parametrize("direction", ["after", "before"])
def test_paging_reads_an_index_range_from_the_cursor(db, direction):
    if connection.vendor != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL picks plans by table size")
    made = [factories.execution() for _ in range(3)]
    position = Position(made[1].started_at, made[1].pk)
    with CaptureQueriesContext(connection) as queries:
        Execution.objects.page(
            limit=PAGE_SIZE,
            shape="row",
            after=position if direction == "after" else None,
            before=position if direction == "before" else None,
        )
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {queries[0]['sql']}")
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    bound = "started_at<?" if direction == "after" else "started_at>?"
    assert f"USING INDEX exec_started_idx ({bound})" in plan


def test_live_rows_render_the_named_rows_and_whether_they_match(client, db):
    failed = factories.execution(status="failed")
    completed = factories.execution(status="completed")
    response = client.get(
        "/executions/live",
        {"ids": f"{failed.execution_id},{completed.execution_id}", "status": "failed"},
    )
    assert response.status_code == 200
    data = response.json()
    rows = {row["id"]: row for row in data["rows"]}
    assert rows[failed.execution_id]["matches"] is True
    assert rows[completed.execution_id]["matches"] is False
    assert f'data-execution-id="{failed.execution_id}"' in rows[failed.execution_id]["html"]
    assert 'data-stat="failed">1<' in data["stats"]


def test_live_without_ids_renders_the_first_page(client, db, django_assert_num_queries):
    execution = factories.execution()
    with django_assert_num_queries(2):
        data = client.get("/executions/live").json()
    assert execution.execution_id in data["body"]
    assert "pager" in data


def test_live_rejects_bad_status_with_json_error(client, db):
    response = client.get("/executions/live", {"status": "nope"})
    assert response.status_code == 400
    assert "status must be one of" in response.json()["error"]


def test_execute_control_lists_workflows(client, db):
    html = client.get("/executions").content.decode()
    assert 'id="execute-dialog"' in html
    assert 'value="simple-math-workflow"' in html
    assert 'data-execute-url="/workflow/execute"' in html


@pytest.mark.parametrize("workflow", ["", "simple-math-workflow"])
def test_filters_carry_into_live_url(client, db, workflow):
    html = client.get("/executions", {"workflow": workflow} if workflow else {}).content.decode()
    live_url = (
        "/executions/live?workflow=simple-math-workflow" if workflow else '"/executions/live"'
    )
    assert live_url in html


def test_list_filters_query_string_is_url_encoded():
    query = ListFilters(status="failed", workflow="a b&c").query()
    assert query == "status=failed&workflow=a+b%26c"
