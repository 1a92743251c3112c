"""Templates read earlier outputs and the input; a whole-string template keeps the type."""

import pytest

from workflows.errors import TemplateError
from workflows.templates import has_templates, references, render

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
