"""Executions for tests, built through the doors production uses: the store and the runtime.

`execution()` writes a run in any state through `executions.store` (no engine, no events), so
counters, guards and payload bounds are the real ones and a test reads as its scenario;
`started_run()` and `finished_run()` go through `executions.runtime`, events included. Nothing
here creates rows or moves counters by hand: a test that needs a row the store would never write
makes it itself and says why. The one exception is `lapse()`, which does what only time does: a
lease that its dead owner stopped renewing runs out.
"""

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import TestCase
from django.utils import timezone

from accounts.models import ApiToken
from executions import runtime, store
from executions.models import (
    Execution,
    ExecutionStatus,
    NodeExecution,
    NodeStatus,
    Span,
    WebhookHook,
)
from tests.workflows.helpers import C4C_SIMPLE_MATH
from workflows.definitions import WorkflowDefinition
from workflows.observer import ErrorInfo, RunResult, RunStatus
from workflows.registry import ProcedureRegistry, procedure_registry
from workflows.secrets import Redactor

Workflow = WorkflowDefinition | Mapping[str, Any]

# How long a built run takes, and where each node sits in it: fixed, so pages show stable figures.
RUN_TIME = timedelta(milliseconds=1200)
NODE_GAP = timedelta(milliseconds=10)
NODE_TIME = timedelta(milliseconds=5)
NODE_ERROR = ErrorInfo(name="ValueError", message="bad")

_numbers = itertools.count(1)


def definition(workflow: Workflow | None = None) -> WorkflowDefinition:
    """A definition from c4c JSON (default: the seed's simple-math workflow)."""
    if isinstance(workflow, WorkflowDefinition):
        return workflow
    return WorkflowDefinition.model_validate(dict(workflow or C4C_SIMPLE_MATH))


def run_result(
    execution: Execution,
    *,
    status: str = ExecutionStatus.COMPLETED,
    ended_at: datetime | None = None,
    outputs: dict[str, Any] | None = None,
    nodes_executed: Sequence[str] = (),
    error: ErrorInfo | None = None,
) -> RunResult:
    """What the engine hands the store when `execution` ends."""
    return RunResult(
        execution_id=execution.execution_id,
        workflow_id=execution.workflow_id,
        status=cast(RunStatus, status),
        started_at=execution.started_at,
        ended_at=ended_at or timezone.now(),
        outputs=outputs or {},
        nodes_executed=list(nodes_executed),
        error=error,
    )


def execution(
    *,
    status: str = ExecutionStatus.COMPLETED,
    workflow: Workflow | None = None,
    execution_id: str | None = None,
    started_at: datetime | None = None,
    input: dict[str, Any] | None = None,
    nodes: Mapping[str, str] | None = None,
    error: ErrorInfo | None = None,
    spans: int = 0,
    owner: str | None = None,
    node_outputs: Mapping[str, Any] | None = None,
    rerun_of: str | None = None,
) -> Execution:
    """A run of `workflow` left in `status`, written step by step through the store.

    `nodes` maps node ids to how each node ended (running, completed or failed), in the order they
    ran: node i starts NODE_GAP * i after the run, takes {"n": i} and returns {"result": i}, or
    what `node_outputs` names for its id.
    `owner` is the process holding the run's lease (default: this one; "" queued for a worker). A
    finished run ends RUN_TIME after it started; a failed one carries `error` (default
    NODE_ERROR). `spans` spans are recorded: the run's root and its children. `rerun_of` names
    the execution it re-runs.
    """
    defined = definition(workflow)
    started = started_at or timezone.now() - timedelta(seconds=30)
    row = store.execution_start(
        execution_id=execution_id or f"wf_exec_test_{next(_numbers)}",
        definition=defined,
        input=input if input is not None else {},
        started_at=started,
        owner=owner,
        rerun_of=rerun_of,
    )
    outputs = _run_nodes(row, defined, started, nodes or {}, node_outputs or {})
    if status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
        failed = status == ExecutionStatus.FAILED
        store.execution_finish(
            execution=row,
            result=run_result(
                row,
                status=status,
                ended_at=started + RUN_TIME,
                outputs=outputs,
                nodes_executed=list(outputs),
                error=error or (NODE_ERROR if failed else None),
            ),
        )
    elif status == ExecutionStatus.CANCELLED:
        row = store.execution_cancel(execution_id=row.execution_id)
    elif status != ExecutionStatus.RUNNING:
        raise ValueError(f"an execution cannot be {status!r}")
    if spans:
        store.spans_record(execution=row, spans=_spans(row, spans))
    return row


