"""The only code that writes executions, node runs and spans.

Each function is one transaction and guards its status transition with a conditional write whose
guard is read off the transition tables in models.py (`sources`, `unfinished`), so a finished
execution never returns to running, a late success never overwrites failed or cancelled, and a
skipped node never starts again. The per-node and per-run writes are SQL generated from the
models in `executions.sql` (which says why); the rare ones use the ORM here. The functions take
and return model instances: the runtime keeps the rows it wrote and serialises them without
reading them back.
"""

import os
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from workflows.definitions import WorkflowDefinition, WorkflowNode
from workflows.observer import ErrorInfo, RunResult

from . import sql
from .conf import app_settings
from .models import (
    EXECUTION_TRANSITIONS,
    NODE_TRANSITIONS,
    Execution,
    ExecutionStatus,
    NodeExecution,
    NodeStatus,
    Span,
    sources,
    unfinished,
)
from .payloads import bounded, storable

_BOOT = uuid.uuid4().hex[:8]


def _connection() -> BaseDatabaseWrapper:
    """The thread's connection, looked up once per write: each attribute read through Django's
    `connection` proxy looks it up again (~1 us), several times per node."""
    return connections[DEFAULT_DB_ALIAS]


class StoreError(Exception):
    pass


class ExecutionNotFound(StoreError):
    def __init__(self, execution_id: str) -> None:
        super().__init__(f"Execution '{execution_id}' not found")
        self.execution_id = execution_id


class DuplicateExecution(StoreError):
    def __init__(self, execution_id: str) -> None:
        super().__init__(f"Execution '{execution_id}' already exists")
        self.execution_id = execution_id


class TransitionError(StoreError):
    """A write that would move a row backwards (e.g. complete a cancelled execution)."""


def server_id() -> str:
    """This server's stable name across restarts: whose interrupted runs it may fail."""
    return app_settings.C4C_SERVER_ID


def worker_id() -> str:
    """This process: the server plus pid and boot token, so a restarted server is another owner."""
    return f"{server_id()}/{os.getpid()}/{_BOOT}"


def _bump(moves: Counter[str]) -> None:
    """Move the per-status counters by `moves` (status -> delta) in the caller's transaction."""
    with _connection().cursor() as cursor:
        for status, delta in moves.items():
            if delta:
                sql.counter_bump(cursor, status, delta)


def _refuse(
    execution: Execution, wanted: str, node: NodeExecution | None = None
) -> TransitionError:
    """The refusal of a write the tables do not allow, saying what the stored rows are now."""
    current = (
        Execution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        or "deleted"
    )
    where = ""
    if node is not None:
        node_status = (
            NodeExecution.objects.filter(pk=node.pk).values_list("status", flat=True).first()
        )
        where = f" (node {node.node_id} is {node_status or 'not recorded'})"
    return TransitionError(
        f"Execution '{execution.execution_id}' is {current}{where}; it cannot become {wanted}"
    )


def execution_start(
    *,
    execution_id: str,
    definition: WorkflowDefinition,
    input: Any,
    started_at: datetime,
    owner: str | None = None,
) -> Execution:
    """Create the row as running (one INSERT and one counter UPDATE)."""
    execution = Execution(
        execution_id=execution_id,
        workflow_id=definition.id,
        workflow_name=definition.display_name,
        workflow_version=definition.version,
        definition=definition.to_json_dict(),
        status=ExecutionStatus.RUNNING,
        started_at=started_at,
        input=bounded(input),
        worker_id=worker_id() if owner is None else owner,
    )
    try:
        with transaction.atomic(), _connection().cursor() as cursor:
            execution.pk = sql.execution_insert(cursor, execution)
            sql.counter_bump(cursor, execution.status, 1)
    except IntegrityError as exc:
        if Execution.objects.filter(execution_id=execution_id).exists():
            raise DuplicateExecution(execution_id) from exc
        raise
    return execution


