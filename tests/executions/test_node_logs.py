"""Logs per node, recorded: NodeLog rows, node.log events, the span events, and the API read.

Runs go through the runtime (tests/factories.py) with the example `custom.log` procedure, which
logs its message, and `custom.delay`, which logs its wait.
"""

import json
import threading
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_eventstream.utils import get_storage

from executions import runtime, store
from executions.live import events
from executions.models import NodeLog, Span
from tests import factories
from tests.executions.conftest import delay_definition, within
from workflows.logs import LogLine
from workflows.secrets import REDACTED

API_KEY = "sk-test-4f1c9e2ab77d"


def log_workflow(*messages: str, workflow_id: str = "logging") -> dict[str, Any]:
    """A workflow whose nodes log `messages` in order (custom.log), then add two numbers."""
    nodes: list[dict[str, Any]] = [
        {
            "id": f"say-{i}",
            "type": "procedure",
            "procedureName": "custom.log",
            "config": {"message": message, "level": "warning" if i == 2 else "info"},
            "next": f"say-{i + 1}",
        }
        for i, message in enumerate(messages, start=1)
    ]
    nodes.append(
        {
            "id": f"say-{len(messages) + 1}",
            "type": "procedure",
            "procedureName": "math.add",
            "config": {"a": 1, "b": 2},
        }
    )
    return {"id": workflow_id, "name": workflow_id, "startNode": "say-1", "nodes": nodes}


