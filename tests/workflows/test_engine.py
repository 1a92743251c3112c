"""The engine runs each node type with c4c's semantics and reports every step."""

import asyncio
import time
from typing import Any

import pytest

from workflows.builder import Workflow, sequential, step
from workflows.engine import run_workflow

from .helpers import chain, run_concurrently


def test_procedure_input_is_config_merged_with_variables_config_winning(run, observer) -> None:
    result = run(
        chain(
            {"id": "one", "procedureName": "test.increment", "config": {"value": 1}},
            {"id": "two", "procedureName": "test.increment"},
            {"id": "three", "procedureName": "test.increment", "config": {"value": 10}},
        )
    )
    assert result.status == "completed"
    assert result.outputs == {"one": {"value": 2}, "two": {"value": 3}, "three": {"value": 11}}
    assert result.nodes_executed == ["one", "two", "three"]
    started = [kw["input"] for hook, kw in observer.calls if hook == "node_started"]
    assert started == [{"value": 1}, {"value": 2}, {"value": 10}]


def test_run_input_and_workflow_variables_reach_procedures(run) -> None:
    definition = chain(
        {"id": "add", "procedureName": "math.add", "config": {"b": 1}},
        variables={"a": 100, "b": 7},
    )
    assert run(definition, {"a": 5}).outputs == {"add": {"result": 6}}
    assert run(definition).outputs == {"add": {"result": 101}}


def test_observer_hears_every_step_in_order(run, observer) -> None:
    result = run(
        chain(
            {"id": "a", "procedureName": "math.add", "config": {"a": 1, "b": 2}},
            {"id": "b", "procedureName": "math.multiply", "config": {"a": 2, "b": 3}},
        )
    )
    assert observer.hooks == [
        "execution_started",
        "node_started",
        "node_completed",
        "node_started",
        "node_completed",
        "execution_finished",
    ]
    first = observer.calls[2][1]
    assert (first["node"].id, first["node_index"], first["next_node_id"]) == ("a", 0, "b")
    assert first["output"] == {"result": 3}
    assert observer.calls[-1][1]["result"] is result
    assert result.execution_time_ms >= 0


def test_failed_node_marks_execution_failed(run, observer) -> None:
    result = run(
        chain(
            {"id": "explode", "procedureName": "test.boom", "config": {"value": 7}},
            {"id": "never", "procedureName": "test.increment"},
        )
    )
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.name, result.error.message) == ("RuntimeError", "boom at 7")
    assert "Traceback" in result.error.stack
    assert result.nodes_executed == ["explode"]
    failure = observer.failure("explode")
    assert failure["error"].message == "boom at 7"
    assert failure["handled_by"] is None
    assert observer.hooks[-1] == "execution_finished"


def test_on_error_sends_the_run_to_the_handler_with_the_error(run, observer) -> None:
    result = run(
        chain(
            {
                "id": "explode",
                "procedureName": "test.boom",
                "config": {"value": 3},
                "next": "after",
                "onError": "recover",
            },
            {
                "id": "recover",
                "procedureName": "custom.log",
                "config": {"message": "recovered from {{error.nodeId}}: {{error.message}}"},
                "next": None,
            },
            {"id": "after", "procedureName": "test.increment"},
        )
    )
    assert result.status == "completed"
    assert result.nodes_executed == ["explode", "recover"]
    assert result.outputs["recover"]["message"] == "recovered from explode: boom at 3"
    assert observer.failure("explode")["handled_by"] == "recover"


def test_async_procedures_run_to_completion(run) -> None:
    result = run(
        chain({"id": "double", "procedureName": "test.async_double", "config": {"value": 21}})
    )
    assert result.outputs == {"double": {"value": 42}}


def test_async_procedure_works_when_called_from_a_running_event_loop(run) -> None:
    async def main() -> Any:
        return run(chain({"id": "d", "procedureName": "test.async_double", "config": {"value": 2}}))

    assert asyncio.run(main()).outputs == {"d": {"value": 4}}


def test_condition_takes_true_and_false_branches(run) -> None:
    definition = chain(
        {
            "id": "check",
            "type": "condition",
            "config": {"expression": "value > 10", "trueBranch": "big", "falseBranch": "small"},
        },
        {"id": "big", "procedureName": "custom.log", "config": {"message": "big"}, "next": None},
        {"id": "small", "procedureName": "custom.log", "config": {"message": "small"}},
    )
    assert run(definition, {"value": 11}).nodes_executed == ["check", "big"]
    assert run(definition, {"value": 3}).nodes_executed == ["check", "small"]