def _run_nodes(
    row: Execution,
    defined: WorkflowDefinition,
    started: datetime,
    nodes: Mapping[str, str],
    node_outputs: Mapping[str, Any],
) -> dict[str, Any]:
    """Start and end each node as the engine would; returns the completed nodes' outputs."""
    outputs: dict[str, Any] = {}
    for index, (node_id, node_status) in enumerate(nodes.items()):
        node = defined.node(node_id)
        if node is None:
            raise ValueError(f"{defined.id} has no node {node_id!r}")
        at = started + NODE_GAP * index
        ran = store.node_start(
            execution=row, node=node, node_index=index, input={"n": index}, started_at=at
        )
        if node_status == NodeStatus.COMPLETED:
            output = node_outputs.get(node_id, {"result": index})
            store.node_complete(node=ran, output=output, ended_at=at + NODE_TIME)
            outputs[node_id] = output
        elif node_status == NodeStatus.FAILED:
            store.node_fail(node=ran, error=NODE_ERROR, ended_at=at + NODE_TIME)
        elif node_status != NodeStatus.RUNNING:
            raise ValueError(f"a node ends running, completed or failed, not {node_status!r}")
    return outputs


def _spans(row: Execution, count: int) -> list[Span]:
    """The root span and count - 1 node spans under it, listed newest first.

    Newest first, so a read that forgets to order spans by start time shows it.
    """
    start_us = int(row.started_at.timestamp() * 1_000_000)
    trace_id = f"{row.pk:032x}"
    root = Span(
        trace_id=trace_id,
        span_id=f"{0:016x}",
        name="workflow.execute",
        start_time_us=start_us,
        end_time_us=start_us + RUN_TIME // timedelta(microseconds=1),
        status_code="OK",
        attributes={"workflow.id": row.workflow_id, "workflow.execution_id": row.execution_id},
    )
    children = [
        Span(
            trace_id=trace_id,
            span_id=f"{i:016x}",
            parent_span_id=root.span_id,
            name="workflow.node.procedure",
            start_time_us=start_us + i * 1_000,
            end_time_us=start_us + i * 1_000 + 500,
            status_code="OK",
            attributes={"node.id": f"n{i}"},
        )
        for i in range(1, count)
    ]
    return [*reversed(children), root]


