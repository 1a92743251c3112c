"""Hostile and careless requests: each gets a 4xx naming the problem, and harms no one after it.

One table of request shapes that once answered 500 (or stored a run that then broke every list
stream), run in-process through Django's test client (SQLite, and PostgreSQL via
scripts/test-postgres.sh) and against a live daphne (slow). For each: the status and the message,
no execution row for the refused request, and afterwards the server still runs a workflow, and
the list stream's snapshot, the API and every page still render. Values that code (not a client)
hands the store - NUL, lone surrogates, in keys too - are stored replaced on both databases.
"""

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from django.db.models import CharField
from django.http import HttpResponseBase, StreamingHttpResponse
from django.test import AsyncClient, Client

from c4c_site.middleware import NUL_IN_URL
from executions import runtime
from executions.live import streams
from executions.live.events import LIST_CHANNEL, execution_channel
from executions.models import Execution, ExecutionStatus, NodeExecution, Span
from tests import factories
from tests.conftest import DaphneServer
from tests.executions.conftest import SseReader, http, math_definition
from workflows import limits
from workflows.observer import ErrorInfo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test reads its own list snapshot: writes through factories send no event to age one."""
    monkeypatch.setattr(streams, "snapshots", streams._SnapshotCache())


def _json(value: Any) -> bytes:
    """As a client sends it: ASCII JSON, so NUL and lone surrogates travel as \\u escapes."""
    return json.dumps(value).encode()


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _inline(**changes: Any) -> dict[str, Any]:
    return {"workflow": {**math_definition("hostile"), **changes}}


def _with_config(config: dict[str, Any]) -> dict[str, Any]:
    body = _inline()
    body["workflow"]["nodes"][0]["config"] = config
    return body


def _amplifying_body() -> dict[str, Any]:
    """The issue's 136 KB request: 3,000 copies of {{input.b}} over a 100 KB input.b."""
    body = _inline(startNode="echo")
    body["workflow"]["nodes"] = [
        {
            "id": "echo",
            "type": "procedure",
            "procedureName": "custom.log",
            "config": {"message": "{{input.b}}." * 3_000},
        }
    ]
    body["input"] = {"b": "x" * 100_000}
    return body


@dataclass(frozen=True)
class Hostile:
    name: str
    body: bytes
    message: str
    path: str = "/workflow/execute"
    status: int = 400


HOSTILE = [
    Hostile("json nested 10,000 deep", b"[" * 10_000 + b"]" * 10_000, "nested deeper than 64"),
    Hostile(
        "object nested 10,000 deep",
        b'{"input":' * 10_000 + b"1" + b"}" * 10_000,
        "nested deeper than 64",
    ),
    Hostile(
        "inline config nested 500 lists deep",
        _json(_with_config({"a": _deep(500), "b": 1})),
        "workflow.nodes[0].config.a[0][0]",
    ),
    Hostile(
        "lone surrogate in input",
        _json({"workflowId": "simple-math-workflow", "input": {"name": "\ud800"}}),
        "input.name: contains a lone surrogate",
    ),
    Hostile(
        "lone surrogate as raw UTF-8 bytes",
        b'{"workflowId": "simple-math-workflow", "input": {"name": "\xed\xa0\x80"}}',
        "not UTF-8",
    ),
    Hostile(
        "lone surrogate in a key",
        _json({"workflowId": "simple-math-workflow", "input": {"k\udc00": 1}}),
        'input: key "k\\udc00" contains a lone surrogate',
    ),
    Hostile(
        "NUL in input",
        _json({"workflowId": "simple-math-workflow", "input": {"items": [0, {"note": "a\x00"}]}}),
        "input.items[1].note: contains a NUL character",
    ),
    Hostile(
        "NUL in an inline workflow's id",
        _json(_inline(id="hostile\x00")),
        "workflow.id: contains a NUL character",
    ),
    Hostile(
        "NUL in a node id",
        _json(_with_config({"a": 1, "b": 2}) | {"executionId": "ok"}).replace(
            b'"id": "add"', b'"id": "add\\u0000"'
        ),
        "workflow.nodes[0].id: contains a NUL character",
    ),
    Hostile(
        "name of 10,000 characters",
        _json(_inline(name="n" * 10_000)),
        "name: String should have at most 300 characters",
    ),
    Hostile(
        "version of 1,000 characters",
        _json(_inline(version="1" * 1_000)),
        "version: String should have at most 50 characters",
    ),
    Hostile(
        "id of 1,000 characters",
        _json(_inline(id="w" * 1_000)),
        "id: String should have at most 200 characters",
    ),
    Hostile(
        "definition larger than C4C_MAX_DEFINITION_BYTES",
        _json(_inline(description="d" * (1024 * 1024))),
        "C4C_MAX_DEFINITION_BYTES allows 1048576",
    ),
    Hostile("NaN", b'{"workflowId": "simple-math-workflow", "input": {"a": NaN}}', "NaN"),
    Hostile("1e999", b'{"workflowId": "simple-math-workflow", "input": {"a": 1e999}}', "1e999"),
    Hostile("not JSON", b"{workflowId", "not valid JSON"),
    Hostile(
        "body past DATA_UPLOAD_MAX_MEMORY_SIZE",
        _json({"workflowId": "simple-math-workflow", "input": {"b": "x" * 3_000_000}}),
        "larger than DATA_UPLOAD_MAX_MEMORY_SIZE",
        status=413,
    ),
    Hostile(
        "validate: NUL in a definition",
        _json({"workflow": {**math_definition("v"), "name": "\x00"}}),
        "workflow.name: contains a NUL character",
        path="/workflow/validate",
    ),
    Hostile(
        "validate: nested 10,000 deep",
        b"[" * 10_000 + b"]" * 10_000,
        "nested deeper than 64",
        path="/workflow/validate",
    ),
]


