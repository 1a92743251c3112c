"""Resuming from checkpoints: done node runs are replayed, not run; an interrupted one reruns."""

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from workflows.checkpoints import Checkpoint
from workflows.context import ProcedureContext, RunControl
from workflows.observer import ErrorInfo
from workflows.registry import procedure

from .helpers import Background, chain


class Value(BaseModel):
    value: int = 0


@pytest.fixture
def calls(registry) -> Counter[tuple[str, int]]:
    """`t.count` adds 1 to its input and counts its calls per (node id, attempt)."""
    counted: Counter[tuple[str, int]] = Counter()

    @procedure("t.count", registry=registry)
    def count(data: Value, ctx: ProcedureContext) -> Value:
        counted[ctx.node_id, ctx.attempt] += 1
        return Value(value=data.value + 1)

    return counted


def _step(node_id: str, **extra):
    return {"id": node_id, "procedureName": "t.count", **extra}


def test_completed_nodes_are_not_run_again_and_the_interrupted_one_is_a_new_attempt(
    run, observer, registry, calls
) -> None:
    definition = chain(
        _step("a", config={"value": 10}),
        _step("b"),
        _step("c"),
        {
            "id": "d",
            "procedureName": "custom.log",
            "config": {"message": "a={{a.value}} c={{c.value}}"},
        },
    )
    result = run(
        definition,
        checkpoints=[
            Checkpoint("a", "completed", output={"value": 11}),
            Checkpoint("b", "completed", output={"value": 12}),
            Checkpoint("c", "running", attempt=1),
        ],
        registry=registry,
    )
    assert result.status == "completed"
    assert calls == {("c", 2): 1}
    assert result.outputs["c"] == {"value": 13}
    assert result.outputs["d"]["message"] == "a=11 c=13"
    assert result.nodes_executed == ["a", "b", "c", "d"]
    assert observer.node_events("a") == observer.node_events("b") == []
    assert observer.node_hooks("c") == ["node_attempt_started", "node_completed"]
    assert observer.calls_of("node_attempt_started")[0]["attempt"] == 2
    assert observer.completed_output("c") == {"value": 13}
    assert observer.node_hooks("d") == ["node_started", "node_completed"]
    assert observer.calls_of("node_started")[0]["node_index"] == 3


def test_a_loop_resumes_at_the_visit_it_reached(run, registry, calls) -> None:
    loop = chain(
        _step("inc", next="again"),
        {
            "id": "again",
            "type": "condition",
            "config": {"expression": "value < 5", "trueBranch": "inc", "falseBranch": "done"},
        },
        {"id": "done", "type": "sequential"},
    )
    checkpoints = []
    for visit in (1, 2, 3):
        checkpoints.append(Checkpoint("inc", "completed", visit=visit, output={"value": visit}))
        checkpoints.append(
            Checkpoint("again", "completed", visit=visit, output={"result": True, "branch": "inc"})
        )
    checkpoints.append(Checkpoint("inc", "running", visit=4, attempt=1))

    result = run(loop, {"value": 0}, checkpoints=checkpoints, registry=registry)

    assert result.status == "completed"
    assert result.outputs["inc"] == {"value": 5}
    assert calls == {("inc", 2): 1, ("inc", 1): 1}  # visit 4 as attempt 2, then visit 5
    assert result.nodes_executed.count("inc") == 5


def test_a_replayed_condition_follows_its_stored_branch(run, registry, calls) -> None:
    definition = chain(
        {
            "id": "check",
            "type": "condition",
            "config": {"expression": "True", "trueBranch": "yes", "falseBranch": "no"},
        },
        _step("yes", next=None),
        _step("no"),
    )
    stored = Checkpoint("check", "completed", output={"result": False, "branch": "no"})
    result = run(definition, checkpoints=[stored], registry=registry)
    assert result.nodes_executed == ["check", "no"]


def test_parallel_branches_resume_each_from_their_own_checkpoint(
    run, observer, registry, calls
) -> None:
    definition = chain(
        {"id": "fan", "type": "parallel", "config": {"branches": ["x", "y"]}, "next": "after"},
        _step("x", next=None),
        _step("y", next=None),
        {"id": "after", "procedureName": "custom.log", "config": {"message": "x={{x.value}}"}},
    )
    result = run(
        definition,
        checkpoints=[
            Checkpoint("fan", "running", attempt=1),
            Checkpoint("x", "completed", output={"value": 7}),
            Checkpoint("y", "running", attempt=1),
        ],
        registry=registry,
    )
    assert result.status == "completed"
    assert calls == {("y", 2): 1}
    assert result.outputs["after"]["message"] == "x=7"
    assert observer.node_events("x") == []
    assert observer.node_hooks("y") == ["node_attempt_started", "node_completed"]
    assert observer.node_hooks("fan") == ["node_attempt_started", "node_completed"]
    assert observer.completed_output("fan") == {"branches": {"x": "completed", "y": "completed"}}


def test_a_completed_parallel_node_replays_its_branches_quietly(
    run, observer, registry, calls
) -> None:
    definition = chain(
        {"id": "fan", "type": "parallel", "config": {"branches": ["x", "y"]}, "next": "after"},
        _step("x", next=None),
        _step("y", next=None),
        _step("after", config={"value": 100}),
    )
    result = run(
        definition,
        checkpoints=[
            Checkpoint("fan", "completed", output={"branches": {"x": "completed"}}),
            Checkpoint("x", "completed", output={"value": 1}),
            Checkpoint("y", "completed", output={"value": 2}),
        ],
        registry=registry,
    )
    assert result.outputs == {"x": {"value": 1}, "y": {"value": 2}, "after": {"value": 101}}
    assert calls == {("after", 1): 1}
    assert [h for h, kw in observer.calls if "node" in kw] == ["node_started", "node_completed"]


