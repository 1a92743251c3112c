"""The only code that writes executions, node runs and spans.

Each function is one transaction and guards its status transition with a conditional UPDATE (the
tables are in models.py), so a finished execution never returns to running and a late success
never overwrites failed or cancelled. The functions take and return model instances: the runtime
keeps the rows it wrote and serialises them without reading them back.
"""

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from workflows.definitions import WorkflowDefinition, WorkflowNode
from workflows.observer import ErrorInfo, RunResult

from .models import (
    EXECUTION_TRANSITIONS,
    Execution,
    ExecutionCounter,
    ExecutionStatus,
    NodeExecution,
    NodeStatus,
    Span,
)
from .payloads import bounded

_BOOT = uuid.uuid4().hex[:8]

# The per-node writes and the counters run hundreds of times a second: as raw SQL they cost one
# statement each and no ORM query compilation (which was most of a run's CPU). Every statement
# keeps its guard in its WHERE clause and is plain SQL that SQLite (3.35+) and PostgreSQL share.
_EXECUTIONS = Execution._meta.db_table
_NODES = NodeExecution._meta.db_table
_COUNTERS = ExecutionCounter._meta.db_table
_RUNNING_EXECUTION = (
    f"EXISTS (SELECT 1 FROM {_EXECUTIONS} WHERE id = %s AND status = '{ExecutionStatus.RUNNING}')"
)
# A node run again (a loop) is reset in place and keeps its first sequence.
_NODE_START_SQL = f"""
    INSERT INTO {_NODES}
        (execution_id, node_id, node_type, procedure_name, status, sequence, started_at, input)
    SELECT %s, %s, %s, %s, %s, %s, %s, %s WHERE {_RUNNING_EXECUTION}
    ON CONFLICT (execution_id, node_id) DO UPDATE SET
        status = excluded.status, started_at = excluded.started_at, input = excluded.input,
        ended_at = NULL, duration_ms = NULL, output = NULL, error = NULL
    RETURNING id
"""
_NODE_FINISH_SQL = f"""
    UPDATE {_NODES} SET status = %s, ended_at = %s, duration_ms = %s, {{column}} = %s
    WHERE id = %s AND status = '{NodeStatus.RUNNING}' AND {_RUNNING_EXECUTION}
"""
_BUMP_SQL = f"""
    INSERT INTO {_COUNTERS} (status, count) VALUES (%s, %s)
    ON CONFLICT (status) DO UPDATE SET count = {_COUNTERS}.count + excluded.count
"""
_EXECUTION_FINISH_SQL = f"""
    UPDATE {_EXECUTIONS} SET status = %s, ended_at = %s, execution_time_ms = %s, outputs = %s,
        nodes_executed = %s, error = %s
    WHERE id = %s AND status = '{ExecutionStatus.RUNNING}'
"""


def _db(db: BaseDatabaseWrapper, model: type[Any], field: str, value: Any) -> Any:
    """A value as the backend stores it (JSON text or jsonb, datetime text or timestamptz)."""
    return model._meta.get_field(field).get_db_prep_save(value, db)


def _connection() -> BaseDatabaseWrapper:
    """The thread's connection, looked up once per write: each attribute read through Django's
    `connection` proxy looks it up again (~1 us), several times per node."""
    return connections[DEFAULT_DB_ALIAS]


# Columns whose Python values (str, int, float, bool, an integer key) the drivers take as they
# are: asking Django's field to prepare them cost ~3 us each, a third of writing a run's spans.
# JSON and datetime columns still go through their field, which knows the backend's form.
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
    models.ForeignKey,
)


