"""Model -> c4c JSON: the one place that shapes executions, nodes and spans for every reader.

The API, the SSE payloads and the pages all call these, so a field renamed here is renamed
everywhere at once. Shapes follow /work/shared/contract (camelCase, ISO times with ms and "Z" for
executions and nodes, ms-since-epoch numbers for spans).
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from workflows.definitions import WorkflowDefinition

from .models import Execution, NodeExecution, Span


def iso_ms(value: datetime | None) -> str | None:
    """JavaScript's Date.toISOString(): UTC, milliseconds, trailing Z."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is C code; strftime-style formatting cost 1 µs per time, 20 times per execution.
    return f"{value.isoformat(timespec='milliseconds')[:23]}Z"


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def node_detail(node: NodeExecution) -> dict[str, Any]:
    detail: dict[str, Any] = {"nodeId": node.node_id, "status": node.status}
    if node.started_at is not None:
        detail["startTime"] = iso_ms(node.started_at)
    if node.ended_at is not None:
        detail["endTime"] = iso_ms(node.ended_at)
    if node.duration_ms is not None:
        detail["duration"] = node.duration_ms
    if node.input is not None:
        detail["input"] = node.input
    if node.output is not None:
        detail["output"] = node.output
    if node.error is not None:
        detail["error"] = node.error
    return detail


def execution_summary(
    execution: Execution, nodes: Iterable[NodeExecution] | None = None
) -> dict[str, Any]:
    """A list row: everything but the spans. `nodes` defaults to the prefetched `nodes`."""
    node_rows = execution.nodes.all() if nodes is None else nodes
    summary: dict[str, Any] = {
        "executionId": execution.execution_id,
        "workflowId": execution.workflow_id,
        "workflowName": execution.workflow_name,
        "status": execution.status,
        "startTime": iso_ms(execution.started_at),
        "outputs": execution.outputs,
        "nodesExecuted": execution.nodes_executed,
        "nodeDetails": {n.node_id: node_detail(n) for n in node_rows},
        "nodeCount": execution.node_count,
    }
    if execution.ended_at is not None:
        summary["endTime"] = iso_ms(execution.ended_at)
    if execution.execution_time_ms is not None:
        summary["executionTime"] = execution.execution_time_ms
    if execution.error:
        summary["error"] = execution.error
    return summary


def span_json(span: Span) -> dict[str, Any]:
    data: dict[str, Any] = {
        "spanId": span.span_id,
        "traceId": span.trace_id,
        "name": span.name,
        "kind": span.kind,
        "startTime": span.start_time_us / 1000,
        "endTime": span.end_time_us / 1000,
        "duration": span.duration_ms,
        "status": {"code": span.status_code},
        "attributes": span.attributes,
    }
    if span.parent_span_id:
        data["parentSpanId"] = span.parent_span_id
    if span.status_message:
        data["status"]["message"] = span.status_message
    if span.events:
        data["events"] = span.events
    return data


def execution_detail(
    execution: Execution,
    nodes: Iterable[NodeExecution] | None = None,
    spans: Iterable[Span] | None = None,
) -> dict[str, Any]:
    """The GET /workflow/executions item and {"execution": ...} body: the summary plus spans."""
    span_rows = execution.spans.all() if spans is None else spans
    return {**execution_summary(execution, nodes), "spans": [span_json(s) for s in span_rows]}


def run_result(execution: Execution, spans: Iterable[Span]) -> dict[str, Any]:
    """The POST /workflow/execute answer and workflow.result's `result`, as c4c returns them."""
    result: dict[str, Any] = {
        "executionId": execution.execution_id,
        "status": execution.status,
        "outputs": execution.outputs,
        "executionTime": execution.execution_time_ms,
        "nodesExecuted": execution.nodes_executed,
    }
    if execution.error:
        result["error"] = execution.error
    result["spans"] = [span_json(s) for s in spans]
    return result


def workflow_summary(definition: WorkflowDefinition) -> dict[str, Any]:
    """A GET /workflow/definitions item."""
    return {
        "id": definition.id,
        "name": definition.name,
        "description": definition.description,
        "version": definition.version,
        "nodeCount": len(definition.nodes),
    }