def started_run(
    *,
    workflow: Workflow | None = None,
    execution_id: str | None = None,
    input: dict[str, Any] | None = None,
    owner: str | None = None,
) -> Execution:
    """A run the runtime has recorded as running (its start events sent), as a server leaves it
    before the engine takes over; owner "" is a run queued for a Celery worker."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return runtime.start(
            definition=definition(workflow),
            input=input or {},
            execution_id=execution_id,
            owner=owner,
        )


def finished_run(
    *,
    workflow: Workflow | None = None,
    execution_id: str | None = None,
    input: dict[str, Any] | None = None,
) -> Execution:
    """A whole run through the runtime and the engine, every event sent as after a real commit.

    Call it outside django_capture_on_commit_callbacks: that would send these events again.
    """
    defined = definition(workflow)
    with TestCase.captureOnCommitCallbacks(execute=True):
        row = runtime.start(definition=defined, input=input or {}, execution_id=execution_id)
        runtime.run(execution=row, definition=defined, input=input or {})
    return row


def interrupted_run(
    *,
    workflow: Workflow,
    input: dict[str, Any],
    completed: Mapping[str, Any],
    running: str,
    owner: str,
) -> Execution:
    """A run whose process (`owner`) died while node `running` was in flight, after the nodes of
    `completed` (node id -> the output it returned, in walk order) had ended: recorded by the
    runtime's own recorder, as that process did (secrets redacted and sealed), events included."""
    defined = definition(workflow)
    row = started_run(workflow=defined, input=input, owner=owner)
    recorder = runtime.ExecutionRecorder(row, redactor=Redactor.for_run(defined, input))
    steps = [*completed, running]
    with TestCase.captureOnCommitCallbacks(execute=True):
        for index, node_id in enumerate(steps):
            node = defined.node(node_id)
            assert node is not None, f"{defined.id} has no node {node_id}"
            at = timezone.now()
            recorder.node_started(
                execution_id=row.execution_id,
                node=node,
                node_index=index,
                visit=1,
                input={**input, **node.config},
                started_at=at,
            )
            if node_id in completed:
                recorder.node_completed(
                    execution_id=row.execution_id,
                    node=node,
                    node_index=index,
                    visit=1,
                    attempt=1,
                    output=completed[node_id],
                    next_node_id=steps[index + 1],
                    ended_at=at + NODE_TIME,
                )
    return row


def lapse(execution: Execution, *, ago: timedelta = timedelta(seconds=1)) -> Execution:
    """Let the run's lease run out `ago`, as it does when its owner died and stopped renewing it
    (time does this, not a store write: hence the one UPDATE here)."""
    expired = timezone.now() - ago
    Execution.objects.filter(pk=execution.pk).update(lease_expires_at=expired)
    execution.lease_expires_at = expired
    return execution


def node_run(execution: Execution, node_id: str) -> NodeExecution:
    """The latest recorded run of `node_id` in `execution` (its last visit)."""
    return NodeExecution.objects.filter(execution=execution, node_id=node_id).latest("visit")


def attempts_of(row: NodeExecution) -> list[dict[str, Any]]:
    """The node run's recorded attempts (a list only once there was more than one)."""
    assert row.attempts is not None, f"{row} ran one attempt: it has no attempt list"
    return list(row.attempts)


def user(
    username: str | None = None,
    *,
    groups: Sequence[str] = (),
    permissions: Sequence[str] = (),
    **fields: Any,
) -> Any:
    """A user with the password `password`, in the named groups (the migration's) and holding
    `permissions` ("executions.view_execution", ...) of its own."""
    made = get_user_model().objects.create_user(
        username=username or f"user-{next(_numbers)}", password="password", **fields
    )
    made.groups.set(Group.objects.filter(name__in=groups))
    codenames = [permission.split(".", 1)[1] for permission in permissions]
    made.user_permissions.set(
        Permission.objects.filter(content_type__app_label="executions", codename__in=codenames)
    )
    return made


def api_token(owner: Any = None, *, permissions: Sequence[str] = (), name: str = "") -> str:
    """A fresh API token (the full one, as issued) of `owner`, or of a new user holding
    `permissions`."""
    _, token = ApiToken.objects.issue(owner or user(permissions=permissions), name)
    return token


def webhook_hook(
    hook_id: str = "orders",
    workflow_id: str = "hook-order",
    *,
    enabled: bool = True,
    idempotency_header: str | None = None,
) -> tuple[WebhookHook, str]:
    """A hook made as the admin makes one (executions.store), and its secret, shown this once."""
    return store.hook_create(
        hook_id=hook_id,
        workflow_id=workflow_id,
        enabled=enabled,
        idempotency_header=idempotency_header,
    )


def procedures(monkeypatch: pytest.MonkeyPatch, own: ProcedureRegistry) -> None:
    """Every procedure of `own` in the process's registry, for this test only: the registry has
    no way to take one back out, so setitem restores it when the test ends."""
    for proc in own.all():
        monkeypatch.setitem(procedure_registry()._procedures, proc.name, proc)
