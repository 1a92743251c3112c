"""GET /workflow/executions/<id>/nodes/<nodeId>/logs: its query and its body, for /openapi.json.

Beside executions.api.schemas, in the same style (camelCase names, bodies open to fields added
later). The lines are built by executions.serializers.node_log_line, as node.log carries them.
"""

from pydantic import BaseModel, ConfigDict, Field

from .schemas import Body

MAX_LOG_LINES_PER_READ = 5_000


class NodeLogsQuery(BaseModel):
    """Lines after a line id (`after`, from a previous answer's `nextAfter` or a node.log line's
    `id`), at most `limit` of them."""

    model_config = ConfigDict(extra="forbid")

    after: int = Field(default=0, ge=0, description="Only lines with a greater `id`.")
    limit: int = Field(
        default=1_000, ge=1, le=MAX_LOG_LINES_PER_READ, description="Lines in one answer."
    )


class NodeLogLine(Body):
    id: int = Field(description="Orders the lines of an execution; the `after` cursor.")
    visit: int = Field(description="The node run: the nth time the run reached the node.")
    attempt: int
    number: int = Field(description="Its place among its attempt's lines, from 1.")
    time: str = Field(description="When it was logged: ISO 8601, ms, UTC.")
    level: str = Field(description="The logging level name: DEBUG, INFO, WARNING, ERROR, ...")
    logger: str
    message: str = Field(description="Secrets redacted; cut at 4,096 characters.")
    dropped: int | None = Field(
        default=None,
        description="Only on an attempt's last line when it logged past C4C_MAX_LOG_LINES or "
        "C4C_MAX_LOG_BYTES: how many lines were dropped.",
    )


class NodeLogs(Body):
    executionId: str
    nodeId: str
    lines: list[NodeLogLine] = Field(description="Oldest first.")
    nextAfter: int | None = Field(
        description="Pass as `after` for the lines that follow; null when this is all so far."
    )
