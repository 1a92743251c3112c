"""What the engine reports while it runs, so that whoever records a run needs no engine internals.

The engine calls these hooks in order (execution_started, then per node node_started followed by
node_completed or node_failed, then execution_finished). Parallel branches call node hooks from
worker threads, so an observer must be thread-safe. An exception raised by an observer hook aborts
the run: recording is part of running, not an afterthought.

execution_started is called inside the run's `workflow.execute` span, so an observer can read the
run's trace id from `opentelemetry.trace.get_current_span()`; execution_finished is called after
that span has ended, so every span of the run is finished by then. RunResult.trace_id carries the
same id (32 hex digits, "" when tracing is off).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from .definitions import WorkflowDefinition, WorkflowNode

RunStatus = Literal["completed", "failed"]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """c4c's error shape: {name, message, stack}."""

    name: str
    message: str
    stack: str = ""

    def to_json_dict(self) -> dict[str, str]:
        return {"name": self.name, "message": self.message, "stack": self.stack}


@dataclass(slots=True)
class RunResult:
    execution_id: str
    workflow_id: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime
    outputs: dict[str, Any] = field(default_factory=dict)
    nodes_executed: list[str] = field(default_factory=list)
    error: ErrorInfo | None = None
    trace_id: str = ""

    @property
    def execution_time_ms(self) -> int:
        return round((self.ended_at - self.started_at).total_seconds() * 1000)


class RunObserver(Protocol):
    def execution_started(
        self,
        *,
        execution_id: str,
        definition: WorkflowDefinition,
        input: dict[str, Any],
        started_at: datetime,
    ) -> None: ...

    def node_started(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        input: dict[str, Any],
        started_at: datetime,
    ) -> None: ...

    def node_completed(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        output: Any,
        next_node_id: str | None,
        ended_at: datetime,
    ) -> None: ...

    def node_failed(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        error: ErrorInfo,
        handled_by: str | None,
        ended_at: datetime,
    ) -> None: ...

    def execution_finished(self, *, result: RunResult) -> None: ...

    def branch_thread_finished(self) -> None:
        """Called last in each thread the engine started for a parallel branch, so an observer
        can release what it holds per thread (a database connection) before the thread ends."""
