"""Model -> c4c JSON: the one place that shapes executions, nodes and spans for every reader.

The API, the SSE payloads and the pages all call these, so a field renamed here is renamed
everywhere at once. Shapes follow /work/shared/contract (camelCase, ISO times with ms and "Z" for
executions and nodes, integer ms since the epoch for spans, integer ms durations).

A stored row can hold what this version would never write (an older version's shapes, a lone
surrogate an input let through): such an execution is shown as a marker that says why
(`cannot_show`), never as an error that takes its whole page or stream down.
"""

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from workflows.definitions import WorkflowDefinition

from .cursors import encode_cursor
from .models import (
    Execution,
    ExecutionRows,
    ExecutionStatus,
    NodeExecution,
    NodeLog,
    NodeStatus,
    Span,
)

# The JSON columns these shapes carry, and the types a client reads them as.
_COLUMN_SHAPES: dict[str, tuple[type, ...]] = {
    "outputs": (dict,),
    "nodes_executed": (list,),
    "error": (dict, type(None)),
}
# What a marker keeps of the execution: columns that are plain text, numbers and times.
_MARKER_KEYS = (
    "executionId",
    "workflowId",
    "workflowName",
    "status",
    "startTime",
    "endTime",
    "executionTime",
    "nodeCount",
    "rerunOf",
    "rerunFromNode",
)
# What a list row leaves out of an execution's summary (list_row).
_NOT_IN_LIST_ROWS = frozenset({"outputs", "nodeDetails"})
NOT_UNICODE = "it holds text that is not valid Unicode (a lone surrogate)"
NOT_JSON_NUMBER = "it holds a number JSON cannot carry (NaN or Infinity)"


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


def stored_problem(execution: Execution) -> str | None:
    """Why this row cannot be shown, or None: a loaded JSON column of the wrong type.

    Only columns already read are checked, so a list row never loads a deferred column.
    """
    loaded = vars(execution)
    for column, kinds in _COLUMN_SHAPES.items():
        if column in loaded and not isinstance(loaded[column], kinds):
            wanted = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
            return f"its stored {column} is {type(loaded[column]).__name__}, not {wanted}"
    if "nodes_executed" in loaded and not all(isinstance(n, str) for n in loaded["nodes_executed"]):
        return "its stored nodes_executed holds something other than node ids"
    return None


def cannot_show(item: dict[str, Any], reason: str) -> dict[str, Any]:
    """The marker that stands in for an execution's JSON: its identity, status and times, the
    reason in `cannotBeShown`, and the reason again as its error so c4c's UI shows it too."""
    marker = {key: item[key] for key in _MARKER_KEYS if key in item}
    message = f"This execution cannot be shown: {reason}."
    marker.update(
        outputs={},
        nodesExecuted=[],
        nodeDetails={},
        error={"name": "CannotBeShown", "message": message, "stack": ""},
        cannotBeShown=reason,
    )
    if "spans" in item:
        marker["spans"] = []
    return marker


def node_detail(node: NodeExecution) -> dict[str, Any]:
    detail: dict[str, Any] = {"nodeId": node.node_id, "status": node.status}
    if node.started_at is not None:
        detail["startTime"] = iso_ms(node.started_at)
    if node.ended_at is not None:
        detail["endTime"] = iso_ms(node.ended_at)
    if node.duration_ms is not None:
        # Integer milliseconds, as c4c sends them (the stored value keeps microseconds).
        detail["duration"] = round(node.duration_ms)
    if node.input is not None:
        detail["input"] = node.input
    if node.output is not None:
        detail["output"] = node.output
    if node.error is not None:
        detail["error"] = node.error
    attempts = node_attempts(node)
    if attempts:
        detail["attempts"] = attempts
    if node.reused:
        detail["reused"] = True
    if node.wake_at is not None:
        detail["wakeAt"] = iso_ms(node.wake_at)
    if node.waiting_for:
        detail["waitingFor"] = node.waiting_for
    return detail


def node_attempts(node: NodeExecution) -> list[dict[str, Any]] | None:
    """Every attempt of a node run that had more than one, oldest first; None for the common node
    that ran once (the store keeps no list for it: the row's own times are that attempt's).

    Stored in this shape already (ISO times); a key without a value is left out, as everywhere.
    """
    stored = node.attempts
    if not isinstance(stored, list) or len(stored) < 2:
        return None
    return [
        {key: value for key, value in attempt.items() if value is not None}
        for attempt in stored
        if isinstance(attempt, dict)
    ]


