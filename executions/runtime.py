"""Runs a definition with the store as the engine's observer, in the seed's order.

start(): record the row (running) -> workflow.started -> executions.update.
run(): per node: record running -> node.started -> the engine runs it -> record completed (or
failed) -> node.completed -> executions.update; then record the result -> spans ->
workflow.completed | workflow.failed -> workflow.result -> executions.update.
Each event is emitted after its write commits (live/events.py), so no client sees what is not
stored.
"""

import logging
import secrets
import string
import threading
import time
import traceback
from typing import Any, NamedTuple

from django.db import connections
from django.utils import timezone

from workflows.definitions import WorkflowDefinition, WorkflowNode
from workflows.engine import run_workflow
from workflows.observer import ErrorInfo, RunResult

from . import store, tracing
from .live import events
from .models import Execution, ExecutionFilters, NodeExecution
from .serializers import run_result

logger = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_execution_id() -> str:
    """c4c's form: wf_exec_<ms>_<9 random base-36 characters>."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))
    return f"wf_exec_{int(time.time() * 1000)}_{suffix}"


class ExecutionRecorder:
    """The engine's RunObserver. Keeps the rows it wrote so events need no read-back.

    Parallel branches call it from worker threads: the node map is guarded by a lock, and each
    thread writes through its own database connection.
    """

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self._nodes: dict[str, NodeExecution] = {}
        self._lock = threading.Lock()

    def nodes(self) -> list[NodeExecution]:
        with self._lock:
            return sorted(self._nodes.values(), key=lambda n: n.sequence)

    def execution_started(
        self,
        *,
        execution_id: str,
        definition: WorkflowDefinition,
        input: dict[str, Any],
        started_at: Any,
    ) -> None:
        if execution_id != self.execution.execution_id:
            raise store.StoreError(
                f"Engine started {execution_id!r}, expected {self.execution.execution_id!r}"
            )

    def node_started(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        input: dict[str, Any],
        started_at: Any,
    ) -> None:
        row = store.node_start(
            execution=self.execution,
            node=node,
            node_index=node_index,
            input=input,
            started_at=started_at,
        )
        with self._lock:
            self._nodes[node.id] = row
        events.emit_node_started(self.execution, row, node_index=node_index)

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
        ended_at: Any,
    ) -> None:
        row = store.node_complete(node=self._nodes[node.id], output=output, ended_at=ended_at)
        events.emit_node_completed(
            self.execution, row, node_index=node_index, next_node_id=next_node_id
        )
        events.emit_executions_update(self.execution, [row])

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
        ended_at: Any,
    ) -> None:
        row = store.node_fail(node=self._nodes[node.id], error=error, ended_at=ended_at)
        events.emit_node_completed(
            self.execution, row, node_index=node_index, next_node_id=handled_by
        )
        events.emit_executions_update(self.execution, [row])

    def node_attempt_failed(self, **details: Any) -> None:
        """Not recorded yet: attempts get their rows with the durable runtime (issue 10)."""

    def node_attempt_started(self, **details: Any) -> None:
        """Not recorded yet: attempts get their rows with the durable runtime (issue 10)."""

    def node_reused(self, **details: Any) -> None:
        """Not called yet: nothing passes checkpoints before re-run exists (issue 10)."""

    def execution_finished(self, *, result: RunResult) -> None:
        """The result is recorded by run() once the root span has ended and spans are complete."""

    def branch_thread_finished(self) -> None:
        """A branch thread's database connection would otherwise stay open until GC finds it."""
        connections.close_all()


def start(
    *,
    definition: WorkflowDefinition,
    input: dict[str, Any],
    execution_id: str | None = None,
    owner: str | None = None,
) -> Execution:
    """Record a new execution as running (raises store.DuplicateExecution for a taken id).

    `owner` defaults to this process; pass "" for a run handed to a Celery worker, which no web
    server may fail as interrupted when it restarts.
    """
    execution = store.execution_start(
        execution_id=execution_id or new_execution_id(),
        definition=definition,
        input=input,
        started_at=timezone.now(),
        owner=owner,
    )
    events.emit_workflow_started(execution)
    events.emit_executions_update(execution, [])
    return execution


