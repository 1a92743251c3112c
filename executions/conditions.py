"""Conditions on a value inside a run's input or outputs: `input.orderId = 4711`.

One condition is parsed here once, and then answered two ways that must agree: as SQL
(`ValueMatch`, for a QuerySet) and in Python (`ValueCondition.holds`, for a row the live list
already holds). Tests pin the agreement on SQLite and PostgreSQL.

Syntax (README "Search"): `<source><path> <op> <value>`, several joined by `and`.
- source: `input` (the run's input), `outputs` (Execution.outputs, {nodeId: output}: the first
  key is a node id) or `output` (any node's output: `output.customer.country` holds when some
  node's output has that value at customer.country).
- path: `.key` segments (letters, digits, `_`, `-`, `$`, `@`, `:`) or `["any key"]`; keys only,
  arrays are not indexed.
- op: `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=`; the last four compare numbers only.
- value: a JSON literal: 4711, 12.5, "DE", true, false, null.
`=` holds when the value at the path has that JSON type and value (4711 and 4711.0 are equal;
true is not 1; a missing key is not null). `!=` is exactly its negation: a run without the key
matches `!=`. `<`... hold when the value at the path is a number that compares so.

SQL per database:
- SQLite: json_type/json_extract per row (json_each over the nodes for `output`); no index can
  serve it, so the callers bound the rows it scans (executions.filters).
- PostgreSQL: `=` is a containment `@>` on `input` (GIN jsonb_path_ops index) or on `outputs`
  (GIN jsonb_ops index); `output` (any node) is the jsonpath `@@` `$.*.path == value`, which the
  jsonb_ops index serves, rechecked exactly with containment per node (jsonpath's lax mode also
  matches a value inside an array). The other operators are evaluated on the rows the rest of
  the filter selects. Indexes: migration 0008_json_search.
"""

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, F, Func
from django.db.models.sql.compiler import SQLCompiler

Source = Literal["input", "output", "outputs"]
Scalar = str | int | float | bool | None

OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
ORDERING = ("<", "<=", ">", ">=")
SOURCES: tuple[Source, ...] = ("input", "output", "outputs")
MAX_CONDITIONS = 10
MAX_DEPTH = 16
MAX_TEXT = 2000
# What a signed 64-bit integer holds: SQLite binds no larger int.
_MAX_INT = 2**63 - 1

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-$@:]+")
_SOURCE = re.compile(r"(?:outputs|output|input)(?![A-Za-z0-9_\-$@:])")
_OPERATOR = re.compile(r"==|=|!=|<=|>=|<|>")
_AND = re.compile(r"(?i:and)(?=\s)|&&")
_DOT, _OPEN, _CLOSE = re.compile(r"\."), re.compile(r"\["), re.compile(r"\]")
_MISSING = object()


class ConditionError(ValueError):
    """A condition that cannot be read; the message says where and what was expected."""


@dataclass(frozen=True, slots=True)
class ValueCondition:
    """`<source><path> <op> <value>`: see the module docstring for what each part means."""

    source: Source
    path: tuple[str, ...]
    op: str
    value: Scalar

    @property
    def column(self) -> str:
        return "input" if self.source == "input" else "outputs"

    @property
    def negated(self) -> bool:
        return self.op == "!="

    @property
    def positive_op(self) -> str:
        return "=" if self.op == "!=" else self.op

    def text(self) -> str:
        """The canonical form, which parses back to this condition."""
        path = "".join(
            f".{key}" if _BARE_KEY.fullmatch(key) else f"[{json.dumps(key, ensure_ascii=False)}]"
            for key in self.path
        )
        return f"{self.source}{path} {self.op} {json.dumps(self.value, ensure_ascii=False)}"

    def holds(self, input: Any, outputs: Any) -> bool:
        """Whether a run with this input and these outputs matches (what `ValueMatch` selects)."""
        if self.source == "input":
            found = [_at(input, self.path)]
        elif self.source == "outputs":
            found = [_at(outputs, self.path)]
        else:
            nodes = outputs.values() if isinstance(outputs, dict) else ()
            found = [_at(node, self.path) for node in nodes]
        hit = any(value is not _MISSING and self._compares(value) for value in found)
        return not hit if self.negated else hit

    def _compares(self, found: Any) -> bool:
        wanted, op = self.value, self.positive_op
        if op == "=":
            return _same(found, wanted)
        if not _is_number(found) or not _is_number(wanted):
            return False
        if op == "<":
            return bool(found < wanted)
        if op == "<=":
            return bool(found <= wanted)
        if op == ">":
            return bool(found > wanted)
        return bool(found >= wanted)

    def expression(self) -> "ValueMatch":
        return ValueMatch(self)


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(found: Any, wanted: Scalar) -> bool:
    """JSON equality: the same JSON type and value (true is not 1, 1.0 is 1)."""
    if wanted is None:
        return found is None
    if isinstance(wanted, bool):
        return isinstance(found, bool) and found is wanted
    if _is_number(wanted):
        return _is_number(found) and bool(found == wanted)
    return isinstance(found, str) and found == wanted


