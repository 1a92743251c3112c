"""Run a workflow definition, reporting each step to a RunObserver and tracing it in OTel.

Semantics follow c4c's runtime (packages/workflow/src/runtime.ts), with the differences marked:

- The run starts at `startNode` and follows each node's next node until there is none. Variables
  start as the definition's `variables` updated with the run input.
- procedure: input is the node's config (templates rendered, see workflows.templates) merged with
  the variables; a config key wins over a variable of the same name (the contract's
  `procedure.input` shows `{"a":3,"b":2,"result":15}` for multiply). Its output is kept per node
  and merged into the variables. When `next` is a list, the first entry is taken (as c4c).
- condition: `expression` (sandboxed, workflows.expressions) or a Python predicate from the builder
  chooses `trueBranch` or `falseBranch`; a missing branch ends the run. An expression that errors
  fails the node (c4c took the false branch silently).
- parallel: each id in `branches` runs in its own thread (the OTel context is copied, so branch
  spans are children of the parallel node's span). A branch is its one node - its `next` is not
  followed, as in c4c - plus that node's onError handler if it fails. `waitForAll` (default true):
  every branch must succeed, else the parallel node fails naming the failed branches. With
  `waitForAll: false` the run continues after the first branch succeeds; the other branches keep
  running (Python threads cannot be stopped), their node runs are still reported and their outputs
  kept per node, but they no longer merge into the variables the rest of the run sees, and the run
  waits for them before it finishes so that nothing is reported after execution_finished.
- sequential: passes through to its next node. trigger: records the event data the run was
  started with (`trigger_event`, or the run input when started by hand) as its output.
- A failed node with `onError` continues at the handler node; the failure is then available as
  the variable `error` = {nodeId, name, message} (templates `{{error.message}}`, expressions
  `error.message`, and procedure inputs). Without onError the run fails with the node's error.
- More than `max_steps` node runs (settings.C4C_MAX_STEPS, default 10000) fail the run; this is not
  a node failure, so onError cannot loop past it.

Workflow failures never raise: run_workflow returns a failed RunResult. Exceptions raised by the
observer do propagate, because a run that cannot be recorded must not carry on unseen.
"""

import contextvars
import itertools
import json
import threading
import traceback
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, format_trace_id

from .conf import app_settings
from .definitions import WorkflowDefinition, WorkflowNode
from .errors import (
    MaxStepsExceeded,
    NodeNotFound,
    ParallelBranchError,
    ProcedureNotFound,
    WorkflowError,
)
from .expressions import evaluate
from .observer import ErrorInfo, RunObserver, RunResult
from .registry import ProcedureRegistry, procedure_registry
from .templates import has_templates, render

MAX_ATTRIBUTE_CHARS = 4096

TRACER_NAME = "c4c.workflows"


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
) -> RunResult:
    """Run `definition` to the end on the calling thread and return how it went."""
    run = _Run(
        definition,
        dict(input or {}),
        execution_id=execution_id,
        observer=observer,
        registry=registry if registry is not None else procedure_registry(),
        max_steps=_resolve_max_steps(max_steps),
        trigger_event=trigger_event,
    )
    try:
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


def _attribute_json(value: Any) -> str:
    """Compact JSON for a span attribute, cut at MAX_ATTRIBUTE_CHARS so big payloads stay cheap."""
    try:
        text = _attribute_encode(value)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > MAX_ATTRIBUTE_CHARS:
        return text[:MAX_ATTRIBUTE_CHARS] + "...(truncated)"
    return text


def _procedure_attributes(node_input: Any, output: dict[str, Any]) -> dict[str, str]:
    return {
        "procedure.input": _attribute_json(node_input),
        "procedure.output": _attribute_json(output),
        "procedure.output_keys": ",".join(output),
    }


class _NodeFailed(Exception):
    """A node failed and had no onError handler: its branch, or the run, fails with `error`."""

    def __init__(self, error: ErrorInfo, cause: BaseException) -> None:
        super().__init__(error.message)
        self.error = error
        self.cause = cause


