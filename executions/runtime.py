"""Runs a definition with the store as the engine's observer, in the seed's order, durably.

start(): record the row (running, under this process's lease) -> workflow.started ->
executions.update. run(): per node run: record running -> node.started -> the engine runs it
(each retry: the failed attempt and its due time recorded -> executions.update; the next attempt
recorded -> node.started) -> record completed (or failed) -> node.completed -> executions.update;
then record the result -> the spans not saved yet -> span.ended -> workflow.completed |
workflow.failed -> workflow.result -> executions.update. Spans are saved and announced
(span.ended) while the run goes on, in batches at node starts (SpanFeed); the lines procedures
log are saved and announced (node.log) in batches while they run and before each attempt's
outcome (ExecutionRecorder.node_logs, workflows.logs). Each event is emitted
after its write commits (live/events.py), so no client sees what is not stored.

Durability (executions.leases holds the runs of this process and keeps their leases):
- resume(): a run whose process died is taken over (executions.dispatch.sweep) and continues
  from its recorded node runs as checkpoints: done nodes are not run again and their rows are
  untouched; the interrupted node runs again as its next attempt. It emits only what it newly
  does.
- cancel(): the row is cancelled first (a late success never overwrites it), then the run's
  RunControl here, or the owning process's heartbeat within C4C_CANCEL_CHECK_SECONDS, stops the
  work: a queued run never starts.
- rerun(): a new execution of a stored one's definition snapshot and input, from the start or
  from a node (the original's node runs before it are copied as reused, not run).
- waits (workflows.waits, executions.waits): a sleep, wait or subworkflow node that must wait
  parks its node run (-> node.waiting) and the run ends "waiting" with no owner and its due time
  as its lease's expiry (-> workflow.waiting, executions.update); no thread holds it. The sweep
  takes it up when it is due, like a lapsed lease, and it resumes from its checkpoints. signal()
  and a child's end make it due at once. cancel() cancels its children too.

Secrets (workflows.secrets, executions.secrets): each run has one Redactor, shared with the
engine. Every row is written redacted - the input and an inline definition at start(), node
inputs, outputs, the result - and the real values redaction replaced are sealed beside them
(Execution.sealed_secrets, NodeExecution.sealed_output), so events, pages and the API only ever
see REDACTED. A resumed run unseals its input, definition and checkpoints, and a re-run carries
the original's seal: procedures get the real secrets either way.
"""

import contextlib
import dataclasses
import functools
import logging
import secrets
import string
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from workflows.checkpoints import Checkpoint
from workflows.definitions import WorkflowDefinition, WorkflowNode
from workflows.engine import run_workflow
from workflows.library import workflow_library
from workflows.logs import LogLine, pump
from workflows.observer import ErrorInfo, RunResult
from workflows.secrets import Redactor
from workflows.waits import Parked

from . import leases, metrics, store, tracing
from .commits import committer
from .leases import HeldRun
from .live import events
from .models import (
    Execution,
    ExecutionStatus,
    NodeExecution,
    NodeStatus,
    Span,
)
from .payloads import TRUNCATED_KEY
from .secrets import node_output, protect_output, protect_run, unsealed_run
from .serializers import lighter_result, max_response_bytes, run_result
from .waits import RunWaits

logger = logging.getLogger(__name__)