def _stream(execution_id: str, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    stored = get_storage().get_events(events.execution_channel(execution_id), since, limit=1_000)
    return [(e.type, json.loads(e.data)) for e in stored]


@pytest.mark.django_db
def test_each_lines_are_stored_with_their_node_run_and_nodes_that_log_nothing_have_none() -> None:
    run = factories.finished_run(workflow=log_workflow("hello", "careful"), execution_id="logs-1")
    rows = list(NodeLog.objects.filter(node__execution=run).select_related("node"))
    assert [(r.node.node_id, r.attempt, r.number, r.level, r.message) for r in rows] == [
        ("say-1", 1, 1, "INFO", "hello"),
        ("say-2", 1, 1, "WARNING", "careful"),
    ]
    assert {r.logger for r in rows} == {"workflows.custom.log"}
    assert not NodeLog.objects.filter(node__node_id="say-3").exists()


@pytest.mark.django_db
def test_node_log_is_sent_on_the_execution_stream_before_its_node_completes() -> None:
    factories.finished_run(workflow=log_workflow("hello", "careful"), execution_id="logs-2")
    sent = _stream("logs-2")
    names = [name for name, _ in sent]
    logs = [data for name, data in sent if name == "node.log"]
    assert [(d["nodeId"], d["visit"], d["attempt"]) for d in logs] == [
        ("say-1", 1, 1),
        ("say-2", 1, 1),
    ]
    line = logs[0]["lines"][0]
    assert line == {**line, "number": 1, "level": "INFO", "message": "hello", "visit": 1}
    assert line["time"].endswith("Z")
    assert isinstance(line["id"], int)
    first_log = names.index("node.log")
    assert names[first_log - 1] == "node.started"
    assert names[first_log + 1] == "node.completed"
    listed = get_storage().get_events(events.LIST_CHANNEL, 0, limit=10_000)
    assert not any(e.type == "node.log" for e in listed), "the list stream carries no logs"


@pytest.mark.django_db
def test_secrets_are_redacted_in_stored_and_sent_lines() -> None:
    workflow = log_workflow("calling with {{input.apiKey}}")
    factories.finished_run(workflow=workflow, execution_id="logs-3", input={"apiKey": API_KEY})
    (row,) = NodeLog.objects.filter(node__execution__execution_id="logs-3")
    assert row.message == f"calling with {REDACTED}"
    assert API_KEY not in json.dumps(_stream("logs-3"))
    assert API_KEY not in json.dumps(list(Span.objects.values("events")))


@pytest.mark.django_db
def test_lines_are_events_of_the_stored_procedure_span() -> None:
    run = factories.finished_run(workflow=log_workflow("hello"), execution_id="logs-4")
    span = Span.objects.get(execution=run, name="custom.log")
    assert [(e["name"], e["attributes"]) for e in span.events] == [
        (
            "log",
            {"log.level": "INFO", "log.logger": "workflows.custom.log", "log.message": "hello"},
        )
    ]


@pytest.mark.django_db
def test_an_attempt_past_its_caps_keeps_a_line_that_counts_the_dropped(settings: Any) -> None:
    settings.C4C_MAX_LOG_BYTES = 4  # "hello" is 5 bytes: dropped
    factories.finished_run(workflow=log_workflow("hello", "hi"), execution_id="logs-5")
    lines = NodeLog.objects.filter(node__execution__execution_id="logs-5").order_by(
        "node__sequence"
    )
    assert [(r.node.node_id, r.number, r.dropped, r.message[:22]) for r in lines] == [
        ("say-1", 1, 1, "1 more lines dropped ("),
        ("say-2", 1, 0, "hi"),
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_long_nodes_lines_are_stored_and_sent_while_it_runs(settings: Any) -> None:
    settings.C4C_DELAY_SCALE = 1.0
    definition = factories.definition(delay_definition(3_000))
    execution = factories.started_run(workflow=definition, execution_id="logs-live")
    done = threading.Event()

    def walk() -> None:
        try:
            runtime.run(execution=execution, definition=definition, input={})
        finally:
            done.set()

    threading.Thread(target=walk, daemon=True).start()

    def still_waiting_stored() -> bool:
        return NodeLog.objects.filter(message__startswith="Still waiting").exists()

    within(2.8, still_waiting_stored)
    assert not done.is_set(), "a line was stored while its node still ran"
    sent = [d for name, d in _stream("logs-live") if name == "node.log"]
    assert sent
    assert sent[0]["lines"][0]["message"] == "Waiting 3000 ms"
    done.wait(10)
    sent = [d for name, d in _stream("logs-live") if name == "node.log"]
    assert [line["number"] for d in sent for line in d["lines"]] == [1, 2, 3]


# The API reads on its own thread: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_the_api_reads_a_nodes_lines_in_pages() -> None:
    factories.finished_run(workflow=log_workflow("one", "two"), execution_id="logs-7")
    client = Client()
    answer = client.get("/workflow/executions/logs-7/nodes/say-2/logs")
    assert answer.status_code == 200
    body = answer.json()
    assert body["executionId"] == "logs-7"
    assert body["nodeId"] == "say-2"
    assert [(line["level"], line["message"]) for line in body["lines"]] == [("WARNING", "two")]
    assert body["nextAfter"] is None

    quiet = client.get("/workflow/executions/logs-7/nodes/say-3/logs").json()
    assert quiet["lines"] == []
    assert quiet["nextAfter"] is None

    paged = factories.finished_run(workflow=log_workflow("one"), execution_id="logs-8")
    said = factories.node_run(paged, "say-1")
    store.node_logs_add(
        node=said,
        attempt=1,
        lines=[LogLine(n, "INFO", "custom", f"line {n}", timezone.now()) for n in (2, 3)],
    )
    url = "/workflow/executions/logs-8/nodes/say-1/logs"
    first = client.get(f"{url}?limit=1").json()
    assert [line["number"] for line in first["lines"]] == [1]
    rest = client.get(f"{url}?after={first['nextAfter']}")
    assert [line["number"] for line in rest.json()["lines"]] == [2, 3]


# The API reads on its own thread: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_the_api_refuses_unknown_runs_nodes_and_bad_parameters_with_json() -> None:
    factories.finished_run(workflow=log_workflow("one"), execution_id="logs-9")
    client = Client()
    unknown_run = client.get("/workflow/executions/nope/nodes/say-1/logs")
    assert unknown_run.status_code == 404
    assert unknown_run.json() == {"error": "Execution 'nope' not found"}
    unknown_node = client.get("/workflow/executions/logs-9/nodes/elsewhere/logs")
    assert unknown_node.status_code == 404
    assert unknown_node.json()["error"] == "Execution 'logs-9' has no node 'elsewhere'"
    for query in ("limit=0", "limit=99999", "after=-1", "after=x", "colour=blue"):
        refused = client.get(f"/workflow/executions/logs-9/nodes/say-1/logs?{query}")
        assert refused.status_code == 400, query
        assert refused.json()["error"]


@pytest.mark.django_db
def test_the_endpoint_and_the_event_are_documented() -> None:
    document = Client().get("/openapi.json").json()
    operation = document["paths"]["/workflow/executions/{execution_id}/nodes/{node_id}/logs"]
    assert {p["name"] for p in operation["get"]["parameters"]} >= {"after", "limit"}
    stream = document["paths"]["/workflow/executions/{execution_id}/stream"]["get"]
    x_events = stream["responses"]["200"]["content"]["text/event-stream"]["x-events"]
    assert "node.log" in x_events
    listing = document["paths"]["/workflow/executions-stream"]["get"]
    assert "node.log" not in listing["responses"]["200"]["content"]["text/event-stream"]["x-events"]