def _insert_sql(model: type[Any], suffix: str) -> tuple[list[tuple[str, Any]], str]:
    """An INSERT of every column of `model` but its id, built once from the model's fields.

    Also returns each column's attribute name with the field that prepares its value (None for a
    plain column).
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    preparers = [(f.attname, None if isinstance(f, _PLAIN_FIELDS) else f) for f in fields]
    return preparers, f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ({values}) {suffix}"


def _row(db: BaseDatabaseWrapper, preparers: list[tuple[str, Any]], instance: Any) -> list[Any]:
    values = []
    for attname, field in preparers:
        value = getattr(instance, attname)
        values.append(value if field is None else field.get_db_prep_save(value, db))
    return values


_EXECUTION_FIELDS, _EXECUTION_INSERT_SQL = _insert_sql(Execution, "RETURNING id")
_SPAN_FIELDS, _SPAN_INSERT_SQL = _insert_sql(Span, "ON CONFLICT (execution_id, span_id) DO NOTHING")
_TRACE_ID_SQL = f"UPDATE {_EXECUTIONS} SET trace_id = %s WHERE id = %s"


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
    return os.environ.get("C4C_SERVER_ID") or socket.gethostname()


def worker_id() -> str:
    """This process: the server plus pid and boot token, so a restarted server is another owner."""
    return f"{server_id()}/{os.getpid()}/{_BOOT}"


def _bump(status: str, delta: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_BUMP_SQL, [status, delta])


def _refuse(execution: Execution, wanted: str) -> TransitionError:
    current = (
        Execution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        or "deleted"
    )
    return TransitionError(
        f"Execution '{execution.execution_id}' is {current}; it cannot become {wanted}"
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
        db = _connection()
        with transaction.atomic(), db.cursor() as cursor:
            cursor.execute(_EXECUTION_INSERT_SQL, _row(db, _EXECUTION_FIELDS, execution))
            execution.pk = cursor.fetchone()[0]
            _bump(ExecutionStatus.RUNNING, 1)
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
    """Record the node as running; a node run again (a loop) is reset and keeps its place."""
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
    db = _connection()
    params = [
        execution.pk,
        row.node_id,
        row.node_type,
        row.procedure_name,
        row.status,
        row.sequence,
        _db(db, NodeExecution, "started_at", started_at),
        _db(db, NodeExecution, "input", row.input),
        execution.pk,
    ]
    with db.cursor() as cursor:
        cursor.execute(_NODE_START_SQL, params)
        inserted = cursor.fetchone()
    if inserted is None:
        raise _refuse(execution, f"running node {node.id}")
    row.pk = inserted[0]
    return row


def _node_finish(
    row: NodeExecution, *, status: str, ended_at: datetime, column: str, value: Any
) -> None:
    """Running -> `status`, only while the node runs and its execution is still running."""
    duration = (ended_at - row.started_at).total_seconds() * 1000 if row.started_at else None
    db = _connection()
    params = [
        status,
        _db(db, NodeExecution, "ended_at", ended_at),
        duration,
        _db(db, NodeExecution, column, value),
        row.pk,
        row.execution_id,
    ]
    with db.cursor() as cursor:
        cursor.execute(_NODE_FINISH_SQL.format(column=column), params)
        updated = cursor.rowcount
    if not updated:
        raise _refuse(row.execution, f"{status} at node {row.node_id}")
    row.status, row.ended_at, row.duration_ms = status, ended_at, duration
    setattr(row, column, value)


def node_complete(*, node: NodeExecution, output: Any, ended_at: datetime) -> NodeExecution:
    """Running -> completed with the node's output (one guarded UPDATE)."""
    _node_finish(
        node, status=NodeStatus.COMPLETED, ended_at=ended_at, column="output", value=bounded(output)
    )
    return node


def node_fail(*, node: NodeExecution, error: ErrorInfo, ended_at: datetime) -> NodeExecution:
    """Running -> failed with the error (one guarded UPDATE)."""
    _node_finish(
        node,
        status=NodeStatus.FAILED,
        ended_at=ended_at,
        column="error",
        value=error.to_json_dict(),
    )
    return node


