"""Validation reports every problem at once, in c4c's words."""

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.builder import Workflow, sequential
from workflows.limits import MAX_ID_CHARS, MAX_JSON_DEPTH, MAX_NAME_CHARS, MAX_VERSION_CHARS
from workflows.validation import parse_definition, validate_definition

from .helpers import C4C_SIMPLE_MATH, chain


def _errors(data: dict[str, Any]) -> list[str]:
    definition, errors = parse_definition(data)
    assert definition is not None, errors
    return errors


def test_contract_bad_definition_gives_c4c_messages() -> None:
    errors = _errors(
        {
            "id": "bad",
            "name": "Bad",
            "version": "1.0.0",
            "startNode": "nope",
            "nodes": [
                {
                    "id": "add",
                    "type": "procedure",
                    "procedureName": "no.such.proc",
                    "next": "missing",
                }
            ],
        }
    )
    assert errors == [
        "Start node nope not found",
        "Node add: procedure no.such.proc not found in registry",
        "Node add: next node missing not found",
    ]


def test_sound_definition_has_no_errors() -> None:
    assert _errors(C4C_SIMPLE_MATH) == []


def test_every_problem_is_reported_at_once() -> None:
    errors = _errors(
        {
            "id": "wf",
            "startNode": "ghost",
            "nodes": [
                {"id": "p", "type": "procedure", "next": ["a", "nowhere"], "onError": "lost"},
                {"id": "a", "type": "teleport"},
                {
                    "id": "c",
                    "type": "condition",
                    "config": {"trueBranch": "t?", "falseBranch": "a"},
                },
                {
                    "id": "d",
                    "type": "condition",
                    "config": {"expression": "1 +", "trueBranch": "a"},
                },
                {
                    "id": "f",
                    "type": "parallel",
                    "config": {"branches": ["a", "b?"], "waitForAll": "y"},
                },
                {"id": "g", "type": "parallel", "config": {}},
                {
                    "id": "t",
                    "type": "procedure",
                    "procedureName": "math.add",
                    "config": {"a": "{{stranger.value}}", "b": "{{input.b}}"},
                },
                {"id": "a", "type": "sequential"},
            ],
        }
    )
    assert errors == [
        "Start node ghost not found",
        "Node p: procedure node needs a procedureName",
        "Node p: next node nowhere not found",
        "Node p: onError node lost not found",
        "Node a: unknown node type teleport (expected one of procedure, condition, parallel, "
        "sequential, trigger, sleep, wait, subworkflow)",
        "Node c: condition needs an expression",
        "Node c: trueBranch node t? not found",
        "Node d: invalid expression: invalid syntax: invalid syntax (<unknown>, line 1)",
        "Node f: branch node b? not found",
        "Node f: waitForAll must be true or false",
        "Node g: parallel node needs a non-empty list of branches",
        "Node t: template {{stranger.value}} refers to unknown node stranger",
        "Node a: defined more than once",
    ]


def test_cycle_without_a_condition_is_an_error() -> None:
    errors = _errors(
        chain(
            {"id": "a", "type": "sequential"},
            {"id": "b", "type": "sequential"},
            {"id": "c", "type": "sequential", "next": "a"},
        )
    )
    assert errors == ["Node a: cycle without a condition: a -> b -> c -> a"]


def test_self_loop_through_on_error_is_a_cycle() -> None:
    errors = _errors(chain({"id": "retry", "procedureName": "math.add", "onError": "retry"}))
    assert errors == ["Node retry: cycle without a condition: retry -> retry"]


def test_cycle_through_a_condition_is_a_loop_and_allowed() -> None:
    assert (
        _errors(
            chain(
                {"id": "inc", "procedureName": "math.add", "next": "again"},
                {
                    "id": "again",
                    "type": "condition",
                    "config": {
                        "expression": "result < 5",
                        "trueBranch": "inc",
                        "falseBranch": "end",
                    },
                },
                {"id": "end", "type": "sequential"},
            )
        )
        == []
    )


