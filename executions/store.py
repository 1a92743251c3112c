"""The only code that writes executions, node runs, spans, logs and bulk actions' progress.

Each function is one transaction and guards its status transition with a conditional write whose
guard is read off the transition tables in models.py (`sources`, `unfinished`), so a finished
execution never returns to running, a late success never overwrites failed or cancelled, and a
finished node run never starts again. Every write a run makes while it runs is also fenced by its
lease: it happens only while the execution is still owned by the process whose instance it is, so
a process that lost its run to a takeover records nothing more for it. The per-node and per-run
writes are SQL generated from the models in `executions.sql` (which says why); the rare ones use
the ORM here. The functions take and return model instances: the runtime keeps the rows it wrote
and serialises them without reading them back.
"""

import os
import threading
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from secrets import token_urlsafe
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from workflows.definitions import WorkflowDefinition, WorkflowNode
from workflows.logs import LogLine
from workflows.observer import ErrorInfo, RunResult
from workflows.waits import Parked

from . import sql
from .conf import app_settings
from .models import (
    EXECUTION_TRANSITIONS,
    NODE_TRANSITIONS,
    BulkAction,
    BulkActionStatus,
    DefinitionSnapshot,
    Execution,
    ExecutionStatus,
    NodeExecution,
    NodeLog,
    NodeStatus,
    Signal,
    Span,
    SpanStatusCode,
    WebhookHook,
    execution_ids_in,
    sources,
    unfinished,
)
from .payloads import bounded, storable, storable_text
from .secrets import seal
from .serializers import iso_ms
from .tracing import INTERRUPTED_SPAN, ROOT_SPAN

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
    def __init__(self, execution_id: str, message: str | None = None) -> None:
        super().__init__(message or f"Execution '{execution_id}' already exists")
        self.execution_id = execution_id


class TransitionError(StoreError):
    """A write that would move a row backwards (e.g. complete a cancelled execution), or a write
    from a process that no longer holds the run's lease."""


def process_owner() -> str:
    """This process as the owner of a lease: server, pid and a boot token, so a process that
    forked (a Celery pool child) or restarted is another owner than the one before it."""
    return f"{app_settings.C4C_SERVER_ID}/{os.getpid()}/{_BOOT}"


def lease_until(owner: str, now: datetime | None = None) -> datetime:
    """When a lease taken now lapses: a run's owner renews it; a queued run (no owner) waits for
    a worker's claim at most C4C_CLAIM_SECONDS before the sweep sends it again."""
    seconds = app_settings.C4C_LEASE_SECONDS if owner else app_settings.C4C_CLAIM_SECONDS
    return (now or timezone.now()) + timedelta(seconds=seconds)


def _bump(moves: Counter[str]) -> None:
    """Move the per-status counters by `moves` (status -> delta) in the caller's transaction."""
    with _connection().cursor() as cursor:
        for status, delta in moves.items():
            if delta:
                sql.counter_bump(cursor, status, delta)


def _refuse(
    execution: Execution, wanted: str, node: NodeExecution | None = None
) -> TransitionError:
    """The refusal of a write the tables (or the lease) do not allow, saying what the stored rows
    are now."""
    stored = Execution.objects.filter(pk=execution.pk).values_list("status", "lease_owner").first()
    current, owner = stored or ("deleted", execution.lease_owner)
    where = ""
    if node is not None:
        rows = NodeExecution.objects.filter(
            execution_id=execution.pk, node_id=node.node_id, visit=node.visit
        )
        node_status = rows.values_list("status", flat=True).first()
        where = f" (node {node.node_id} is {node_status or 'not recorded'})"
    if owner != execution.lease_owner and current in unfinished(EXECUTION_TRANSITIONS):
        where += f" and run by {owner or 'nobody yet'}, not {execution.lease_owner or 'nobody'}"
    return TransitionError(
        f"Execution '{execution.execution_id}' is {current}{where}; it cannot become {wanted}"
    )


