"""What the engine reports while it runs, so that whoever records a run needs no engine internals.

The engine calls these hooks in order: execution_started; per node run, node_started, then for
each retry node_attempt_failed (before the backoff wait, with the due time) and
node_attempt_started (after it), then node_completed or node_failed once, when the node is done
(or node_parked when a sleep, wait or subworkflow node stops the walk until later);
execution_finished last. A node run is identified by (node id, visit): the visit is the nth time
the run reached that node (loops), and it keys the checkpoints a resumed run is given
(workflows.checkpoints). Attempts count from 1 within a node run.

A resumed run (run_workflow with checkpoints) reports nothing for the node runs it replays; an
interrupted node run continues with node_attempt_started (attempt N+1, no node_started), and a
checkpoint marked reused is reported through node_reused. Parallel branches call node hooks from
worker threads, so an observer must be thread-safe. An exception raised by an observer hook aborts
the run: recording is part of running, not an afterthought.

execution_started is called inside the run's `workflow.execute` span, so an observer can read the
run's trace id from `opentelemetry.trace.get_current_span()`; execution_finished is called after
that span has ended, so every span of the run is finished by then. RunResult.trace_id carries the
same id (32 hex digits, "" when tracing is off).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .definitions import WorkflowDefinition, WorkflowNode

if TYPE_CHECKING:
    from .checkpoints import Checkpoint
    from .logs import LogLine
    from .waits import Parked

# cancelled: the RunControl was cancelled (error CancelledError). A workflow timeout is "failed"
# with TimeoutError. waiting: a node parked the run (workflows.waits) until RunResult.wake_at.
RunStatus = Literal["completed", "failed", "cancelled", "waiting"]


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
    # A waiting run's earliest due time (None: it waits for a signal or a child only).
    wake_at: datetime | None = None

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
        visit: int,
        input: dict[str, Any],
        started_at: datetime,
    ) -> None:
        """A new node run begins with its attempt 1."""

    def node_attempt_failed(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        attempt: int,
        error: ErrorInfo,
        ended_at: datetime,
        retry_at: datetime,
    ) -> None:
        """Attempt `attempt` failed and attempt+1 is due at `retry_at`; called before the wait,
        so that a run resumed during the wait can wait only what is left of it."""

    def node_attempt_started(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        attempt: int,
        started_at: datetime,
    ) -> None:
        """Attempt `attempt` (> 1) of the node run begins: after a backoff wait, or in a resumed
        run for the node run that was interrupted (running, or waiting for its retry)."""

    def node_completed(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        attempt: int,
        output: Any,
        next_node_id: str | None,
        ended_at: datetime,
    ) -> None:
        """The node run is done; `attempt` is the attempt that succeeded."""

    def node_failed(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        attempt: int,
        error: ErrorInfo,
        handled_by: str | None,
        ended_at: datetime,
    ) -> None:
        """The node run failed for good (retries spent, not retryable, timed out with no retry
        left, or stopped by a cancel or the workflow timeout); the run goes to `handled_by`."""

    def node_reused(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        checkpoint: "Checkpoint",
    ) -> None:
        """A checkpoint marked reused was replayed: the node did not run in this execution."""

    def node_parked(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        parked: "Parked",
    ) -> None:
        """The node run waits (sleeping or waiting, until `parked.wake_at` at most) and the walk
        stops: the run ends "waiting" and is taken up again when it is due (workflows.waits)."""

    def execution_finished(self, *, result: RunResult) -> None: ...

    def branch_thread_finished(self) -> None:
        """Called last in each thread the engine started for a parallel branch, so an observer
        can release what it holds per thread (a database connection) before the thread ends."""


class LogObserver(RunObserver, Protocol):
    """An observer that also takes what procedures log (workflows.logs). The engine captures
    logs only for an observer that has `node_logs`; one without it pays nothing."""

    def node_logs(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        attempt: int,
        lines: "list[LogLine]",
    ) -> None:
        """Lines attempt `attempt` of the node run logged, oldest first, never empty. Called from
        the process's log pump thread while the attempt runs (batches), and from the walking
        thread with the rest when it ends, before the attempt's outcome is reported; calls for
        one attempt never overlap. An exception aborts the run when the attempt ends."""
