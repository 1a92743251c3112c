"""Builders for the executions tests: definitions, runs through the real runtime, HTTP + SSE."""

import contextlib
import copy
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from typing import Any

import pytest

from executions import dispatch
from executions.models import Execution
from tests.conftest import event_contract
from tests.workflows.helpers import C4C_SIMPLE_MATH
from workflows.definitions import WorkflowDefinition

# What a three-node run (simple-math) sends on its streams between its start and its end.
SIMPLE_MATH_NODE_EVENTS = ["node.started", "node.completed"] * 3


def math_definition(workflow_id: str = "math-three") -> dict[str, Any]:
    """c4c's simple-math workflow under another id, so it is posted inline, not from the library."""
    return {**copy.deepcopy(C4C_SIMPLE_MATH), "id": workflow_id, "name": "Three Math Steps"}


def delay_definition(ms: int) -> dict[str, Any]:
    return {
        "id": "slow",
        "name": "Slow",
        "startNode": "wait",
        "nodes": [
            {
                "id": "wait",
                "type": "procedure",
                "procedureName": "custom.delay",
                "config": {"ms": ms},
            }
        ],
    }


def swept_to_end(execution_id: str, timeout: float = 15) -> Execution:
    """Sweep, as the heartbeat does, until the run has ended (woken, resumed, finished)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatch.sweep(requeue=False)
        row = Execution.objects.get(execution_id=execution_id)
        if row.status in ("completed", "failed", "cancelled"):
            return row
        time.sleep(0.02)
    raise AssertionError(f"{execution_id} did not end in {timeout}s")


def within(seconds: float, done: Callable[[], bool]) -> float:
    """How long `done` took to turn true, polled every 10 ms; fails past `seconds`."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not done within {seconds}s")
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def math_workflow() -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(math_definition())


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One JSON request, as API clients send it; returns (status, headers, decoded body)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


# Events sent in batches whose number and place depend on timing.
BATCHED_EVENTS = frozenset({"span.ended", "node.log"})


@dataclass
class SseEvent:
    event: str
    data: Any
    id: str | None


@dataclass
class SseReader:
    """Reads a text/event-stream in a thread and keeps the parsed events (keep-alives dropped)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[SseEvent] = field(default_factory=list)
    response_headers: dict[str, str] = field(default_factory=dict)
    _open: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _conn: HTTPConnection | None = None
    _closed: bool = False

    def start(self) -> "SseReader":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._open.wait(10), f"stream {self.url} did not open"
        return self

    def _run(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        assert parts.hostname is not None, self.url
        self._conn = HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            self._conn.request(
                "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=self.headers
            )
            response = self._conn.getresponse()
            self.response_headers = dict(response.headers)
            data: list[str]
            event, data, event_id = "message", [], None
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line == "":
                    text = "\n".join(data)
                    if data or event != "message":
                        event_contract.check(event, text)
                        self.events.append(
                            SseEvent(event, json.loads(text) if text else None, event_id)
                        )
                    if event == "stream-open":
                        self._open.set()
                    event, data, event_id = "message", [], None
                elif line.startswith(":"):
                    continue
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif line.startswith("id: "):
                    event_id = line[4:]
        except (OSError, ValueError, AttributeError):
            if not self._closed:
                raise

    def names(self) -> list[str]:
        """The events in order, without the stream's own, span.ended and node.log (their batches
        depend on timing: tests/executions/live/test_span_events.py and
        tests/executions/test_node_logs.py check them)."""
        left_out = {"stream-open", "keep-alive", *BATCHED_EVENTS}
        return [e.event for e in self.events if e.event not in left_out]

    def wait_for(self, predicate: Callable[[list[SseEvent]], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(list(self.events)):
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out; got {self.names()}")

    def close(self) -> None:
        """Shut the socket so the server sees the disconnect at once."""
        self._closed = True
        if self._conn is not None and self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)


@pytest.fixture
def sse() -> Iterator[Callable[..., SseReader]]:
    readers: list[SseReader] = []

    def open_stream(url: str, headers: dict[str, str] | None = None) -> SseReader:
        reader = SseReader(url, headers or {}).start()
        readers.append(reader)
        return reader

    yield open_stream
    for reader in readers:
        reader.close()