# A NUL in a path or query reached PostgreSQL's lookups (500 on the API and the pages).
NUL_URLS = [
    "/workflow/executions/a%00b",
    "/workflow/executions?workflowId=%00",
    "/workflow/definitions/a%00b",
    "/executions/a%00b",
    "/executions?workflow=%00",
]


def _messages(body: Any) -> str:
    return " | ".join([body.get("error", ""), *body.get("errors", [])])


def _good_run(post: Callable[[str, bytes], tuple[int, Any]]) -> str:
    status, body = post("/workflow/execute", _json({"workflowId": "simple-math-workflow"}))
    assert status == 200, body
    assert body["status"] == "completed"
    return str(body["executionId"])


# In-process --------------------------------------------------------------------------------


def _post(client: Client) -> Callable[[str, bytes], tuple[int, Any]]:
    def post(path: str, body: bytes) -> tuple[int, Any]:
        response = client.post(path, data=body, content_type="application/json")
        assert response["Content-Type"] == "application/json", response.content[:300]
        return response.status_code, response.json()

    return post


async def _snapshot(path: str) -> Any:
    """The executions.initial event a client of the list stream gets first, read from the view."""
    response: HttpResponseBase = await AsyncClient().get(path)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    # An async view's streaming body is an async generator.
    chunks = cast(AsyncGenerator[bytes], response.streaming_content)
    buffer = b""
    try:
        while True:
            buffer += await asyncio.wait_for(anext(chunks), timeout=10)
            for frame in buffer.split(b"\n\n")[:-1]:
                lines = frame.decode().splitlines()
                if "event: executions.initial" in lines:
                    data = [ln[5:].lstrip(" ") for ln in lines if ln.startswith("data:")]
                    return json.loads("".join(data))
    finally:
        await chunks.aclose()


def _assert_everything_renders(client: Client) -> None:
    """The list API, the list stream's snapshot, and each stored run's API and pages."""
    listing = client.get("/workflow/executions")
    assert listing.status_code == 200
    ids = [e["executionId"] for e in listing.json()["executions"]]
    snapshot = asyncio.run(_snapshot("/workflow/executions-stream"))
    assert [e["executionId"] for e in snapshot["executions"]] == ids
    assert client.get("/executions").status_code == 200
    for execution_id in ids:
        assert client.get(f"/workflow/executions/{execution_id}").status_code == 200
        assert client.get(f"/executions/{execution_id}").status_code == 200


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile_request_is_refused_with_its_problem_and_harms_no_one(case: Hostile) -> None:
    client = Client()
    post = _post(client)
    before = _good_run(post)
    status, body = post(case.path, case.body)
    assert status == case.status, body
    assert case.message in _messages(body)
    assert list(Execution.objects.values_list("execution_id", flat=True)) == [before]
    after = _good_run(post)
    assert Execution.objects.count() == 2
    _assert_everything_renders(client)
    assert after != before