def node_start(
    *,
    execution: Execution,
    node: WorkflowNode,
    node_index: int,
    input: Any,
    started_at: datetime,
) -> NodeExecution:
    """Record the node as running; a node run again (a loop) is reset and keeps its place.

    Refused while the execution is not unfinished, or when the node's row may not move to running.
    """
    row = NodeExecution(
        execution=execution,
        node_id=node.id,
        node_type=node.type,
        procedure_name=node.procedure_name or "",
        status=NodeStatus.RUNNING,
        sequence=node_index,
        started_at=started_at,
        input=bounded(input),
    )
    with _connection().cursor() as cursor:
        pk = sql.node_start(cursor, row)
    if pk is None:
        raise _refuse(execution, f"{row.status} at node {node.id}", row)
    row.pk = pk
    return row


def _node_finish(
    row: NodeExecution, *, status: str, ended_at: datetime, column: str, value: Any
) -> None:
    """The node -> `status`, from a status the table allows, while its execution is unfinished."""
    duration = (ended_at - row.started_at).total_seconds() * 1000 if row.started_at else None
    with _connection().cursor() as cursor:
        written = sql.node_finish(
            cursor,
            row,
            status=status,
            ended_at=ended_at,
            duration_ms=duration,
            column=column,
            value=value,
        )
    if not written:
        raise _refuse(row.execution, f"{status} at node {row.node_id}", row)
    row.status, row.ended_at, row.duration_ms = status, ended_at, duration
    setattr(row, column, value)


def node_complete(*, node: NodeExecution, output: Any, ended_at: datetime) -> NodeExecution:
    """The node -> completed with its output (one guarded UPDATE)."""
    _node_finish(
        node, status=NodeStatus.COMPLETED, ended_at=ended_at, column="output", value=bounded(output)
    )
    return node


def node_fail(*, node: NodeExecution, error: ErrorInfo, ended_at: datetime) -> NodeExecution:
    """The node -> failed with the error (one guarded UPDATE)."""
    _node_finish(
        node,
        status=NodeStatus.FAILED,
        ended_at=ended_at,
        column="error",
        value=storable(error.to_json_dict()),
    )
    return node


def execution_finish(*, execution: Execution, result: RunResult) -> Execution:
    """The run -> its result's status with its outputs, and the counters moved with it.

    A compare-and-set from the status this instance holds, which the table must allow to move
    there: the counters then move from the status the row really left.
    """
    status, previous = result.status, execution.status
    if status not in EXECUTION_TRANSITIONS.get(previous, frozenset()):
        raise _refuse(execution, status)
    values: dict[str, Any] = {
        "status": status,
        "ended_at": result.ended_at,
        "execution_time_ms": max(
            0, round((result.ended_at - execution.started_at).total_seconds() * 1000)
        ),
        "outputs": bounded(result.outputs),
        "nodes_executed": list(result.nodes_executed),
        "error": storable(result.error.to_json_dict()) if result.error else None,
    }
    with transaction.atomic(), _connection().cursor() as cursor:
        if not sql.execution_move(cursor, execution, values, expected=previous):
            raise _refuse(execution, status)
        sql.counter_bump(cursor, previous, -1)
        sql.counter_bump(cursor, status, 1)
    for name, value in values.items():
        setattr(execution, name, value)
    return execution


def spans_record(*, execution: Execution, spans: Sequence[Span]) -> list[Span]:
    """Save a run's spans in one batched INSERT and note the trace id on the execution."""
    for span in spans:
        span.execution = execution
    trace_id = next((s.trace_id for s in spans if not s.parent_span_id), "")
    with transaction.atomic(), _connection().cursor() as cursor:
        if spans:
            sql.spans_insert(cursor, spans)
        if trace_id:
            sql.execution_trace_id(cursor, execution, trace_id)
    execution.trace_id = trace_id or execution.trace_id
    return sorted(spans, key=lambda s: (s.start_time_us, s.span_id))