def test_condition_sees_outputs_input_and_get(run, observer) -> None:
    result = run(
        chain(
            {"id": "add", "procedureName": "math.add", "config": {"a": 2, "b": 3}},
            {
                "id": "check",
                "type": "condition",
                "config": {
                    "expression": "get('add').result == 5 and outputs.add.result == result "
                    "and input.flag",
                    "trueBranch": "yes",
                },
            },
            {"id": "yes", "type": "sequential"},
        ),
        {"flag": True},
    )
    assert result.nodes_executed == ["add", "check", "yes"]
    assert observer.completed_output("check") == {"result": True, "branch": "yes"}


def test_condition_expression_error_fails_the_node(run, observer) -> None:
    result = run(
        chain(
            {
                "id": "check",
                "type": "condition",
                "config": {"expression": "missing_name > 1", "trueBranch": "a", "falseBranch": "a"},
            },
            {"id": "a", "type": "sequential"},
        )
    )
    assert result.status == "failed"
    assert "missing_name" in result.error.message
    assert observer.failure("check")["error"].name == "ExpressionError"


def test_condition_without_branch_ends_the_run(run) -> None:
    result = run(
        chain(
            {
                "id": "check",
                "type": "condition",
                "config": {"expression": "False", "trueBranch": "check"},
            }
        )
    )
    assert (result.status, result.nodes_executed) == ("completed", ["check"])


def test_python_predicate_from_the_builder_decides(run) -> None:
    definition = (
        Workflow("predicate")
        .procedure("add", "math.add", config={"a": 1, "b": 1})
        .condition(
            "is-two",
            predicate=lambda ctx: ctx.get("add")["result"] == 2 and ctx.variables["result"] == 2,
            when_true="yes",
            when_false="no",
        )
        .add(sequential("yes"))
        .add(sequential("no"))
        .build()
    )
    assert run(definition).nodes_executed == ["add", "is-two", "yes"]


def test_sequential_passes_through(run, observer) -> None:
    result = run(
        chain(
            {"id": "pass", "type": "sequential"},
            {"id": "add", "procedureName": "math.add", "config": {"a": 1, "b": 2}},
        )
    )
    assert result.nodes_executed == ["pass", "add"]
    assert observer.completed_output("pass") is None
    assert "pass" not in result.outputs


def test_trigger_records_the_event_it_was_started_with(run) -> None:
    definition = chain(
        {"id": "on-order", "type": "trigger"},
        {"id": "add", "procedureName": "math.add", "config": {"b": 1}},
    )
    result = run(definition, trigger_event={"a": 41, "kind": "order.created"})
    assert result.outputs["on-order"] == {"a": 41, "kind": "order.created"}
    assert result.outputs["add"] == {"result": 42}
    by_hand = run(definition, {"a": 1})
    assert by_hand.outputs["on-order"] == {"a": 1}


def test_unknown_node_type_fails_the_node(run) -> None:
    result = run(chain({"id": "odd", "type": "teleport"}))
    assert (result.status, result.error.message) == ("failed", "Unknown node type: teleport")


def test_missing_next_node_fails_the_run(run) -> None:
    result = run(chain({"id": "a", "type": "sequential", "next": "ghost"}))
    assert result.status == "failed"
    assert result.error.message == "Node ghost not found in workflow"


def test_unknown_procedure_fails_the_node(run) -> None:
    result = run(chain({"id": "a", "procedureName": "no.such.proc"}))
    assert result.error.message == "Procedure no.such.proc not found in registry"


def test_bad_input_names_the_field_and_fails_the_node(run, observer) -> None:
    result = run(chain({"id": "add", "procedureName": "math.add", "config": {"a": "ten", "b": 1}}))
    assert result.status == "failed"
    assert result.error.name == "ProcedureInputError"
    assert (
        result.error.message == "Input to math.add is invalid: a: Input should be a number, not str"
    )
    assert observer.failure("add")["error"].name == "ProcedureInputError"


def test_missing_input_field_is_named(run) -> None:
    result = run(chain({"id": "add", "procedureName": "math.add", "config": {"a": 1}}))
    assert result.error.message == "Input to math.add is invalid: b: Field required"


def test_bad_output_names_the_field_and_fails_the_node(run) -> None:
    result = run(chain({"id": "bad", "procedureName": "test.bad_output"}))
    assert result.status == "failed"
    assert result.error.name == "ProcedureOutputError"
    assert result.error.message.startswith("Output of test.bad_output is invalid: value:")


