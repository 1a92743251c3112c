"""Every SSE event leaves from here, after the transaction that recorded it commits.

One typed pydantic model per event (c4c's camelCase names); `grep emit_` finds every source.
Channels: "executions" carries every event of every execution for the list; "execution-<id>"
carries one execution's events. Each payload is encoded once, whatever the number of channels.
"""

import logging
import time
from functools import partial
from typing import Any, Literal

from django.db import transaction
from django_eventstream import send_event
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .models import Execution, ExecutionCounter, NodeExecution
from .serializers import execution_summary

logger = logging.getLogger(__name__)

LIST_CHANNEL = "executions"


def execution_channel(execution_id: str) -> str:
    return f"execution-{execution_id}"


def now_ms() -> int:
    return int(time.time() * 1000)


class _Payload(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class _ExecutionEvent(_Payload):
    type: str
    workflow_id: str
    execution_id: str
    timestamp: int


class WorkflowStarted(_ExecutionEvent):
    type: Literal["workflow.started"] = "workflow.started"
    start_time: int


class NodeStarted(_ExecutionEvent):
    type: Literal["node.started"] = "node.started"
    node_id: str
    node_type: str
    node_index: int


class NodeCompleted(_ExecutionEvent):
    type: Literal["node.completed"] = "node.completed"
    node_id: str
    node_index: int
    next_node_id: str | None = None
    output: Any = None
    status: Literal["completed", "failed"]
    error: dict[str, str] | None = None


class WorkflowFinished(_ExecutionEvent):
    type: Literal["workflow.completed", "workflow.failed"]
    execution_time: int
    nodes_executed: list[str]
    error: str | None = None


class WorkflowResult(_ExecutionEvent):
    type: Literal["workflow.result"] = "workflow.result"
    result: dict[str, Any]


class Stats(_Payload):
    total: int
    completed: int
    failed: int
    running: int


class ExecutionsUpdate(_Payload):
    type: Literal["executions.update"] = "executions.update"
    executions: list[dict[str, Any]]
    stats: Stats
    timestamp: int


class ExecutionsInitial(_Payload):
    executions: list[dict[str, Any]]
    stats: Stats
    timestamp: int


class StreamConnected(_Payload):
    execution_id: str
    timestamp: int


def encode(payload: _Payload) -> str:
    return payload.model_dump_json(by_alias=True, exclude_none=True)


def _send(channels: tuple[str, ...], event_type: str, data: str) -> None:
    """A broken fan-out (Redis down) must not fail the run that was already recorded."""
    for channel in channels:
        try:
            send_event(channel, event_type, data, json_encode=False)
        except Exception:
            logger.exception("Could not send %s on %s", event_type, channel)


def _emit(event: _ExecutionEvent) -> None:
    channels = (execution_channel(event.execution_id), LIST_CHANNEL)
    transaction.on_commit(partial(_send, channels, event.type, encode(event)))


def _base(execution: Execution) -> dict[str, Any]:
    return {
        "workflow_id": execution.workflow_id,
        "execution_id": execution.execution_id,
        "timestamp": now_ms(),
    }


def emit_workflow_started(execution: Execution) -> None:
    start = int(execution.started_at.timestamp() * 1000)
    _emit(WorkflowStarted(**_base(execution), start_time=start))


def emit_node_started(execution: Execution, node: NodeExecution, *, node_index: int) -> None:
    _emit(
        NodeStarted(
            **_base(execution),
            node_id=node.node_id,
            node_type=node.node_type,
            node_index=node_index,
        )
    )


def emit_node_completed(
    execution: Execution, node: NodeExecution, *, node_index: int, next_node_id: str | None
) -> None:
    """node.completed for a completed or a failed node (c4c reports both under this name)."""
    _emit(
        NodeCompleted(
            **_base(execution),
            node_id=node.node_id,
            node_index=node_index,
            next_node_id=next_node_id,
            output=node.output,
            status="failed" if node.error else "completed",
            error=node.error,
        )
    )


def emit_workflow_finished(execution: Execution) -> None:
    _emit(
        WorkflowFinished(
            **_base(execution),
            type="workflow.completed" if execution.status == "completed" else "workflow.failed",
            execution_time=execution.execution_time_ms or 0,
            nodes_executed=execution.nodes_executed,
            error=(execution.error or {}).get("message"),
        )
    )


def emit_workflow_result(execution: Execution, result: dict[str, Any]) -> None:
    _emit(WorkflowResult(**_base(execution), result=result))


def _send_update(summary: dict[str, Any]) -> None:
    stats = Stats(**ExecutionCounter.objects.stats())
    update = ExecutionsUpdate(executions=[summary], stats=stats, timestamp=now_ms())
    _send((LIST_CHANNEL,), update.type, encode(update))


def emit_executions_update(execution: Execution, nodes: list[NodeExecution]) -> None:
    """The changed execution's summary (taken now) with the stats (read when it is sent)."""
    transaction.on_commit(partial(_send_update, execution_summary(execution, nodes)))
