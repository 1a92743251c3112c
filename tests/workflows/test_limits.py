"""Unstorable text and runaway nesting are found at any depth and named by their JSON path."""

from typing import Any

import pytest

from workflows.limits import MAX_JSON_DEPTH, MAX_PROBLEMS, json_problems, nesting_depth


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        (
            {"input": {"items": [0, 1, 2, {"name": "a\x00b"}]}},
            ["input.items[3].name: contains a NUL character"],
        ),
        ({"a": ["ok", "\ud800"]}, ["a[1]: contains a lone surrogate, which is not valid Unicode"]),
        ({"a": {"b\x00": 1}}, ['a: key "b\\u0000" contains a NUL character']),
        (
            {"odd key": {"x": "\udfff"}},
            ['["odd key"].x: contains a lone surrogate, which is not valid Unicode'],
        ),
        ("\x00", ["body: contains a NUL character"]),
        ({"emoji": "😀", "accents": "é", "escaped": "\\u0000"}, []),
    ],
)
def test_unstorable_text_is_named_by_its_path(value: Any, problems: list[str]) -> None:
    assert json_problems(value) == problems


def test_nesting_is_allowed_to_the_limit_and_refused_past_it() -> None:
    assert json_problems(_nested(MAX_JSON_DEPTH)) == []
    [problem] = json_problems({"config": _nested(MAX_JSON_DEPTH)})
    assert problem.endswith(f": nested deeper than {MAX_JSON_DEPTH} levels")
    assert problem.startswith("config[0][0]")
    assert len(problem) < 300


def test_nesting_far_deeper_than_python_recursion_is_walked_without_error() -> None:
    [problem] = json_problems(_nested(100_000))
    assert "nested deeper than" in problem


def test_problems_are_listed_in_document_order_and_capped() -> None:
    value = {f"k{i}": "\x00" for i in range(MAX_PROBLEMS + 5)}
    problems = json_problems(value)
    assert problems[:2] == ["k0: contains a NUL character", "k1: contains a NUL character"]
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == f"(only the first {MAX_PROBLEMS} problems are listed)"


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('"plain"', 0),
        ("[]", 1),
        ('[[1, [2]], {"a": {"b": []}}]', 4),
        ('{"text": "[[[[{{{{ \\" ]]]"}', 1),
        ("[" * 1_000 + "]" * 1_000, MAX_JSON_DEPTH + 1),
    ],
)
def test_nesting_depth_is_read_from_text_ignoring_brackets_in_strings(
    text: str, depth: int
) -> None:
    assert nesting_depth(text) == depth


def test_brackets_inside_strings_never_count_as_nesting() -> None:
    assert json_problems({"a": "[" * 10_000, "b": ["{" * 500]}) == []