def test_templates_resolve_from_outputs_and_input_keeping_types(run, observer) -> None:
    result = run(
        chain(
            {"id": "add", "procedureName": "math.add", "config": {"a": "{{input.x}}", "b": 5}},
            {
                "id": "log",
                "procedureName": "custom.log",
                "config": {"message": "sum={{add.result}} of {{input.x}} items={{input.items}}"},
            },
            {
                "id": "double",
                "procedureName": "math.multiply",
                "config": {"a": "{{ add.result }}", "b": "{{input.items.1}}"},
            },
        ),
        {"x": 10, "items": [1, 2]},
    )
    assert result.status == "completed"
    assert result.outputs["add"] == {"result": 15}
    assert result.outputs["log"]["message"] == "sum=15 of 10 items=[1,2]"
    assert result.outputs["double"] == {"result": 30}


def test_template_to_missing_value_fails_the_node_with_the_reference(run, observer) -> None:
    result = run(
        chain({"id": "add", "procedureName": "math.add", "config": {"a": "{{input.nope}}", "b": 1}})
    )
    assert result.status == "failed"
    assert result.error.name == "TemplateError"
    assert result.error.message == "Template {{input.nope}}: input has no 'nope'"
    assert observer.hooks[:3] == ["execution_started", "node_started", "node_failed"]


def test_run_stops_after_max_steps(run) -> None:
    loop = chain(
        {"id": "inc", "procedureName": "test.increment", "next": "again"},
        {
            "id": "again",
            "type": "condition",
            "config": {"expression": "value < 1000000", "trueBranch": "inc"},
        },
    )
    result = run(loop, {"value": 0}, max_steps=50)
    assert result.status == "failed"
    assert result.error.name == "MaxStepsExceeded"
    assert "more than 50 node runs" in result.error.message
    assert len(result.nodes_executed) == 50


def test_max_steps_defaults_to_the_setting(run, settings) -> None:
    settings.C4C_MAX_STEPS = 5
    loop = chain(
        {"id": "inc", "procedureName": "test.increment", "next": "again"},
        {"id": "again", "type": "condition", "config": {"expression": "True", "trueBranch": "inc"}},
    )
    assert len(run(loop).nodes_executed) == 5


def test_loop_through_condition_runs_until_it_exits(run) -> None:
    loop = chain(
        {"id": "inc", "procedureName": "test.increment", "next": "again"},
        {
            "id": "again",
            "type": "condition",
            "config": {"expression": "value < 5", "trueBranch": "inc", "falseBranch": "done"},
        },
        {"id": "done", "type": "sequential"},
    )
    result = run(loop, {"value": 0})
    assert result.status == "completed"
    assert result.outputs["inc"] == {"value": 5}
    assert result.nodes_executed.count("inc") == 5


def _parallel(wait_for_all: bool, *branches: dict[str, Any]) -> dict[str, Any]:
    return chain(
        {
            "id": "fan",
            "type": "parallel",
            "next": "after",
            "config": {"branches": [b["id"] for b in branches], "waitForAll": wait_for_all},
        },
        *({**b, "next": None} for b in branches),
        {"id": "after", "type": "sequential"},
    )


@pytest.mark.slow
def test_parallel_wait_for_all_runs_branches_concurrently(run, observer) -> None:
    definition = _parallel(
        True,
        {"id": "s1", "procedureName": "test.sleep", "config": {"ms": 300}},
        {"id": "s2", "procedureName": "test.sleep", "config": {"ms": 300}},
        {"id": "s3", "procedureName": "test.sleep", "config": {"ms": 300}},
    )
    began = time.monotonic()
    result = run(definition)
    elapsed = time.monotonic() - began
    assert result.status == "completed"
    assert elapsed < 0.8, f"branches ran one after another ({elapsed:.2f}s)"
    assert set(result.nodes_executed) == {"fan", "s1", "s2", "s3", "after"}
    assert result.nodes_executed[-1] == "after"
    assert observer.completed_output("fan") == {
        "branches": {"s1": "completed", "s2": "completed", "s3": "completed"}
    }
    indexes = [kw["node_index"] for hook, kw in observer.calls if hook == "node_started"]
    assert sorted(indexes) == list(range(5))


def test_every_branch_thread_tells_the_observer_it_is_finishing(run, observer) -> None:
    definition = _parallel(
        True,
        {"id": "ok", "procedureName": "test.sleep", "config": {"ms": 10}},
        {"id": "bad", "procedureName": "test.boom", "config": {"value": 1}},
    )
    run(definition)
    assert observer.branch_threads_finished == 2