def failure_result(
    execution: Execution, exc: BaseException, *, message: str | None = None
) -> RunResult:
    """A run that could not finish (an observer refused a write, a bug, no broker) still ends."""
    return RunResult(
        execution_id=execution.execution_id,
        workflow_id=execution.workflow_id,
        status="failed",
        started_at=execution.started_at,
        ended_at=timezone.now(),
        error=ErrorInfo(
            name=type(exc).__name__,
            message=str(exc) if message is None else message,
            stack="".join(traceback.format_exception(exc)),
        ),
    )


class RunOutput(NamedTuple):
    """The c4c result (POST /workflow/execute) and its JSON text.

    Encoded once: a 1,000-node result is ~870 KB, and the workflow.result event and the API's
    response carry the same text (the second encoding cost ~6-7 ms of such a request).
    """

    body: dict[str, Any]
    json: str


def run(
    *,
    execution: Execution,
    definition: WorkflowDefinition,
    input: dict[str, Any],
    trigger_event: Any = None,
) -> RunOutput:
    """Run a started execution to the end; returns the c4c result and its JSON text."""
    recorder = ExecutionRecorder(execution)
    with tracing.collect(execution.execution_id) as collected:
        try:
            result = run_workflow(
                definition,
                input,
                execution_id=execution.execution_id,
                observer=recorder,
                trigger_event=trigger_event,
            )
        except Exception as exc:
            logger.exception("Execution %s aborted", execution.execution_id)
            result = failure_result(execution, exc)
    nodes = recorder.nodes()
    try:
        store.execution_finish(execution=execution, result=result)
    except store.TransitionError:
        # Cancelled (or failed) meanwhile: what is stored stands; report that, not the late run.
        execution.refresh_from_db()
        nodes = list(execution.nodes.order_by("sequence", "id"))
    spans = store.spans_record(execution=execution, spans=tracing.span_rows(collected.spans))
    body = run_result(execution, spans)
    output = RunOutput(body, events.encode(body))
    events.emit_workflow_finished(execution)
    events.emit_workflow_result(execution, output.json)
    events.emit_executions_update(execution, nodes)
    return output


def execute(
    *,
    definition: WorkflowDefinition,
    input: dict[str, Any],
    execution_id: str | None = None,
    trigger_event: Any = None,
) -> RunOutput:
    """start() then run(): what the API's synchronous path, the CLI and Celery call."""
    execution = start(definition=definition, input=input, execution_id=execution_id)
    return run(execution=execution, definition=definition, input=input, trigger_event=trigger_event)


def cancel(execution_id: str) -> Execution:
    """Cancel a running execution; the engine's next write is refused and the run winds down."""
    execution = store.execution_cancel(execution_id=execution_id)
    nodes = list(execution.nodes.order_by("sequence", "id"))
    events.emit_executions_update(execution, nodes)
    return execution


def fail_unqueued(execution: Execution, exc: Exception, *, message: str) -> None:
    """End a run that never reached a worker, with the events a finished run sends."""
    try:
        store.execution_finish(
            execution=execution, result=failure_result(execution, exc, message=message)
        )
    except store.TransitionError:
        return  # cancelled meanwhile: what is stored stands
    events.emit_workflow_finished(execution)
    events.emit_executions_update(execution, [])


def fail_interrupted(*, server: str | None = None, owner: str | None = None) -> list[str]:
    """Fail the runs a stopped process of this server left running, and tell open dashboards.

    Each failed run gets workflow.failed on its own stream and an executions.update on the
    list, as if its process had finished it.
    """
    failed = store.executions_fail_interrupted(server=server, owner=owner)
    if failed:
        found = ExecutionFilters(execution_ids=tuple(failed))
        for row in Execution.objects.page(found, limit=len(failed)).rows:
            events.emit_workflow_finished(row.execution)
            events.emit_executions_update(row.execution, row.nodes)
    return failed
