"""A structural diff of two JSON values, as the lines the compare page shows.

Objects are compared key by key (order does not matter, as in JSON), arrays item by item after
their common start and end are set aside (one item inserted near the front reads as one item
added, not as every later item changed), nested to any depth. Each line says what it is: added,
removed, changed (old and new value), unchanged, or the opening and closing bracket of a
container that holds changes. JSON types are kept apart: `1` and `true` differ, `1` and `1.0`
do not.

The work is bounded whatever the payloads (stored ones are capped, but a page may diff hundreds
of nodes): a `Budget` caps the values walked and the lines produced, and one budget may be shared
by every diff on a page. Past the walk budget, a differing value is shown as one changed line;
past the line budget, the diff ends with a line saying it was cut. Unchanged members of a
container are shown up to a few for context and the rest counted on one line; a value added or
removed whole is shown two levels deep; long strings and unchanged containers are shortened.

Pure: no Django, no database.
"""

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

LineKind = Literal["same", "added", "removed", "changed", "open", "close", "elided"]
Key = str | int | None  # an object's key, an array's index, or None at the top
Member = tuple[Key, Any, Any, bool]  # key, old value, new value, known to be the same


class _Absent:
    """No value at all (a node that did not run has no input), unlike JSON's null."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()

MAX_DEPTH = 16  # deeper than this, a differing value is shown removed and added whole
UNCHANGED_SHOWN = 4  # unchanged members shown per container; the rest counted on one line
WHOLE_SHOWN = 12  # members shown per container of a value added or removed whole
TEXT_CHARS = 80  # a string longer than this is shown cut, with an ellipsis
MAX_INDENT = 12  # the indentation the page draws; deeper lines stay at this indent

# Each kind's sign in the margin and the word a screen reader says: never colour alone.
_MARKS: dict[str, tuple[str, str]] = {
    "added": ("+", "added"),
    "removed": ("\u2212", "removed"),  # a minus sign, as wide as the plus
    "changed": ("~", "changed"),
    "elided": ("…", ""),
}


@dataclass(slots=True)
class Budget:
    """What diffs may still spend: values walked and lines produced. Shared by the diffs of one
    page so that their sum is bounded, not only each one."""

    visits: int = 20_000
    lines: int = 400


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: LineKind
    depth: int
    key: str  # '"name": ' in an object, '[3] ' in an array, "" at the top
    text: str  # the value (the new one when changed), a bracket, or what was left out
    old: str = ""  # the old value of a changed line

    @property
    def indent(self) -> int:
        return min(self.depth, MAX_INDENT)

    @property
    def mark(self) -> str:
        return _MARKS.get(self.kind, (" ", ""))[0]

    @property
    def word(self) -> str:
        return _MARKS.get(self.kind, (" ", ""))[1]


@dataclass(slots=True)
class JsonDiff:
    """The lines of one diff and what it counted: members added, removed and changed."""

    lines: list[DiffLine] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    changed: int = 0
    cut: bool = False  # lines were left out: the line budget ran out

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed)


def same_json(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as JSON (object key order aside; `1 != true`).

    Iterative, so a deeply nested value cannot exhaust the stack; linear in the values' size.
    """
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if isinstance(x, dict):
            if not isinstance(y, dict) or x.keys() != y.keys():
                return False
            pending.extend((x[key], y[key]) for key in x)
        elif isinstance(x, list):
            if not isinstance(y, list) or len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif _scalar_type(x) != _scalar_type(y) or x != y:
            return False
    return True


def diff_json(a: Any, b: Any, budget: Budget | None = None) -> JsonDiff:
    """The lines that turn `a` into `b`; either may be ABSENT (everything added or removed)."""
    walk = _Walk(budget if budget is not None else Budget())
    if not same_json(a, b):
        walk.value(a, b, depth=0, key=None)
    return walk.diff


