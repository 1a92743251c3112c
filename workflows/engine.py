"""Run a workflow definition, reporting each step to a RunObserver and tracing it in OTel.

Semantics follow c4c's runtime (packages/workflow/src/runtime.ts), with the differences marked:

- The run starts at `startNode` and follows each node's next node until there is none. Variables
  start as the definition's `variables` updated with the run input.
- procedure: input is the node's config (templates rendered, see workflows.templates) merged with
  the variables; a config key wins over a variable of the same name (c4c's `procedure.input`
  span attribute shows `{"a":3,"b":2,"result":15}` for multiply; here such copies of a node's
  input and output are made only when C4C_SPAN_PAYLOAD_CHARS allows them). Its output is kept per
  node and merged into the variables. When `next` is a list, the first entry is taken (as c4c).
- condition: `expression` (sandboxed, workflows.expressions) or a Python predicate from the builder
  chooses `trueBranch` or `falseBranch`; a missing branch ends the run. An expression that errors
  fails the node (c4c took the false branch silently).
- parallel: each id in `branches` runs in its own thread (the OTel context is copied, so branch
  spans are children of the parallel node's span). A branch is its one node - its `next` is not
  followed, as in c4c - plus that node's onError handler if it fails. `waitForAll` (default true):
  every branch must succeed, else the parallel node fails naming the failed branches. With
  `waitForAll: false` the run continues after the first branch succeeds; the other branches keep
  running, their node runs are still reported and their outputs kept per node, but they no longer
  merge into the variables the rest of the run sees, and the run waits for them before it
  finishes so that nothing is reported after execution_finished.
- sequential: passes through to its next node. trigger: records the event data the run was
  started with (`trigger_event`, or the run input when started by hand) as its output.
- sleep, wait, subworkflow (not in c4c; workflows.waits): wait for a time, a signal or a child
  execution. Given `waits` (a durable runner), a node whose moment has not come parks: the
  observer's node_parked records it, the walk stops, and the run ends "waiting" with its
  earliest due time (RunResult.wake_at); the runner runs it again from its checkpoints when it
  is due. A parallel branch that parks lets the others finish first; the run then waits.
- A failed node with `onError` continues at the handler node; the failure is then available as
  the variable `error` = {nodeId, name, message} (templates `{{error.message}}`, expressions
  `error.message`, and procedure inputs). Without onError the run fails with the node's error.
- More than `max_steps` node runs (settings.C4C_MAX_STEPS, default 10000) fail the run; this is not
  a node failure, so onError cannot loop past it.

Durability (workflows/README.md has the whole contract):

- retry (workflows.retry): a procedure node's failed attempt is tried again after a backoff, up to
  maxAttempts; contract errors (ProcedureInputError, ProcedureOutputError) and names in
  nonRetryableErrors fail at once. Only the final outcome goes to onError.
- timeoutMs on a procedure node fails the attempt with TimeoutError (then retry and onError apply);
  timeoutMs on the definition fails the run with TimeoutError, whatever handlers exist.
- control (workflows.context.RunControl): cancel stops every attempt in flight and every wait;
  the run ends "cancelled" with CancelledError. When a deadline applies (a node or workflow
  timeout), procedures run on procedure threads (workflows.attempts) so the walking thread never
  waits past it; otherwise they run on the walking thread, where a cancel still reaches them
  through their context (a cooperative procedure stops at once).
- checkpoints (workflows.checkpoints): a resumed run replays the node runs recorded as done
  without running or reporting them, and runs an interrupted one again as a new attempt.

Secrets (workflows.secrets): the run's Redactor learns each secret as it appears (input, trigger
data, definition, each node input once expanded - with its procedure's SecretStr fields - and
each output); span attributes, exception events, status messages and every ErrorInfo carry only
the redacted form, and log records made during the run are scrubbed. Procedures get real values.

Logs (workflows.logs): when the observer has a node_logs hook, what each procedure attempt logs
is captured (redacted, bounded), added to its procedure span as "log" events, and delivered to
node_logs in batches while the attempt runs and with the rest when it ends, before its outcome
is reported. An observer without the hook pays nothing for it.

Workflow failures never raise: run_workflow returns a failed RunResult. Exceptions raised by the
observer do propagate, because a run that cannot be recorded must not carry on unseen.
"""

import contextlib
import contextvars
import functools
import itertools
import json
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, format_trace_id

from .attempts import run_attempt
from .checkpoints import DONE, Checkpoint, index_checkpoints
from .conf import app_settings
from .context import AttemptSignal, ProcedureContext, RunControl
from .definitions import WorkflowDefinition, WorkflowNode
from .errors import (
    CancelledError,
    MaxStepsExceeded,
    NodeNotFound,
    ParallelBranchError,
    ProcedureInputError,
    ProcedureNotFound,
    ProcedureOutputError,
    SubworkflowFailed,
    WorkflowError,
)
from .expressions import evaluate
from .logs import AttemptLog, LogLine, capture, finish
from .observer import ErrorInfo, RunObserver, RunResult, RunStatus
from .registry import Procedure, ProcedureRegistry, procedure_registry
from .retry import RetryPolicy
from .secrets import Redactor
from .templates import has_templates, render
from .waits import (
    WAIT_NODE_TYPES,
    Parked,
    Waits,
    child_workflow,
    signal_name,
    sleep_due,
    wait_timeout_ms,
)

