"""Condition expressions: untrusted text evaluated in a locked-down simpleeval sandbox.

API clients post inline workflows, so an expression is treated as hostile. It sees only plain data:
each workflow variable by name (c4c's style, `value > 10`), `variables`, `input`, `outputs` (node
outputs by id) and `get(nodeId)`. Limits, all enforced before or while evaluating:

- text length (MAX_EXPRESSION_LENGTH), syntax-tree size and depth;
- no imports, lambdas, f-strings, assignment, attribute names starting with `_`;
- attributes only from a small read-only allow-list per type (no `str.center(10**9)` and no
  `dict.clear()` on the engine's state); dict keys also read as attributes (`input.value`);
- power, shift, repetition, `round` digits and `%` formatting are bounded so `9**9**9`,
  `'a'*10**9` or `round(1, -10**8)` are refused instead of eating memory or CPU; comprehensions
  are capped by simpleeval;
- every value the expression builds (literals, comprehensions, operators, calls, slices) is
  weighed, counting shared parts each time they are reachable, against one allocation budget: a
  single built-in such as `str()` or `==` runs to completion between deadline checks, so
  `str([[0]*9999]*9999)` must be refused before it can build 300 MB;
- a budget of evaluated nodes and a wall-clock deadline stop endless work.

Any failure raises ExpressionError with the reason; the engine fails the condition node with it
(c4c quietly took the false branch, hiding the bug).
"""

import ast
import operator as op
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from simpleeval import DEFAULT_OPERATORS, EvalWithCompoundTypes

from .errors import ExpressionError

MAX_EXPRESSION_LENGTH = 1000
MAX_TREE_NODES = 300
MAX_TREE_DEPTH = 40
MAX_EVALUATED_NODES = 20_000
MAX_SECONDS = 0.25
MAX_SEQUENCE_LENGTH = 10_000
MAX_INT_BITS = 4096
MAX_ROUND_DIGITS = 1300
MAX_ALLOCATED = 200_000

_T = TypeVar("_T")