def preview(value: Any) -> str:
    """A value as one short line: scalars as JSON (long strings cut), containers by size."""
    if isinstance(value, dict):
        return "{}" if not value else f"{{…}} {len(value)} key{'s' if len(value) != 1 else ''}"
    if isinstance(value, list):
        return "[]" if not value else f"[…] {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, str) and len(value) > TEXT_CHARS:
        return _dumps(value[:TEXT_CHARS])[:-1] + '…"'
    return _dumps(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


def _scalar_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _brackets(value: Any) -> tuple[str, str]:
    return ("{", "}") if isinstance(value, dict) else ("[", "]")


class _Walk:
    """One diff in progress: walks both values together, spending the budget."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.diff = JsonDiff()

    def room(self) -> bool:
        """Whether another line fits; once none does, the diff is marked cut."""
        if self.budget.lines > 0:
            return True
        self.diff.cut = True
        return False

    def emit(self, line: DiffLine) -> None:
        if self.room():
            self.diff.lines.append(line)
            self.budget.lines -= 1

    def value(self, a: Any, b: Any, *, depth: int, key: Key) -> None:
        """Lines for a member present on at least one side and known to differ."""
        self.budget.visits -= 1
        if a is ABSENT:
            self.diff.added += 1
            self.whole(b, "added", depth=depth, key=key)
        elif b is ABSENT:
            self.diff.removed += 1
            self.whole(a, "removed", depth=depth, key=key)
        elif (
            depth < MAX_DEPTH and self.budget.visits > 0 and _is_container(a) and type(a) is type(b)
        ):
            opening, closing = _brackets(a)
            self.emit(DiffLine("open", depth, _label(key), opening))
            members = _object_members(a, b) if isinstance(a, dict) else _array_members(a, b)
            self.members(members, depth=depth + 1, noun="key" if isinstance(a, dict) else "item")
            self.emit(DiffLine("close", depth, "", closing))
        elif _is_container(a) or _is_container(b):
            # A type change (or past the walk budget): the old value out, the new one in.
            self.diff.changed += 1
            self.whole(a, "removed", depth=depth, key=key)
            self.whole(b, "added", depth=depth, key=key)
        else:
            self.diff.changed += 1
            if self.room():
                self.emit(DiffLine("changed", depth, _label(key), preview(b), old=preview(a)))

    def members(self, members: Iterator[Member], *, depth: int, noun: str) -> None:
        unchanged = 0
        for key, old, new, known_same in members:
            if known_same or (old is not ABSENT and new is not ABSENT and same_json(old, new)):
                unchanged += 1
                if unchanged <= UNCHANGED_SHOWN:
                    self.emit(DiffLine("same", depth, _label(key), preview(new)))
            else:
                self.value(old, new, depth=depth, key=key)
        hidden = unchanged - UNCHANGED_SHOWN
        if hidden > 0:
            plural = "s" if hidden != 1 else ""
            self.emit(DiffLine("elided", depth, "", f"{hidden} more unchanged {noun}{plural}"))

    def whole(self, value: Any, kind: LineKind, *, depth: int, key: Key, levels: int = 2) -> None:
        """A value added or removed as a whole: expanded `levels` deep and WHOLE_SHOWN members
        per container, the rest shortened, while the budgets last."""
        self.budget.visits -= 1
        if not self.room():
            return
        if not _is_container(value) or not value or levels <= 0 or self.budget.visits <= 0:
            self.emit(DiffLine(kind, depth, _label(key), preview(value)))
            return
        opening, closing = _brackets(value)
        self.emit(DiffLine(kind, depth, _label(key), opening))
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for member_key, member in itertools.islice(pairs, WHOLE_SHOWN):
            self.whole(member, kind, depth=depth + 1, key=member_key, levels=levels - 1)
        hidden = len(value) - WHOLE_SHOWN
        if hidden > 0:
            noun = ("key" if isinstance(value, dict) else "item") + ("s" if hidden != 1 else "")
            self.emit(DiffLine("elided", depth + 1, "", f"{hidden} more {noun}"))
        self.emit(DiffLine(kind, depth, "", closing))


def _label(key: Key) -> str:
    """How a member is named on its line: an object's key as JSON, an array's index."""
    if key is None:
        return ""
    return f"[{key}] " if isinstance(key, int) else f"{_dumps(key)}: "


def _object_members(a: dict[str, Any], b: dict[str, Any]) -> Iterator[Member]:
    for name, old in a.items():
        yield name, old, b.get(name, ABSENT), False
    for name, new in b.items():
        if name not in a:
            yield name, ABSENT, new, False


def _array_members(a: list[Any], b: list[Any]) -> Iterator[Member]:
    """Pairs of items: the common start, then the middle item by item (extra items added or
    removed), then the common end. Keys are indexes in `b` (in `a` for a removed item)."""
    start = 0
    while start < len(a) and start < len(b) and same_json(a[start], b[start]):
        start += 1
    end = 0
    while (
        end < len(a) - start
        and end < len(b) - start
        and same_json(a[len(a) - 1 - end], b[len(b) - 1 - end])
    ):
        end += 1
    for index in range(start):
        yield index, a[index], b[index], True
    middle_a, middle_b = a[start : len(a) - end], b[start : len(b) - end]
    for offset in range(max(len(middle_a), len(middle_b))):
        old = middle_a[offset] if offset < len(middle_a) else ABSENT
        new = middle_b[offset] if offset < len(middle_b) else ABSENT
        yield start + offset, old, new, False
    for offset in range(end, 0, -1):
        yield len(b) - offset, a[len(a) - offset], b[len(b) - offset], True
