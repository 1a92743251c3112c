"""The builder produces the same definitions as c4c's JSON."""

import pytest

from workflows.builder import Workflow, condition, parallel, sequential, step
from workflows.engine import PredicateContext

from .helpers import C4C_SIMPLE_MATH


def test_linear_chain_matches_c4c_simple_math_json() -> None:
    definition = (
        Workflow(
            "simple-math-workflow",
            name="Simple Math Workflow",
            description="Basic math operations workflow for testing",
        )
        .procedure("add", "math.add", config={"a": 10, "b": 5})
        .procedure("multiply", "math.multiply", config={"a": 3, "b": 2})
        .procedure("subtract", "math.subtract", config={"a": 20, "b": 8})
        .build()
    )
    data = definition.to_json_dict()
    assert data == C4C_SIMPLE_MATH
    assert data["startNode"] == "add"
    assert [(n["id"], n.get("next")) for n in data["nodes"]] == [
        ("add", "multiply"),
        ("multiply", "subtract"),
        ("subtract", None),
    ]
    assert data["nodes"][0] == {
        "id": "add",
        "type": "procedure",
        "procedureName": "math.add",
        "config": {"a": 10, "b": 5},
        "next": "multiply",
    }


def test_condition_branches_both_continue_to_the_next_step() -> None:
    definition = (
        Workflow("wf")
        .procedure("fetch", "data.fetch", config={"source": "users"})
        .condition(
            "check",
            expression="count > 2",
            when_true=step("yes", "custom.log", config={"message": "y"}),
            when_false=step("no", "custom.log", config={"message": "n"}),
        )
        .procedure("done", "custom.log", config={"message": "done"})
        .build()
    )
    nodes = {n.id: n for n in definition.nodes}
    assert nodes["check"].config == {
        "expression": "count > 2",
        "trueBranch": "yes",
        "falseBranch": "no",
    }
    assert nodes["yes"].next == "done"
    assert nodes["no"].next == "done"
    assert nodes["fetch"].next == "check"


def test_parallel_branches_and_continuation() -> None:
    definition = (
        Workflow("wf")
        .parallel("fan", [step("a", "math.add"), step("b", "math.add")], wait_for_all=False)
        .sequential("after")
        .build()
    )
    nodes = {n.id: n for n in definition.nodes}
    assert nodes["fan"].config == {"branches": ["a", "b"], "waitForAll": False}
    assert nodes["fan"].next == "after"
    assert nodes["a"].next is None


def test_string_targets_loop_back_and_on_error_handlers_are_added_unlinked() -> None:
    definition = (
        Workflow("wf", variables={"value": 0})
        .procedure("work", "math.add", on_error="recover")
        .condition("again", expression="result < 3", when_true="work")
        .add(step("recover", "custom.log", config={"message": "x"}).then(sequential("end")))
        .build()
    )
    nodes = {n.id: n for n in definition.nodes}
    assert nodes["again"].config == {"expression": "result < 3", "trueBranch": "work"}
    assert nodes["work"].on_error == "recover"
    assert nodes["recover"].next == "end"
    assert definition.variables == {"value": 0}
    assert definition.name == "wf"


def test_predicate_stays_in_code_and_out_of_json() -> None:
    def is_big(ctx: PredicateContext) -> bool:
        value: int = ctx.variables["value"]
        return value > 10

    definition = (
        Workflow("wf").condition("big", predicate=is_big, when_true="x").sequential("x").build()
    )
    node = definition.node("big")
    assert node is not None
    assert node.predicate is is_big
    assert node.to_json_dict()["config"] == {"predicate": "is_big", "trueBranch": "x"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: condition("c"), "exactly one of expression= or predicate="),
        (lambda: parallel("p", [step("a", "x").then(step("b", "x"))]), "must be a single node"),
        (lambda: Workflow("w").sequential("a").sequential("a").build(), "used twice"),
        (lambda: Workflow("w").build(), "has no nodes"),
    ],
)
def test_builder_mistakes_are_reported(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_linking_a_node_twice_is_refused() -> None:
    first = step("a", "x")
    first.then(step("b", "x"))
    with pytest.raises(ValueError, match="Node a already continues to b; cannot also go to c"):
        first.then(step("c", "x"))