def _sqlite_positive(condition: ValueCondition, column: str) -> tuple[str, list[Any]]:
    """SQL true when the value at the path compares (never NULL), over JSON text `column`."""
    path = "$" + "".join(f'."{key}"' for key in condition.path)
    value, op = condition.value, condition.positive_op
    kind = f"json_type({column}, %s)"
    if isinstance(value, bool):
        return f"COALESCE({kind} = '{'true' if value else 'false'}', 0)", [path]
    if value is None:
        return f"COALESCE({kind} = 'null', 0)", [path]
    typed = f"{kind} = 'text'" if isinstance(value, str) else f"{kind} IN ('integer', 'real')"
    return (
        f"COALESCE({typed} AND json_extract({column}, %s) {op} %s, 0)",
        [path, path, value],
    )


def _sqlite_sql(condition: ValueCondition, column: str) -> tuple[str, list[Any]]:
    if condition.source == "output":
        inner, params = _sqlite_positive(condition, "c4c_node.value")
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({column}) AS c4c_node "
            f"WHERE CASE WHEN c4c_node.type = 'object' THEN {inner} ELSE 0 END)"
        )
    else:
        sql, params = _sqlite_positive(condition, column)
    return (f"NOT ({sql})" if condition.negated else sql), params


def _nested(path: tuple[str, ...], value: Scalar) -> str:
    """{"a": {"b": value}} for path (a, b): what containment `@>` looks for."""
    nested: Any = value
    for key in reversed(path):
        nested = {key: nested}
    return json.dumps(nested)


def _postgres_ordering(
    condition: ValueCondition, column: str, path: tuple[str, ...]
) -> tuple[str, list[Any]]:
    """A number compared at `path` of jsonb `column`: CASE keeps the cast off non-numbers."""
    keys = list(path)
    return (
        f"CASE WHEN jsonb_typeof({column} #> %s) = 'number' "
        f"THEN ({column} #>> %s)::numeric {condition.positive_op} %s ELSE false END",
        [keys, keys, condition.value],
    )


def _postgres_positive(condition: ValueCondition, column: str) -> tuple[str, list[Any]]:
    if condition.source != "output":
        if condition.positive_op == "=":
            return f"{column} @> %s::jsonb", [_nested(condition.path, condition.value)]
        return _postgres_ordering(condition, column, condition.path)
    nodes = (
        f"jsonb_each(CASE WHEN jsonb_typeof({column}) = 'object' "
        f"THEN {column} ELSE '{{}}'::jsonb END) AS c4c_node"
    )
    if condition.positive_op == "=":
        keys = "".join(f".{json.dumps(key)}" for key in condition.path)
        jsonpath = f"$.*{keys} == {json.dumps(condition.value)}"
        return (
            f"({column} @@ %s::jsonpath AND EXISTS (SELECT 1 FROM {nodes} "
            f"WHERE c4c_node.value @> %s::jsonb))",
            [jsonpath, _nested(condition.path, condition.value)],
        )
    inner, params = _postgres_ordering(condition, "c4c_node.value", condition.path)
    return f"EXISTS (SELECT 1 FROM {nodes} WHERE {inner})", params


