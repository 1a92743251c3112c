"""Condition expressions run in a sandbox: plain data in, a value or a clear refusal out."""

import os
import time

import pytest

from workflows import expressions
from workflows.errors import ExpressionError
from workflows.expressions import MAX_EXPRESSION_LENGTH, check_expression, evaluate


def _eval(expression: str, **variables):
    return evaluate(
        expression,
        variables=variables,
        outputs={"add": {"result": 15}, "fetch": {"items": [1, 2, 3]}},
        input={"limit": 3, "name": "Ada"},
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("value > 10", True),
        ("value > 10 and name == 'x'", False),
        ("input.limit == 3", True),
        ("input['name'].lower() == 'ada'", True),
        ("get('add').result + value", 27),
        ("outputs.fetch['items'][-1]", 3),
        ("len(outputs.fetch.items) if True else 0", 3),
        ("variables.get('value') in [1, 12]", True),
        ("sum_ is None", True),
        ("[x * 2 for x in outputs.fetch['items'] if x > 1]", [4, 6]),
        ("2 ** 10", 1024),
        ("true and not false", True),
    ],
)
def test_expressions_see_variables_outputs_input_and_get(expression, expected) -> None:
    assert _eval(expression, value=12, name="y", sum_=None) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('echo hacked')", "__import__"),
        ("import os", "single expression"),
        ("open('/etc/passwd').read()", "open"),
        ("value.__class__.__mro__", "not allowed"),
        ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
        ("get.__globals__", "__globals__"),
        ("input.__getitem__('limit')", "__getitem__"),
        ("eval('1')", "eval"),
        ("exec('x=1')", "exec"),
        ("lambda: 1", "Lambda"),
        ("(x := 1)", "NamedExpr"),
        ("f'{value:>999999999}'", "JoinedStr"),
        ("'%999999999d' % 1", "formatting"),
        ("'x'.center(10**9)", "center"),
        ("'x'.format(1)", "format"),
        ("variables.clear()", "clear"),
        ("outputs.add.update({'result': 1})", "update"),
        ("9**9**9", "too large"),
        ("10**10**10", "too large"),
        ("2**5000", "too large"),
        ("'a'*10**9", "repetition"),
        ("[1]*10**9", "repetition"),
        ("1 << 10**9", "shift"),
        ("b'a' * 10**9", "repetition"),
        ("round(1, -10**8)", "out of range"),
        ("int('9' * 4300)", "too large"),
        ("str([[0] * 9999] * 9999)", "builds more than"),
        ("[[0.5] * 9999] * 9999 == [[0.5] * 9999] * 9999", "builds more than"),
        ("min([[0] * 9999] * 9999)", "builds more than"),
        ("[big[:] for y in big]", "builds more than"),
        (
            "str([[a, a, a, a] for a in [[b, b, b, b] for b in [[c, c, c, c] for c in [big]]]])",
            "builds",
        ),
        ("[x for x in input.name for y in range(10**9)]", "range"),
        ("[[a, b] for a in big for b in big]", "steps"),
        ("-" * 500 + "1", "deeper"),
        ("(" * 300 + "1" + ")" * 300, "invalid syntax"),
        ("[" * 100 + "]" * 100, "deeper"),
        ("1 +", "invalid syntax"),
        ("missing > 1", "missing"),
        ("", "non-empty"),
    ],
)
def test_hostile_expressions_are_refused_and_leave_the_process_unharmed(
    expression, reason, monkeypatch
) -> None:
    # Each case pins the budget that stops it; the wall-clock deadline (its own test below) is
    # widened so a slow moment of the machine cannot trip it first.
    monkeypatch.setattr(expressions, "MAX_SECONDS", 0.9)
    began = time.monotonic()
    with pytest.raises(ExpressionError, match=reason):
        _eval(expression, value=1, big=list(range(5000)))
    assert time.monotonic() - began < 1.0
    assert os.getcwd()  # the process is still here and sane


def test_overlong_expression_is_refused_before_parsing() -> None:
    with pytest.raises(ExpressionError, match=f"longer than {MAX_EXPRESSION_LENGTH}"):
        check_expression("1 + " * 400 + "1")


def test_endless_work_hits_the_evaluation_budget() -> None:
    expression = "[[a for a in big] for b in big][0][0]"
    began = time.monotonic()
    with pytest.raises(ExpressionError):
        _eval(expression, big=list(range(9000)))
    assert time.monotonic() - began < 1.0


def test_objects_that_are_not_plain_data_expose_no_attributes() -> None:
    class Secret:
        token = "s3cret"

    with pytest.raises(ExpressionError, match="not available on Secret"):
        _eval("thing.token", thing=Secret())


def test_large_run_data_is_not_walked_at_every_lookup() -> None:
    # `input` holds ~700k items, past MAX_ALLOCATED (200k): weighing it at a lookup would refuse
    # the expression, so a result proves lookups cost nothing (no wall-clock bound: CI is noisy).
    # One row repeated weighs as much as distinct ones (shared parts count each time they are
    # reachable) and costs nothing to build.
    result = evaluate(
        "[x for x in big if input.limit > 2][-1]",
        variables={"big": list(range(2000))},
        outputs={},
        input={"limit": 3, "rows": [{"id": 1, "tags": ["a", "b"]}] * 100_000},
    )
    assert result == 1999
