"""Every store write, from every status of its row and of the parent execution, against the tables.

The cases are the tables' own statuses, so a status added to EXECUTION_TRANSITIONS or
NODE_TRANSITIONS is driven through every write without editing this file. A write the tables allow
must happen; one they refuse must raise (or return None or False, for the lease writes) and change
nothing: no row, no node, no counter. Every write a run makes is also fenced by its lease: from a
process that does not hold it, the same write changes nothing either.
"""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from executions import store
from executions.models import (
    EXECUTION_TRANSITIONS,
    NODE_TRANSITIONS,
    Execution,
    ExecutionCounter,
    ExecutionStatus,
    NodeExecution,
    NodeStatus,
)
from tests import factories
from workflows.definitions import WorkflowDefinition
from workflows.observer import ErrorInfo, RunResult

pytestmark = pytest.mark.django_db

EXECUTION_STATUSES = list(EXECUTION_TRANSITIONS)
NODE_STATUSES = list(NODE_TRANSITIONS)
# Another process, whose lease a write from this test's process does not hold.
OTHER_OWNER = "host-b:8000/4194305/other"


def may(transitions: dict[str, frozenset[str]], source: str, target: str) -> bool:
    return target in transitions[source]


def takes_node_writes(execution_status: str) -> bool:
    """An execution takes node writes while the table lets it go somewhere (it is unfinished)."""
    return bool(EXECUTION_TRANSITIONS[execution_status])


def snapshot() -> tuple[list[Any], list[Any], dict[str, int]]:
    """Everything a write could touch: every execution, every node run, every counter."""
    return (
        list(Execution.objects.order_by("pk").values()),
        list(NodeExecution.objects.order_by("pk").values()),
        dict(ExecutionCounter.objects.values_list("status", "count")),
    )


def counters() -> Counter[str]:
    return Counter(dict(ExecutionCounter.objects.values_list("status", "count")))


def put_execution(execution: Execution, status: str) -> Execution:
    """Place a stored run in `status`, its counters with it (states no store path may reach)."""
    previous = Execution.objects.get(pk=execution.pk).status
    Execution.objects.filter(pk=execution.pk).update(status=status)
    ExecutionCounter.objects.filter(status=previous).update(count=F("count") - 1)
    ExecutionCounter.objects.get_or_create(status=status)
    ExecutionCounter.objects.filter(status=status).update(count=F("count") + 1)
    return Execution.objects.get(pk=execution.pk)


@contextmanager
def leased_to(owner: str) -> Iterator[None]:
    """While inside, another process holds the run's lease (as after a takeover)."""
    execution = Execution.objects.get()
    Execution.objects.filter(pk=execution.pk).update(lease_owner=owner)
    try:
        yield
    finally:
        Execution.objects.filter(pk=execution.pk).update(lease_owner=execution.lease_owner)


def run_in(
    workflow: WorkflowDefinition,
    execution_status: str,
    node_status: str | None = None,
    *,
    owner: str | None = None,
) -> tuple[Execution, NodeExecution | None]:
    """A run stored in `execution_status`, with its first node in `node_status` (None: no row)."""
    execution = factories.execution(
        status="running",
        workflow=workflow,
        execution_id="exec-1",
        input={"x": 1},
        started_at=timezone.now() - timedelta(seconds=1),
        owner=owner,
    )
    node = None
    if node_status is not None:
        started = store.node_start(
            execution=execution,
            node=workflow.nodes[0],
            node_index=0,
            input={"a": 1},
            started_at=timezone.now() - timedelta(milliseconds=500),
        )
        NodeExecution.objects.filter(pk=started.pk).update(status=node_status)
        node = NodeExecution.objects.select_related("execution").get(pk=started.pk)
    return put_execution(execution, execution_status), node


@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_start_over_a_stored_run_in_any_status_is_refused(math_workflow, status) -> None:
    run_in(math_workflow, status)
    before = snapshot()
    with pytest.raises(store.DuplicateExecution):
        run_in(math_workflow, ExecutionStatus.RUNNING)
    assert snapshot() == before