def execution_cancel(*, execution_id: str, reason: str = "Cancelled by request") -> Execution:
    """The run -> cancelled, its unfinished nodes -> skipped; the engine's next write fails."""
    now = timezone.now()
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(execution_id=execution_id).first()
        if execution is None:
            raise ExecutionNotFound(execution_id)
        previous = execution.status
        if ExecutionStatus.CANCELLED not in EXECUTION_TRANSITIONS.get(previous, frozenset()):
            raise TransitionError(
                f"Execution '{execution_id}' is {previous}; it cannot be cancelled"
            )
        execution.status = ExecutionStatus.CANCELLED
        execution.ended_at = now
        execution.execution_time_ms = round((now - execution.started_at).total_seconds() * 1000)
        execution.error = {"name": "CancelledError", "message": reason, "stack": ""}
        execution.save(update_fields=["status", "ended_at", "execution_time_ms", "error"])
        execution.nodes.filter(status__in=sources(NODE_TRANSITIONS, NodeStatus.SKIPPED)).update(
            status=NodeStatus.SKIPPED, ended_at=now
        )
        _bump(Counter({previous: -1, ExecutionStatus.CANCELLED: 1}))
    return execution


def execution_claim(*, execution_id: str, owner: str) -> Execution | None:
    """Make a queued run (no owner yet) this worker's, or None when it is not waiting any more.

    The conditional UPDATE lets exactly one worker take a run, so a message the broker delivers
    twice never runs it twice, and a run cancelled while it was queued is left as it is.
    """
    with transaction.atomic():
        claimed = Execution.objects.filter(
            execution_id=execution_id,
            status__in=unfinished(EXECUTION_TRANSITIONS),
            worker_id="",
        ).update(worker_id=owner)
    if not claimed:
        return None
    return Execution.objects.get(execution_id=execution_id)


def _process_gone(owner: str) -> bool:
    """Whether the process an owner (server/pid/boot) names has stopped, seen from this host.

    Our own pid under another boot token is our previous life. A pid still alive may be a sibling
    sharing the server name (several daphne processes or Celery workers on one host), so its runs
    are left alone: a run is failed only when nothing can still be running it.
    """
    parts = owner.rsplit("/", 2)
    pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return True
    except PermissionError:
        return False
    return False


def executions_fail_interrupted(
    *, server: str | None = None, owner: str | None = None
) -> list[str]:
    """Fail the runs a stopped process of this server left running, and return their ids.

    The rule, for any number of web processes and Celery workers sharing one database: each
    running row names its owner (server/pid/boot; a run queued for Celery has none until a worker
    claims it). A process starting up fails only rows whose owner names its own server (a web
    server's C4C_SERVER_ID, a worker's node name) and a process that is provably gone, so live
    runs of other servers, and of live siblings with the same name on this host, are never
    touched. `owner` is the identity of the process doing this (default: this process).
    """
    prefix = f"{server or server_id()}/"
    me = owner or worker_id()
    now = timezone.now()
    failed: list[str] = []
    with transaction.atomic():
        rows = (
            Execution.objects.select_for_update()
            .filter(
                status__in=sources(EXECUTION_TRANSITIONS, ExecutionStatus.FAILED),
                worker_id__startswith=prefix,
            )
            .exclude(worker_id=me)
            .only("pk", "execution_id", "status", "started_at", "worker_id")
        )
        moves: Counter[str] = Counter()
        for execution in rows:
            if not _process_gone(execution.worker_id):
                continue
            Execution.objects.filter(pk=execution.pk).update(
                status=ExecutionStatus.FAILED,
                ended_at=now,
                execution_time_ms=round((now - execution.started_at).total_seconds() * 1000),
                error={
                    "name": "InterruptedError",
                    "message": (
                        f"Interrupted: the server process running it ({execution.worker_id}) "
                        "stopped before it finished"
                    ),
                    "stack": "",
                },
            )
            failed.append(execution.execution_id)
            moves.update({execution.status: -1, ExecutionStatus.FAILED: 1})
        if failed:
            NodeExecution.objects.filter(
                execution__execution_id__in=failed,
                status__in=sources(NODE_TRANSITIONS, NodeStatus.FAILED),
            ).update(
                status=NodeStatus.FAILED,
                ended_at=now,
                error={"name": "InterruptedError", "message": "Interrupted", "stack": ""},
            )
            _bump(moves)
    return failed