class ValueMatch(Func):
    """The SQL form of a ValueCondition, for QuerySet.filter()."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, condition: ValueCondition) -> None:
        super().__init__(F(condition.column))
        self.condition = condition

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        sql, more = _sqlite_sql(self.condition, column)
        return sql, [*params, *more]

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        sql, more = _postgres_positive(self.condition, column)
        # Bare when positive, so the planner sees `@>`/`@@` (an index; its selectivity): NULL
        # (a jsonpath's unknown) selects nothing there, as false does. Negated, NULL is false.
        if self.condition.negated:
            sql = f"NOT COALESCE({sql}, false)"
        return sql, [*params, *more]


class _Reader:
    """A cursor over one `where` text; each error names the character it stopped at."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def fail(self, expected: str) -> ConditionError:
        rest = self.text[self.at : self.at + 20]
        found = f"found {rest!r}" if rest else "found the end"
        return ConditionError(f"expected {expected} at character {self.at + 1}, {found}")

    def skip_space(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.at)
        if found is None:
            return None
        self.at = found.end()
        return found.group()

    def json_value(self, expected: str) -> Any:
        try:
            value, end = _DECODER.raw_decode(self.text, self.at)
        except ValueError:
            raise self.fail(expected) from None
        self.at = end
        return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _storable_text(text: str, what: str) -> str:
    """A key or string value a database can compare: no NUL, no lone surrogate, no quote or
    backslash in a key (SQLite's JSON paths cannot hold them)."""
    if "\x00" in text:
        raise ConditionError(f"{what} {text!r} contains a NUL character")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise ConditionError(f"{what} {text!r} contains a lone surrogate")
    return text


def _key(reader: _Reader) -> str:
    if reader.match(_DOT) is not None:
        key = reader.match(_BARE_KEY)
        if key is None:
            raise reader.fail("a key after '.' (letters, digits, _ - $ @ :), or [\"key\"]")
        return key
    if reader.match(_OPEN) is None:
        raise reader.fail("'.key' or '[\"key\"]'")
    key = reader.json_value('a quoted key in [...], like ["order id"]')
    if not isinstance(key, str) or not key:
        raise reader.fail('a non-empty quoted key in [...], like ["order id"]')
    if reader.match(_CLOSE) is None:
        raise reader.fail("']'")
    _storable_text(key, "key")
    if '"' in key or "\\" in key:
        raise ConditionError(
            f"key {key!r} contains a quote or a backslash, which paths cannot hold"
        )
    return key


def _value(reader: _Reader, op: str) -> Scalar:
    value = reader.json_value('a JSON value (4711, "DE", true, false or null)')
    if isinstance(value, dict | list):
        raise ConditionError(
            f"the value after '{op}' must be a JSON number, string, true, false or null, "
            f"not an {'object' if isinstance(value, dict) else 'array'}"
        )
    if op in ORDERING and not _is_number(value):
        raise ConditionError(f"'{op}' compares numbers: give a number, not {json.dumps(value)}")
    if isinstance(value, str):
        return _storable_text(value, "value")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
        raise ConditionError(f"the number {value} is larger than a 64-bit integer")
    scalar: Scalar = value
    return scalar


def _condition(reader: _Reader) -> ValueCondition:
    reader.skip_space()
    source = reader.match(_SOURCE)
    if source is None:
        raise reader.fail("input, output or outputs")
    path: list[str] = []
    while reader.at < len(reader.text) and reader.text[reader.at] in ".[":
        path.append(_key(reader))
        if len(path) > MAX_DEPTH:
            raise ConditionError(f"a path may have at most {MAX_DEPTH} keys")
    if not path:
        raise reader.fail(f"a path after {source}, like {source}.orderId")
    reader.skip_space()
    op = reader.match(_OPERATOR)
    if op is None:
        raise reader.fail("an operator (=, !=, <, <=, >, >=)")
    op = "=" if op == "==" else op
    reader.skip_space()
    value = _value(reader, op)
    return ValueCondition(source=source, path=tuple(path), op=op, value=value)  # type: ignore[arg-type]


def parse_conditions(text: str) -> tuple[ValueCondition, ...]:
    """The conditions in `text`, joined by `and` (or `&&`); ConditionError if unreadable."""
    if len(text) > MAX_TEXT:
        raise ConditionError(f"is {len(text)} characters long; at most {MAX_TEXT} are read")
    reader = _Reader(text)
    conditions = [_condition(reader)]
    while True:
        reader.skip_space()
        if reader.at == len(text):
            break
        if reader.match(_AND) is None:
            raise reader.fail("'and' between two conditions, or the end")
        conditions.append(_condition(reader))
    if len(conditions) > MAX_CONDITIONS:
        raise ConditionError(f"has {len(conditions)} conditions; at most {MAX_CONDITIONS}")
    return tuple(conditions)