@pytest.mark.parametrize("target", EXECUTION_STATUSES)
@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_finish_happens_exactly_when_the_table_allows(math_workflow, status, target) -> None:
    execution, _ = run_in(math_workflow, status)
    result = RunResult(
        execution_id=execution.execution_id,
        workflow_id=execution.workflow_id,
        status=target,
        started_at=execution.started_at,
        ended_at=timezone.now(),
        outputs={"add": {"result": 15}},
    )
    before, counts = snapshot(), counters()
    if not may(EXECUTION_TRANSITIONS, status, target):
        with pytest.raises(store.TransitionError, match=f"is {status}; it cannot become {target}"):
            store.execution_finish(execution=execution, result=result)
        assert snapshot() == before
        return
    with leased_to(OTHER_OWNER), pytest.raises(store.TransitionError, match=OTHER_OWNER):
        store.execution_finish(execution=execution, result=result)
    assert snapshot() == before
    store.execution_finish(execution=execution, result=result)
    row = Execution.objects.get()
    assert (row.status, row.outputs) == (target, {"add": {"result": 15}})
    assert counters() == counts + Counter({target: 1}) - Counter({status: 1})


@pytest.mark.parametrize("node_status", NODE_STATUSES)
@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_cancel_happens_exactly_when_the_tables_allow(math_workflow, status, node_status) -> None:
    run_in(math_workflow, status, node_status)
    before, counts = snapshot(), counters()
    if not may(EXECUTION_TRANSITIONS, status, ExecutionStatus.CANCELLED):
        with pytest.raises(store.TransitionError, match="cannot be cancelled"):
            store.execution_cancel(execution_id="exec-1")
        assert snapshot() == before
        return
    store.execution_cancel(execution_id="exec-1")
    assert Execution.objects.get().status == ExecutionStatus.CANCELLED
    skipped = may(NODE_TRANSITIONS, node_status, NodeStatus.SKIPPED)
    assert NodeExecution.objects.get().status == (NodeStatus.SKIPPED if skipped else node_status)
    assert counters() == counts + Counter({ExecutionStatus.CANCELLED: 1}) - Counter({status: 1})


@pytest.mark.parametrize("owned", [False, True])
@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_claim_happens_exactly_for_an_unowned_unfinished_run(math_workflow, status, owned) -> None:
    run_in(math_workflow, status, owner="other/1/aaaa" if owned else "")
    before = snapshot()
    claimed = store.execution_claim(execution_id="exec-1", owner="worker/2/bbbb")
    if owned or not takes_node_writes(status):
        assert claimed is None
        assert snapshot() == before
        return
    assert claimed is not None
    assert claimed.lease_owner == Execution.objects.get().lease_owner == "worker/2/bbbb"


@pytest.mark.parametrize("owned", [False, True])
@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_take_over_happens_exactly_for_an_unfinished_run_as_read(
    math_workflow, status, owned
) -> None:
    """The compare-and-set of the sweep: from the owner and expiry read, while unfinished."""
    run_in(math_workflow, status, owner=OTHER_OWNER if owned else "")
    read = Execution.objects.get()
    before = snapshot()
    taken = store.execution_take_over(execution=read, owner="sweeper/3/cccc")
    if not takes_node_writes(status):
        assert taken is None
        assert snapshot() == before
        return
    assert taken is not None
    row = Execution.objects.get()
    assert row.lease_owner == "sweeper/3/cccc"
    assert row.lease_expires_at is not None
    assert read.lease_expires_at is not None
    assert row.lease_expires_at > read.lease_expires_at - timedelta(seconds=1)
    # A waiting run that is taken up runs again: its counter moves with it.
    moved = Counter(before[2]) + Counter({"running": 1}) - Counter({status: 1})
    assert row.status == "running"
    assert counters() == moved


@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_renewal_happens_exactly_for_an_unfinished_run_of_its_owner(math_workflow, status) -> None:
    execution, _ = run_in(math_workflow, status)
    factories.lapse(execution)
    before = snapshot()
    renewed = store.leases_renew(
        owner=store.process_owner(), execution_ids=[execution.execution_id]
    )
    assert store.leases_renew(owner=OTHER_OWNER, execution_ids=[execution.execution_id]) == 0
    if not takes_node_writes(status):
        assert renewed == 0
        assert snapshot() == before
        return
    assert renewed == 1
    renewed_until = Execution.objects.get().lease_expires_at
    assert renewed_until is not None
    assert renewed_until > timezone.now()


@pytest.mark.parametrize("owned", [False, True])
@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_discard_happens_exactly_for_a_running_run_nobody_claimed(
    math_workflow, status, owned
) -> None:
    execution, _ = run_in(math_workflow, status, owner=OTHER_OWNER if owned else "")
    before, counts = snapshot(), counters()
    if owned or status != ExecutionStatus.RUNNING:
        assert not store.execution_discard(execution=execution)
        assert snapshot() == before
        return
    assert store.execution_discard(execution=execution)
    assert not Execution.objects.exists()
    assert counters() == counts - Counter({status: 1})