@pytest.mark.slow
def test_a_run_resumed_during_a_backoff_waits_only_what_is_left(
    run, observer, registry, calls
) -> None:
    definition = chain(_step("call", retry={"maxAttempts": 3, "initialIntervalMs": 60_000}))
    due = datetime.now(UTC) + timedelta(milliseconds=300)
    began = time.monotonic()
    result = run(
        definition,
        checkpoints=[Checkpoint("call", "waiting", attempt=1, retry_at=due)],
        registry=registry,
    )
    waited = time.monotonic() - began
    assert result.outputs == {"call": {"value": 1}}
    assert calls == {("call", 2): 1}
    assert 0.25 <= waited < 2.0
    started = observer.calls_of("node_attempt_started")[0]
    assert (started["attempt"], started["started_at"] >= due) == (2, True)


def test_a_retry_that_was_already_due_runs_at_once(run, registry, calls) -> None:
    definition = chain(_step("call", retry={"maxAttempts": 3, "initialIntervalMs": 60_000}))
    overdue = datetime.now(UTC) - timedelta(minutes=5)
    began = time.monotonic()
    run(
        definition,
        checkpoints=[Checkpoint("call", "waiting", attempt=2, retry_at=overdue)],
        registry=registry,
    )
    assert time.monotonic() - began < 1.0
    assert calls == {("call", 3): 1}


def test_reused_checkpoints_are_reported_as_reused_and_not_run(
    run, observer, registry, calls
) -> None:
    definition = chain(_step("a", config={"value": 1}), _step("b"), _step("c"))
    a = Checkpoint("a", "completed", output={"value": 2}, reused=True)
    b = Checkpoint("b", "completed", output={"value": 3}, reused=True)
    result = run(definition, checkpoints=[a, b], registry=registry)

    assert result.outputs["c"] == {"value": 4}
    assert calls == {("c", 1): 1}
    reused = observer.calls_of("node_reused")
    assert [(kw["node"].id, kw["node_index"], kw["checkpoint"]) for kw in reused] == [
        ("a", 0, a),
        ("b", 1, b),
    ]
    assert [h for h, _ in observer.calls] == [
        "execution_started",
        "node_reused",
        "node_reused",
        "node_started",
        "node_completed",
        "execution_finished",
    ]


def test_a_failed_checkpoint_goes_to_its_handler_with_the_stored_error(
    run, registry, calls
) -> None:
    definition = chain(
        _step("risky", onError="recover", next=None),
        {
            "id": "recover",
            "procedureName": "custom.log",
            "config": {"message": "{{error.message}}"},
        },
    )
    error = ErrorInfo(name="ConnectionError", message="service down")
    result = run(definition, checkpoints=[Checkpoint("risky", "failed", error=error)])
    assert result.outputs["recover"]["message"] == "service down"
    assert calls == {}


def test_a_failed_checkpoint_without_handler_fails_the_run_again(run, registry, calls) -> None:
    error = ErrorInfo(name="ConnectionError", message="service down")
    result = run(
        chain(_step("risky"), _step("never")),
        checkpoints=[Checkpoint("risky", "failed", error=error)],
    )
    assert (result.status, result.error.message) == ("failed", "service down")
    assert calls == {}


def test_a_resumed_run_counts_its_workflow_timeout_from_the_first_start(
    run, registry, calls
) -> None:
    first_start = datetime.now(UTC) - timedelta(seconds=10)
    result = run(
        chain(_step("a"), timeoutMs=5000),
        started_at=first_start,
        registry=registry,
    )
    assert (result.status, result.error.name) == ("failed", "TimeoutError")
    assert result.started_at == first_start
    assert calls == {}


@pytest.mark.parametrize(
    ("checkpoints", "problem"),
    [
        ([Checkpoint("a", "waiting")], "needs retry_at"),
        ([Checkpoint("a", "failed")], "needs its error"),
        ([Checkpoint("a", "running", reused=True)], "can be reused"),
        ([Checkpoint("a", "completed"), Checkpoint("a", "completed")], "given twice"),
        ([Checkpoint("a", "completed", visit=0)], "count from 1"),
        ([Checkpoint("a", "paused")], "unknown status"),  # type: ignore[arg-type]
    ],
)
def test_checkpoints_the_engine_cannot_follow_are_refused(run, checkpoints, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        run(chain({"id": "a", "procedureName": "custom.noop"}), checkpoints=checkpoints)


def test_a_cancel_during_a_resumed_wait_fails_the_node_at_its_last_attempt(
    run, observer, registry, calls
) -> None:
    control = RunControl()
    due = datetime.now(UTC) + timedelta(minutes=5)
    definition = chain(_step("call", retry={"maxAttempts": 3}))
    background = Background(
        lambda: run(
            definition,
            checkpoints=[Checkpoint("call", "waiting", attempt=1, retry_at=due)],
            control=control,
            registry=registry,
        )
    )
    time.sleep(0.1)
    control.cancel()
    result = background.join(1.0)
    assert result is not None
    assert result.status == "cancelled"
    assert observer.node_hooks("call") == ["node_failed"]
    assert observer.failure("call")["attempt"] == 1
    assert calls == {}