class _WrittenSnapshots:
    """The hashes of the snapshots this process wrote, so starting a run writes its definition's
    snapshot only the first time: the hot path pays one INSERT ... ON CONFLICT DO NOTHING per new
    definition per process, not a statement per run.

    Holds at most SIZE hashes (the oldest is forgotten first). A hash is remembered only once the
    transaction that wrote its snapshot committed (on_commit: a write inside an outer transaction
    that rolls back is not remembered), and a remembered snapshot deleted since (the pruner took
    it once its last run went) is written again when the run's insert finds it missing.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self._known: dict[str, None] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: str) -> bool:
        return key in self._known

    def remember(self, key: str) -> None:
        with self._lock:
            self._known[key] = None
            while len(self._known) > self.SIZE:
                del self._known[next(iter(self._known))]

    def forget(self, key: str) -> None:
        with self._lock:
            self._known.pop(key, None)


_snapshots = _WrittenSnapshots()


class _SnapshotsOf:
    """The snapshot of each definition recently started, so a run of a definition already seen
    does not encode and hash it again (about a tenth of a simple-math start).

    Keyed by the definition object (held, so its id is not reused while kept): the library's
    definitions are the same frozen objects run after run; one sent with a request, or redacted,
    is a new object and gets its own. At most SIZE are kept, the oldest forgotten first.
    """

    SIZE = 256

    def __init__(self) -> None:
        self._kept: dict[int, tuple[WorkflowDefinition, DefinitionSnapshot]] = {}
        self._lock = threading.Lock()

    def of(self, definition: WorkflowDefinition) -> DefinitionSnapshot:
        kept = self._kept.get(id(definition))
        if kept is not None and kept[0] is definition:
            return kept[1]
        snapshot = DefinitionSnapshot.of(definition.to_json_dict())
        with self._lock:
            self._kept[id(definition)] = (definition, snapshot)
            while len(self._kept) > self.SIZE:
                del self._kept[next(iter(self._kept))]
        return snapshot


_snapshots_of = _SnapshotsOf()


def _insert_run(execution: Execution) -> None:
    """The run's row, its counter and (the first time this process sees it) its definition's
    snapshot, in one transaction."""
    snapshot = execution.snapshot
    new = snapshot.hash not in _snapshots
    with transaction.atomic(), _connection().cursor() as cursor:
        if new:
            sql.snapshot_insert(cursor, snapshot)
        pk = sql.execution_insert(cursor, execution)
        if pk is None:
            # The snapshot this process remembered is gone (pruned, or rolled back): again.
            new = True
            _snapshots.forget(snapshot.hash)
            sql.snapshot_insert(cursor, snapshot)
            pk = sql.execution_insert(cursor, execution)
        assert pk is not None, "a snapshot written in this transaction is there"
        execution.pk = pk
        sql.counter_bump(cursor, execution.status, 1)
    if new:
        transaction.on_commit(lambda: _snapshots.remember(snapshot.hash))


def execution_start(
    *,
    execution_id: str,
    definition: WorkflowDefinition,
    input: Any,
    started_at: datetime,
    owner: str | None = None,
    idempotency_key: str | None = None,
    rerun_of: str | None = None,
    rerun_from_node: str = "",
    sealed_secrets: str | None = None,
    parent: tuple[str, str] | None = None,
) -> Execution:
    """Create the row as running under a lease (one INSERT and one counter UPDATE).

    `definition` and `input` are stored as given: the runtime passes them redacted, with their
    secrets in `sealed_secrets` (executions.secrets).

    `owner` defaults to this process; "" records a run queued for a worker, which claims it.
    `parent` is (execution id, node id) of the subworkflow node that starts it.
    A taken `execution_id` or `idempotency_key` raises DuplicateExecution naming the stored run.
    """
    lease_owner = process_owner() if owner is None else owner
    execution = Execution(
        execution_id=execution_id,
        workflow_id=definition.id,
        workflow_name=definition.display_name,
        workflow_version=definition.version,
        snapshot=_snapshots_of.of(definition),
        status=ExecutionStatus.RUNNING,
        started_at=started_at,
        input=bounded(input),
        lease_owner=lease_owner,
        lease_expires_at=lease_until(lease_owner),
        rerun_of_id=rerun_of,
        rerun_from_node=rerun_from_node,
        idempotency_key=idempotency_key,
        sealed_secrets=sealed_secrets,
        parent_id=parent[0] if parent else None,
        parent_node_id=parent[1] if parent else "",
    )
    try:
        _insert_run(execution)
    except IntegrityError as exc:
        if not DefinitionSnapshot.objects.filter(pk=execution.snapshot_id).exists():
            # A pruner deleted the snapshot this process remembered writing: write it again.
            _snapshots.forget(execution.snapshot_id)
            _insert_run(execution)
            return execution
        if Execution.objects.filter(execution_id=execution_id).exists():
            raise DuplicateExecution(execution_id) from exc
        started = Execution.objects.by_idempotency_key(idempotency_key) if idempotency_key else None
        if started is not None:
            raise DuplicateExecution(
                started.execution_id,
                f"Idempotency-Key '{idempotency_key}' already started execution "
                f"'{started.execution_id}'",
            ) from exc
        raise
    return execution


def node_start(
    *,
    execution: Execution,
    node: WorkflowNode,
    node_index: int,
    input: Any,
    started_at: datetime,
    visit: int = 1,
) -> NodeExecution:
    """Record the node run (node, visit) as running its first attempt.

    Refused while the execution is not unfinished or not this instance's owner's, or when a row
    of that node run exists and may not move to running.
    """
    row = NodeExecution(
        execution=execution,
        node_id=node.id,
        node_type=node.type,
        procedure_name=node.procedure_name or "",
        status=NodeStatus.RUNNING,
        sequence=node_index,
        visit=visit,
        started_at=started_at,
        input=bounded(input),
    )
    with _connection().cursor() as cursor:
        pk = sql.node_start(cursor, row, execution.lease_owner)
    if pk is None:
        raise _refuse(execution, f"{row.status} at node {node.id}", row)
    row.pk = pk
    return row


def _node_move(row: NodeExecution, status: str, values: dict[str, Any]) -> None:
    """The node run -> `status` with `values`: from a status the table allows, while its
    execution is unfinished and still owned by the owner its instance holds."""
    with _connection().cursor() as cursor:
        written = sql.node_move(
            cursor, row, row.execution.lease_owner, status=status, values=values
        )
    if not written:
        raise _refuse(row.execution, f"{status} at node {row.node_id}", row)
    row.status = status
    for name, value in values.items():
        setattr(row, name, value)


def _attempt_list(row: NodeExecution) -> list[dict[str, Any]]:
    """The node run's attempts so far, as stored: the first is implied by the row until there
    is a second."""
    if row.attempts:
        return [dict(attempt) for attempt in row.attempts]
    first: dict[str, Any] = {"number": row.attempt, "status": NodeStatus.RUNNING}
    if row.started_at is not None:
        first["startTime"] = iso_ms(row.started_at)
    return [first]


def _close(
    attempts: list[dict[str, Any]], status: str, ended_at: datetime, error: Any = None
) -> None:
    """End the last attempt when it is still running (a resumed node's interrupted one, too)."""
    last = attempts[-1]
    if last["status"] != NodeStatus.RUNNING:
        return
    last["status"], last["endTime"] = status, iso_ms(ended_at)
    if error is not None:
        last["error"] = error


def _node_finish(
    row: NodeExecution,
    *,
    status: str,
    ended_at: datetime,
    column: str,
    value: Any,
    sealed_output: str | None = None,
) -> None:
    duration = (ended_at - row.started_at).total_seconds() * 1000 if row.started_at else None
    values: dict[str, Any] = {"ended_at": ended_at, "duration_ms": duration, column: value}
    if sealed_output is not None:
        values["sealed_output"] = sealed_output
    if row.attempts:
        attempts = _attempt_list(row)
        _close(attempts, status, ended_at, value if column == "error" else None)
        values["attempts"] = attempts
    _node_move(row, status, values)


def node_complete(
    *, node: NodeExecution, output: Any, ended_at: datetime, sealed_output: str | None = None
) -> NodeExecution:
    """The node run -> completed with its output (one guarded UPDATE): the runtime passes it
    redacted, with its secrets in `sealed_output` (executions.secrets)."""
    _node_finish(
        node,
        status=NodeStatus.COMPLETED,
        ended_at=ended_at,
        column="output",
        value=bounded(output),
        sealed_output=sealed_output,
    )
    return node


def node_fail(*, node: NodeExecution, error: ErrorInfo, ended_at: datetime) -> NodeExecution:
    """The node run -> failed with the error (one guarded UPDATE)."""
    _node_finish(
        node,
        status=NodeStatus.FAILED,
        ended_at=ended_at,
        column="error",
        value=storable(error.to_json_dict()),
    )
    return node


def node_attempt_fail(
    *, node: NodeExecution, error: ErrorInfo, ended_at: datetime, retry_at: datetime
) -> NodeExecution:
    """The node run's current attempt failed and the next is due at `retry_at`: the run stays
    running, and a resume after a crash waits what is left of the backoff (one UPDATE)."""
    attempts = _attempt_list(node)
    _close(attempts, NodeStatus.FAILED, ended_at, storable(error.to_json_dict()))
    attempts[-1]["retryAt"] = iso_ms(retry_at)
    _node_move(node, NodeStatus.RUNNING, {"attempts": attempts})
    return node


def node_attempt_start(
    *,
    node: NodeExecution,
    attempt: int,
    started_at: datetime,
    interrupted: ErrorInfo | None = None,
) -> NodeExecution:
    """Attempt `attempt` of a running node run begins (one UPDATE).

    The previous attempt has failed (node_attempt_fail), or it was interrupted: its process died
    mid-attempt and this one resumes the run; it is then recorded as failed with `interrupted`.
    """
    attempts = _attempt_list(node)
    reason = interrupted or ErrorInfo(name="InterruptedError", message="Interrupted")
    _close(attempts, NodeStatus.FAILED, started_at, storable(reason.to_json_dict()))
    attempts.append(
        {"number": attempt, "status": NodeStatus.RUNNING, "startTime": iso_ms(started_at)}
    )
    _node_move(node, NodeStatus.RUNNING, {"attempt": attempt, "attempts": attempts})
    return node


def nodes_reuse(
    *, execution: Execution, originals: Sequence[NodeExecution], at: datetime
) -> list[NodeExecution]:
    """Copy another execution's done node runs into `execution` as reused (one batched INSERT):
    what a re-run from a node does not run again, at their place in the walk, done at `at`."""
    rows = [
        NodeExecution(
            execution=execution,
            node_id=original.node_id,
            node_type=original.node_type,
            procedure_name=original.procedure_name,
            status=original.status,
            sequence=original.sequence,
            visit=original.visit,
            attempt=original.attempt,
            started_at=at,
            ended_at=at,
            duration_ms=0.0,
            input=original.input,
            output=original.output,
            sealed_output=original.sealed_output,
            error=original.error,
            reused=True,
        )
        for original in originals
    ]
    return NodeExecution.objects.bulk_create(rows)


def execution_finish(*, execution: Execution, result: RunResult) -> Execution:
    """The run -> its result's status with its outputs, and the counters moved with it.

    A compare-and-set from the status this instance holds, which the table must allow to move
    there, and from the lease owner it holds: the counters then move from the status the row
    really left, and a process that lost the run to a takeover cannot end it.
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


def spans_add(
    *, execution: Execution, spans: Sequence[Span], root: tuple[str, str] | None = None
) -> None:
    """Save spans a run ended while it goes on (one batched INSERT, one commit): a run that dies
    keeps the spans it had so far. spans_record() saves the rest when the run ends.

    `root` (trace id, span id) is the root span they hang from, noted on the execution with them
    when it is not yet: that root is saved last, so span_root_lost() can stand in for it if the
    process dies first."""
    for span in spans:
        span.execution = execution
    new_root = root if root != (execution.trace_id, execution.root_span_id) else None
    with transaction.atomic(), _connection().cursor() as cursor:
        sql.spans_insert(cursor, spans)
        if new_root is not None:
            sql.execution_root_span(cursor, execution, *new_root)
    if new_root is not None:
        execution.trace_id, execution.root_span_id = new_root


def span_root_lost(*, execution: Execution, error: ErrorInfo) -> list[Span]:
    """A run taken over after its process died: the spans that process saved hang from a root
    span it never saved (a root ends last). Save one in its place, failed with `error` and marked
    `workflow.interrupted`, from its trace's first span start to its last span end; and one under
    it for each other span the dead process never saved but its saved spans hang from (a parallel
    or retried node in flight), so the trace is a tree again. Returns what it saved, none when
    nothing is missing."""
    trace_id, root_id = execution.trace_id, execution.root_span_id
    spans = Span.objects.filter(execution=execution)
    # A woken run's last part ended and saved its root: one lookup on the unique index.
    if not root_id or spans.filter(span_id=root_id).exists():
        return []
    saved = list(
        spans.filter(trace_id=trace_id).only(
            "span_id", "parent_span_id", "start_time_us", "end_time_us"
        )
    )
    if not saved:
        return []
    ids = {span.span_id for span in saved}
    missing = sorted(
        {span.parent_span_id for span in saved if span.parent_span_id not in ids} - {root_id}
    )

    def standing_in(span_id: str, parent: str, under: list[Span], name: str) -> Span:
        return Span(
            execution=execution,
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            start_time_us=min(span.start_time_us for span in under),
            end_time_us=max(span.end_time_us for span in under),
            status_code=SpanStatusCode.ERROR,
            status_message=storable_text(error.message),
            attributes={
                "workflow.id": execution.workflow_id,
                "workflow.execution_id": execution.execution_id,
                "workflow.interrupted": True,
            },
        )

    rows = [standing_in(root_id, "", saved, ROOT_SPAN)]
    rows += [
        standing_in(
            span_id,
            root_id,
            [span for span in saved if span.parent_span_id == span_id],
            INTERRUPTED_SPAN,
        )
        for span_id in missing
    ]
    with transaction.atomic(), _connection().cursor() as cursor:
        sql.spans_insert(cursor, rows)
    return rows


def node_logs_add(*, node: NodeExecution, attempt: int, lines: Sequence[LogLine]) -> list[NodeLog]:
    """Save lines one attempt of a node run logged (workflows.logs) in one INSERT.

    Not fenced by the lease, unlike the run's other writes: a line is what the attempt said,
    true whichever process owns the run now, and it changes no status. Text a database cannot
    hold (NUL, lone surrogates) is stored with U+FFFD in its place.
    """
    rows = [
        NodeLog(
            node=node,
            attempt=attempt,
            number=line.number,
            level=line.level[:16],
            logger=storable_text(line.logger[:200]),
            message=storable_text(line.message),
            logged_at=line.at,
            dropped=line.dropped,
        )
        for line in lines
    ]
    return NodeLog.objects.bulk_create(rows)


def spans_record(*, execution: Execution, spans: Sequence[Span]) -> list[Span]:
    """Save the spans a run had not saved yet when it ended (spans_add saved the others) in one
    batched INSERT, and note the trace id (its root span's, which ends last) on the execution."""
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
    """Make a queued run (no owner yet) `owner`'s under a fresh lease, or None when it is not
    waiting any more.

    The conditional UPDATE lets exactly one worker take a run, so a message the broker delivers
    twice (or the sweep sent again) never runs it twice, and a run cancelled while it was queued
    is left as it is.
    """
    claimed = Execution.objects.filter(
        execution_id=execution_id,
        status__in=unfinished(EXECUTION_TRANSITIONS),
        lease_owner="",
    ).update(lease_owner=owner, lease_expires_at=lease_until(owner))
    if not claimed:
        return None
    return Execution.objects.get(execution_id=execution_id)


def node_park(*, node: NodeExecution, parked: Parked) -> NodeExecution:
    """The node run waits (sleeping or waiting) until `parked.wake_at` or its event."""
    _node_move(node, parked.status, {"wake_at": parked.wake_at, "waiting_for": parked.waiting_for})
    return node


def _ready(execution: Execution) -> bool:
    """Whether what a parked run waits for has come already: a signal delivered, or a child
    ended, before the run was recorded as waiting (their wake-up found it still running)."""
    waits_for = execution.nodes.filter(status=NodeStatus.WAITING).values_list(
        "waiting_for", flat=True
    )
    signals, children = [], []
    for what in waits_for:
        kind, _, key = what.partition(":")
        if kind == "signal":
            signals.append(key)
        elif kind == "execution":
            children.append(key)
    if signals and Signal.objects.pending(execution, signals).exists():
        return True
    return (
        bool(children)
        and Execution.objects.filter(execution_id__in=children, status__in=_finished()).exists()
    )


def execution_park(*, execution: Execution, result: RunResult) -> Execution:
    """The run -> waiting: no process holds it, and it is due again at `result.wake_at` (never,
    until its event, when None; now when its event came already). A compare-and-set from
    running under this instance's lease, with the counters, in one transaction."""
    if ExecutionStatus.WAITING not in EXECUTION_TRANSITIONS.get(execution.status, frozenset()):
        raise _refuse(execution, ExecutionStatus.WAITING)
    values: dict[str, Any] = {
        "status": ExecutionStatus.WAITING,
        "outputs": bounded(result.outputs),
        "nodes_executed": list(result.nodes_executed),
        "lease_owner": "",
        "lease_expires_at": result.wake_at,
    }
    with transaction.atomic(), _connection().cursor() as cursor:
        if not sql.execution_move(cursor, execution, values, expected=execution.status):
            raise _refuse(execution, ExecutionStatus.WAITING)
        sql.counter_bump(cursor, execution.status, -1)
        sql.counter_bump(cursor, ExecutionStatus.WAITING, 1)
        if _ready(execution):
            values["lease_expires_at"] = timezone.now()
            Execution.objects.filter(pk=execution.pk).update(
                lease_expires_at=values["lease_expires_at"]
            )
    for name, value in values.items():
        setattr(execution, name, value)
    return execution


def execution_wake(*, execution_id: str) -> bool:
    """Make a waiting run due now (its signal or child came); False when it is not waiting (it
    runs, and finds what came when it next looks)."""
    return bool(
        Execution.objects.filter(execution_id=execution_id, status=ExecutionStatus.WAITING).update(
            lease_expires_at=timezone.now()
        )
    )


def signal_send(
    *, execution_id: str, name: str, payload: Any, sent_by: str = ""
) -> tuple[Signal, bool]:
    """Deliver signal `name` to a running or waiting execution: kept until a wait node takes it;
    returns it and whether the run was waiting (it is due now). Raises ExecutionNotFound, or
    TransitionError for an execution that has ended."""
    with transaction.atomic():
        execution = Execution.objects.filter(execution_id=execution_id).first()
        if execution is None:
            raise ExecutionNotFound(execution_id)
        if execution.status not in unfinished(EXECUTION_TRANSITIONS):
            raise TransitionError(
                f"Execution '{execution_id}' is {execution.status}; it takes no more signals"
            )
        signal = Signal.objects.create(
            execution=execution,
            name=name,
            payload=bounded(payload),
            sent_at=timezone.now(),
            sent_by=sent_by,
        )
        # Only a run that waits for this signal is woken; any other takes it when it asks.
        waiting_for = NodeExecution.objects.filter(
            execution=execution, status=NodeStatus.WAITING, waiting_for=f"signal:{name}"
        )
        woken = waiting_for.exists() and execution_wake(execution_id=execution_id)
    return signal, woken


def signal_take(*, execution: Execution, name: str, taken_by: str) -> Signal | None:
    """The signal `name` the node run `taken_by` takes: the one it took before (a resumed run),
    else the oldest pending one, marked taken with a compare-and-set; None when none is there."""
    signals = Signal.objects.filter(execution=execution, name=name)
    taken = signals.filter(taken_by=taken_by).first()
    while taken is None:
        pending = signals.filter(taken_by="").order_by("sent_at", "id").first()
        if pending is None:
            return None
        now = timezone.now()
        if Signal.objects.filter(pk=pending.pk, taken_by="").update(
            taken_by=taken_by, taken_at=now
        ):
            pending.taken_by, pending.taken_at = taken_by, now
            taken = pending
    return taken


def execution_take_over(*, execution: Execution, owner: str) -> Execution | None:
    """Take a run whose lease lapsed from the owner `execution` names: `owner` ("" to queue it
    for a worker again) gets a fresh lease, or None when another process was first.

    A compare-and-set on the owner and the expiry that were read, so of any number of processes
    sweeping at once exactly one wins, and a lease renewed meanwhile (its owner was only slow)
    is left to its owner.
    """
    if execution.status not in unfinished(EXECUTION_TRANSITIONS):
        return None
    lease = lease_until(owner)
    # A waiting run that is due runs again: the same compare-and-set, from waiting.
    status = ExecutionStatus.RUNNING
    with transaction.atomic():
        taken = Execution.objects.filter(
            pk=execution.pk,
            status=execution.status,
            lease_owner=execution.lease_owner,
            lease_expires_at=execution.lease_expires_at,
        ).update(lease_owner=owner, lease_expires_at=lease, status=status)
        if taken and execution.status != status:
            _bump(Counter({execution.status: -1, status: 1}))
    if not taken:
        return None
    execution.lease_owner, execution.lease_expires_at = owner, lease
    execution.status = status
    return execution


def leases_renew(*, owner: str, execution_ids: Collection[str]) -> int:
    """Extend the leases `owner` holds on `execution_ids` (one UPDATE); returns how many it
    still held (a run cancelled, finished or taken over is not renewed)."""
    if not execution_ids:
        return 0
    return Execution.objects.filter(
        execution_ids_in(execution_ids),
        lease_owner=owner,
        status__in=unfinished(EXECUTION_TRANSITIONS),
    ).update(lease_expires_at=lease_until(owner))


def execution_discard(*, execution: Execution) -> bool:
    """Delete a run that was recorded but never queued (the broker refused it or did not answer)
    while no worker has claimed it: nothing was started, so the same request may be sent again
    under the same executionId or Idempotency-Key. False when a worker claimed it after all (the
    message did arrive) or it is no longer running."""
    with transaction.atomic():
        deleted, _ = Execution.objects.filter(
            pk=execution.pk,
            status=ExecutionStatus.RUNNING,
            lease_owner="",
            nodes__isnull=True,
        ).delete()
        if not deleted:
            return False
        _bump(Counter({ExecutionStatus.RUNNING: -1}))
    return True


def _finished() -> list[str]:
    """The statuses a run cannot leave: only such runs are ever deleted."""
    return [status for status, targets in EXECUTION_TRANSITIONS.items() if not targets]


def _delete_dependents(deleted: Sequence[tuple[int, str, str]]) -> None:
    """What hangs off the deleted executions, as each relation's on_delete says: their node runs
    and spans go, a re-run of one forgets what it re-ran. Read off the model's relations, so a
    model added later that points to executions is handled too (a PROTECT one refuses)."""
    for related in Execution._meta.related_objects:
        field = related.field
        by_key = field.target_field.attname == Execution._meta.pk.attname
        keys = [pk if by_key else execution_id for pk, execution_id, _ in deleted]
        rows = related.related_model._base_manager.filter(**{f"{field.attname}__in": keys})
        if related.on_delete is models.CASCADE:
            rows.delete()
        elif related.on_delete is models.SET_NULL:
            rows.update(**{field.attname: None})
        elif related.on_delete is not models.DO_NOTHING:
            raise StoreError(f"{related.related_model.__name__} keeps executions from deletion")


def executions_delete(*, pks: Collection[int]) -> Counter[str]:
    """Delete the finished executions among `pks` with everything hanging off them, and move the
    counters down by what went, in one transaction; returns how many went per status.

    A running (or queued) execution is never deleted: it is left out. The DELETE returns the
    rows it deleted and the counters move by those only, so two pruners deleting the same rows
    at once (or a pruner and an admin) count each row once.
    """
    with transaction.atomic(), _connection().cursor() as cursor:
        deleted = sql.executions_delete(cursor, list(pks), _finished())
        if not deleted:
            return Counter()
        _delete_dependents(deleted)
        gone = Counter(status for _, _, status in deleted)
        _bump(Counter({status: -count for status, count in gone.items()}))
    return gone


def snapshots_delete_unused(*, keys: Collection[str]) -> int:
    """Delete the definition snapshots among `keys` that no execution points to; how many went.

    0 when a run started with one of them meanwhile (PostgreSQL finds the new reference when
    the delete commits): they stay for the next prune. This process writes any of them again
    when it next runs that definition.
    """
    for key in keys:
        _snapshots.forget(key)
    try:
        with transaction.atomic(), _connection().cursor() as cursor:
            return sql.snapshots_delete_unused(cursor, list(keys))
    except IntegrityError:
        return 0


def bulk_action_start(
    *, bulk_id: str, action: str, selection: str, total: int, status: str
) -> BulkAction:
    """A bulk cancel or re-run as counted and confirmed (executions.bulk): its progress row."""
    ended_at = None if status == BulkActionStatus.RUNNING else timezone.now()
    return BulkAction.objects.create(
        bulk_id=bulk_id,
        action=action,
        selection=selection,
        total=total,
        status=status,
        ended_at=ended_at,
    )


def bulk_action_progress(
    *,
    pk: int,
    counts: dict[str, int],
    errors: list[str],
    started_runs: list[str],
    status: str | None = None,
) -> None:
    """How far a bulk action got; with `status`, how it ended."""
    ended: dict[str, Any] = {} if status is None else {"status": status, "ended_at": timezone.now()}
    BulkAction.objects.filter(pk=pk).update(
        **counts, errors=errors, started_runs=started_runs, **ended
    )


# Webhooks ---------------------------------------------------------------------------------------


def _new_hook_secret(hook: WebhookHook) -> str:
    secret = token_urlsafe(32)
    hook.sealed_secret = seal(secret)
    return secret


def hook_save(hook: WebhookHook) -> str | None:
    """A hook as edited (admin); a new one gets its secret, returned this once (else None)."""
    secret = _new_hook_secret(hook) if hook.pk is None else None
    hook.full_clean()
    hook.save()
    return secret


def hook_create(
    *, hook_id: str, workflow_id: str, enabled: bool = True, idempotency_header: str | None = None
) -> tuple[WebhookHook, str]:
    """A new hook and its secret (shown once: only its sealed form is kept)."""
    hook = WebhookHook(hook_id=hook_id, workflow_id=workflow_id, enabled=enabled)
    if idempotency_header is not None:
        hook.idempotency_header = idempotency_header
    secret = _new_hook_secret(hook)
    hook.full_clean()
    hook.save()
    return hook, secret


def hook_rotate_secret(hook: WebhookHook) -> str:
    """A new secret for the hook, returned this once; the old one stops verifying at once."""
    secret = _new_hook_secret(hook)
    WebhookHook.objects.filter(pk=hook.pk).update(sealed_secret=hook.sealed_secret)
    return secret


def hook_fired(hook: WebhookHook) -> None:
    """The hook just started a run."""
    hook.last_fired_at = timezone.now()
    WebhookHook.objects.filter(pk=hook.pk).update(last_fired_at=hook.last_fired_at)


def hooks_delete(*, pks: list[int]) -> None:
    """Hooks removed: their URLs answer 404 from now on (the runs they started stay)."""
    WebhookHook.objects.filter(pk__in=pks).delete()