@pytest.mark.parametrize("url", NUL_URLS)
def test_nul_in_a_url_is_refused_before_any_lookup(url: str) -> None:
    client = Client()
    before = _good_run(_post(client))
    response = client.get(url)
    assert (response.status_code, response.json()) == (400, {"error": NUL_IN_URL})
    page = client.get(url, headers={"Accept": "text/html"})
    assert page.status_code == 400
    assert b"Bad request" in page.content
    assert url.encode() not in page.content
    assert [e["executionId"] for e in client.get("/workflow/executions").json()["executions"]] == [
        before
    ]


# Query parameters django-eventstream's own request parsing reads (a GRIP proxy's), which these
# streams do not serve: ignored like any other parameter, never a 500.
FOREIGN_STREAM_PARAMETERS = [
    "es-meta=garbage",
    "es-meta=eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
    "recover=true",
    "channel=somewhere-else",
    "channels=a,b,c,d,e,f,g,h,i,j,k",
    "link=next",
]


@pytest.mark.parametrize("query", FOREIGN_STREAM_PARAMETERS)
def test_stream_parameters_that_are_not_ours_are_ignored(query: str) -> None:
    run = _good_run(_post(Client()))
    snapshot = asyncio.run(_snapshot(f"/workflow/executions-stream?{query}"))
    assert [e["executionId"] for e in snapshot["executions"]] == [run]


STREAMS = {
    "/workflow/executions-stream": LIST_CHANNEL,
    "/workflow/executions/any-run/stream": execution_channel("any-run"),
}


@pytest.mark.parametrize("path", STREAMS)
@pytest.mark.parametrize(
    ("header", "query", "named"),
    [
        ("{channel}:soon", "", "'soon'"),
        ("no-colon-here", "", "'no-colon-here'"),
        ("{channel}:1:2", "", ":1:2'"),
        ("error", "", "'error'"),
        ("", "lastEventId={channel}:later", "'later'"),
    ],
)
def test_a_malformed_last_event_id_is_refused_in_json_naming_it(
    path: str, header: str, query: str, named: str
) -> None:
    channel = STREAMS[path]
    headers = {"Last-Event-ID": header.format(channel=channel)} if header else {}
    response = Client().get(f"{path}?{query.format(channel=channel)}", headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("Invalid request: Last-Event-ID"), error
    assert named in error, error


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0001-01-01", "+275760-09-13"]
)
def test_dates_at_the_edge_of_the_calendar_never_break_the_list_page(when: str) -> None:
    client = Client()
    _good_run(_post(client))
    for field in ("startedAfter", "startedBefore"):
        page = client.get("/executions", {field: when})
        assert page.status_code in (200, 400), (field, when, page.status_code)
        listing = client.get("/workflow/executions", {field: when})
        assert listing.status_code in (200, 400), (field, when, listing.status_code)


def test_amplifying_templates_fail_the_node_naming_the_limit() -> None:
    client = Client()
    started = time.monotonic()
    status, body = _post(client)("/workflow/execute", _json(_amplifying_body()))
    assert status == 200, body
    assert body["status"] == "failed"
    assert body["error"]["message"] == (
        "Templates expand this node's input beyond C4C_MAX_EXPANDED_BYTES (1048576 bytes)"
    )
    assert time.monotonic() - started < 10
    _assert_everything_renders(client)


def _one_node(procedure_name: str) -> Any:
    return factories.definition(
        {
            "id": "echo",
            "name": "Echo",
            "startNode": "echo",
            "nodes": [{"id": "echo", "type": "procedure", "procedureName": procedure_name}],
        }
    )


def test_unstorable_text_from_code_is_stored_replaced_and_renders(settings) -> None:
    """A run's input and a procedure's output come from code, not a client: stored, replaced."""
    settings.C4C_SPAN_PAYLOAD_CHARS = 4096  # a span's copy of the input is stored replaced too
    result = runtime.execute(
        definition=_one_node("custom.log"),
        input={"message": "nul\x00 pair\U0001f600", "note": "lone\ud800 low\udfff", "k\x00": 1},
        execution_id="from-code",
    ).body
    assert result["status"] == "completed", result["error"]
    assert result["outputs"]["echo"]["message"] == "nul\ufffd pair\U0001f600"
    execution = Execution.objects.get(execution_id="from-code")
    assert execution.input == {
        "message": "nul\ufffd pair\U0001f600",
        "note": "lone\ufffd low\ufffd",
        "k\ufffd": 1,
    }
    node = NodeExecution.objects.get(execution=execution)
    assert node.input is not None
    assert node.output is not None
    assert node.input["note"] == "lone\ufffd low\ufffd"
    assert node.output["message"] == "nul\ufffd pair\U0001f600"
    attributes = Span.objects.get(execution=execution, name="workflow.node.procedure").attributes
    assert "lone\ufffd low\ufffd" in attributes["procedure.input"]
    _assert_everything_renders(Client())