def test_shape_errors_name_the_field() -> None:
    definition, errors = parse_definition(
        {"id": "", "startNode": 3, "nodes": [{"type": "procedure", "colour": "red"}]}
    )
    assert definition is None
    assert errors == [
        "id: String should have at least 1 character",
        "startNode: Input should be a valid string",
        "nodes.0.id: Field required",
        "nodes.0.colour: Extra inputs are not permitted",
    ]


def test_non_object_is_rejected_clearly() -> None:
    assert parse_definition([1, 2]) == (
        None,
        ["Workflow definition must be a JSON object, not an array"],
    )
    assert parse_definition(None) == (None, ["Workflow definition must be a JSON object, not null"])


def test_builder_predicate_condition_needs_no_expression() -> None:
    definition = (
        Workflow("wf")
        .condition("c", predicate=lambda ctx: True, when_true="c2")
        .add(sequential("c2"))
        .build()
    )
    assert validate_definition(definition) == []


def test_predicate_is_lost_in_json_so_a_posted_copy_is_invalid() -> None:
    definition = (
        Workflow("wf")
        .condition("c", predicate=lambda ctx: True, when_true="c2")
        .add(sequential("c2"))
        .build()
    )
    _, errors = parse_definition(definition.to_json_dict())
    assert errors == ["Node c: condition needs an expression"]


def _deep_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _math(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(C4C_SIMPLE_MATH)
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_math(name="n" * (MAX_NAME_CHARS + 1)), "name: String should have at most 300 characters"),
        (_math(version="1" * (MAX_VERSION_CHARS + 1)), "version: String should have at most 50"),
        (_math(id="w" * (MAX_ID_CHARS + 1)), "id: String should have at most 200 characters"),
        (_math(startNode="s" * 10_000), "startNode: String should have at most 200 characters"),
        (_math(id="math\x00"), "id: contains a NUL character"),
        (_math(name="\ud800"), "name: contains a lone surrogate, which is not valid Unicode"),
    ],
    ids=["name", "version", "id", "startNode", "NUL id", "surrogate name"],
)
def test_text_the_columns_cannot_hold_is_refused(data: dict[str, Any], message: str) -> None:
    definition, errors = parse_definition(data)
    assert definition is None
    assert any(error.startswith(message) for error in errors), errors


def test_node_ids_types_and_procedure_names_are_bounded() -> None:
    data = _math()
    data["nodes"][0].update(
        id="n" * (MAX_ID_CHARS + 1), type="t" * 33, procedureName="p" * 201, next="x" * 201
    )
    _, errors = parse_definition(data)
    assert [e.split(":")[0] for e in errors] == [
        "nodes.0.id",
        "nodes.0.type",
        "nodes.0.procedureName",
        "nodes.0.next",
    ]
    assert errors[-1] == "nodes.0.next: Value error, node ids have at most 200 characters"


def test_config_nested_past_the_limit_is_refused_with_its_path() -> None:
    data = _math()
    data["nodes"][1]["config"] = {"a": _deep_list(500), "b": 2}
    definition, errors = parse_definition(data)
    assert definition is None
    [error] = errors
    assert error.startswith("nodes[1].config.a[0][0]")
    assert error.endswith(f"nested deeper than {MAX_JSON_DEPTH} levels")


def test_every_text_problem_is_reported_at_once() -> None:
    data = _math(id="a\x00")
    data["nodes"][2]["config"] = {"note\ud800": "ok", "x": ["\x00"]}
    _, errors = parse_definition(data)
    assert errors == [
        "id: contains a NUL character",
        'nodes[2].config: key "note\\ud800" contains a lone surrogate, which is not valid Unicode',
        "nodes[2].config.x[0]: contains a NUL character",
    ]


def test_definition_larger_than_its_setting_is_refused(settings: Any) -> None:
    settings.C4C_MAX_DEFINITION_BYTES = 2_000
    small = _math(description="d" * 100)
    assert _errors(small) == []
    big = _math(description="d" * 2_000)
    errors = _errors(big)
    assert len(errors) == 1
    assert errors[0].startswith("Workflow definition is ")
    assert errors[0].endswith("bytes; C4C_MAX_DEFINITION_BYTES allows 2000")


def test_definition_made_in_code_with_unstorable_text_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"nodes\[0\]\.procedureName: contains a NUL"):
        Workflow("coded").procedure("add", "math\x00add").build()