@pytest.mark.parametrize("node_status", [None, *NODE_STATUSES])
@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_node_start_happens_exactly_when_the_tables_allow(
    math_workflow, status, node_status
) -> None:
    """None: the node has no row yet, which only the execution's status can refuse."""
    run_in(math_workflow, status, node_status)
    before = snapshot()
    allowed = takes_node_writes(status) and (
        node_status is None or may(NODE_TRANSITIONS, node_status, NodeStatus.RUNNING)
    )

    execution = Execution.objects.get()

    def start() -> NodeExecution:
        return store.node_start(
            execution=execution,
            node=math_workflow.nodes[0],
            node_index=5,
            input={"a": 2},
            started_at=timezone.now(),
        )

    if not allowed:
        with pytest.raises(store.TransitionError, match=f"Execution 'exec-1' is {status}"):
            start()
        assert snapshot() == before
        return
    with leased_to(OTHER_OWNER), pytest.raises(store.TransitionError, match=OTHER_OWNER):
        start()
    assert snapshot() == before
    started = start()
    row = NodeExecution.objects.get()
    assert row.pk == started.pk
    assert (row.status, row.input, row.output, row.error, row.ended_at, row.sequence) == (
        NodeStatus.RUNNING,
        {"a": 2},
        None,
        None,
        None,
        0 if node_status else 5,
    )
    assert snapshot()[2] == before[2]


@pytest.mark.parametrize("target", [NodeStatus.COMPLETED, NodeStatus.FAILED])
@pytest.mark.parametrize("node_status", NODE_STATUSES)
@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_node_finish_happens_exactly_when_the_tables_allow(
    math_workflow, status, node_status, target
) -> None:
    _, node = run_in(math_workflow, status, node_status)
    assert node is not None
    before = snapshot()
    allowed = takes_node_writes(status) and may(NODE_TRANSITIONS, node_status, target)

    def finish() -> NodeExecution:
        if target == NodeStatus.COMPLETED:
            return store.node_complete(node=node, output={"result": 2}, ended_at=timezone.now())
        error = ErrorInfo(name="ValueError", message="boom")
        return store.node_fail(node=node, error=error, ended_at=timezone.now())

    if not allowed:
        expected = f"Execution 'exec-1' is {status} \\(node add is {node_status}\\)"
        with pytest.raises(store.TransitionError, match=expected):
            finish()
        assert snapshot() == before
        return
    with leased_to(OTHER_OWNER), pytest.raises(store.TransitionError, match=OTHER_OWNER):
        finish()
    assert snapshot() == before
    finish()
    row = NodeExecution.objects.get()
    assert row.status == target
    assert row.duration_ms is not None
    assert row.ended_at is not None
    if target == NodeStatus.COMPLETED:
        assert row.output == {"result": 2}
    else:
        assert row.error == ErrorInfo(name="ValueError", message="boom").to_json_dict()
    assert snapshot()[2] == before[2]


@pytest.mark.parametrize("write", ["attempt_fail", "attempt_start"])
@pytest.mark.parametrize("node_status", NODE_STATUSES)
@pytest.mark.parametrize("status", EXECUTION_STATUSES)
def test_attempt_writes_happen_exactly_when_the_tables_allow(
    math_workflow, status, node_status, write
) -> None:
    """A retry's writes keep the node run running: running -> running, from the table."""
    _, node = run_in(math_workflow, status, node_status)
    assert node is not None
    before = snapshot()
    allowed = takes_node_writes(status) and may(NODE_TRANSITIONS, node_status, NodeStatus.RUNNING)

    def attempt() -> NodeExecution:
        if write == "attempt_fail":
            return store.node_attempt_fail(
                node=node,
                error=ErrorInfo(name="ConnectionError", message="down"),
                ended_at=timezone.now(),
                retry_at=timezone.now() + timedelta(seconds=1),
            )
        return store.node_attempt_start(node=node, attempt=2, started_at=timezone.now())

    if not allowed:
        with pytest.raises(store.TransitionError, match=f"Execution 'exec-1' is {status}"):
            attempt()
        assert snapshot() == before
        return
    with leased_to(OTHER_OWNER), pytest.raises(store.TransitionError, match=OTHER_OWNER):
        attempt()
    assert snapshot() == before
    attempt()
    row = NodeExecution.objects.get()
    assert row.status == NodeStatus.RUNNING
    assert row.attempt == (2 if write == "attempt_start" else 1)
    assert [a["status"] for a in factories.attempts_of(row)] == (
        ["failed", "running"] if write == "attempt_start" else ["failed"]
    )
    assert snapshot()[2] == before[2]