class _RunAborted(_NodeFailed):
    """The run must stop whatever handlers exist (too many steps, a missing node)."""


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
    ) -> None:
        self.definition = definition
        self.input = input
        self.execution_id = execution_id
        self.observer = observer
        self.registry = registry
        self.max_steps = max_steps
        self.trigger_event = trigger_event
        self.nodes = {node.id: node for node in definition.nodes}
        self.templated = frozenset(
            node.id
            for node in definition.nodes
            if node.type == "procedure" and has_templates(node.config)
        )
        self.variables: dict[str, Any] = {**definition.variables, **input}
        self.outputs: dict[str, Any] = {}
        self.nodes_executed: list[str] = []
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

    def execute(self) -> RunResult:
        definition = self.definition
        started_at = _now()
        active = trace.get_current_span().get_span_context()
        error: ErrorInfo | None = None
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
            except _NodeFailed as failed:
                error = failed.error
                root.record_exception(failed.cause)
            finally:
                self._join_stragglers()
            ended_at = _now()
            result = RunResult(
                execution_id=self.execution_id,
                workflow_id=definition.id,
                status="failed" if error else "completed",
                started_at=started_at,
                ended_at=ended_at,
                outputs=dict(self.outputs),
                nodes_executed=list(self.nodes_executed),
                error=error,
                trace_id=trace_id,
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
            else:
                root.set_status(Status(StatusCode.OK))
        self.observer.execution_finished(result=result)
        return result

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
            raise _RunAborted(error_info(exc), exc)
        index = next(self.steps)
        if index >= self.max_steps:
            exc = MaxStepsExceeded(
                f"Workflow {self.definition.id} stopped: more than {self.max_steps} node runs "
                f"(the maximum) - does it loop without end?"
            )
            raise _RunAborted(error_info(exc), exc)
        with self.lock:
            self.nodes_executed.append(node_id)
            if branches is None:
                self.current = (node_id, index, len(self.nodes_executed))
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
            self._notify(
                self.observer.node_started,
                execution_id=self.execution_id,
                node=node,
                node_index=index,
                input=node_input,
                started_at=_now(),
            )
            if failure is None:
                try:
                    output, next_id = self._execute(node, node_input, branches)
                except (_RunAborted, _ObserverFailed):
                    raise
                except Exception as exc:
                    failure = exc
            if failure is None:
                if span.is_recording():
                    done = {"node.status": "completed"}
                    if node.type == "procedure":
                        done = {**_procedure_attributes(node_input, output), **done}
                    if next_id is not None:
                        done["node.next"] = next_id
                    span.set_attributes(done)
                span.set_status(Status(StatusCode.OK))
                self._notify(
                    self.observer.node_completed,
                    execution_id=self.execution_id,
                    node=node,
                    node_index=index,
                    output=output,
                    next_node_id=next_id,
                    ended_at=_now(),
                )
                return next_id, False
            error = error_info(failure)
            failed = {"node.status": "failed", "node.error": error.message}
            if node.type == "procedure" and span.is_recording():
                failed["procedure.input"] = _attribute_json(node_input)
            span.set_attributes(failed)
            span.record_exception(failure)
            span.set_status(Status(StatusCode.ERROR, error.message))
            self._notify(
                self.observer.node_failed,
                execution_id=self.execution_id,
                node=node,
                node_index=index,
                error=error,
                handled_by=node.on_error,
                ended_at=_now(),
            )
        if node.on_error is None:
            raise _NodeFailed(error, failure)
        with self.lock:
            self.variables["error"] = {
                "nodeId": node.id,
                "name": error.name,
                "message": error.message,
            }
        return node.on_error, True

    @staticmethod
    def _notify(hook: Any, **kwargs: Any) -> None:
        try:
            hook(**kwargs)
        except Exception as exc:
            raise _ObserverFailed(exc) from exc

    def _node_input(self, node: WorkflowNode) -> dict[str, Any]:
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
    ) -> tuple[Any, str | None]:
        following = node.next_ids[0] if node.next_ids else None
        match node.type:
            case "procedure":
                return self._procedure(node, node_input, branches), following
            case "condition":
                return self._condition(node)
            case "parallel":
                return self._parallel(node), following
            case "sequential":
                return None, following
            case "trigger":
                self._keep_output(node.id, node_input, branches)
                return node_input, following
        raise WorkflowError(f"Unknown node type: {node.type}")

    def _keep_output(self, node_id: str, output: Any, branches: _Branches | None) -> None:
        with self.lock:
            self.outputs[node_id] = output
            if isinstance(output, dict) and (branches is None or not branches.detached):
                self.variables.update(output)

    def _procedure(
        self,
        node: WorkflowNode,
        node_input: dict[str, Any],
        branches: _Branches | None,
    ) -> dict[str, Any]:
        name = node.procedure_name
        if not name:
            raise WorkflowError(f"Procedure node {node.id} missing procedureName")
        proc = self.registry.get(name)
        if proc is None:
            raise ProcedureNotFound(f"Procedure {name} not found in registry")
        with self.tracer.start_as_current_span(proc.name, attributes={"procedure.name": proc.name}):
            output = proc.invoke(node_input)
        self._keep_output(node.id, output, branches)
        return output

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

    def _parallel(self, node: WorkflowNode) -> dict[str, Any]:
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
        winner: str | None = None
        pending = set(futures)
        try:
            while pending and (wait_for_all or winner is None):
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    branch_id, exc = futures[future], future.exception()
                    if isinstance(exc, _RunAborted | _ObserverFailed):
                        raise exc
                    if isinstance(exc, _NodeFailed):
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
        return {"branches": dict(shared.statuses)}

    def _run_branch(self, branch_id: str, shared: _Branches) -> None:
        node_id: str | None = branch_id
        try:
            while node_id is not None:
                handler_id, recovered = self._run_node(node_id, shared)
                node_id = handler_id if recovered else None
        finally:
            self.observer.branch_thread_finished()
