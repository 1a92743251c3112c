"""c4c's server beside the workflow API: /health, /procedures, /rpc/<name>, /openapi.json, /docs."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from executions.tracing import configure_tracing
from workflows.registry import procedure_registry


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def rpc(client: Client, name: str, body: Any, content_type: str = "application/json") -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"/rpc/{name}", data=data, content_type=content_type)


@pytest.mark.django_db
def test_health_says_ok_when_the_database_answers(client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


@pytest.mark.django_db(transaction=True)
def test_health_answers_503_naming_the_database_when_it_cannot_connect(client: Client) -> None:
    # The check runs on a fresh worker thread, which opens its own connection from these settings.
    name = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = "/nonexistent/dir/c4c.sqlite3"
    try:
        response = client.get("/health")
    finally:
        connection.settings_dict["NAME"] = name
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"].startswith("OperationalError")


def test_procedures_lists_every_contract_with_its_json_schemas(client: Client) -> None:
    response = client.get("/procedures")
    assert response.status_code == 200
    listed = {p["name"]: p for p in response.json()["procedures"]}
    assert set(listed) == {p.name for p in procedure_registry().all()}
    add = listed["math.add"]
    assert add["description"] == "Add two numbers."
    assert add["metadata"] == {"category": "math", "tags": ["math"]}
    assert add["inputSchema"]["required"] == ["a", "b"]
    assert add["inputSchema"]["properties"]["a"]["type"] == "number"
    assert add["outputSchema"]["properties"]["result"]["type"] == "number"


def test_rpc_runs_a_procedure_and_answers_its_output(client: Client) -> None:
    response = rpc(client, "math.add", {"a": 2, "b": 3})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"result": 5}


def test_rpc_input_outside_the_contract_is_422_naming_the_field(client: Client) -> None:
    response = rpc(client, "math.add", {"a": "two", "b": 3})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == ["a: Input should be a number, not str"]
    assert "a: Input should be a number" in body["error"]


def test_rpc_missing_field_is_422_naming_it(client: Client) -> None:
    response = rpc(client, "math.add", {"a": 1})
    assert response.status_code == 422
    assert response.json()["errors"] == ["b: Field required"]


def test_rpc_output_that_is_not_json_is_422_not_a_crash(client: Client) -> None:
    response = rpc(client, "math.multiply", {"a": 1e308, "b": 10})
    assert response.status_code == 422
    assert "Output of math.multiply is not JSON" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"a": 1', "Request body is not valid JSON"),
        ('{"a": NaN, "b": 1}', "Request body is not valid JSON: NaN is not a JSON value"),
        ("[1, 2]", "Request body must be a JSON object, not list"),
        ('{"message": "\\ud800"}', "lone surrogate"),
    ],
)
def test_rpc_body_that_is_not_a_json_object_is_400(client: Client, body: str, message: str) -> None:
    response = rpc(client, "custom.log", body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_rpc_procedure_that_fails_is_400_with_its_message_as_c4c_answers(client: Client) -> None:
    response = rpc(client, "data.fetch", {"source": "nowhere"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "data.fetch failed: LookupError: Unknown data source 'nowhere'; "
        "available: metrics, orders, users"
    }


@pytest.mark.parametrize("name", ["nope", "math.add.extra", "math/add", "a%2Fb"])
def test_rpc_unknown_procedure_is_404_in_json(client: Client, name: str) -> None:
    response = rpc(client, name, {})
    assert response.status_code == 404
    assert response.json()["error"].startswith("Procedure '")


def test_rpc_needs_a_json_content_type_instead_of_a_csrf_token(client: Client) -> None:
    response = rpc(client, "math.add", "a=1&b=2", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json() == {
        "error": "Content-Type must be application/json, not application/x-www-form-urlencoded"
    }


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    configure_tracing()
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    try:
        yield exporter
    finally:
        # The SDK has no remove: a shut-down processor drops what it is handed from now on.
        processor.shutdown()


def test_rpc_call_is_traced_like_a_procedure_node(
    client: Client, spans: InMemorySpanExporter
) -> None:
    rpc(client, "math.subtract", {"a": 5, "b": 3})
    rpc(client, "math.subtract", {"a": "x", "b": 3})
    done = [s for s in spans.get_finished_spans() if s.name == "math.subtract"]
    assert [s.status.status_code for s in done] == [StatusCode.OK, StatusCode.ERROR]
    assert all(s.attributes and s.attributes["procedure.name"] == "math.subtract" for s in done)


def test_an_rpc_calls_span_never_holds_a_secret_it_was_sent(
    client: Client, spans: InMemorySpanExporter
) -> None:
    secret = "sk-live-rpc-0123456789"
    response = rpc(client, "data.fetch", {"source": secret, "token": secret})
    assert response.status_code == 400  # the caller, who sent it, reads its own message
    [span] = [s for s in spans.get_finished_spans() if s.name == "data.fetch"]
    assert span.status.status_code == StatusCode.ERROR
    exported = repr((span.status.description, span.attributes, [e.attributes for e in span.events]))
    assert secret not in exported
    assert "[redacted]" in (span.status.description or "")


def test_openapi_document_is_3_1_and_describes_each_procedure_as_c4c_does(client: Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    for path in ("/health", "/procedures", "/rpc/{procedureName}"):
        assert path in document["paths"]
    add = document["paths"]["/rpc/math.add"]["post"]
    assert add["operationId"] == "math.add"
    body_schema = add["requestBody"]["content"]["application/json"]["schema"]
    output_schema = add["responses"]["200"]["content"]["application/json"]["schema"]
    schemas = document["components"]["schemas"]
    assert schemas[body_schema["$ref"].rsplit("/", 1)[1]]["required"] == ["a", "b"]
    assert "result" in schemas[output_schema["$ref"].rsplit("/", 1)[1]]["properties"]
    assert set(add["responses"]) == {"200", "400", "404", "414", "415", "422"}


def test_openapi_document_describes_both_streams_as_server_sent_events(client: Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/workflow/executions-stream", "/workflow/executions/{execution_id}/stream"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert list(content) == ["text/event-stream"]
        assert "workflow.started" in content["text/event-stream"]["x-events"]
    listing = paths["/workflow/executions-stream"]["get"]["responses"]["200"]["content"]
    assert "executions.update" in listing["text/event-stream"]["x-events"]


def test_openapi_document_refers_only_to_schemas_it_holds(client: Client) -> None:
    document = client.get("/openapi.json").json()
    text = json.dumps(document)
    held = set(document["components"]["schemas"])
    referred = {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}
    assert referred
    assert referred <= held


def test_docs_page_loads_swagger_ui_from_our_static_files_never_a_cdn(client: Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<script src="/static/ninja/swagger-ui-bundle.js">' in page
    assert "https://" not in page
    assert '"url": "/openapi.json"' in page


@pytest.mark.parametrize(
    "path", ["/workflow/nothing-here", "/rpc/", "/workflow/executions/a/b", "/rpc/a%0Ab"]
)
def test_unknown_api_path_is_a_json_404_as_c4c_answers(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


def test_openapi_document_describes_the_workflow_api_from_its_request_models(
    client: Client,
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    execute = paths["/workflow/execute"]["post"]
    body = execute["requestBody"]["content"]["application/json"]["schema"]
    assert {"workflowId", "workflow", "input", "executionId", "async"} <= set(body["properties"])
    assert {"200", "202", "400", "404", "409", "415", "503"} <= set(execute["responses"])
    listed = {p["name"]: p for p in paths["/workflow/executions"]["get"]["parameters"]}
    assert {"limit", "cursor", "status", "workflowId", "startedAfter", "startedBefore"} <= set(
        listed
    )
    assert listed["limit"]["schema"]["maximum"] == 200
    for path in (
        "/workflow/executions/{execution_id}",
        "/workflow/executions/{execution_id}/cancel",
        "/workflow/definitions",
        "/workflow/definitions/{workflow_id}",
        "/workflow/validate",
    ):
        assert path in paths


def test_workflow_api_keeps_its_url_names_for_the_pages() -> None:
    assert reverse("executions-api:execute") == "/workflow/execute"
    assert reverse("executions-api:detail", args=["run-1"]) == "/workflow/executions/run-1"
