"""Templates read earlier outputs and the input; a whole-string template keeps the type."""

import tracemalloc
from typing import Any

import pytest

from workflows.errors import TemplateError
from workflows.templates import ExpansionTooLarge, has_templates, references, render

from .helpers import chain

DATA = {"input": {"n": 3, "tags": ["a", "b"]}, "add": {"result": 15, "nested": {"ok": True}}}


def _lookup(root: str):
    return (root in DATA, DATA.get(root))


def test_whole_string_template_keeps_the_type() -> None:
    assert render({"a": "{{add.result}}", "b": " {{ input.tags }} "}, _lookup) == {
        "a": 15,
        "b": ["a", "b"],
    }


def test_embedded_templates_are_interpolated_as_text() -> None:
    rendered = render(["n={{input.n}}, tags={{input.tags}}, ok={{add.nested.ok}}"], _lookup)
    assert rendered == ['n=3, tags=["a","b"], ok=true']


def test_list_indices_and_nesting_resolve() -> None:
    assert render({"x": {"y": ["{{input.tags.1}}", "{{input.tags.-1}}"]}}, _lookup) == {
        "x": {"y": ["b", "b"]}
    }


def test_values_without_templates_are_left_alone() -> None:
    config = {"a": 1, "b": "plain {text}", "c": [None, 2.5]}
    assert not has_templates(config)
    assert render(config, _lookup) == config


def test_references_are_listed_for_validation() -> None:
    assert list(references({"a": "{{add.result}} {{input.n}}", "b": ["{{x}}"]})) == [
        "add.result",
        "input.n",
        "x",
    ]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ghost.value}}", "Template {{ghost.value}}: ghost has no value (yet)"),
        ("{{add.missing}}", "Template {{add.missing}}: add has no 'missing'"),
        ("{{input.tags.5}}", "Template {{input.tags.5}}: input.tags has no '5'"),
        ("{{add.result.deeper}}", "Template {{add.result.deeper}}: add.result has no 'deeper'"),
    ],
)
def test_unresolvable_template_names_the_reference(template, message) -> None:
    with pytest.raises(TemplateError) as caught:
        render({"a": template}, _lookup)
    assert str(caught.value) == message


BIG = "x" * 100_000
AMPLIFIED = {"text": "{{input.b}}." * 3_000}


def _big_lookup(root: str) -> tuple[bool, Any]:
    return (root == "input", {"b": BIG})


def test_expansion_within_the_limit_renders_in_full() -> None:
    rendered = render({"t": "{{input.b}}.{{input.b}}"}, _big_lookup, limit=300_000)
    assert rendered == {"t": f"{BIG}.{BIG}"}


@pytest.mark.parametrize(
    "config",
    [
        AMPLIFIED,
        {"copies": ["{{input.b}}"] * 3_000},
        {"json": "{{input}} " * 3_000},
    ],
    ids=["interpolated", "whole-string references", "containers as JSON"],
)
def test_expansion_past_the_limit_fails_naming_the_setting(config: dict[str, Any]) -> None:
    with pytest.raises(ExpansionTooLarge) as caught:
        render(config, _big_lookup, limit=1_000_000)
    assert str(caught.value) == (
        "Templates expand this node's input beyond C4C_MAX_EXPANDED_BYTES (1000000 bytes)"
    )


def test_expansion_is_stopped_before_its_memory_is_spent() -> None:
    """300 MB asked for; the renderer must give up having built about the limit, not all of it."""
    tracemalloc.start()
    try:
        with pytest.raises(ExpansionTooLarge):
            render(AMPLIFIED, _big_lookup, limit=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_limit_defaults_to_the_setting(settings: Any) -> None:
    settings.C4C_MAX_EXPANDED_BYTES = 150_000
    assert render({"t": "{{input.b}}"}, _big_lookup) == {"t": BIG}
    with pytest.raises(ExpansionTooLarge, match=r"\(150000 bytes\)"):
        render({"t": "{{input.b}}{{input.b}}"}, _big_lookup)


def test_node_whose_input_expands_too_far_fails_the_run_with_the_limit(
    run: Any, settings: Any
) -> None:
    settings.C4C_MAX_EXPANDED_BYTES = 1_000_000
    definition = chain(
        {"id": "echo", "procedureName": "custom.log", "config": {"message": "{{input.b}}." * 3_000}}
    )
    result = run(definition, {"b": BIG})
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.name == "ExpansionTooLarge"
    assert "C4C_MAX_EXPANDED_BYTES (1000000 bytes)" in result.error.message