TRACER_NAME = "c4c.workflows"

# A broken contract fails the same way every time; a cancel is not a failure to try again.
NEVER_RETRIED = (ProcedureInputError, ProcedureOutputError, ProcedureNotFound, CancelledError)


@dataclass(frozen=True, slots=True)
class PredicateContext:
    """What a builder predicate sees: the run's data, as c4c's predicate context."""

    variables: Mapping[str, Any]
    outputs: Mapping[str, Any]
    input: Mapping[str, Any]

    def get(self, node_id: str) -> Any:
        return self.outputs.get(node_id)


def run_workflow(
    definition: WorkflowDefinition,
    input: dict[str, Any] | None,
    *,
    execution_id: str,
    observer: RunObserver,
    registry: ProcedureRegistry | None = None,
    max_steps: int | None = None,
    trigger_event: dict[str, Any] | None = None,
    control: RunControl | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    started_at: datetime | None = None,
    secrets: Redactor | None = None,
    waits: Waits | None = None,
) -> RunResult:
    """Run `definition` to the end on the calling thread and return how it went.

    `control` lets the caller cancel the run from another thread. `checkpoints` are what an
    earlier run of this execution recorded (resume) or what another execution's nodes produced
    (re-run from a node, marked reused). `started_at` is when the execution first started: a
    resumed run's result and its workflow timeout count from it. `secrets` is the run's
    redactor (workflows.secrets), when the caller keeps one to store with; the run makes its own
    otherwise. Spans and errors carry only redacted values; the observer gets the real inputs
    and outputs (to seal them) and redacted errors. `waits` lets sleep, wait and subworkflow
    nodes park the run instead of holding this thread (workflows.waits).
    """
    run = _Run(
        definition,
        dict(input or {}),
        execution_id=execution_id,
        observer=observer,
        registry=registry if registry is not None else procedure_registry(),
        max_steps=_resolve_max_steps(max_steps),
        trigger_event=trigger_event,
        control=control,
        checkpoints=index_checkpoints(checkpoints),
        started_at=started_at,
        secrets=secrets,
        waits=waits,
    )
    try:
        with run.secrets.active():
            return run.execute()
    except _ObserverFailed as failed:
        raise failed.original from None


def _resolve_max_steps(override: int | None) -> int:
    if override is not None:
        if override < 1:
            raise ValueError(f"max_steps must be at least 1, not {override}")
        return override
    return app_settings.C4C_MAX_STEPS


def _now() -> datetime:
    return datetime.now(UTC)


def error_info(exc: BaseException) -> ErrorInfo:
    return ErrorInfo(
        name=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        stack="".join(traceback.format_exception(exc)),
    )


# Built once: json.dumps with options builds a new encoder per call, twice per node here.
_attribute_encode = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False).encode


def _attribute_json(value: Any, limit: int) -> str:
    """Compact JSON for a span attribute, cut at `limit` characters so big payloads stay cheap."""
    try:
        text = _attribute_encode(value)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        return text[:limit] + "...(truncated)"
    return text


def _procedure_attributes(
    payloads: Mapping[str, Any], redact: Callable[[Any], Any], limit: int
) -> dict[str, str]:
    """`procedure.<name>` copies of a procedure node's payloads (input, output), redacted, as
    JSON cut at `limit` (C4C_SPAN_PAYLOAD_CHARS); none at 0, without redacting or encoding
    anything: the node rows hold the payloads whole, and two copies per node cost every run."""
    if limit <= 0:
        return {}
    return {
        f"procedure.{name}": _attribute_json(redact(value), limit)
        for name, value in payloads.items()
    }


def _retryable(policy: RetryPolicy, attempt: int, exc: Exception) -> bool:
    if attempt >= policy.max_attempts:
        return False
    return not isinstance(exc, NEVER_RETRIED) and not policy.excludes(exc)


def _node_timeout(node: WorkflowNode) -> TimeoutError:
    return TimeoutError(f"Node {node.id} timed out after {node.timeout_ms} ms")


class _NodeFailed(Exception):
    """A node failed and had no onError handler: its branch, or the run, fails with `error`."""

    def __init__(self, error: ErrorInfo, cause: BaseException) -> None:
        super().__init__(error.message)
        self.error = error
        self.cause = cause


class _RunAborted(_NodeFailed):
    """The run must stop whatever handlers exist (too many steps, a missing node)."""


class _RunStopped(_RunAborted):
    """Cancelled by the run's control, or past the workflow timeout: the node in flight fails."""

    def __init__(self, error: ErrorInfo, cause: BaseException, status: RunStatus) -> None:
        super().__init__(error, cause)
        self.status = status


class _Parked(Exception):
    """A node waits for later: its branch (or the run) stops here, to be taken up again."""