_ALLOWED_ATTRS: dict[type, frozenset[str]] = {
    dict: frozenset({"get", "keys", "values", "items"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
    str: frozenset(
        {
            "lower",
            "upper",
            "strip",
            "lstrip",
            "rstrip",
            "startswith",
            "endswith",
            "find",
            "count",
            "isdigit",
            "isalpha",
            "isalnum",
            "isspace",
            "split",
        }
    ),
    int: frozenset({"real", "imag"}),
    float: frozenset({"real", "imag", "is_integer"}),
    bool: frozenset(),
    type(None): frozenset(),
}


def _bounded_int(value: _T) -> _T:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError(f"number too large (more than {MAX_INT_BITS} bits)")
    return value


def _weight(value: Any, limit: int) -> int:
    """Items reachable from `value` (a string weighs its length), counted up to just past `limit`.

    Shared parts count every time they are reachable, because that is what `str()`, `==` or `in`
    walk; stopping past the limit keeps weighing a bomb as cheap as refusing it.
    """
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += max(1, len(item))
        elif isinstance(item, dict):
            total += 1 + len(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1 + len(item)
            stack.extend(item)
        else:
            total += 1
    return total


def _pow(a: Any, b: Any) -> Any:
    if isinstance(b, int | float) and abs(b) > MAX_INT_BITS:
        raise ExpressionError(f"exponent {b} is too large")
    huge = isinstance(a, int) and isinstance(b, int) and a.bit_length() * b > MAX_INT_BITS
    if huge and abs(a) > 1:
        raise ExpressionError(f"{a} ** {b} is too large to compute")
    return _bounded_int(a**b)


def _mult(a: Any, b: Any) -> Any:
    for seq, times in ((a, b), (b, a)):
        repeats = isinstance(seq, str | bytes | list | tuple) and isinstance(times, int)
        if repeats and len(seq) * times > MAX_SEQUENCE_LENGTH:
            raise ExpressionError(f"repetition longer than {MAX_SEQUENCE_LENGTH} items")
    return _bounded_int(a * b)


def _add(a: Any, b: Any) -> Any:
    return _bounded_int(a + b)


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):
        raise ExpressionError("string % formatting is not allowed")
    return a % b


def _shift(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def shifted(a: Any, b: Any) -> Any:
        if isinstance(b, int) and b > MAX_INT_BITS:
            raise ExpressionError(f"shift by {b} is too large")
        return _bounded_int(fn(a, b))

    return shifted


_OPERATORS = {
    **DEFAULT_OPERATORS,
    ast.Pow: _pow,
    ast.Mult: _mult,
    ast.Add: _add,
    ast.Mod: _mod,
    ast.LShift: _shift(op.lshift),
    ast.RShift: _shift(op.rshift),
}


def _round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ExpressionError(f"round() to {ndigits} digits is out of range")
    return round(number, ndigits)


def _int(*args: Any) -> int:
    return _bounded_int(int(*args))


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": _round,
    "int": _int,
    "float": float,
    "str": str,
    "bool": bool,
}

_FORBIDDEN_SYNTAX = (ast.JoinedStr, ast.FormattedValue, ast.Lambda, ast.NamedExpr, ast.Starred)

_BUILDING_NODES = (
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.BinOp,
    ast.Call,
    ast.Subscript,
)


class _Sandbox(EvalWithCompoundTypes):
    """simpleeval with an allow-list of attributes, node and allocation budgets and a deadline."""

    def __init__(self, names: dict[str, Any], functions: dict[str, Callable[..., Any]]) -> None:
        super().__init__(operators=_OPERATORS, functions=functions, names=names)
        for node_type in (ast.JoinedStr, ast.FormattedValue):
            self.nodes.pop(node_type, None)
        self.nodes[ast.Attribute] = self._eval_attribute
        self._budget = MAX_EVALUATED_NODES
        self._allowance = MAX_ALLOCATED
        self._deadline = time.monotonic() + MAX_SECONDS

    def _eval(self, node: ast.AST) -> Any:
        """Dispatch without simpleeval's own result check: that walks every intermediate value in
        full at every node (a bomb in itself), and here names are plain data and functions a fixed
        safe list, so it could find nothing."""
        self._budget -= 1
        if self._budget < 0:
            raise ExpressionError(f"evaluation took more than {MAX_EVALUATED_NODES} steps")
        if time.monotonic() > self._deadline:
            raise ExpressionError(f"evaluation took longer than {MAX_SECONDS}s")
        handler = self.nodes.get(type(node))
        if handler is None:
            raise ExpressionError(f"{type(node).__name__} is not allowed in expressions")
        value = handler(node)
        if isinstance(node, _BUILDING_NODES) and not _is_lookup(node):
            self._allowance -= _weight(value, self._allowance)
            if self._allowance < 0:
                raise ExpressionError(f"expression builds more than {MAX_ALLOCATED} items")
        return value

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            raise ExpressionError(f"attribute {node.attr!r} is not allowed")
        value = self._eval(node.value)
        if isinstance(value, dict) and node.attr in value:
            return value[node.attr]
        allowed = _ALLOWED_ATTRS.get(type(value))
        if allowed is None or node.attr not in allowed:
            raise ExpressionError(
                f"attribute {node.attr!r} is not available on {type(value).__name__}"
            )
        return getattr(value, node.attr)


def _is_lookup(node: ast.AST) -> bool:
    """Indexing and `get(...)` hand back run data that exists already, so building costs nothing."""
    if isinstance(node, ast.Subscript):
        return not isinstance(node.slice, ast.Slice)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name == "get"
    return False


def check_expression(expression: Any) -> ast.Expr:
    """Parse and statically vet an expression; the parsed form is reused when it is evaluated."""
    if not isinstance(expression, str) or not expression.strip():
        raise ExpressionError("expression must be a non-empty string")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"invalid syntax: {exc}") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        raise ExpressionError("expression must be a single expression")
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body[0], 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_TREE_NODES:
            raise ExpressionError(f"expression has more than {MAX_TREE_NODES} parts")
        if depth > MAX_TREE_DEPTH:
            raise ExpressionError(f"expression nests deeper than {MAX_TREE_DEPTH} levels")
        if isinstance(node, _FORBIDDEN_SYNTAX):
            raise ExpressionError(f"{type(node).__name__} is not allowed in expressions")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree.body[0]


def evaluate(
    expression: str,
    *,
    variables: Mapping[str, Any],
    outputs: Mapping[str, Any],
    input: Mapping[str, Any],
) -> Any:
    """Evaluate untrusted text against plain run data; any fault raises ExpressionError."""
    parsed = check_expression(expression)
    names: dict[str, Any] = {
        **variables,
        "variables": dict(variables),
        "outputs": dict(outputs),
        "input": dict(input),
        "True": True,
        "False": False,
        "None": None,
        "true": True,
        "false": False,
        "null": None,
    }

    def get(node_id: str) -> Any:
        return outputs.get(node_id)

    sandbox = _Sandbox(names, {**_FUNCTIONS, "get": get})
    try:
        return sandbox.eval(expression, previously_parsed=parsed)
    except ExpressionError:
        raise
    except Exception as exc:
        raise ExpressionError(f"{type(exc).__name__}: {exc}") from None