# The log pump (workflows.logs) saves lines on its own thread: its connection closes with it.
pump.on_thread_end.append(connections.close_all)

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_execution_id() -> str:
    """c4c's form: wf_exec_<ms>_<9 random base-36 characters>."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))
    return f"wf_exec_{int(time.time() * 1000)}_{suffix}"


def definition_to_run(snapshot: dict[str, Any]) -> WorkflowDefinition:
    """The library's definition when the stored snapshot is exactly it (its Python predicates
    then run as written), else the snapshot itself (which cannot carry predicates)."""
    known = workflow_library().get(str(snapshot.get("id", "")))
    if known is not None and known.to_json_dict() == snapshot:
        return known
    return WorkflowDefinition.model_validate(snapshot)


# A run's ended spans are saved and announced (span.ended) once this long has passed since the
# last batch (the first: since the run started), at the next node start or heartbeat tick,
# whichever comes first: a slow run shows each node's spans as it ends, a long node does not hide
# the spans that ended just before it, a batch costs one INSERT and one event, not one per span
# (BENCHMARKS.md, "Live timeline"), and a run shorter than this saves its spans once, at its end.
SPAN_BATCH_SECONDS = 0.2


class SpanFeed:
    """Saves and announces a run's spans while it goes on, in batches (see SPAN_BATCH_SECONDS).

    Spans come from the run's tracing.Collection, each taken once; `rest()` takes what is left
    when the run ends. Branch threads and the heartbeat may flush at once: one does, the others go
    on. A batch that cannot be saved is logged and kept for the run's end, so a span write never
    fails a run.
    """

    def __init__(self, execution: Execution, collection: tracing.Collection) -> None:
        self.execution = execution
        self.collection = collection
        self.saved: list[Span] = []
        self._unsaved: list[Span] = []
        self._due = time.monotonic() + SPAN_BATCH_SECONDS
        self._lock = threading.Lock()
        # The root span of this part of the run, noted on the execution with the first batch.
        self.root: tuple[str, str] | None = None

    def flush(self) -> None:
        now = time.monotonic()
        if now < self._due or not self._lock.acquire(blocking=False):
            return
        try:
            ended = self.collection.take()
            if not ended:
                return
            rows = tracing.span_rows(ended)
            try:
                committer.write(
                    store.spans_add, execution=self.execution, spans=rows, root=self.root
                )
            except Exception:
                logger.exception("Spans of %s not saved yet", self.execution.execution_id)
                self._unsaved.extend(rows)
                return
            self._due = now + SPAN_BATCH_SECONDS
            self.saved.extend(rows)
            events.emit_span_ended(self.execution, rows)
        finally:
            self._lock.release()

    def rest(self) -> list[Span]:
        """The spans not saved yet (the run has ended: no flush runs any more)."""
        with self._lock:
            rest, self._unsaved = self._unsaved + tracing.span_rows(self.collection.take()), []
        return rest


class ExecutionRecorder:
    """The engine's RunObserver. Keeps the rows it wrote so events need no read-back.

    Node runs are keyed by (node id, visit); a resumed run starts with the rows it resumes.
    Parallel branches call it from worker threads: the row map is guarded by a lock, and each
    thread writes through its own database connection. Inputs and outputs are written through
    the run's redactor (the engine's): redacted, an output's secrets sealed beside it.
    """

    def __init__(
        self,
        execution: Execution,
        resumed: Iterable[NodeExecution] = (),
        interrupted: ErrorInfo | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.execution = execution
        self.redactor = redactor if redactor is not None else Redactor()
        self._rows: dict[tuple[str, int], NodeExecution] = {}
        for row in resumed:
            row.execution = execution
            self._rows[(row.node_id, row.visit)] = row
        self._interrupted = interrupted
        self._lock = threading.Lock()
        self.span_feed: SpanFeed | None = None

    def _flush_spans(self) -> None:
        """A node starts: the spans that ended before it go out first (when a batch is due)."""
        if self.span_feed is not None:
            self.span_feed.flush()

    def nodes(self) -> list[NodeExecution]:
        with self._lock:
            return sorted(self._rows.values(), key=lambda n: (n.sequence, n.pk or 0))

    def _row(self, node_id: str, visit: int) -> NodeExecution:
        with self._lock:
            return self._rows[(node_id, visit)]

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
        if self.span_feed is not None:
            self.span_feed.root = tracing.current_span_ids()  # the engine's root span

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
        self._flush_spans()
        row = committer.write(
            store.node_start,
            execution=self.execution,
            node=node,
            node_index=node_index,
            visit=visit,
            input=self.redactor.redact(input),
            started_at=started_at,
        )
        with self._lock:
            self._rows[(node.id, visit)] = row
        events.emit_node_started(self.execution, row, node_index=node_index)

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
        row = committer.write(
            store.node_attempt_fail,
            node=self._row(node.id, visit),
            error=error,
            ended_at=ended_at,
            retry_at=retry_at,
        )
        metrics.node_retried(row)
        events.emit_executions_update(self.execution, [row])

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
        self._flush_spans()
        row = committer.write(
            store.node_attempt_start,
            node=self._row(node.id, visit),
            attempt=attempt,
            started_at=started_at,
            interrupted=self._interrupted,
        )
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
        stored, sealed = protect_output(self.redactor, output)
        row = committer.write(
            store.node_complete,
            node=self._row(node.id, visit),
            output=stored,
            ended_at=ended_at,
            sealed_output=sealed,
        )
        metrics.node_finished(row)
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
        row = committer.write(
            store.node_fail, node=self._row(node.id, visit), error=error, ended_at=ended_at
        )
        metrics.node_finished(row)
        events.emit_node_completed(
            self.execution, row, node_index=node_index, next_node_id=handled_by
        )
        events.emit_executions_update(self.execution, [row])

    def node_logs(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        attempt: int,
        lines: list[LogLine],
    ) -> None:
        """Lines an attempt logged (workflows.logs): saved in one INSERT -> node.log. Called
        from the log pump's thread while the attempt runs, and from the run's with the rest.
        A batch that cannot be saved is logged and dropped: logs never fail a run."""
        row = self._row(node.id, visit)
        try:
            saved = store.node_logs_add(node=row, attempt=attempt, lines=lines)
        except Exception:
            logger.exception(
                "Log lines of %s node %s not saved", self.execution.execution_id, node.id
            )
            return
        events.emit_node_log(self.execution, row, node_index=node_index, lines=saved)

    def node_reused(
        self, *, execution_id: str, node: WorkflowNode, node_index: int, checkpoint: Checkpoint
    ) -> None:
        """Recorded when the re-run was (rerun() copies the rows); a live page learns it here."""
        row = self._row(node.id, checkpoint.visit)
        events.emit_node_completed(self.execution, row, node_index=node_index, next_node_id=None)

    def node_parked(
        self,
        *,
        execution_id: str,
        node: WorkflowNode,
        node_index: int,
        visit: int,
        parked: Parked,
    ) -> None:
        row = store.node_park(node=self._row(node.id, visit), parked=parked)
        events.emit_node_waiting(self.execution, row, node_index=node_index)
        events.emit_executions_update(self.execution, [row])

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
    idempotency_key: str | None = None,
    parent: tuple[str, str] | None = None,
    redactor: Redactor | None = None,
) -> Execution:
    """Record a new execution as running and announce it.

    `owner` defaults to this process (its lease); pass "" for a run queued for a Celery worker,
    which claims it. `parent`: (execution id, node id) of the subworkflow node starting it.
    Raises store.DuplicateExecution for a taken id or Idempotency-Key.
    The definition and input are stored redacted, their secrets sealed (executions.secrets), by
    `redactor` (Redactor.for_run of them; the caller's, when it runs the execution with it too).
    """
    if redactor is None:
        redactor = Redactor.for_run(definition, input)
    stored_definition, stored_input, sealed = protect_run(redactor, definition, input)
    execution = store.execution_start(
        execution_id=execution_id or new_execution_id(),
        definition=stored_definition,
        input=stored_input,
        sealed_secrets=sealed,
        started_at=timezone.now(),
        owner=owner,
        idempotency_key=idempotency_key,
        parent=parent,
    )
    _announce_start(execution)
    return execution


def start_child(
    parent: Execution, definition: WorkflowDefinition, input: dict[str, Any], key: str, node: str
) -> Execution | None:
    """Start a subworkflow node's child execution in the background (the pool or Celery) under
    the idempotency key `key`; None when there is no room for it now (the node asks again)."""
    from . import dispatch  # dispatch imports this module

    def record(owner: str | None) -> Execution:
        return start(
            definition=definition,
            input=input,
            owner=owner,
            idempotency_key=key,
            parent=(parent.execution_id, node),
        )

    try:
        return dispatch.begin(record)
    except dispatch.QueueFull:
        return None
    except store.DuplicateExecution:
        return Execution.objects.by_idempotency_key(key)


def _announce_start(execution: Execution, nodes: list[NodeExecution] | None = None) -> None:
    events.emit_workflow_started(execution)
    events.emit_executions_update(execution, nodes or [])


def failure_result(
    execution: Execution, exc: BaseException, *, message: str | None = None
) -> RunResult:
    """A run that could not finish (an observer refused a write, a bug) still ends."""
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


def result_output(execution: Execution, spans: Sequence[Span]) -> RunOutput:
    """The run's c4c result in at most C4C_MAX_RESPONSE_BYTES (serializers.lighter_result)."""
    body = run_result(execution, spans)
    text = events.encode(body)
    limit = max_response_bytes()
    if len(text) <= limit:
        return RunOutput(body, text)
    for shape in lighter_result(body, len(text), limit):
        lighter = events.encode(shape)
        if len(lighter) <= limit:
            break
    return RunOutput(shape, lighter)


def _error_info(stored: Any) -> ErrorInfo:
    error = stored if isinstance(stored, dict) else {}
    return ErrorInfo(
        name=str(error.get("name") or "Error"),
        message=str(error.get("message") or ""),
        stack=str(error.get("stack") or ""),
    )


class CannotResume(ValueError):
    """What a run recorded cannot be continued from: a value it needs was stored cut."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"Cannot continue the run: {problem}")


def _truncated(value: Any) -> bool:
    """Whether a stored value is the marker of one too large to keep (executions.payloads)."""
    return isinstance(value, dict) and value.get(TRUNCATED_KEY) is True


def checkpoints_from(rows: Iterable[NodeExecution], *, announce_reused: bool) -> list[Checkpoint]:
    """What a run recorded, as the engine's checkpoints (workflows.checkpoints).

    completed -> its output; failed -> its error; running -> the attempt in flight, or, when its
    last attempt failed with a retry due, waiting for that retry; sleeping or waiting -> parked
    (workflows.waits), taken up again with its due time. A reused row is reported as
    reused again (a live page learns it) only while the run has done nothing of its own yet.
    Raises CannotResume for a completed node whose output was stored cut (past
    C4C_MAX_PAYLOAD_BYTES): replaying the marker would feed the rest of the run a wrong value.
    A completed output that held secrets is replayed unsealed (SealedSecretsUnreadable, a
    ValueError, when no configured key opens it).
    """
    checkpoints: list[Checkpoint] = []
    for row in rows:
        reused = announce_reused and row.reused
        if row.status == NodeStatus.COMPLETED and _truncated(row.output):
            raise CannotResume(
                f"node {row.node_id}'s output was stored cut at C4C_MAX_PAYLOAD_BYTES"
            )
        if row.status == NodeStatus.COMPLETED:
            checkpoints.append(
                Checkpoint(
                    row.node_id,
                    "completed",
                    visit=row.visit,
                    output=node_output(row),
                    attempt=row.attempt,
                    reused=reused,
                )
            )
        elif row.status == NodeStatus.FAILED:
            checkpoints.append(
                Checkpoint(
                    row.node_id,
                    "failed",
                    visit=row.visit,
                    error=_error_info(row.error),
                    attempt=row.attempt,
                    reused=reused,
                )
            )
        elif row.status in (NodeStatus.SLEEPING, NodeStatus.WAITING):
            checkpoints.append(
                Checkpoint(
                    row.node_id,
                    "parked",
                    visit=row.visit,
                    attempt=row.attempt,
                    wake_at=row.wake_at,
                    waiting_for=row.waiting_for,
                )
            )
        elif row.status == NodeStatus.RUNNING:
            last = row.attempts[-1] if row.attempts else {}
            due = parse_datetime(str(last.get("retryAt") or ""))
            if last.get("status") == NodeStatus.FAILED and due is not None:
                checkpoints.append(
                    Checkpoint(
                        row.node_id, "waiting", visit=row.visit, attempt=row.attempt, retry_at=due
                    )
                )
            else:
                checkpoints.append(
                    Checkpoint(row.node_id, "running", visit=row.visit, attempt=row.attempt)
                )
    return checkpoints


def run(
    *,
    execution: Execution,
    definition: WorkflowDefinition,
    input: dict[str, Any],
    trigger_event: Any = None,
    recorded: list[NodeExecution] | None = None,
    previous_owner: str = "",
    redactor: Redactor | None = None,
) -> RunOutput:
    """Run a started execution to the end; returns the c4c result and its JSON text.

    `recorded`: the node runs the execution already has (a resume, a re-run's reused nodes); the
    run continues from them, counting its time from the execution's start. The run is held by
    this process (its lease renewed, its cancel heard) until it ends. `redactor`: the one `start`
    stored the run with (Redactor.for_run of the same definition, input and trigger data), so
    that it is not made twice.
    """
    held = leases.runs.hold(execution)
    try:
        return _run_held(
            held,
            execution=execution,
            definition=definition,
            input=input,
            trigger_event=trigger_event,
            recorded=recorded,
            previous_owner=previous_owner,
            redactor=redactor,
        )
    finally:
        leases.runs.release(execution.execution_id)


def _run_held(
    held: HeldRun,
    *,
    execution: Execution,
    definition: WorkflowDefinition,
    input: dict[str, Any],
    trigger_event: Any,
    recorded: list[NodeExecution] | None,
    previous_owner: str,
    redactor: Redactor | None,
) -> RunOutput:
    if held.control.cancelled:
        # Cancelled while it waited for a pool thread (or lost): it never starts.
        return stored_output(execution)
    interrupted = None
    if recorded:
        process = f" ({previous_owner})" if previous_owner else ""
        interrupted = ErrorInfo(
            name="InterruptedError",
            message=f"Interrupted: the process running it{process} stopped before it ended",
        )
    if redactor is None:
        redactor = Redactor.for_run(definition, input, trigger_event=trigger_event)
    recorder = ExecutionRecorder(execution, recorded or (), interrupted, redactor)
    with tracing.collect(execution.execution_id) as collected, redactor.active():
        feed = recorder.span_feed = SpanFeed(execution, collected)
        if not transaction.get_connection().in_atomic_block:
            # The heartbeat saves what is due while a node runs. Not for a run inside a caller's
            # transaction (a test's): its rows are not visible to another connection.
            held.on_tick = feed.flush
        if interrupted is not None:
            _stand_in_for_lost_spans(execution, interrupted)
        try:
            checkpoints: list[Checkpoint] = []
            if recorded is not None:
                if _truncated(input):
                    raise CannotResume(
                        "its input was stored cut at C4C_MAX_PAYLOAD_BYTES, so it cannot go on"
                    )
                input, definition = _unsealed(execution, input, definition)
                fresh = all(row.reused for row in recorded)
                checkpoints = checkpoints_from(recorded, announce_reused=fresh)
            result = run_workflow(
                definition,
                input,
                execution_id=execution.execution_id,
                observer=recorder,
                trigger_event=trigger_event,
                control=held.control,
                checkpoints=checkpoints,
                started_at=execution.started_at if recorded else None,
                secrets=redactor,
                waits=RunWaits(execution, functools.partial(start_child, execution)),
            )
        except Exception as exc:
            if isinstance(exc, store.TransitionError):
                # Its row moved on (a cancel lands on the row before it reaches the control).
                logger.info("Execution %s stopped: %s", execution.execution_id, exc)
            elif not held.control.cancelled:
                logger.exception("Execution %s aborted", execution.execution_id)
            result = failure_result(execution, exc)
        finally:
            held.on_tick = None
    result = dataclasses.replace(
        result,
        outputs=redactor.redact(result.outputs),
        error=redactor.redact_error(result.error) if result.error else None,
    )
    if held.lost:
        logger.warning(
            "Execution %s was taken over by another process; this one stopped running it",
            execution.execution_id,
        )
        return stored_output(execution)
    nodes = recorder.nodes()
    parked = result.status == "waiting"
    try:
        if parked:
            store.execution_park(execution=execution, result=result)
        else:
            store.execution_finish(execution=execution, result=result)
        announce_finish = True
    except store.TransitionError:
        # Cancelled meanwhile (announced by whoever cancelled it): what is stored stands. Taken
        # over meanwhile: the new owner goes on with it, and announces its end.
        owner = execution.lease_owner
        execution.refresh_from_db()
        if execution.lease_owner != owner:
            return stored_output(execution)
        nodes = NodeExecution.objects.checkpoints_of(execution)
        announce_finish = False
    rest = store.spans_record(execution=execution, spans=feed.rest())
    spans = sorted(feed.saved + rest, key=lambda s: (s.start_time_us, s.span_id))
    output = result_output(execution, spans)
    events.emit_span_ended(execution, rest)
    if parked:
        if announce_finish:
            events.emit_workflow_waiting(execution)
            if execution.lease_expires_at is not None:
                leases.heartbeat.due_at(execution.lease_expires_at)
        events.emit_executions_update(execution, nodes)
        return output
    if announce_finish:
        events.emit_workflow_finished(execution)
        _wake_parent(execution)
    events.emit_workflow_result(execution, output.json)
    events.emit_executions_update(execution, nodes)
    return output


def _stand_in_for_lost_spans(execution: Execution, interrupted: ErrorInfo) -> None:
    """A run taken over: the root span its dead process never saved is saved now, and shown."""
    try:
        lost = committer.write(store.span_root_lost, execution=execution, error=interrupted)
    except Exception:  # a trace to mend never stops the run from going on
        logger.exception("Lost spans of %s not stood in for", execution.execution_id)
        return
    if lost:
        events.emit_span_ended(execution, lost)


def _wake_parent(execution: Execution) -> None:
    """A child ended: the subworkflow node waiting for it is due now (the sweep takes it up)."""
    if execution.parent_id and store.execution_wake(execution_id=execution.parent_id):
        leases.heartbeat.wake(sweep=True)


def announce_woken(execution: Execution) -> None:
    """A waiting run was taken up again (executions.dispatch.sweep): lists show it running
    before its next node event."""
    events.emit_executions_update(execution, [])


def signal(*, execution_id: str, name: str, payload: Any, sent_by: str = "") -> bool:
    """Deliver signal `name` to an execution (kept until a wait node of that name takes it);
    whether the run was waiting, and is now due. Raises store.ExecutionNotFound, or
    store.TransitionError when it has ended."""
    _, woken = store.signal_send(
        execution_id=execution_id, name=name, payload=payload, sent_by=sent_by
    )
    if woken:
        leases.heartbeat.wake(sweep=True)
    return woken


def _unsealed(
    execution: Execution, input: dict[str, Any], definition: WorkflowDefinition
) -> tuple[dict[str, Any], WorkflowDefinition]:
    """The real input and definition of a run continued from its rows, from its seal.

    The input is replaced only when it is the stored (redacted) one: a queued run's message
    carries its input as sent. Raises SealedSecretsUnreadable when no configured key opens it.
    """
    sealed = unsealed_run(execution)
    if isinstance(sealed.get("input"), dict) and input == execution.input:
        input = sealed["input"]
    if isinstance(sealed.get("definition"), dict):
        definition = definition_to_run(sealed["definition"])
    return input, definition


def stored_output(execution: Execution) -> RunOutput:
    """The result as stored, for a run this thread did not finish (nothing is announced): one
    cancelled or lost before it started, or one whose walk was left behind on a cancel."""
    execution.refresh_from_db()
    rows = Execution.objects.detail(execution.execution_id)
    return result_output(execution, rows.spans if rows is not None else [])


def resume(
    *, execution: Execution, previous_owner: str = "", input: dict[str, Any] | None = None
) -> RunOutput:
    """Continue an execution from what it recorded: a run taken over after its process died, a
    queued run a worker claimed, a re-run with its reused nodes. Runs the stored definition
    snapshot (the library's own when it is still the same) on `input` as it was sent (a queued
    run's message carries it), else on the stored input; a stored input cut at
    C4C_MAX_PAYLOAD_BYTES fails the run with CannotResume instead of running on the marker."""
    stored = execution.input if isinstance(execution.input, dict) else {}
    return run(
        execution=execution,
        definition=definition_to_run(execution.definition),
        input=stored if input is None else input,
        recorded=NodeExecution.objects.checkpoints_of(execution),
        previous_owner=previous_owner,
    )


def execute(
    *,
    definition: WorkflowDefinition,
    input: dict[str, Any],
    execution_id: str | None = None,
    trigger_event: Any = None,
    idempotency_key: str | None = None,
) -> RunOutput:
    """start() then run() on the calling thread: what the CLI and tests call (the API's pool
    walks the run off its thread: executions.dispatch)."""
    redactor = Redactor.for_run(definition, input, trigger_event=trigger_event)
    execution = start(
        definition=definition,
        input=input,
        execution_id=execution_id,
        idempotency_key=idempotency_key,
        redactor=redactor,
    )
    return run(
        execution=execution,
        definition=definition,
        input=input,
        trigger_event=trigger_event,
        redactor=redactor,
    )


CANCELLED_MESSAGE = "Cancelled by request"


def cancel(execution_id: str) -> Execution:
    """Cancel a running or queued execution and stop its work.

    The row is cancelled first (and announced: workflow.failed, executions.update), so a late
    success never overwrites it; then the run's control stops it here at once, or the heartbeat
    of the process running it does within C4C_CANCEL_CHECK_SECONDS. A queued run never starts.
    """
    execution = store.execution_cancel(execution_id=execution_id, reason=CANCELLED_MESSAGE)
    events.emit_workflow_finished(execution)
    events.emit_executions_update(execution, NodeExecution.objects.checkpoints_of(execution))
    # Announced first: the run winding down here sends its result after the cancel, not before.
    held = leases.runs.get(execution_id)
    if held is not None:
        held.control.cancel(CANCELLED_MESSAGE)
    _wake_parent(execution)
    for child in Execution.objects.unfinished_children(execution_id):
        with contextlib.suppress(store.StoreError):  # it ended (or went) meanwhile
            cancel(child)
    return execution


def rerun(*, execution_id: str, from_node: str | None = None) -> Execution:
    """Record a new execution that runs a stored one again, and dispatch it.

    It runs the original's definition snapshot on its stored input, so it works after the code
    changed, and names the original (`rerun_of`). With `from_node`, the original's done node
    runs before that node's first run are copied as reused (not run again) and the run goes on
    from there. Raises store.ExecutionNotFound, or ValueError for a node the definition does not
    have or the original never reached, and CannotResume (a ValueError) when the input or a
    reused output was stored cut at C4C_MAX_PAYLOAD_BYTES.
    """
    original = Execution.objects.one(execution_id)
    if original is None:
        raise store.ExecutionNotFound(execution_id)
    definition = definition_to_run(original.definition)
    reused: list[NodeExecution] = []
    if from_node is not None:
        if definition.node(from_node) is None:
            raise ValueError(f"Workflow '{definition.id}' has no node '{from_node}'")
        rows = NodeExecution.objects.checkpoints_of(original)
        first = next((row for row in rows if row.node_id == from_node), None)
        if first is None:
            raise ValueError(f"Execution '{execution_id}' never reached node '{from_node}'")
        done = (NodeStatus.COMPLETED, NodeStatus.FAILED)
        reused = [row for row in rows if row.sequence < first.sequence and row.status in done]
        checkpoints_from(reused, announce_reused=False)  # CannotResume for a value stored cut
    if _truncated(original.input):
        raise CannotResume(f"execution '{execution_id}' has its input stored cut")

    def record(owner: str | None) -> Execution:
        now = timezone.now()
        with transaction.atomic():
            execution = store.execution_start(
                execution_id=new_execution_id(),
                definition=definition,
                input=original.input,
                started_at=now,
                owner=owner,
                rerun_of=original.execution_id,
                rerun_from_node=from_node or "",
                sealed_secrets=original.sealed_secrets,
            )
            copied = store.nodes_reuse(execution=execution, originals=reused, at=now)
        _announce_start(execution, copied)
        return execution

    # dispatch holds the pool and the broker, and imports this module: imported when used.
    from . import dispatch

    return dispatch.begin(record)


def discard_unqueued(execution: Execution, exc: Exception) -> bool:
    """Remove a run the broker never took, so the same request may be sent again; False when a
    worker claimed it after all. Open dashboards are told it failed to start."""
    if not store.execution_discard(execution=execution):
        return False
    execution.status, execution.ended_at = ExecutionStatus.FAILED, timezone.now()
    execution.execution_time_ms = 0
    execution.error = {
        "name": type(exc).__name__,
        "message": f"Not started: the Celery broker did not take the run ({exc})",
        "stack": "",
    }
    events.emit_workflow_finished(execution)
    events.emit_executions_update(execution, [])
    return True