def _row_fields(execution: Execution) -> dict[str, Any]:
    """The columns of a list page's row (models.ROW_FIELDS), in c4c's names."""
    row: dict[str, Any] = {
        "executionId": execution.execution_id,
        "workflowId": execution.workflow_id,
        "workflowName": execution.workflow_name,
        "status": execution.status,
        "startTime": iso_ms(execution.started_at),
        "nodesExecuted": execution.nodes_executed,
        "nodeCount": execution.node_count,
    }
    if execution.ended_at is not None:
        row["endTime"] = iso_ms(execution.ended_at)
    if execution.execution_time_ms is not None:
        row["executionTime"] = execution.execution_time_ms
    if execution.error:
        row["error"] = execution.error
    # The foreign key's column holds the original's execution_id: read without a query.
    if execution.rerun_of_id:
        row["rerunOf"] = execution.rerun_of_id
        if execution.rerun_from_node:
            row["rerunFromNode"] = execution.rerun_from_node
    if execution.parent_id:
        row["parentExecutionId"] = execution.parent_id
        row["parentNodeId"] = execution.parent_node_id
    if execution.status == ExecutionStatus.WAITING:
        row["wakeAt"] = iso_ms(execution.lease_expires_at)
    return row


def execution_row(execution: Execution) -> dict[str, Any]:
    """The default GET /workflow/executions item: what c4c's executions page reads (id, workflow,
    status, times, nodesExecuted, error) from the columns a page row reads, without the outputs,
    node details and spans that grow with the workflow (a marker if the row cannot be shown)."""
    row = _row_fields(execution)
    problem = stored_problem(execution)
    return row if problem is None else list_row(cannot_show(row, problem))


def execution_summary(execution: Execution, nodes: Iterable[NodeExecution]) -> dict[str, Any]:
    """A list row: everything but the spans (a marker if the stored row cannot be shown)."""
    summary = _row_fields(execution)
    summary["outputs"] = execution.outputs
    summary["nodeDetails"] = {n.node_id: node_detail(n) for n in nodes}
    problem = stored_problem(execution)
    return summary if problem is None else cannot_show(summary, problem)


def list_row(summary: Mapping[str, Any]) -> dict[str, Any]:
    """An execution_summary (or its marker) as the list stream's c4c view sends it, fifty at a
    time: without the outputs and node details, which grow with the workflow and which c4c's
    executions page never reads (the execution's own stream and detail carry them)."""
    return {key: value for key, value in summary.items() if key not in _NOT_IN_LIST_ROWS}


