"""What a procedure knows about its run: ids, attempt, idempotency key, the current context."""

import threading

import pytest
from pydantic import BaseModel

from workflows.checkpoints import Checkpoint
from workflows.context import ProcedureContext, current_context
from workflows.registry import ProcedureRegistry, procedure

from .helpers import chain


class Value(BaseModel):
    value: int = 0


@pytest.fixture
def seen(registry) -> list[ProcedureContext]:
    """`t.look` keeps the context it was given; it fails its first `value` attempts."""
    contexts: list[ProcedureContext] = []

    @procedure("t.look", registry=registry)
    def look(data: Value, ctx: ProcedureContext) -> Value:
        assert current_context() is ctx
        contexts.append(ctx)
        if ctx.attempt <= data.value:
            raise ConnectionError("not yet")
        return Value(value=ctx.attempt)

    return contexts


def test_a_procedure_gets_its_execution_node_attempt_and_visit(run, registry, seen) -> None:
    retry = {"maxAttempts": 2, "initialIntervalMs": 0}
    run(
        chain({"id": "n", "procedureName": "t.look", "config": {"value": 1}, "retry": retry}),
        registry=registry,
    )
    assert [(c.execution_id, c.node_id, c.attempt, c.visit) for c in seen] == [
        ("test-wf", "n", 1, 1),
        ("test-wf", "n", 2, 1),
    ]


def test_idempotency_key_is_stable_across_attempts_and_resume(run, registry, seen) -> None:
    retry = {"maxAttempts": 3, "initialIntervalMs": 0}
    definition = chain(
        {"id": "n", "procedureName": "t.look", "config": {"value": 2}, "retry": retry}
    )
    run(definition, registry=registry)
    run(definition, checkpoints=[Checkpoint("n", "running", attempt=2)], registry=registry)

    keys = {c.idempotency_key for c in seen}
    assert [c.attempt for c in seen] == [1, 2, 3, 3]
    assert len(keys) == 1
    assert len({c.attempt_key for c in seen[:3]}) == 3
    assert seen[2].attempt_key == seen[3].attempt_key  # the same attempt number, resumed


def test_idempotency_key_differs_per_execution_node_and_visit() -> None:
    def key(execution_id: str, node_id: str, visit: int) -> str:
        return ProcedureContext(
            execution_id=execution_id, node_id=node_id, visit=visit
        ).idempotency_key

    base = key("wf_exec_1", "charge", 1)
    assert base.startswith("c4c-")
    assert len(base) == 44
    assert (
        len(
            {
                base,
                key("wf_exec_2", "charge", 1),
                key("wf_exec_1", "refund", 1),
                key("wf_exec_1", "charge", 2),
            }
        )
        == 4
    )


class Ticks(BaseModel):
    ticks: int = 0


def test_a_loop_gives_each_visit_its_own_key(run, registry) -> None:
    contexts: list[ProcedureContext] = []

    @procedure("t.tick", registry=registry)
    def tick(data: Ticks, ctx: ProcedureContext) -> Ticks:
        contexts.append(ctx)
        return Ticks(ticks=data.ticks + 1)

    loop = chain(
        {"id": "tick", "procedureName": "t.tick", "next": "again"},
        {
            "id": "again",
            "type": "condition",
            "config": {"expression": "ticks < 3", "trueBranch": "tick"},
        },
    )
    assert run(loop, registry=registry).status == "completed"
    assert [(c.visit, c.attempt) for c in contexts] == [(1, 1), (2, 1), (3, 1)]
    assert len({c.idempotency_key for c in contexts}) == 3


def test_current_context_outside_a_procedure_is_an_error() -> None:
    with pytest.raises(LookupError, match="only available while a procedure runs"):
        current_context()


def test_a_call_outside_a_run_gets_a_standalone_context() -> None:
    registry = ProcedureRegistry()
    keys: list[str] = []

    @procedure("t.standalone", registry=registry)
    def standalone(data: Value) -> Value:
        ctx = current_context()
        keys.append(ctx.idempotency_key)
        assert (ctx.node_id, ctx.attempt, ctx.cancelled) == ("t.standalone", 1, False)
        return data

    proc = registry.get("t.standalone")
    assert proc is not None
    proc.invoke({"value": 1})
    proc.invoke({"value": 1})
    assert len(set(keys)) == 2


def test_a_never_stopped_context_sleeps_the_full_time() -> None:
    ctx = ProcedureContext(execution_id="e", node_id="n")
    done = threading.Event()

    def sleep_then_set() -> None:
        ctx.sleep(0.05)
        done.set()

    thread = threading.Thread(target=sleep_then_set)
    thread.start()
    thread.join(2)
    assert done.is_set()
    assert not ctx.cancelled


def test_a_second_parameter_must_be_the_context() -> None:
    with pytest.raises(TypeError, match="annotated ProcedureContext"):

        @procedure("t.bad", registry=ProcedureRegistry())
        def bad(data: Value, other: int) -> Value:
            return data
