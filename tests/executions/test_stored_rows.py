"""No stored execution can break a page or a stream: a row that cannot be shown says so.

Each case writes, through the ORM, a row no store write of this version produces (that is the
point: an older version's row, or one written by hand) beside a good one, then reads the API
list and detail, the executions page, the detail page and its live partials, and the list
stream's snapshot. Every read answers; the good row is served whole; the bad one is a marker
naming the problem, or, where only the graph cannot use it, the page says the graph cannot be
drawn.
"""

import json
import sqlite3
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from executions.live import streams
from executions.models import DefinitionSnapshot, Execution, NodeExecution, Span
from tests import factories
from tests.conftest import DaphneServer
from tests.executions.conftest import http

SURROGATE = "\ud800"


@dataclass(frozen=True)
class Corruption:
    """How the bad row is spoilt, and what its readers should say about it."""

    spoil: Callable[[Execution], None]
    # A part of the marker's reason, or None when the row's JSON is served as it is.
    reason: str | None
    # Text the detail page shows for it (besides the row's id).
    detail_text: str
    sqlite_only: bool = False
    # Spoils only the spans, which list rows without spans never read.
    in_spans: bool = False
    # Spoils what the executions page's row shows (its count of nodes executed).
    in_page_row: bool = False
    # Spoils a column of the API's default list row (models.ROW_FIELDS: the page's, and error).
    in_api_row: bool = False

    @property
    def spoils_api_row(self) -> bool:
        return self.in_page_row or self.in_api_row


def _update(**columns: Any) -> Callable[[Execution], None]:
    def spoil(row: Execution) -> None:
        Execution.objects.filter(pk=row.pk).update(**columns)

    return spoil


def _redefine(definition: Any) -> Callable[[Execution], None]:
    """Point the row at a snapshot of `definition` of its own (the good row keeps the shared
    one), stored as migration 0006 stores an older version's row."""

    def spoil(row: Execution) -> None:
        snapshot = DefinitionSnapshot.of(definition)
        snapshot.save()
        Execution.objects.filter(pk=row.pk).update(snapshot=snapshot)

    return spoil


def _update_nodes(**columns: Any) -> Callable[[Execution], None]:
    def spoil(row: Execution) -> None:
        NodeExecution.objects.filter(execution=row).update(**columns)

    return spoil


def _update_spans(**columns: Any) -> Callable[[Execution], None]:
    def spoil(row: Execution) -> None:
        Span.objects.filter(execution=row).update(**columns)

    return spoil


NOT_UNICODE = "not valid Unicode"
CANNOT_SHOW = "This execution cannot be shown"
CANNOT_DRAW = "The workflow graph cannot be drawn"
ODD_NODES = {
    "startNode": ["a"],
    "nodes": [
        {"id": "a", "type": "parallel", "config": [1], "next": 5},
        {"id": "b", "type": "parallel", "config": {"branches": 7}, "onError": ["a"]},
        {"id": ["c"], "type": "procedure"},
        {"id": 4},
        3,
        "text",
    ],
}

