"""The JSON bodies the HTTP surface answers, as pydantic models: the OpenAPI document's source.

The views build their bodies with executions.serializers (one shape per concept) and return them
as they are; these models describe those shapes for /openapi.json, so a field the serializers
add shows up as an extra property (the models allow extras) until it is described here. Field
names are c4c's camelCase JSON names.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    """A response body: open to fields added later, as JSON clients of c4c ignore them."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(Body):
    error: str = Field(description="What went wrong, in one sentence.")
    errors: list[str] | None = Field(
        default=None, description="Every problem found, as 'field: message' lines."
    )


class HealthBody(Body):
    status: Literal["ok", "error"]
    checks: dict[str, str] = Field(
        description="Each dependency checked and 'ok', or what failed (e.g. the database)."
    )


class ProcedureMetadata(Body):
    category: str
    tags: list[str]


class ProcedureInfo(Body):
    name: str
    description: str
    metadata: ProcedureMetadata
    inputSchema: dict[str, Any] = Field(description="JSON Schema of the input contract.")
    outputSchema: dict[str, Any] = Field(description="JSON Schema of the output contract.")


class ProcedureList(Body):
    procedures: list[ProcedureInfo]


class Stats(Body):
    total: int
    completed: int
    failed: int
    running: int
    waiting: int = Field(description="Not in c4c: runs parked by a sleep, wait or subworkflow.")


class SpanStatus(Body):
    code: str
    message: str | None = None


class SpanBody(Body):
    spanId: str
    traceId: str
    parentSpanId: str | None = None
    name: str
    kind: str
    startTime: int = Field(description="Milliseconds since the epoch.")
    endTime: int = Field(description="Milliseconds since the epoch.")
    duration: int = Field(description="Milliseconds: endTime - startTime.")
    status: SpanStatus
    attributes: dict[str, Any]
    events: list[Any] | None = None


class NodeAttempt(Body):
    number: int = Field(description="From 1.")
    status: Literal["running", "completed", "failed"]
    startTime: str | None = None
    endTime: str | None = None
    error: Any = None
    retryAt: str | None = Field(
        default=None, description="When the next attempt is due (a failed attempt that retries)."
    )


class NodeDetail(Body):
    nodeId: str
    status: str
    startTime: str | None = None
    endTime: str | None = None
    duration: int | None = Field(default=None, description="Milliseconds.")
    input: Any = None
    output: Any = None
    error: Any = None
    attempts: list[NodeAttempt] | None = Field(
        default=None,
        description="Every attempt of the node, oldest first; absent when it ran once (its own "
        "times and error are that attempt's).",
    )
    reused: bool | None = Field(
        default=None,
        description="true: the output was copied from the execution this one re-runs, the node "
        "did not run here. Absent otherwise.",
    )
    wakeAt: str | None = Field(
        default=None,
        description="A sleep node's due time, a wait node's timeout (status sleeping or waiting).",
    )
    waitingFor: str | None = Field(
        default=None,
        description='What a waiting node waits for: "signal:<name>", "execution:<child id>", '
        '"branches:<ids>".',
    )


class TooLarge(Body):
    bytes: int = Field(description="The size of the whole execution's JSON.")
    limit: int = Field(description="C4C_MAX_RESPONSE_BYTES.")
    leftOut: list[str] = Field(
        description="What this answer leaves out to fit: spans, outputs, nodeDetails.input, "
        "nodeDetails.output, nodeDetails, nodesExecuted."
    )


class ExecutionRow(Body):
    """The default list item: what a list shows, without what grows with the workflow."""

    executionId: str
    workflowId: str
    workflowName: str | None = None
    status: str
    startTime: str | None = None
    endTime: str | None = None
    executionTime: float | None = None
    nodesExecuted: list[str] | None = Field(
        default=None, description="Absent only when tooLarge names it."
    )
    nodeCount: int | None = None
    rerunOf: str | None = Field(
        default=None, description="The execution this one re-runs; absent for a first run."
    )
    rerunFromNode: str | None = Field(
        default=None, description="The node the re-run started from; absent: from the start."
    )
    parentExecutionId: str | None = Field(
        default=None, description="The execution whose subworkflow node started this one."
    )
    parentNodeId: str | None = Field(default=None, description="That subworkflow node.")
    wakeAt: str | None = Field(
        default=None,
        description="A waiting execution's next due time; null: until a signal or child ends.",
    )
    tooLarge: TooLarge | None = Field(
        default=None,
        description="Present when the execution's JSON is larger than C4C_MAX_RESPONSE_BYTES: "
        "the answer leaves out what it names (read the rest from the execution's own stream, or "
        "raise the bound).",
    )


class ExecutionSummary(ExecutionRow):
    outputs: Any = None
    nodeDetails: dict[str, NodeDetail]
    error: Any = None


class ExecutionDetail(ExecutionSummary):
    spans: list[SpanBody]


class ExecutionList(Body):
    executions: list[ExecutionDetail | ExecutionSummary | ExecutionRow] = Field(
        description="Newest first: rows by default (fields=list), with outputs, error and node "
        "details with fields=summary, and spans too with fields=full."
    )
    stats: Stats
    nextCursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; absent on the last page."
    )
    cutShort: bool | None = Field(
        default=None,
        description="true: the page ends early because the next execution would have taken it "
        "past C4C_MAX_RESPONSE_BYTES; nextCursor goes on from there. Absent otherwise.",
    )


class ExecutionBody(Body):
    execution: ExecutionDetail | ExecutionSummary | ExecutionRow = Field(
        description="The execution with its nodes and spans; lighter, with tooLarge saying what "
        "is left out, when it is larger than C4C_MAX_RESPONSE_BYTES."
    )


class RunResult(Body):
    executionId: str
    status: str
    outputs: Any = None
    executionTime: float | None = None
    nodesExecuted: list[str]
    error: Any = None
    spans: list[SpanBody]
    ignoredKeys: list[str] | None = Field(
        default=None,
        description="Keys of the request this server does not read (options' as options.<key>); "
        "absent when there were none.",
    )


class Accepted(Body):
    executionId: str
    workflowId: str
    status: str
    location: str = Field(description="Where the execution can be read (also the Location).")
    ignoredKeys: list[str] | None = Field(
        default=None,
        description="Keys of the request this server does not read (options' as options.<key>); "
        "absent when there were none.",
    )


class RerunAccepted(Accepted):
    rerunOf: str = Field(description="The execution re-run.")
    rerunFromNode: str | None = Field(
        default=None, description="The node it runs from; absent: from the start."
    )


class WorkflowSummary(Body):
    id: str
    name: str
    description: str | None = None
    version: str | None = None
    nodeCount: int


class WorkflowList(Body):
    workflows: list[WorkflowSummary]


class DefinitionBody(Body):
    definition: dict[str, Any] = Field(description="The definition as c4c's JSON.")


class ValidationResult(Body):
    valid: bool
    errors: list[str]


class SignalAccepted(Body):
    executionId: str
    signal: str
    woke: bool = Field(
        description="The run was waiting and is due now; false: it runs and takes the signal "
        "when a wait node asks for it."
    )
