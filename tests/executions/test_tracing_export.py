"""The standard OTEL_* variables turn on OTLP export: a real server posts spans to a collector."""

import gzip
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from executions import tracing
from tests.conftest import DaphneServer
from tests.executions.conftest import http


@dataclass
class Export:
    path: str
    content_type: str
    request: ExportTraceServiceRequest

    def spans(self) -> Iterator[tuple[dict[str, object], Span]]:
        """(resource attributes, span) for every span in the export."""
        for resource_spans in self.request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    yield resource, span


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass
class Collector:
    """A tiny OTLP/HTTP receiver on 127.0.0.1 that keeps every decoded trace export."""

    url: str = ""
    exports: list[Export] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans_named(self, name: str) -> list[tuple[dict[str, object], Span]]:
        return [(r, s) for r, s in self._all() if s.name == name]

    def server_spans(self) -> list[Span]:
        """HTTP request spans (kind SERVER), from Django's or the ASGI instrumentation."""
        return [s for _, s in self._all() if s.kind == s.SPAN_KIND_SERVER]

    def _all(self) -> list[tuple[dict[str, object], Span]]:
        with self.lock:
            exports = list(self.exports)
        return [(r, s) for e in exports for r, s in e.spans()]


@pytest.fixture
def collector() -> Iterator[Collector]:
    received = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
            with received.lock:
                received.exports.append(
                    Export(self.path, self.headers.get("Content-Type", ""), request)
                )
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_otel_variables_send_workflow_spans_to_the_otlp_endpoint(
    tmp_path: Path, collector: Collector
) -> None:
    server = DaphneServer(
        tmp_path,
        env={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "c4c-export-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    server.start()
    try:
        status, _, result = http(
            "POST",
            f"{server.url}/workflow/execute",
            {"workflowId": "simple-math-workflow", "executionId": "exported-1"},
        )
        assert status == 200
        assert result["status"] == "completed"
        with urllib.request.urlopen(f"{server.url}/executions", timeout=10) as page:
            assert page.status == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            collector.spans_named("workflow.execute") and len(collector.server_spans()) >= 2
        ):
            time.sleep(0.1)
    finally:
        server.stop()

    [(resource, root)] = collector.spans_named("workflow.execute")
    assert resource["service.name"] == "c4c-export-test"
    attributes = {a.key: _value(a.value) for a in root.attributes}
    assert attributes["workflow.execution_id"] == "exported-1"
    assert attributes["workflow.id"] == "simple-math-workflow"
    assert {e.path for e in collector.exports} == {"/v1/traces"}
    assert {e.content_type for e in collector.exports} == {"application/x-protobuf"}
    node_spans = [
        s
        for e in collector.exports
        for _, s in e.spans()
        if s.name.startswith("workflow.node.") and s.trace_id == root.trace_id
    ]
    assert len(node_spans) == 3
    assert all(s.parent_span_id == root.span_id for s in node_spans)
    stored_root = next(s for s in result["spans"] if s["name"] == "workflow.execute")
    assert stored_root["traceId"] == root.trace_id.hex()

    requests = {s.name: s for s in collector.server_spans()}
    assert {"POST /workflow/execute", "GET executions"} <= set(requests), set(requests)
    assert [link.span_id for link in root.links] == [requests["POST /workflow/execute"].span_id]


@pytest.mark.parametrize(
    ("variables", "exporters"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
    ],
)
def test_exporters_follow_the_standard_variables(monkeypatch, variables, exporters) -> None:
    for name in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert tracing._exporters() == exporters