class _ObserverFailed(Exception):
    """Carries an observer's exception through node-failure handling to run_workflow's caller."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


@dataclass(slots=True)
class _Branches:
    """Shared by the branches of one parallel node; detached ones stop feeding the variables."""

    detached: bool = False
    statuses: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Step:
    """One node run: its place in the walk, its visit of the node, the attempt in progress."""

    index: int
    visit: int
    attempt: int = 1
    # The node run's parked checkpoint when the run takes a wait up again.
    parked: Checkpoint | None = None


class _Run:
    def __init__(
        self,
        definition: WorkflowDefinition,
        input: dict[str, Any],
        *,
        execution_id: str,
        observer: RunObserver,
        registry: ProcedureRegistry,
        max_steps: int,
        trigger_event: dict[str, Any] | None,
        control: RunControl | None,
        checkpoints: dict[tuple[str, int], Checkpoint],
        started_at: datetime | None,
        secrets: Redactor | None,
        waits: Waits | None = None,
    ) -> None:
        if secrets is None:
            secrets = Redactor.for_run(
                definition, input, trigger_event=trigger_event, registry=registry
            )
        else:
            secrets.learn_run(definition, input, trigger_event)
        self.secrets = secrets
        self.definition = definition
        self.input = input
        self.execution_id = execution_id
        self.observer = observer
        self.registry = registry
        self.max_steps = max_steps
        self.trigger_event = trigger_event
        self.control = control
        self.checkpoints = checkpoints
        self.started_at = started_at
        # time.monotonic() at which the workflow timeout fails the run; set when the run starts.
        self.deadline: float | None = None
        self.nodes = {node.id: node for node in definition.nodes}
        self.templated = frozenset(
            node.id
            for node in definition.nodes
            if node.type in ("procedure", *WAIT_NODE_TYPES) and has_templates(node.config)
        )
        self.waits = waits
        # When each parked node run of this walk wants the run again (None: on its event only).
        self.parked: list[datetime | None] = []
        self.variables: dict[str, Any] = {**definition.variables, **input}
        self.outputs: dict[str, Any] = {}
        self.nodes_executed: list[str] = []
        self.visits: dict[str, int] = {}
        self.stragglers: list[Future[None]] = []
        self.lock = threading.Lock()
        self.steps = itertools.count()
        # Per run, not at import: a tracer taken before the SDK provider is installed stays a
        # proxy that adds a context-manager layer to every span (two spans per node).
        self.tracer = trace.get_tracer(TRACER_NAME)
        # (node id, index, nodes executed so far) of the latest main-path node: c4c's
        # workflow.current_* attributes, set once on the root span instead of per node.
        self.current: tuple[str, int, int] = (definition.start_node, 0, 0)
        self.span_base = {"workflow.id": definition.id, "workflow.execution_id": execution_id}
        self.span_payload_chars = app_settings.C4C_SPAN_PAYLOAD_CHARS
        self.procedure_spans = app_settings.C4C_PROCEDURE_SPANS != "none"
        # The observer's node_logs hook; without one, no attempt captures its logs.
        self.log_sink = getattr(observer, "node_logs", None)
        self.log_limits = (app_settings.C4C_MAX_LOG_LINES, app_settings.C4C_MAX_LOG_BYTES)

    def execute(self) -> RunResult:
        definition = self.definition
        now = _now()
        started_at = self.started_at or now
        if definition.timeout_ms is not None:
            elapsed = (now - started_at).total_seconds()
            self.deadline = time.monotonic() + definition.timeout_ms / 1000 - elapsed
        active = trace.get_current_span().get_span_context()
        error: ErrorInfo | None = None
        status: RunStatus = "completed"
        with self.tracer.start_as_current_span(
            "workflow.execute",
            context=otel_context.Context(),
            links=[trace.Link(active)] if active.is_valid else None,
            attributes={
                "workflow.id": definition.id,
                "workflow.name": definition.display_name,
                "workflow.version": definition.version,
                "workflow.execution_id": self.execution_id,
                "workflow.start_node": definition.start_node,
                "workflow.node_count": len(definition.nodes),
            },
        ) as root:
            span_context = root.get_span_context()
            trace_id = format_trace_id(span_context.trace_id) if span_context.is_valid else ""
            self.observer.execution_started(
                execution_id=self.execution_id,
                definition=definition,
                input=self.input,
                started_at=started_at,
            )
            try:
                self._walk(definition.start_node)
            except _RunStopped as stopped:
                error, status = stopped.error, stopped.status
                self._record_exception(root, stopped.cause)
            except _NodeFailed as failed:
                error, status = failed.error, "failed"
                self._record_exception(root, failed.cause)
            except _Parked:
                status = "waiting"
            finally:
                self._join_stragglers()
            if status == "completed" and self.parked:
                status = "waiting"  # a branch the run moved on without waits: so does the run
            ended_at = _now()
            result = RunResult(
                execution_id=self.execution_id,
                workflow_id=definition.id,
                status=status,
                started_at=started_at,
                ended_at=ended_at,
                outputs=dict(self.outputs),
                nodes_executed=list(self.nodes_executed),
                error=error,
                trace_id=trace_id,
                wake_at=self._wake_at() if status == "waiting" else None,
            )
            node_id, index, executed = self.current
            root.set_attributes(
                {
                    "workflow.current_node": node_id,
                    "workflow.current_node_index": index,
                    "workflow.nodes_executed": executed,
                    "workflow.status": result.status,
                    "workflow.nodes_executed_total": len(result.nodes_executed),
                    "workflow.execution_time_ms": result.execution_time_ms,
                }
            )
            if error:
                root.set_attribute("workflow.error", error.message)
                root.set_status(Status(StatusCode.ERROR, error.message))
            elif status != "waiting":
                root.set_status(Status(StatusCode.OK))
        self.observer.execution_finished(result=result)
        return result

    def _wake_at(self) -> datetime | None:
        """The earliest due time of the parked node runs; None when all wait for an event."""
        dues = [due for due in self.parked if due is not None]
        return min(dues) if dues else None

    def _recorded(self, node_id: str) -> bool:
        """Whether the node's next run was recorded before (the run resumes): it is replayed
        when done, else taken up again."""
        if not self.checkpoints:
            return False
        with self.lock:
            visit = self.visits.get(node_id, 0) + 1
        return (node_id, visit) in self.checkpoints

    def _walk(self, node_id: str | None) -> None:
        while node_id is not None:
            node_id, _ = self._run_node(node_id, None)

    def _join_stragglers(self) -> None:
        """Wait for parallel branches the run moved on without; only observer errors matter now."""
        while self.stragglers:
            future = self.stragglers.pop()
            exc = future.exception()
            if isinstance(exc, _ObserverFailed):
                raise exc

    def _run_node(self, node_id: str, branches: _Branches | None) -> tuple[str | None, bool]:
        """Run one node; return (next node id, whether it failed and went to its onError)."""
        node = self.nodes.get(node_id)
        if node is None:
            exc = NodeNotFound(f"Node {node_id} not found in workflow")
            raise _RunAborted(self._error_info(exc), exc)
        if not self._recorded(node_id):
            self._check_stopped()  # a recorded node run is checked in _begin, so it can fail
        index = next(self.steps)
        if index >= self.max_steps:
            too_many = MaxStepsExceeded(
                f"Workflow {self.definition.id} stopped: more than {self.max_steps} node runs "
                f"(the maximum) - does it loop without end?"
            )
            raise _RunAborted(self._error_info(too_many), too_many)
        with self.lock:
            self.nodes_executed.append(node_id)
            visit = self.visits[node_id] = self.visits.get(node_id, 0) + 1
            if branches is None:
                self.current = (node_id, index, len(self.nodes_executed))
        checkpoint = self.checkpoints.get((node_id, visit)) if self.checkpoints else None
        if checkpoint is not None and checkpoint.status in DONE and node.type != "parallel":
            return self._replay(node, index, checkpoint, branches)
        step = _Step(index, visit)
        # A parallel node recorded as done walks its branches again (their checkpoints rebuild
        # the variables) but reports nothing itself: it is already recorded.
        quiet = checkpoint is not None and checkpoint.status in DONE
        attributes = {**self.span_base, "node.id": node.id, "node.type": node.type}
        if node.procedure_name:
            attributes["node.procedure"] = node.procedure_name
        with self.tracer.start_as_current_span(
            f"workflow.node.{node.type}",
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            failure: Exception | None = None
            try:
                node_input = self._node_input(node)
            except Exception as exc:
                failure, node_input = exc, dict(node.config)
            self._learn_input(node, node_input)
            try:
                self._begin(node, step, node_input, checkpoint)
                if failure is None:
                    output, next_id = self._execute(node, node_input, branches, step)
            except _RunStopped as stopped:
                if not quiet:
                    self._failed(span, node, step, stopped.error, stopped.cause, None)
                raise
            except (_RunAborted, _ObserverFailed, _Parked):
                raise
            except Exception as exc:
                failure = exc
            if failure is None:
                if span.is_recording():
                    done: dict[str, Any] = {"node.status": "completed"}
                    if node.type == "procedure":
                        done = {
                            **_procedure_attributes(
                                {"input": node_input, "output": output},
                                self.secrets.redact,
                                self.span_payload_chars,
                            ),
                            "procedure.output_keys": ",".join(output),
                            **done,
                        }
                    if next_id is not None:
                        done["node.next"] = next_id
                    if step.attempt > 1:
                        done["node.attempt"] = step.attempt
                    span.set_attributes(done)
                span.set_status(Status(StatusCode.OK))
                if not quiet:
                    self._notify(
                        self.observer.node_completed,
                        execution_id=self.execution_id,
                        node=node,
                        node_index=index,
                        visit=visit,
                        attempt=step.attempt,
                        output=output,
                        next_node_id=next_id,
                        ended_at=_now(),
                    )
                return next_id, False
            error = self._error_info(failure)
            if node.type == "procedure" and span.is_recording():
                span.set_attributes(
                    _procedure_attributes(
                        {"input": node_input}, self.secrets.redact, self.span_payload_chars
                    )
                )
            if quiet:
                span.set_status(Status(StatusCode.ERROR, error.message))
            else:
                self._failed(span, node, step, error, failure, node.on_error)
        if node.on_error is None:
            raise _NodeFailed(error, failure)
        self._set_error(node, error)
        return node.on_error, True

    def _begin(
        self,
        node: WorkflowNode,
        step: _Step,
        node_input: dict[str, Any],
        checkpoint: Checkpoint | None,
    ) -> None:
        """Report the node run's start; a resumed one waits out its backoff, then a new attempt."""
        if checkpoint is None:
            self._notify(
                self.observer.node_started,
                execution_id=self.execution_id,
                node=node,
                node_index=step.index,
                visit=step.visit,
                input=node_input,
                started_at=_now(),
            )
            return
        if checkpoint.reused:
            self._reused(node, step.index, checkpoint)
        if checkpoint.status in DONE:
            return
        step.attempt = checkpoint.attempt  # the last attempt, until the next one starts
        if node.type != "parallel":  # (a parallel node's branches are checked as they go on)
            # Cancelled or past the workflow timeout while parked or interrupted: the node in
            # flight fails, as it would had the stop come while this process ran it.
            self._check_stopped()
        if checkpoint.status == "parked":
            step.parked = checkpoint  # it takes its wait up again: no new attempt
            return
        if checkpoint.retry_at is not None and checkpoint.status == "waiting":
            self._wait_until(checkpoint.retry_at)
        step.attempt += 1
        self._attempt_started(node, step)

    def _failed(
        self,
        span: trace.Span,
        node: WorkflowNode,
        step: _Step,
        error: ErrorInfo,
        cause: BaseException,
        handled_by: str | None,
    ) -> None:
        failed: dict[str, Any] = {"node.status": "failed", "node.error": error.message}
        if step.attempt > 1:
            failed["node.attempt"] = step.attempt
        span.set_attributes(failed)
        self._record_exception(span, cause)
        span.set_status(Status(StatusCode.ERROR, error.message))
        self._notify(
            self.observer.node_failed,
            execution_id=self.execution_id,
            node=node,
            node_index=step.index,
            visit=step.visit,
            attempt=step.attempt,
            error=error,
            handled_by=handled_by,
            ended_at=_now(),
        )

    def _replay(
        self,
        node: WorkflowNode,
        index: int,
        checkpoint: Checkpoint,
        branches: _Branches | None,
    ) -> tuple[str | None, bool]:
        """Follow a node run recorded as done, without running it."""
        if checkpoint.reused:
            self._reused(node, index, checkpoint)
        if checkpoint.status == "failed":
            error = checkpoint.error or ErrorInfo(name="WorkflowError", message="failed")
            if node.on_error is None:
                raise _NodeFailed(error, WorkflowError(error.message))
            self._set_error(node, error)
            return node.on_error, True
        output = checkpoint.output
        if node.type in ("procedure", "trigger", *WAIT_NODE_TYPES):
            self._keep_output(node.id, output, branches)
        if node.type == "condition":
            branch = output.get("branch") if isinstance(output, dict) else None
            return branch, False
        return (node.next_ids[0] if node.next_ids else None), False

    def _reused(self, node: WorkflowNode, index: int, checkpoint: Checkpoint) -> None:
        self._notify(
            self.observer.node_reused,
            execution_id=self.execution_id,
            node=node,
            node_index=index,
            checkpoint=checkpoint,
        )

    def _attempt_started(self, node: WorkflowNode, step: _Step) -> None:
        self._notify(
            self.observer.node_attempt_started,
            execution_id=self.execution_id,
            node=node,
            node_index=step.index,
            visit=step.visit,
            attempt=step.attempt,
            started_at=_now(),
        )

    def _set_error(self, node: WorkflowNode, error: ErrorInfo) -> None:
        with self.lock:
            self.variables["error"] = {
                "nodeId": node.id,
                "name": error.name,
                "message": error.message,
            }

    @staticmethod
    def _notify(hook: Any, **kwargs: Any) -> None:
        try:
            hook(**kwargs)
        except Exception as exc:
            raise _ObserverFailed(exc) from exc

    def _error_info(self, exc: BaseException) -> ErrorInfo:
        """c4c's error shape for `exc`, with any secret its message or stack echoes redacted."""
        return self.secrets.redact_error(error_info(exc))

    def _record_exception(self, span: trace.Span, exc: BaseException) -> None:
        """span.record_exception, its message and stack trace redacted."""
        span.record_exception(
            exc,
            {
                "exception.message": self.secrets.redact_text(str(exc)),
                "exception.stacktrace": self._error_info(exc).stack,
            },
        )

    @contextlib.contextmanager
    def _procedure_span(self, name: str, attributes: dict[str, str | int]) -> Iterator[trace.Span]:
        """A procedure attempt's span; a failure is recorded as the SDK would (an exception
        event, status "<type>: <message>") but redacted. With C4C_PROCEDURE_SPANS=none, none:
        the node's span stays current and records the outcome, so a huge fan-out pays for one
        span per node (SDK, row, event: bench.spans_cost measures what one costs)."""
        if not self.procedure_spans:
            yield trace.NonRecordingSpan(trace.get_current_span().get_span_context())
            return
        with self.tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except BaseException as exc:
                if span.is_recording():
                    self._record_exception(span, exc)
                    message = self.secrets.redact_text(str(exc))
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
                raise

    def _learn_input(self, node: WorkflowNode, node_input: Any) -> None:
        """Note the secrets of a node's input as expanded: under secret keys, and in the fields
        its procedure's contract types as secret, before anything records the input."""
        self.secrets.learn(node_input)
        proc = self.registry.get(node.procedure_name) if node.procedure_name else None
        if proc is not None:
            self.secrets.learn_contract(proc.input_model, node_input)

    def _stopped(self, reason: BaseException) -> _RunStopped:
        status: RunStatus = "cancelled" if isinstance(reason, CancelledError) else "failed"
        return _RunStopped(self._error_info(reason), reason, status)

    def _workflow_timeout(self) -> TimeoutError:
        return TimeoutError(
            f"Workflow {self.definition.id} timed out after {self.definition.timeout_ms} ms"
        )

    def _check_stopped(self) -> None:
        if self.control is not None and self.control.cancelled:
            raise self._stopped(self.control.error())
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise self._stopped(self._workflow_timeout())

    def _wait_until(self, due: datetime) -> None:
        """Sleep until `due`, waking at once on cancel; the workflow timeout cuts it short."""
        seconds = (due - _now()).total_seconds()
        cut_short = self.deadline is not None and self.deadline - time.monotonic() < seconds
        if cut_short and self.deadline is not None:
            seconds = self.deadline - time.monotonic()
        if seconds > 0:
            if self.control is not None:
                self.control.wait(seconds)
            else:
                time.sleep(seconds)
        self._check_stopped()
        if cut_short:
            raise self._stopped(self._workflow_timeout())

    def _node_input(self, node: WorkflowNode) -> dict[str, Any]:
        if node.type in WAIT_NODE_TYPES:
            return render(node.config, self._lookup) if node.id in self.templated else node.config
        if node.type == "procedure":
            config = render(node.config, self._lookup) if node.id in self.templated else node.config
            merged = dict(config)
            with self.lock:
                for key, value in self.variables.items():
                    merged.setdefault(key, value)
            return merged
        if node.type == "trigger":
            event = self.trigger_event if self.trigger_event is not None else self.input
            return dict(event)
        return node.config

    def _lookup(self, root: str) -> tuple[bool, Any]:
        if root == "input":
            return True, self.input
        with self.lock:
            if root in self.outputs:
                return True, self.outputs[root]
            if root in self.variables:
                return True, self.variables[root]
        return False, None

    def _execute(
        self,
        node: WorkflowNode,
        node_input: dict[str, Any],
        branches: _Branches | None,
        step: _Step,
    ) -> tuple[Any, str | None]:
        following = node.next_ids[0] if node.next_ids else None
        match node.type:
            case "procedure":
                return self._procedure(node, node_input, branches, step), following
            case "condition":
                return self._condition(node)
            case "parallel":
                return self._parallel(node, step), following
            case "sequential":
                return None, following
            case "trigger":
                self._keep_output(node.id, node_input, branches)
                return node_input, following
            case "sleep":
                output: Any = self._sleep(node, node_input, step)
            case "wait":
                output = self._wait(node, node_input, step)
            case "subworkflow":
                output = self._subworkflow(node, node_input, step)
            case _:
                raise WorkflowError(f"Unknown node type: {node.type}")
        self._keep_output(node.id, output, branches)
        return output, following

    def _keep_output(self, node_id: str, output: Any, branches: _Branches | None) -> None:
        self.secrets.learn(output)
        with self.lock:
            self.outputs[node_id] = output
            if isinstance(output, dict) and (branches is None or not branches.detached):
                self.variables.update(output)

    def _procedure(
        self,
        node: WorkflowNode,
        node_input: dict[str, Any],
        branches: _Branches | None,
        step: _Step,
    ) -> dict[str, Any]:
        name = node.procedure_name
        if not name:
            raise WorkflowError(f"Procedure node {node.id} missing procedureName")
        proc = self.registry.get(name)
        if proc is None:
            raise ProcedureNotFound(f"Procedure {name} not found in registry")
        policy = node.retry or self.definition.retry
        while True:
            try:
                output = self._attempt(node, proc, node_input, step)
                break
            except (_RunStopped, _ObserverFailed):
                raise
            except Exception as exc:
                if policy is None or not _retryable(policy, step.attempt, exc):
                    raise
                failed_at = _now()
                retry_at = failed_at + timedelta(milliseconds=policy.delay_ms(step.attempt))
                self._notify(
                    self.observer.node_attempt_failed,
                    execution_id=self.execution_id,
                    node=node,
                    node_index=step.index,
                    visit=step.visit,
                    attempt=step.attempt,
                    error=self._error_info(exc),
                    ended_at=failed_at,
                    retry_at=retry_at,
                )
                self._wait_until(retry_at)
                step.attempt += 1
                self._attempt_started(node, step)
        self._keep_output(node.id, output, branches)
        return output

    def _attempt(
        self,
        node: WorkflowNode,
        proc: Procedure,
        node_input: dict[str, Any],
        step: _Step,
    ) -> dict[str, Any]:
        """One call of the procedure, as its own span; stoppable when anything can stop it."""
        span_attributes: dict[str, str | int] = {
            "procedure.name": proc.name,
            "procedure.attempt": step.attempt,
        }
        if self.deadline is None and node.timeout_ms is None:
            return self._attempt_inline(node, proc, node_input, step, span_attributes)
        signal = AttemptSignal()
        context = ProcedureContext(
            execution_id=self.execution_id,
            node_id=node.id,
            attempt=step.attempt,
            visit=step.visit,
            signal=signal,
        )
        # The earlier of the node's and the workflow's deadline; only the workflow's stops the run.
        deadline, run_deadline = self.deadline, True
        if node.timeout_ms is not None:
            node_deadline = time.monotonic() + node.timeout_ms / 1000
            if deadline is None or node_deadline <= deadline:
                deadline, run_deadline = node_deadline, False
        expired = self._workflow_timeout if run_deadline else functools.partial(_node_timeout, node)
        log = self._attempt_log(node, step)
        try:
            with self._procedure_span(proc.name, span_attributes) as span:
                with self._capturing(log, span):
                    output: dict[str, Any] = run_attempt(
                        functools.partial(proc.invoke, node_input, context),
                        signal,
                        control=self.control,
                        deadline=deadline,
                        expired=expired,
                    )
                # A failed attempt's span is ERROR (the tracer records the exception); c4c
                # counts OK spans as successful.
                span.set_status(Status(StatusCode.OK))
                return output
        except Exception as exc:
            if exc is signal.reason and (run_deadline or isinstance(exc, CancelledError)):
                raise self._stopped(exc) from None
            raise
        finally:
            if log is not None:
                finish(log)

    def _attempt_inline(
        self,
        node: WorkflowNode,
        proc: Procedure,
        node_input: dict[str, Any],
        step: _Step,
        span_attributes: dict[str, str | int],
    ) -> dict[str, Any]:
        """An attempt no deadline can cut short, on the walking thread: no thread hop per node.

        A cancel still reaches it (ctx.cancelled, ctx.sleep, on_cancel, an async task), so a
        cooperative procedure stops at once; one that ignores the signal holds this thread until
        it returns, which is why a run's pool gives its place back the moment the run is
        cancelled instead of waiting for its walk.
        """
        signal = AttemptSignal() if self.control is not None else None
        context = ProcedureContext(
            execution_id=self.execution_id,
            node_id=node.id,
            attempt=step.attempt,
            visit=step.visit,
            signal=signal,
        )
        if self.control is not None and signal is not None and not self.control.watch(signal):
            raise self._stopped(self.control.error())
        log = self._attempt_log(node, step)
        try:
            with self._procedure_span(proc.name, span_attributes) as span:
                with self._capturing(log, span):
                    output = proc.invoke(node_input, context)
                span.set_status(Status(StatusCode.OK))
        except BaseException:
            # Stopped: the stop's reason wins over whatever the procedure raised on the way out
            # (ctx.sleep's CancelledError, asyncio's CancelledError from a cancelled task).
            if signal is not None and signal.reason is not None:
                raise self._stopped(signal.reason) from None
            raise
        finally:
            if self.control is not None and signal is not None:
                self.control.unwatch(signal)
            if log is not None:
                finish(log)
        if self.control is not None and self.control.cancelled:
            raise self._stopped(self.control.error())
        return output

    def _attempt_log(self, node: WorkflowNode, step: _Step) -> AttemptLog | None:
        """Where this attempt's log lines go, or None when the observer takes no logs."""
        if self.log_sink is None:
            return None
        max_lines, max_bytes = self.log_limits
        deliver = functools.partial(self._deliver_logs, node, step.index, step.visit, step.attempt)
        return AttemptLog(
            deliver=deliver, redactor=self.secrets, max_lines=max_lines, max_bytes=max_bytes
        )

    @contextlib.contextmanager
    def _capturing(self, log: AttemptLog | None, span: trace.Span) -> Iterator[None]:
        """Capture the attempt's logs (as events of its span too) while the procedure runs."""
        if log is None:
            yield
            return
        log.span = span
        with capture(log):
            yield

    def _deliver_logs(
        self, node: WorkflowNode, index: int, visit: int, attempt: int, lines: list[LogLine]
    ) -> None:
        self._notify(
            self.log_sink,
            execution_id=self.execution_id,
            node=node,
            node_index=index,
            visit=visit,
            attempt=attempt,
            lines=lines,
        )

    def _park(self, node: WorkflowNode, step: _Step, parked: Parked) -> _Parked:
        """Record the node run as parked and stop its walk: the run is due again at its due
        time, or at the workflow timeout when that comes first (which then fails the run)."""
        due = parked.wake_at
        if self.deadline is not None:
            deadline = _now() + timedelta(seconds=self.deadline - time.monotonic())
            due = deadline if due is None else min(due, deadline)
        self._notify(
            self.observer.node_parked,
            execution_id=self.execution_id,
            node=node,
            node_index=step.index,
            visit=step.visit,
            parked=parked,
        )
        trace.get_current_span().set_attributes(
            {"node.status": parked.status, "node.waiting_for": parked.waiting_for}
        )
        with self.lock:
            self.parked.append(due)
        return _Parked(node.id)

    def _sleep(self, node: WorkflowNode, config: dict[str, Any], step: _Step) -> dict[str, Any]:
        due = step.parked.wake_at if step.parked and step.parked.wake_at else None
        due = due or sleep_due(config, node.id, _now())
        if self.waits is None:
            self._wait_until(due)
        elif _now() < due:
            raise self._park(node, step, Parked("sleeping", due))
        # As JavaScript's toISOString(), the API's time format.
        return {"sleptUntil": due.astimezone(UTC).isoformat(timespec="milliseconds")[:23] + "Z"}

    def _wait(self, node: WorkflowNode, config: dict[str, Any], step: _Step) -> Any:
        name = signal_name(config, node.id)
        timeout = wait_timeout_ms(config, node.id)
        waits = self._durable(node)
        taken, payload = waits.take_signal(node_id=node.id, visit=step.visit, name=name)
        if taken:
            return payload
        if step.parked is not None:
            due = step.parked.wake_at
        else:
            due = None if timeout is None else _now() + timedelta(milliseconds=timeout)
        if due is not None and _now() >= due:
            raise TimeoutError(f"Node {node.id} waited {timeout} ms for signal '{name}'")
        raise self._park(node, step, Parked("waiting", due, f"signal:{name}"))

    def _subworkflow(
        self, node: WorkflowNode, config: dict[str, Any], step: _Step
    ) -> dict[str, Any]:
        workflow_id, child_input = child_workflow(config, node.id)
        waits = self._durable(node)
        child = waits.start_child(
            node_id=node.id, visit=step.visit, workflow_id=workflow_id, input=child_input
        )
        if child is None:  # no room to start it yet: ask again in a moment
            retry_at = _now() + timedelta(seconds=1)
            raise self._park(node, step, Parked("waiting", retry_at, f"workflow:{workflow_id}"))
        outcome = waits.child_outcome(child)
        if outcome is None:
            raise self._park(node, step, Parked("waiting", None, f"execution:{child}"))
        if outcome.status != "completed":
            raise SubworkflowFailed(
                f"Sub-workflow {workflow_id} ({child}) {outcome.status}: "
                f"{outcome.error_message or outcome.status}"
            )
        return {"executionId": child, "outputs": outcome.outputs}

    def _durable(self, node: WorkflowNode) -> Waits:
        if self.waits is None:
            raise WorkflowError(
                f"Node {node.id}: a {node.type} node needs a durable runner to wait from "
                "(run it through executions, not run_workflow alone)"
            )
        return self.waits

    def _condition(self, node: WorkflowNode) -> tuple[dict[str, Any], str | None]:
        config = node.config
        with self.lock:
            variables, outputs = dict(self.variables), dict(self.outputs)
        if node.predicate is not None:
            label = config.get("predicate") or getattr(node.predicate, "__name__", "predicate")
            value = node.predicate(PredicateContext(variables, outputs, self.input))
        elif config.get("expression"):
            label = config["expression"]
            value = evaluate(label, variables=variables, outputs=outputs, input=self.input)
        else:
            raise WorkflowError(f"Condition node {node.id} is missing expression or predicate")
        taken = bool(value)
        branch = config.get("trueBranch" if taken else "falseBranch")
        trace.get_current_span().set_attributes(
            {
                "condition.expression": str(label),
                "condition.result": taken,
                "condition.branch_taken": branch or "",
            }
        )
        return {"result": taken, "branch": branch}, branch

    def _parallel(self, node: WorkflowNode, step: _Step) -> dict[str, Any]:
        branch_ids = node.config.get("branches")
        wait_for_all = node.config.get("waitForAll", True)
        if not isinstance(branch_ids, list) or not branch_ids:
            raise WorkflowError(f"Parallel node {node.id} missing branches")
        shared = _Branches(statuses=dict.fromkeys(branch_ids, "running"))
        pool = ThreadPoolExecutor(max_workers=len(branch_ids), thread_name_prefix="c4c-branch")
        futures = {
            pool.submit(contextvars.copy_context().run, self._run_branch, branch_id, shared): (
                branch_id
            )
            for branch_id in branch_ids
        }
        failures: list[str] = []
        parked: list[str] = []
        winner: str | None = None
        pending = set(futures)
        try:
            while pending and (wait_for_all or winner is None):
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    branch_id, exc = futures[future], future.exception()
                    if isinstance(exc, _RunAborted | _ObserverFailed):
                        raise exc
                    if isinstance(exc, _Parked):
                        shared.statuses[branch_id] = "waiting"
                        parked.append(branch_id)
                    elif isinstance(exc, _NodeFailed):
                        shared.statuses[branch_id] = "failed"
                        failures.append(f"branch {branch_id} failed: {exc.error.message}")
                    elif exc is not None:
                        raise exc
                    else:
                        shared.statuses[branch_id] = "completed"
                        winner = winner or branch_id
        finally:
            with self.lock:
                shared.detached = True
                self.stragglers.extend(pending)
            pool.shutdown(wait=False)
        if failures and (wait_for_all or winner is None):
            raise ParallelBranchError(f"Parallel node {node.id}: {'; '.join(failures)}")
        if parked and (wait_for_all or winner is None):
            raise self._park(node, step, Parked("waiting", None, "branches:" + ",".join(parked)))
        return {"branches": dict(shared.statuses)}

    def _run_branch(self, branch_id: str, shared: _Branches) -> None:
        node_id: str | None = branch_id
        try:
            while node_id is not None:
                handler_id, recovered = self._run_node(node_id, shared)
                node_id = handler_id if recovered else None
        finally:
            self.observer.branch_thread_finished()
