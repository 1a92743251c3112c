import json
from pathlib import Path

from executions import store
from executions.models import Execution, Span
from executions.templatetags.dashboard import STATUS_GLYPHS
from tests import factories
from workflows.observer import ErrorInfo

BRANCHY = {
    "id": "branchy",
    "name": "Branchy",
    "version": "2.0.0",
    "startNode": "check",
    "nodes": [
        {
            "id": "check",
            "type": "condition",
            "config": {"expression": "x > 1", "trueBranch": "fan", "falseBranch": "small"},
        },
        {
            "id": "fan",
            "type": "parallel",
            "config": {"branches": ["left", "right"]},
            "next": "join",
        },
        {"id": "left", "type": "procedure", "procedureName": "math.add"},
        {"id": "right", "type": "procedure", "procedureName": "math.add", "onError": "recover"},
        {"id": "join", "type": "procedure", "procedureName": "math.add"},
        {"id": "small", "type": "procedure", "procedureName": "math.add"},
        {"id": "recover", "type": "procedure", "procedureName": "math.add"},
    ],
}


def test_detail_shows_header_graph_timeline_and_trace(client, db):
    execution = factories.execution(
        status="completed", nodes={"add": "completed", "multiply": "completed"}, spans=4
    )
    response = client.get(f"/executions/{execution.execution_id}")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Simple Math Workflow" in html
    assert f"/admin/executions/execution/{execution.pk}/change/" in html
    # Graph: every defined node drawn with its status; never-run nodes of a finished run skipped.
    assert 'data-node-id="add" data-status="completed"' in html
    assert 'data-node-id="subtract" data-status="skipped"' in html
    # The timeline and the trace are drawn by the page script from one row per span.
    rows = html.split('<script id="span-rows" type="application/json">', 1)[1]
    assert len(json.loads(rows.split("</script>", 1)[0])) == 4
    assert 'role="tablist"' in html
    assert 'aria-selected="true"' in html


def test_running_execution_shows_unreached_nodes_as_pending(client, db):
    execution = factories.execution(status="running", nodes={"add": "running"})
    html = client.get(f"/executions/{execution.execution_id}").content.decode()
    assert 'data-node-id="add" data-status="running"' in html
    assert 'data-node-id="multiply" data-status="pending"' in html
    assert "a bar appears for each node as it starts" in html
    assert 'src="/static/executions/js/timeline.js"' in html


def test_failed_execution_shows_error_name_message_and_stack(client, db):
    execution = factories.execution(
        status="failed",
        nodes={"add": "failed"},
        error=ErrorInfo("ZeroDivisionError", "division by zero", "Traceback…"),
    )
    html = client.get(f"/executions/{execution.execution_id}").content.decode()
    assert 'role="alert"' in html
    assert "ZeroDivisionError" in html
    assert "division by zero" in html
    assert "Traceback…" in html


def test_graph_labels_condition_branches_parallel_join_and_on_error(client, db):
    execution = factories.execution(workflow=BRANCHY)
    html = client.get(f"/executions/{execution.execution_id}").content.decode()
    assert 'class="edge edge-true" data-source="check" data-target="fan"' in html
    assert 'class="edge edge-false" data-source="check" data-target="small"' in html
    assert 'class="edge edge-branch" data-source="fan" data-target="left"' in html
    assert 'class="edge edge-join" data-source="left" data-target="join"' in html
    assert 'class="edge edge-error" data-source="right" data-target="recover"' in html
    for label in (">true<", ">false<", ">join<", ">on error<"):
        assert label in html


def test_unknown_execution_is_a_404_page_even_with_debug(client, db, settings):
    settings.DEBUG = True
    response = client.get("/executions/wf_exec_missing")
    assert response.status_code == 404
    html = response.content.decode()
    assert "There is no execution" in html
    assert "wf_exec_missing" in html
    assert "Traceback" not in html


def test_detail_reads_in_bounded_queries(client, db, django_assert_num_queries):
    execution = factories.execution(nodes={"add": "completed", "multiply": "completed"}, spans=40)
    # Execution, its nodes, its spans.
    with django_assert_num_queries(3):
        response = client.get(f"/executions/{execution.execution_id}")
    assert response.status_code == 200


def test_detail_live_returns_partials_and_node_details(client, db, django_assert_num_queries):
    execution = factories.execution(
        status="failed", nodes={"add": "completed", "multiply": "failed"}
    )
    with django_assert_num_queries(3):
        response = client.get(f"/executions/{execution.execution_id}/live")
    data = response.json()
    assert data["status"] == "failed"
    assert data["nodes"]["add"]["status"] == "completed"
    assert data["nodes"]["add"]["output"] == {"result": 0}
    assert data["nodes"]["multiply"]["error"] == {
        "name": "ValueError",
        "message": "bad",
        "stack": "",
    }
    assert data["nodes"]["subtract"]["status"] == "skipped"
    assert "exec-head" in data["header"]
    assert "No spans were recorded" in data["timeline"]


def test_detail_live_for_unknown_execution_is_json_404(client, db):
    response = client.get("/executions/nope/live")
    assert response.status_code == 404
    assert response.json() == {"error": "Execution 'nope' not found"}


def test_detail_survives_a_definition_without_nodes(client, db):
    execution = factories.execution(workflow={"id": "x", "name": "X", "startNode": "", "nodes": []})
    assert Execution.objects.filter(pk=execution.pk).exists()
    assert client.get(f"/executions/{execution.execution_id}").status_code == 200


def test_any_unknown_address_gets_the_same_404_page_without_debug(client, db, settings):
    settings.DEBUG = False
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is nothing at this address." in response.content.decode()


def test_status_glyphs_have_one_table_the_page_scripts_read(client, db):
    execution = factories.execution(nodes={"add": "completed"})
    html = client.get(f"/executions/{execution.execution_id}").content.decode()
    script = html.split('<script id="status-glyphs" type="application/json">', 1)[1]
    assert json.loads(script.split("</script>", 1)[0]) == STATUS_GLYPHS
    static = Path(__file__).resolve().parents[3] / "executions" / "static"
    for source in static.rglob("*.js"):
        text = source.read_text()
        copies = [glyph for glyph in STATUS_GLYPHS.values() if len(glyph) == 1 and glyph in text]
        assert not copies, f"{source.name} has its own copy of {copies}"


def test_timeline_and_trace_name_each_attempt_of_a_retried_node(client, db):
    execution = factories.execution(nodes={"add": "completed"}, spans=2)
    node = Span.objects.get(execution=execution, name="workflow.node.procedure")
    attempts = [
        Span(
            trace_id=node.trace_id,
            span_id=f"attempt{number}",
            parent_span_id=node.span_id,
            name="math.add",
            kind="INTERNAL",
            start_time_us=node.start_time_us + number * 100,
            end_time_us=node.start_time_us + number * 100 + 50,
            status_code="ERROR" if number == 1 else "OK",
            attributes={"procedure.name": "math.add", "procedure.attempt": number},
        )
        for number in (1, 2)
    ]
    store.spans_record(execution=execution, spans=attempts)

    html = client.get(f"/executions/{execution.execution_id}").content.decode()

    island = html.split('<script id="span-rows" type="application/json">', 1)[1]
    rows = json.loads(island.split("</script>", 1)[0])
    # The page script names the attempt on the row (in both the timeline and the trace).
    assert [(row["name"], row["attempt"]) for row in rows] == [
        ("workflow.execute", None),
        ("workflow.node.procedure", None),
        ("math.add", 1),
        ("math.add", 2),
    ]
