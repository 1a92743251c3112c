"""The shape of every SSE event we send: one TypedDict per event, checked in tests only.

The sending code (`events`, `streams`) annotates the dicts it builds with these types, so mypy
holds it to them; at run time nothing is validated (events go out ~14 times per execution).
The test suite validates every event sent in-process and every event a live-server test reads
against EVENT_SHAPES (`validate_event`), with extra keys forbidden and no type coercion, so a
renamed, stray or retyped field fails the test that sent it. Names are c4c's camelCase.

A new event type is one TypedDict here and one entry in EVENT_SHAPES.
"""

import json
from functools import cache
from typing import Any, Literal, NotRequired

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from workflows.definitions import NodeType

ExecutionStatusName = Literal["running", "completed", "failed", "cancelled", "waiting"]
NodeStatusName = Literal[
    "pending", "running", "completed", "failed", "skipped", "sleeping", "waiting"
]


@with_config(ConfigDict(extra="forbid", strict=True))
class Payload(TypedDict):
    """Base of every shape: no key beyond those declared, no "1" for 1."""


class ErrorInfo(Payload):
    name: str
    message: str
    stack: str


class TooLarge(Payload):
    """What was left out of a body past C4C_MAX_RESPONSE_BYTES, and how large the whole was."""

    bytes: int
    limit: int
    leftOut: list[str]


class Stats(Payload):
    total: int
    completed: int
    failed: int
    running: int
    # Not in c4c: parked runs (workflows.waits), counted in total as cancelled ones are.
    waiting: int


class NodeAttempt(Payload):
    """One attempt of a node run (executions.serializers.node_attempts)."""

    number: int
    status: Literal["running", "completed", "failed"]
    startTime: NotRequired[str]
    endTime: NotRequired[str]
    error: NotRequired[ErrorInfo]
    retryAt: NotRequired[str]


class NodeDetail(Payload):
    nodeId: str
    status: NodeStatusName
    startTime: NotRequired[str]
    endTime: NotRequired[str]
    duration: NotRequired[int]
    input: NotRequired[Any]
    output: NotRequired[Any]
    error: NotRequired[ErrorInfo]
    # Only for a node that ran more than one attempt, and only true: the common node pays nothing.
    attempts: NotRequired[list[NodeAttempt]]
    reused: NotRequired[Literal[True]]
    # A parked node run (sleeping, waiting): its due time and what it waits for.
    wakeAt: NotRequired[str]
    waitingFor: NotRequired[str]


class ListRow(Payload):
    """An execution as a list shows it (executions.serializers.list_row): what c4c's executions
    page reads, without the outputs and node details that grow with the workflow."""

    executionId: str
    workflowId: str
    workflowName: str
    status: ExecutionStatusName
    startTime: str
    endTime: NotRequired[str]
    executionTime: NotRequired[int]
    nodesExecuted: list[str]
    nodeCount: int
    error: NotRequired[ErrorInfo]
    # Why a stored row is shown as a marker (executions.serializers.cannot_show).
    cannotBeShown: NotRequired[str]
    # A re-run: the execution it re-runs, and the node it started from (none: from the start).
    rerunOf: NotRequired[str]
    rerunFromNode: NotRequired[str]
    # A subworkflow's child: the execution and node that started it.
    parentExecutionId: NotRequired[str]
    parentNodeId: NotRequired[str]
    # A waiting execution's next due time (null: until its signal or child).
    wakeAt: NotRequired[str | None]


class ExecutionSummary(ListRow):
    """An execution without its spans (executions.serializers.execution_summary)."""

    outputs: Any
    nodeDetails: dict[str, NodeDetail]


class SpanStatus(Payload):
    code: Literal["OK", "ERROR", "UNSET"]
    message: NotRequired[str]


class SpanJson(Payload):
    spanId: str
    traceId: str
    parentSpanId: NotRequired[str]
    name: str
    kind: str
    startTime: int
    endTime: int
    duration: int
    status: SpanStatus
    attributes: dict[str, Any]
    events: NotRequired[list[Any]]


class RunResult(Payload):
    """POST /workflow/execute's answer, carried whole by workflow.result."""

    executionId: str
    status: ExecutionStatusName
    outputs: Any
    executionTime: int
    nodesExecuted: list[str]
    error: NotRequired[ErrorInfo]
    spans: list[SpanJson]
    # Past C4C_MAX_RESPONSE_BYTES: the spans (then the outputs) left out, and why.
    tooLarge: NotRequired[TooLarge]


class ExecutionEvent(Payload):
    """What every event of one execution carries; `type` repeats the SSE event name."""

    type: str
    workflowId: str
    executionId: str
    timestamp: int


class WorkflowStarted(ExecutionEvent):
    startTime: int


class NodeStarted(ExecutionEvent):
    nodeId: str
    nodeType: NodeType
    nodeIndex: int


