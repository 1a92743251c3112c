"""Every event fits its shape in executions/live/payloads.py, and the suite's check can fail.

The autouse fixture in tests/conftest.py checks each event sent in-process; these tests pin the
checker itself (it refuses what a client could not rely on) and the frames that streams build
without sending them through the events module.
"""

import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncGenerator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast, get_args

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponseBase, StreamingHttpResponse
from django.test import AsyncClient

from executions.live import events, streams
from executions.live.buffer import Payload
from executions.live.payloads import (
    EVENT_SHAPES,
    EventContractError,
    ExecutionStatusName,
    NodeStatusName,
    validate_event,
)
from executions.models import ExecutionStatus, NodeStatus
from tests import factories
from tests.conftest import ROOT, EventContract
from tests.executions.conftest import SseReader

NODE_STARTED = {
    "type": "node.started",
    "workflowId": "math",
    "executionId": "x",
    "timestamp": 1,
    "nodeId": "add",
    "nodeType": "procedure",
    "nodeIndex": 0,
}


def _data_of(frame: bytes) -> tuple[str, str]:
    lines = frame.decode().splitlines()
    name = lines[0].removeprefix("event: ")
    return name, "\n".join(line.removeprefix("data: ") for line in lines[1:] if line)


def test_a_well_formed_event_passes() -> None:
    validate_event("node.started", json.dumps(NODE_STARTED))


@pytest.mark.parametrize(
    ("event_type", "payload", "problem"),
    [
        ("node.started", {**NODE_STARTED, "stray": 1}, "extra_forbidden"),
        ("node.started", {k: v for k, v in NODE_STARTED.items() if k != "nodeId"}, "missing"),
        ("node.started", {**NODE_STARTED, "nodeIndex": "0"}, "int_type"),
        ("node.started", {**NODE_STARTED, "timestamp": 1.5}, "int_type"),
        ("node.started", {**NODE_STARTED, "nodeType": "teleport"}, "literal_error"),
        ("node.started", {**NODE_STARTED, "type": "node.completed"}, 'carries type "node.c'),
        ("node.completed", {**NODE_STARTED, "type": "node.completed"}, "missing"),
        ("node.start", NODE_STARTED, "not an event we send"),
    ],
    ids=[
        "stray key",
        "missing key",
        "string for int",
        "float ms",
        "node type",
        "type",
        "other event's shape",
        "unknown name",
    ],
)
def test_an_event_that_breaks_its_shape_is_refused(
    event_type: str, payload: dict[str, Any], problem: str
) -> None:
    with pytest.raises(EventContractError, match=problem):
        validate_event(event_type, json.dumps(payload))


def test_an_absent_optional_field_may_not_be_sent_as_null() -> None:
    completed = {**NODE_STARTED, "type": "node.completed", "status": "completed"}
    del completed["nodeType"]
    validate_event("node.completed", json.dumps(completed))
    with pytest.raises(EventContractError, match="nextNodeId"):
        validate_event("node.completed", json.dumps({**completed, "nextNodeId": None}))


def test_the_librarys_events_without_data_carry_none() -> None:
    validate_event("stream-open", "")
    with pytest.raises(EventContractError, match="carries no data"):
        validate_event("keep-alive", "{}")


def test_status_names_are_the_models_statuses() -> None:
    assert set(get_args(ExecutionStatusName)) == set(ExecutionStatus.values)
    assert set(get_args(NodeStatusName)) == set(NodeStatus.values)


def test_every_event_the_runtime_emits_has_a_shape() -> None:
    emitted = {"node.started", "node.completed", "workflow.started", "workflow.completed"}
    emitted |= {"workflow.failed", "workflow.result", "executions.update", "span.ended"}
    emitted |= {"node.log", "node.waiting", "workflow.waiting"}
    assert emitted <= set(EVENT_SHAPES)
    assert {name for name in dir(events) if name.startswith("emit_")} == {
        "emit_workflow_started",
        "emit_node_started",
        "emit_node_completed",
        "emit_workflow_finished",
        "emit_workflow_result",
        "emit_executions_update",
        "emit_span_ended",
        "emit_node_log",
        "emit_node_waiting",
        "emit_workflow_waiting",
    }, "a new emit_ function sends a new event: give it a shape in payloads.EVENT_SHAPES"


def test_a_malformed_event_sent_is_caught_and_fails_the_test(
    events_keep_their_contract: EventContract,
) -> None:
    malformed = Payload({**NODE_STARTED, "nodeIndex": "first"})
    events._send(("malformed-event-test",), "node.started", malformed)
    assert len(events_keep_their_contract.violations) == 1
    assert "nodeIndex" in events_keep_their_contract.violations[0]
    with pytest.raises(pytest.fail.Exception, match=r"node\.started does not fit NodeStarted"):
        events_keep_their_contract.assert_kept()


class _MalformedStream(BaseHTTPRequestHandler):
    """Serves one stream whose node.started lacks most of its fields, then closes."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(
            b'event: stream-open\ndata:\n\nevent: node.started\ndata: {"nodeId":"a"}\n\n'
        )

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_a_malformed_event_read_from_a_server_is_caught_and_fails_the_test(
    events_keep_their_contract: EventContract,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MalformedStream)
    serving = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    serving.start()
    try:
        reader = SseReader(f"http://127.0.0.1:{server.server_port}/stream").start()
        reader.wait_for(lambda seen: len(seen) == 2)
        reader.close()
    finally:
        server.shutdown()
        server.server_close()
    assert len(events_keep_their_contract.violations) == 1
    with pytest.raises(pytest.fail.Exception, match=r"node\.started does not fit NodeStarted"):
        events_keep_their_contract.assert_kept()


@pytest.mark.django_db
def test_the_list_streams_snapshot_fits_executions_initial(math_workflow, monkeypatch) -> None:
    monkeypatch.setattr(streams, "snapshots", streams._SnapshotCache())
    factories.finished_run(workflow=math_workflow, input={"a": 1}, execution_id="snap-1")
    name, data = _data_of(streams.snapshots.frame())
    validate_event(name, data)
    assert json.loads(data)["executions"][0]["nodeDetails"]


def test_an_execution_streams_first_frame_fits_workflow_stream_connected() -> None:
    async def first_frame() -> bytes:
        stream = "/workflow/executions/connected-1/stream"
        response: HttpResponseBase = await AsyncClient().get(stream)
        assert isinstance(response, StreamingHttpResponse)
        # An async view's streaming body is an async generator.
        body = cast(AsyncGenerator[bytes], response.streaming_content)
        try:
            return await anext(body)
        finally:
            await body.aclose()

    name, data = _data_of(async_to_sync(first_frame)())
    assert name == "workflow.stream.connected"
    validate_event(name, data)


INNER_TEST = """
from executions.live import events
from executions.live.buffer import Payload
from tests.conftest import _sent_events_are_checked, events_keep_their_contract  # noqa: F401


def test_sends_node_started_without_its_node_id():
    payload = '{"type":"node.started","workflowId":"w","executionId":"x","timestamp":1,'
    text = payload + '"nodeType":"procedure","nodeIndex":0}'
    events._send(("inner",), "node.started", Payload(text=text))
"""


@pytest.mark.slow
def test_a_test_that_sends_a_malformed_event_fails(tmp_path: Path) -> None:
    """The whole mechanism, as a test run sees it: its own pytest session, its own report."""
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "c4c_site.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ERROR at teardown of test_sends_node_started_without_its_node_id" in result.stdout
    assert "node.started does not fit NodeStarted" in result.stdout
    assert "nodeId" in result.stdout