# PostgreSQL's jsonb refuses a lone surrogate, so only SQLite can hold those rows (neither holds
# NaN: SQLite's JSON_VALID check refuses it too).
CASES = {
    # The pages never show an execution's outputs: only the API's JSON carries them.
    "surrogate-in-outputs": Corruption(
        _update(outputs={"text": SURROGATE}), NOT_UNICODE, "Simple Math Workflow", sqlite_only=True
    ),
    "surrogate-in-error": Corruption(
        _update(error={"name": "E", "message": SURROGATE, "stack": ""}),
        NOT_UNICODE,
        CANNOT_SHOW,
        sqlite_only=True,
        in_api_row=True,
    ),
    "surrogate-in-node-output": Corruption(
        _update_nodes(output={"text": SURROGATE}), NOT_UNICODE, CANNOT_SHOW, sqlite_only=True
    ),
    # The detail page sends its spans as escaped JSON (timeline.js draws them): it shows them.
    "surrogate-in-span-attributes": Corruption(
        _update_spans(attributes={"text": SURROGATE}),
        NOT_UNICODE,
        '"attributes": {"text": "\\ud800"}',
        sqlite_only=True,
        in_spans=True,
    ),
    "outputs-not-an-object": Corruption(
        _update(outputs=[1, 2]), "outputs is list, not dict", CANNOT_SHOW
    ),
    "nodes-executed-not-a-list": Corruption(
        _update(nodes_executed="add"),
        "nodes_executed is str, not list",
        CANNOT_SHOW,
        in_page_row=True,
    ),
    "nodes-executed-not-ids": Corruption(
        _update(nodes_executed=[{"id": 1}]), "other than node ids", CANNOT_SHOW, in_page_row=True
    ),
    "error-not-an-object": Corruption(
        _update(error="boom"), "error is str, not dict or null", CANNOT_SHOW, in_page_row=True
    ),
    "definition-not-an-object": Corruption(
        _redefine(["a"]), None, f"{CANNOT_DRAW}: the stored definition is list"
    ),
    "definition-nodes-not-a-list": Corruption(
        _redefine({"nodes": {"a": 1}}), None, "nodes are dict, not a list"
    ),
    "definition-with-odd-nodes": Corruption(_redefine(ODD_NODES), None, 'data-node-id="b"'),
    "started-in-year-1": Corruption(
        _update(started_at=datetime(1, 1, 1, tzinfo=UTC)), None, "Simple Math Workflow"
    ),
    "started-in-year-9999": Corruption(
        _update(started_at=datetime.max.replace(tzinfo=UTC)), None, "Simple Math Workflow"
    ),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def rows(request: pytest.FixtureRequest) -> tuple[Execution, Execution, Corruption]:
    """A good finished run and a bad one beside it."""
    case = CASES[request.param]
    if case.sqlite_only and connection.vendor != "sqlite":
        pytest.skip("PostgreSQL cannot store this value")
    good = factories.execution(execution_id="good", nodes={"add": "completed"}, spans=2)
    bad = factories.execution(execution_id="bad", nodes={"add": "completed"}, spans=2)
    case.spoil(bad)
    return good, bad, case


def _check_good(good: dict[str, Any], *, spans: bool) -> None:
    assert "cannotBeShown" not in good
    assert good["nodesExecuted"] == ["add"]
    assert len(good.get("spans", [])) == (2 if spans else 0)


def _check_bad(bad: dict[str, Any], case: Corruption, *, spans: bool) -> None:
    if case.reason is None or (case.in_spans and not spans):
        assert "cannotBeShown" not in bad
        return
    assert case.reason in bad["cannotBeShown"]
    assert bad["error"]["message"].startswith(f"{CANNOT_SHOW}: ")
    assert (bad["status"], bad["workflowId"]) == ("completed", "simple-math-workflow")
    assert bad["nodeDetails"] == {}
    assert bad.get("spans", []) == []


def _check_listed(items: list[dict[str, Any]], case: Corruption, *, spans: bool) -> None:
    listed = {item["executionId"]: item for item in items}
    assert sorted(listed) == ["bad", "good"]
    _check_good(listed["good"], spans=spans)
    _check_bad(listed["bad"], case, spans=spans)


@pytest.mark.django_db(transaction=True)
def test_api_list_and_detail_serve_every_row(rows, client: Client) -> None:
    _, _, case = rows
    for query, spans in (("?fields=full", True), ("?fields=summary", False)):
        response = client.get(f"/workflow/executions{query}")
        assert response.status_code == 200
        body = json.loads(response.content.decode("utf-8"))
        _check_listed(body["executions"], case, spans=spans)
    # The default page reads the row's own columns only: it sees what spoils those.
    response = client.get("/workflow/executions")
    assert response.status_code == 200
    rows = {item["executionId"]: item for item in json.loads(response.content)["executions"]}
    assert "cannotBeShown" not in rows["good"]
    if case.spoils_api_row:
        assert case.reason is not None
        assert case.reason in rows["bad"]["cannotBeShown"]
    else:
        assert "cannotBeShown" not in rows["bad"]
    good = client.get("/workflow/executions/good")
    assert good.status_code == 200
    _check_good(good.json()["execution"], spans=True)
    bad = client.get("/workflow/executions/bad")
    assert bad.status_code == 200
    _check_bad(json.loads(bad.content.decode("utf-8"))["execution"], case, spans=True)


@pytest.mark.django_db
def test_list_stream_snapshot_serves_every_row(rows) -> None:
    _, _, case = rows
    frame = streams._build_snapshot().decode("utf-8")
    assert frame.startswith("event: executions.initial\ndata: ")
    initial = json.loads(frame.split("data: ", 1)[1])
    _check_listed(initial["executions"], case, spans=False)


@pytest.mark.django_db
def test_executions_page_serves_every_row(rows, client: Client) -> None:
    good, bad, case = rows
    page = client.get("/executions")
    assert page.status_code == 200
    first_page = client.get("/executions/live")
    assert first_page.status_code == 200
    named = client.get("/executions/live?ids=good,bad")
    assert named.status_code == 200
    for html in (
        page.content.decode("utf-8"),
        first_page.json()["body"],
        "".join(row["html"] for row in named.json()["rows"]),
    ):
        assert f'data-execution-id="{good.execution_id}"' in html
        assert f'data-execution-id="{bad.execution_id}"' in html
        assert ("Cannot be shown: its stored" in html) == case.in_page_row


@pytest.mark.django_db
def test_detail_page_and_its_partials_serve_every_row(rows, client: Client) -> None:
    good, bad, case = rows
    assert 'data-status="completed"' in client.get(f"/executions/{good.execution_id}").text
    response = client.get(f"/executions/{bad.execution_id}")
    assert response.status_code == 200
    html = response.content.decode("utf-8")
    assert case.detail_text in html
    assert bad.execution_id in html
    live = client.get(f"/executions/{bad.execution_id}/live")
    assert live.status_code == 200
    parts = json.loads(live.content.decode("utf-8"))
    assert parts["status"] == "completed"
    if case.detail_text == CANNOT_SHOW:
        assert case.reason is not None
        assert case.reason in parts["cannotBeShown"]
        assert CANNOT_SHOW in parts["header"]
    else:
        assert "cannotBeShown" not in parts


@pytest.mark.slow
def test_a_stored_lone_surrogate_never_breaks_the_live_server(daphne_server: DaphneServer, sse):
    """The issue's report, end to end: a run whose stored output holds "\\ud800" made every
    client of the list stream get a 500 until 50 newer runs existed, and its page 500 for good."""
    url = daphne_server.url
    for execution_id in ("good", "bad"):
        status, _, _ = http(
            "POST",
            f"{url}/workflow/execute",
            {"workflowId": "simple-math-workflow", "executionId": execution_id},
        )
        assert status == 200
    # Written by hand: the API refuses such input now, but an older version stored it.
    with sqlite3.connect(daphne_server.db_path) as db:
        db.execute(
            "UPDATE executions_execution SET outputs = ? WHERE execution_id = 'bad'",
            ['{"text": "\\ud800"}'],
        )

    stream = sse(f"{url}/workflow/executions-stream")
    stream.wait_for(lambda events: any(e.event == "executions.initial" for e in events))
    initial = next(e.data for e in stream.events if e.event == "executions.initial")
    shown = {item["executionId"]: item for item in initial["executions"]}
    assert "cannotBeShown" not in shown["good"]
    assert NOT_UNICODE in shown["bad"]["cannotBeShown"]

    status, _, listing = http("GET", f"{url}/workflow/executions?fields=summary")
    assert status == 200
    listed = {item["executionId"]: item for item in listing["executions"]}
    assert NOT_UNICODE in listed["bad"]["cannotBeShown"]
    for page in ("/executions", "/executions/bad"):
        with urllib.request.urlopen(f"{url}{page}", timeout=10) as response:
            assert response.status == 200