class NodeCompleted(ExecutionEvent):
    nodeId: str
    nodeIndex: int
    status: Literal["completed", "failed"]
    nextNodeId: NotRequired[str]
    output: NotRequired[Any]
    error: NotRequired[ErrorInfo]


class NodeWaiting(ExecutionEvent):
    """node.waiting (not in c4c): a sleep, wait or subworkflow node run parked (workflows.waits):
    `status` sleeping or waiting, due at `wakeAt` at most (null: until its signal or child), and
    what it waits for ("signal:<name>", "execution:<child id>", "branches:<ids>")."""

    nodeId: str
    nodeIndex: int
    status: Literal["sleeping", "waiting"]
    wakeAt: str | None
    waitingFor: str


class WorkflowWaiting(ExecutionEvent):
    """workflow.waiting (not in c4c): the run parked; no process holds it until `wakeAt` (null:
    until a signal or child arrives)."""

    wakeAt: str | None
    nodesExecuted: list[str]


class WorkflowFinished(ExecutionEvent):
    """workflow.completed and workflow.failed (a cancelled run ends with workflow.failed)."""

    executionTime: int
    nodesExecuted: list[str]
    error: NotRequired[str]


class SpanEnded(ExecutionEvent):
    """span.ended (not in c4c; the execution's own stream only): spans of a run that ended since
    its last span.ended, oldest first, as RunResult's `spans` carries them. Sent in batches while
    the run goes on (at most every runtime.SPAN_BATCH_SECONDS: at a node's start, or at the
    heartbeat's tick while a node runs), the rest just before workflow.completed |
    workflow.failed; each span once."""

    spans: list[SpanJson]


class NodeLogLine(Payload):
    """A line a procedure logged (executions.serializers.node_log_line)."""

    id: int
    visit: int
    attempt: int
    number: int
    time: str
    level: str
    logger: str
    message: str
    dropped: NotRequired[int]


class NodeLog(ExecutionEvent):
    """node.log (not in c4c; the execution's own stream only): lines one attempt of a node run
    logged since the last node.log for it, oldest first, each once. Batched: at most one event
    per attempt every workflows.logs.LOG_BATCH_SECONDS while it runs, the rest when it ends
    (before the node's node.completed, or its next node.started on a retry)."""

    nodeId: str
    nodeIndex: int
    visit: int
    attempt: int
    lines: list[NodeLogLine]


class WorkflowResult(ExecutionEvent):
    result: RunResult


class ExecutionsUpdate(Payload):
    """As sent, and on the list stream's ?view=delta: the changed execution's summary. On its
    default view (c4c's): the newest page, the executions executions.initial lists, as list rows."""

    type: Literal["executions.update"]
    executions: list[ExecutionSummary] | list[ListRow]
    stats: Stats
    timestamp: int


class ExecutionsInitial(Payload):
    executions: list[ExecutionSummary]
    stats: Stats
    timestamp: int


class StreamConnected(Payload):
    executionId: str
    timestamp: int


class StreamReset(Payload):
    """django-eventstream's own event for a Last-Event-ID older than the replay buffer."""

    channels: list[str]


# Event name -> its payload's shape; None for the library's events that carry no data.
EVENT_SHAPES: dict[str, Any] = {
    "workflow.started": WorkflowStarted,
    "node.started": NodeStarted,
    "node.completed": NodeCompleted,
    "node.waiting": NodeWaiting,
    "workflow.waiting": WorkflowWaiting,
    "workflow.completed": WorkflowFinished,
    "workflow.failed": WorkflowFinished,
    "workflow.result": WorkflowResult,
    "span.ended": SpanEnded,
    "node.log": NodeLog,
    "executions.update": ExecutionsUpdate,
    "executions.initial": ExecutionsInitial,
    "workflow.stream.connected": StreamConnected,
    "stream-reset": StreamReset,
    "stream-open": None,
    "keep-alive": None,
}


class EventContractError(ValueError):
    """An event whose name or payload is not what EVENT_SHAPES says."""


@cache
def _adapter(shape: Any) -> TypeAdapter[Any]:
    return TypeAdapter(shape)


def validate_event(event_type: str, data: str) -> None:
    """Raise EventContractError unless `data` (the event's JSON text) fits its event's shape."""
    if event_type not in EVENT_SHAPES:
        raise EventContractError(f"{event_type!r} is not an event we send")
    shape = EVENT_SHAPES[event_type]
    if shape is None:
        if data:
            raise EventContractError(f"{event_type} carries no data, got {data[:200]!r}")
        return
    try:
        payload = _adapter(shape).validate_json(data)
    except ValidationError as exc:
        raise EventContractError(f"{event_type} does not fit {shape.__name__}: {exc}") from None
    sent_type = payload.get("type", event_type)
    if sent_type != event_type:
        raise EventContractError(f"{event_type} carries type {json.dumps(sent_type)}")