def test_parallel_wait_for_all_fails_when_a_branch_fails(run, observer) -> None:
    definition = _parallel(
        True,
        {"id": "ok", "procedureName": "test.sleep", "config": {"ms": 50}},
        {"id": "bad", "procedureName": "test.boom", "config": {"value": 1}},
    )
    result = run(definition)
    assert result.status == "failed"
    assert result.error.name == "ParallelBranchError"
    assert result.error.message == "Parallel node fan: branch bad failed: boom at 1"
    assert observer.completed_output("ok") == {"ms": 50}
    assert "after" not in result.nodes_executed


@pytest.mark.slow
def test_parallel_first_success_continues_and_waits_for_the_rest_before_finishing(
    run, observer
) -> None:
    definition = _parallel(
        False,
        {"id": "fast", "procedureName": "test.sleep", "config": {"ms": 10}},
        {"id": "slow", "procedureName": "test.increment", "config": {"value": 99}},
    )
    definition["nodes"][2] = {
        "id": "slow",
        "type": "procedure",
        "procedureName": "test.sleep",
        "config": {"ms": 400},
    }
    result = run(definition)
    assert result.status == "completed"
    hooks = [(h, kw["node"].id) for h, kw in observer.calls if "node" in kw]
    assert hooks.index(("node_completed", "fan")) < hooks.index(("node_completed", "slow"))
    assert hooks.index(("node_started", "after")) < hooks.index(("node_completed", "slow"))
    assert observer.hooks[-1] == "execution_finished"
    assert result.outputs["slow"] == {"ms": 400}
    assert observer.completed_output("fan")["branches"] == {"fast": "completed", "slow": "running"}


def test_parallel_first_success_ignores_failed_branches(run) -> None:
    definition = _parallel(
        False,
        {"id": "bad", "procedureName": "test.boom"},
        {"id": "good", "procedureName": "test.sleep", "config": {"ms": 100}},
    )
    assert run(definition).status == "completed"


def test_parallel_first_success_fails_when_every_branch_fails(run) -> None:
    definition = _parallel(
        False,
        {"id": "bad1", "procedureName": "test.boom", "config": {"value": 1}},
        {"id": "bad2", "procedureName": "test.sleep_then_fail", "config": {"ms": 20}},
    )
    result = run(definition)
    assert result.status == "failed"
    assert "branch bad1 failed: boom at 1" in result.error.message
    assert "branch bad2 failed: failed after 20 ms" in result.error.message


def test_parallel_branch_on_error_handler_runs_inside_the_branch(run) -> None:
    definition = _parallel(
        True,
        {"id": "bad", "procedureName": "test.boom", "onError": "fix"},
        {"id": "good", "procedureName": "test.increment"},
    )
    definition["nodes"].append(
        {
            "id": "fix",
            "type": "procedure",
            "procedureName": "custom.log",
            "config": {"message": "fixed {{error.message}}"},
        }
    )
    result = run(definition)
    assert result.status == "completed"
    assert result.outputs["fix"]["message"] == "fixed boom at 0"
    assert result.nodes_executed[-1] == "after"


class _ExplodingObserver:
    def __init__(self, hook: str) -> None:
        self.hook = hook

    def __getattr__(self, name: str) -> Any:
        def hook(**kwargs: Any) -> None:
            if name == self.hook:
                raise ConnectionError(f"{name} could not be recorded")

        return hook


@pytest.mark.parametrize(
    ("hook", "definition"),
    [
        (hook, Workflow("wf").procedure("add", "math.add", config={"a": 1, "b": 2}).build())
        for hook in ("execution_started", "node_started", "node_completed", "execution_finished")
    ]
    + [
        (
            "node_completed",
            Workflow("wf")
            .parallel("fan", [step("a", "test.increment"), step("b", "test.increment")])
            .build(),
        ),
        ("node_failed", Workflow("wf").procedure("boom", "test.boom").build()),
    ],
    ids=["started", "node-started", "node-completed", "finished", "parallel-branch", "failure"],
)
def test_observer_errors_propagate(hook, definition, test_registry) -> None:
    with pytest.raises(ConnectionError, match="could not be recorded"):
        run_workflow(
            definition,
            None,
            execution_id="x",
            observer=_ExplodingObserver(hook),
            registry=test_registry,
        )


def test_concurrent_runs_do_not_share_state(test_registry) -> None:
    definition = (
        Workflow("wf")
        .procedure("inc", "test.increment")
        .procedure("inc2", "test.increment")
        .build()
    )
    results = run_concurrently(definition, test_registry, input_for=lambda n: {"value": n})
    assert all(results[n].outputs["inc2"] == {"value": n + 2} for n in range(16))