def execution_finish(*, execution: Execution, result: RunResult) -> Execution:
    """Running -> completed | failed with the run's outputs, and the counters moved with it."""
    status = result.status
    if status not in EXECUTION_TRANSITIONS[ExecutionStatus.RUNNING]:
        raise TransitionError(f"A run cannot finish as {status!r}")
    values: dict[str, Any] = {
        "status": status,
        "ended_at": result.ended_at,
        "execution_time_ms": max(
            0, round((result.ended_at - execution.started_at).total_seconds() * 1000)
        ),
        "outputs": bounded(result.outputs),
        "nodes_executed": list(result.nodes_executed),
        "error": result.error.to_json_dict() if result.error else None,
    }
    db = _connection()
    params = [_db(db, Execution, name, value) for name, value in values.items()]
    with transaction.atomic(), db.cursor() as cursor:
        cursor.execute(_EXECUTION_FINISH_SQL, [*params, execution.pk])
        if not cursor.rowcount:
            raise _refuse(execution, status)
        _bump(ExecutionStatus.RUNNING, -1)
        _bump(status, 1)
    for name, value in values.items():
        setattr(execution, name, value)
    return execution


def spans_record(*, execution: Execution, spans: Sequence[Span]) -> list[Span]:
    """Save a run's spans in one batched INSERT and note the trace id on the execution."""
    for span in spans:
        span.execution = execution
    trace_id = next((s.trace_id for s in spans if not s.parent_span_id), "")
    db = _connection()
    with transaction.atomic(), db.cursor() as cursor:
        if spans:
            cursor.executemany(_SPAN_INSERT_SQL, [_row(db, _SPAN_FIELDS, span) for span in spans])
        if trace_id:
            cursor.execute(_TRACE_ID_SQL, [trace_id, execution.pk])
    execution.trace_id = trace_id or execution.trace_id
    return sorted(spans, key=lambda s: (s.start_time_us, s.span_id))


def execution_cancel(*, execution_id: str, reason: str = "Cancelled by request") -> Execution:
    """Running -> cancelled; its running nodes become skipped and the engine's next write fails."""
    now = timezone.now()
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(execution_id=execution_id).first()
        if execution is None:
            raise ExecutionNotFound(execution_id)
        if ExecutionStatus.CANCELLED not in EXECUTION_TRANSITIONS[execution.status]:
            raise TransitionError(
                f"Execution '{execution_id}' is {execution.status}; it cannot be cancelled"
            )
        execution.status = ExecutionStatus.CANCELLED
        execution.ended_at = now
        execution.execution_time_ms = round((now - execution.started_at).total_seconds() * 1000)
        execution.error = {"name": "CancelledError", "message": reason, "stack": ""}
        execution.save(update_fields=["status", "ended_at", "execution_time_ms", "error"])
        execution.nodes.filter(status=NodeStatus.RUNNING).update(
            status=NodeStatus.SKIPPED, ended_at=now
        )
        _bump(ExecutionStatus.RUNNING, -1)
        _bump(ExecutionStatus.CANCELLED, 1)
    return execution


def execution_claim(*, execution_id: str, owner: str) -> Execution | None:
    """Make a queued run (no owner yet) this worker's, or None when it is not waiting any more.

    The conditional UPDATE lets exactly one worker take a run, so a message the broker delivers
    twice never runs it twice, and a run cancelled while it was queued is left as it is.
    """
    with transaction.atomic():
        claimed = Execution.objects.filter(
            execution_id=execution_id, status=ExecutionStatus.RUNNING, worker_id=""
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
            .filter(status=ExecutionStatus.RUNNING, worker_id__startswith=prefix)
            .exclude(worker_id=me)
            .only("pk", "execution_id", "started_at", "worker_id")
        )
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
        if failed:
            NodeExecution.objects.filter(
                execution__execution_id__in=failed, status=NodeStatus.RUNNING
            ).update(
                status=NodeStatus.FAILED,
                ended_at=now,
                error={"name": "InterruptedError", "message": "Interrupted", "stack": ""},
            )
            _bump(ExecutionStatus.RUNNING, -len(failed))
            _bump(ExecutionStatus.FAILED, len(failed))
    return failed