def span_json(span: Span) -> dict[str, Any]:
    """A span as c4c sends it: integer ms since the epoch, and a duration that is their
    difference (c4c reads both from a millisecond clock). The pages read the stored microseconds."""
    start_ms, end_ms = span.start_time_us // 1000, span.end_time_us // 1000
    data: dict[str, Any] = {
        "spanId": span.span_id,
        "traceId": span.trace_id,
        "name": span.name,
        "kind": span.kind,
        "startTime": start_ms,
        "endTime": end_ms,
        "duration": end_ms - start_ms,
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


def node_log_line(line: NodeLog, *, visit: int) -> dict[str, Any]:
    """A logged line as GET .../nodes/<nodeId>/logs and node.log carry it: `id` orders lines
    (and is the `after` cursor), `time` is ISO with ms; `dropped` only on a last line that
    counts the lines an attempt dropped past its caps."""
    data: dict[str, Any] = {
        "id": line.pk,
        "visit": visit,
        "attempt": line.attempt,
        "number": line.number,
        "time": iso_ms(line.logged_at),
        "level": line.level,
        "logger": line.logger,
        "message": line.message,
    }
    if line.dropped:
        data["dropped"] = line.dropped
    return data


def execution_detail(
    execution: Execution, nodes: Iterable[NodeExecution], spans: Iterable[Span]
) -> dict[str, Any]:
    """The GET /workflow/executions item and {"execution": ...} body: the summary plus spans."""
    summary = execution_summary(execution, nodes)
    return {**summary, "spans": [] if "cannotBeShown" in summary else [span_json(s) for s in spans]}


def graph_nodes(
    definition: Any, nodes: Iterable[NodeExecution], *, finished: bool
) -> dict[str, dict[str, Any]]:
    """The detail page's node panel: every defined node with a status, and for those that ran
    their node_detail, plus the type and procedure the graph draws.

    A node with no row is pending while the run goes on and skipped once it has ended (a branch
    not taken).
    """
    details: dict[str, dict[str, Any]] = {}
    defined = definition.get("nodes") if isinstance(definition, dict) else None
    for node in defined if isinstance(defined, list) else []:
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            details[node["id"]] = {
                "nodeId": node["id"],
                "nodeType": str(node.get("type", "")),
                "procedureName": str(node.get("procedureName", "")),
                "status": NodeStatus.SKIPPED if finished else NodeStatus.PENDING,
            }
    for node in nodes:
        details[node.node_id] = {
            **node_detail(node),
            "nodeType": node.node_type,
            "procedureName": node.procedure_name,
        }
    return details


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


# Compact, UTF-8 and strict: a lone surrogate or a NaN raises here instead of reaching a client
# as JSON that strict parsers refuse.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def to_json(payload: Any) -> bytes:
    """`payload` as compact UTF-8 JSON; ValueError if no JSON client could read it."""
    return _encode(payload).encode()


def unencodable(item: Any) -> str | None:
    """Why `item` cannot be sent as JSON, or None."""
    try:
        to_json(item)
    except UnicodeEncodeError:
        return NOT_UNICODE
    except ValueError:
        return NOT_JSON_NUMBER
    return None


def showable_json(payload: Mapping[str, Any], key: str) -> bytes:
    """`payload` as JSON, each execution under `key` (a list or one) that cannot be encoded
    replaced by its marker. The whole is encoded first, so the check costs nothing until a row
    fails it."""
    try:
        return to_json(payload)
    except ValueError:
        value = payload[key]
        items = value if isinstance(value, list) else [value]
        shown = [
            item if (why := unencodable(item)) is None else cannot_show(item, why) for item in items
        ]
        return to_json({**payload, key: shown if isinstance(value, list) else shown[0]})


# Every JSON body the API reads out is bounded (C4C_MAX_RESPONSE_BYTES): a list page that would be
# larger stops early with a nextCursor, and one execution that is larger is sent with its heavy
# parts left out and `tooLarge` saying which - never cut mid-JSON.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# What a list body holds besides its items (its keys, the stats, a cursor) stays under this.
_ENVELOPE_BYTES = 1024
_HEAVY_NODE_KEYS = frozenset({"input", "output"})


def max_response_bytes() -> int:
    """C4C_MAX_RESPONSE_BYTES: the most a list page or an execution's body may take."""
    return int(getattr(settings, "C4C_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES))


def encoded_item(item: Mapping[str, Any]) -> bytes:
    """One execution as JSON, or its marker when it cannot be encoded."""
    try:
        return to_json(item)
    except ValueError:
        return to_json(cannot_show(dict(item), unencodable(item) or NOT_JSON_NUMBER))


def _too_large(item: dict[str, Any], size: int, limit: int, left_out: list[str]) -> dict[str, Any]:
    return {**item, "tooLarge": {"bytes": size, "limit": limit, "leftOut": left_out}}


def _lighter_shapes(
    execution: Execution, nodes: Sequence[NodeExecution]
) -> list[tuple[list[str], dict[str, Any]]]:
    """The execution without its heaviest parts, lighter and lighter, each with what is left out."""
    summary = execution_summary(execution, nodes)
    details = summary.get("nodeDetails", {})
    light = {key: value for key, value in summary.items() if key != "outputs"}
    light["nodeDetails"] = {
        node_id: {key: value for key, value in detail.items() if key not in _HEAVY_NODE_KEYS}
        for node_id, detail in details.items()
    }
    row = execution_row(execution)
    if "error" in summary:
        row["error"] = summary["error"]
    bare = {key: value for key, value in row.items() if key != "nodesExecuted"}
    return [
        (["spans"], summary),
        (["spans", "outputs", "nodeDetails.input", "nodeDetails.output"], light),
        (["spans", "outputs", "nodeDetails"], row),
        (["spans", "outputs", "nodeDetails", "nodesExecuted"], bare),
    ]


def bounded_execution(
    execution: Execution,
    nodes: Sequence[NodeExecution],
    spans: Sequence[Span],
    *,
    limit: int,
    reserve: int = 0,
) -> bytes:
    """execution_detail as JSON in at most `limit - reserve` bytes: when the whole is larger, the
    first of _lighter_shapes that fits, with `tooLarge` {bytes, limit, leftOut} saying so."""
    whole = encoded_item(execution_detail(execution, nodes, spans))
    if len(whole) + reserve <= limit:
        return whole
    shapes = _lighter_shapes(execution, nodes)
    for left_out, shape in shapes:
        text = encoded_item(_too_large(shape, len(whole), limit, left_out))
        if len(text) + reserve <= limit:
            return text
    left_out, shape = shapes[-1]
    return encoded_item(_too_large(shape, len(whole), limit, left_out))


def lighter_result(result: Mapping[str, Any], size: int, limit: int) -> list[dict[str, Any]]:
    """A c4c result of `size` bytes past `limit`, lighter and lighter: without its spans, then
    without its outputs too, each with `tooLarge` saying so (the keys stay, empty, for c4c's
    clients). The caller sends the first that fits, else the last."""
    spanless = {**result, "spans": []}
    bare = {**spanless, "outputs": {}}
    return [
        _too_large(spanless, size, limit, ["spans"]),
        _too_large(bare, size, limit, ["spans", "outputs"]),
    ]


def execution_json(
    execution: Execution, nodes: Sequence[NodeExecution], spans: Sequence[Span]
) -> bytes:
    """The {"execution": ...} body of GET /workflow/executions/<id>, bounded."""
    item = bounded_execution(execution, nodes, spans, limit=max_response_bytes(), reserve=16)
    return b'{"execution":' + item + b"}"


def list_item(rows: ExecutionRows, shape: str) -> dict[str, Any]:
    """One execution of a list page in its shape: "row" (the default page), "summary" (no spans)
    or "full"."""
    if shape == "row":
        return execution_row(rows.execution)
    if shape == "summary":
        return execution_summary(rows.execution, rows.nodes)
    return execution_detail(rows.execution, rows.nodes, rows.spans)


def _alone_too_large(rows: ExecutionRows, shape: str, size: int, limit: int, budget: int) -> bytes:
    """A page's first item that alone is past the bound, lighter (see bounded_execution)."""
    if shape != "row":
        return bounded_execution(
            rows.execution, rows.nodes, rows.spans, limit=limit, reserve=limit - budget
        )
    row = execution_row(rows.execution)
    bare = {key: value for key, value in row.items() if key != "nodesExecuted"}
    return encoded_item(_too_large(bare, size, limit, ["nodesExecuted"]))


def list_json(
    rows: Sequence[ExecutionRows], shape: str, stats: Mapping[str, object], next_cursor: str | None
) -> bytes:
    """The GET /workflow/executions body for a page's rows (newest first) in `shape`.

    Items are encoded one by one and the page ends before the one that would take it past
    C4C_MAX_RESPONSE_BYTES: `nextCursor` then points after the last item sent and `cutShort` is
    true. A first item larger than the whole bound is sent lighter, with `tooLarge`.
    """
    limit = max_response_bytes()
    budget = limit - _ENVELOPE_BYTES
    encoded: list[bytes] = []
    used = 0
    cut_after: Execution | None = None
    for index, row in enumerate(rows):
        # Other threads (the runs) get the GIL between items, not only every switch interval.
        time.sleep(0)
        text = encoded_item(list_item(row, shape))
        if used + len(text) + 1 > budget:
            if encoded:
                cut_after = rows[index - 1].execution
                break
            text = _alone_too_large(row, shape, len(text), limit, budget)
        encoded.append(text)
        used += len(text) + 1
    body = [b'{"executions":[', b",".join(encoded), b'],"stats":', to_json(stats)]
    if cut_after is not None:
        body += [b',"nextCursor":', to_json(encode_cursor(cut_after)), b',"cutShort":true']
    elif next_cursor:
        body += [b',"nextCursor":', to_json(next_cursor)]
    body.append(b"}")
    return b"".join(body)