def test_error_text_from_code_is_stored_replaced_and_renders() -> None:
    """An exception's message is code's text too: the store replaces what it cannot hold."""
    error = ErrorInfo(name="ValueError", message="nul\x00 lone\ud800", stack="at\x00line")
    factories.execution(
        status=ExecutionStatus.FAILED, execution_id="error-from-code", nodes={}, error=error
    )
    execution = Execution.objects.get(execution_id="error-from-code")
    assert execution.error == {
        "name": "ValueError",
        "message": "nul\ufffd lone\ufffd",
        "stack": "at\ufffdline",
    }
    _assert_everything_renders(Client())


def test_columns_hold_at_least_what_definitions_allow() -> None:
    """workflows cannot import the models, so its bounds are checked against them here."""
    fields = {
        (Execution, "workflow_id"): limits.MAX_ID_CHARS,
        (Execution, "workflow_name"): limits.MAX_NAME_CHARS,
        (Execution, "workflow_version"): limits.MAX_VERSION_CHARS,
        (NodeExecution, "node_id"): limits.MAX_ID_CHARS,
        (NodeExecution, "node_type"): limits.MAX_NODE_TYPE_CHARS,
        (NodeExecution, "procedure_name"): limits.MAX_PROCEDURE_NAME_CHARS,
    }
    for (model, name), bound in fields.items():
        field = model._meta.get_field(name)
        assert isinstance(field, CharField), name
        assert (field.max_length or 0) >= bound, name


# Live daphne ------------------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_requests_against_a_live_server_harm_no_one(daphne_server: DaphneServer) -> None:
    """Its own server, as production runs (DEBUG off): the ids it lists are exactly this test's."""
    live_server_url = daphne_server.url

    def post(path: str, body: bytes) -> tuple[int, Any]:
        status, headers, answer = http("POST", live_server_url + path, body)
        assert headers["Content-Type"] == "application/json"
        return status, answer

    ids = {_good_run(post)}
    for case in HOSTILE:
        status, body = post(case.path, case.body)
        assert (status, case.message in _messages(body)) == (case.status, True), (case.name, body)
        ids.add(_good_run(post))
        stored = http("GET", f"{live_server_url}/workflow/executions?limit=200")[2]
        assert {e["executionId"] for e in stored["executions"]} == ids, case.name
    for url in NUL_URLS:
        assert http("GET", live_server_url + url)[::2] == (400, {"error": NUL_IN_URL}), url
    status, body = post("/workflow/execute", _json(_amplifying_body()))
    assert (status, body["status"]) == (200, "failed")
    assert "C4C_MAX_EXPANDED_BYTES" in body["error"]["message"]
    ids.add(body["executionId"])

    stream = SseReader(f"{live_server_url}/workflow/executions-stream").start()
    try:
        stream.wait_for(lambda events: any(e.event == "executions.initial" for e in events))
    finally:
        stream.close()
    [snapshot] = [e.data for e in stream.events if e.event == "executions.initial"]
    assert {e["executionId"] for e in snapshot["executions"]} == ids
    for path in ["/executions", *(f"/executions/{i}" for i in ids)]:
        with urllib.request.urlopen(live_server_url + path, timeout=30) as page:
            assert page.status == 200, path


@pytest.mark.slow
def test_live_error_pages_show_nothing_the_client_sent(daphne_server: DaphneServer) -> None:
    """`c4c serve` runs with DEBUG off unless asked: no technical pages, no URL patterns."""
    secret = "hunter2-do-not-echo"
    request = urllib.request.Request(
        f"{daphne_server.url}/no/such/page/{secret}?token={secret}",
        headers={"Accept": "text/html", "Authorization": f"Bearer {secret}"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    page = caught.value.read().decode()
    assert caught.value.code == 404
    assert "Not found" in page
    assert secret not in page
    assert "URLconf" not in page
    assert "urlpatterns" not in page
