"""What a definition or a JSON value may hold, so that nothing a client sends can break a write.

Pure (no models, no I/O): the validator, the template renderer and executions' request parsing
share these bounds. The column lengths mirror executions.models, which workflows cannot import;
a test there asserts each column is at least as large. PostgreSQL refuses NUL in text and jsonb,
and no database or UTF-8 stream can hold a lone surrogate ("\\ud800"), so both are refused.
The nesting depth is far below every recursive parser's limit and deeper than real data.
"""

import json
import re
from typing import Any

from .conf import app_settings

MAX_ID_CHARS = 200  # workflow id and node ids: Execution.workflow_id, NodeExecution.node_id
MAX_NAME_CHARS = 300  # Execution.workflow_name
MAX_VERSION_CHARS = 50  # Execution.workflow_version
MAX_NODE_TYPE_CHARS = 32  # NodeExecution.node_type
MAX_PROCEDURE_NAME_CHARS = 200  # NodeExecution.procedure_name
MAX_JSON_DEPTH = 64
MAX_PROBLEMS = 20

_SURROGATE = re.compile("[\ud800-\udfff]")
# In JSON text, the only ways to spell NUL or a surrogate once raw control characters are refused
# and the text is strict UTF-8. A valid pair (an escaped emoji) matches too: the walk then decides.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SQUARE = str.maketrans("{}", "[]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,39}")
_MAX_PATH_CHARS = 200

# A path to a value, built as a chain of (parent, segment) so that walking a large value costs
# one tuple per container, and the text of a path is made only for a value that has a problem.
_Path = tuple[Any, str] | None


def max_expanded_bytes() -> int:
    return app_settings.C4C_MAX_EXPANDED_BYTES


def max_definition_bytes() -> int:
    return app_settings.C4C_MAX_DEFINITION_BYTES


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii() and _SURROGATE.search(text):
        return "contains a lone surrogate, which is not valid Unicode"
    return None


def nesting_depth(text: str, *, stop_after: int = MAX_JSON_DEPTH) -> int:
    """How deep the arrays and objects of JSON `text` nest, counted up to `stop_after` + 1.

    No recursion and no per-character Python loop: with strings and scalars removed, each pass
    deletes every innermost "[]", so the number of passes is the depth.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_SQUARE)
    depth = 0
    while brackets and depth <= stop_after:
        brackets = brackets.replace("[]", "")
        depth += 1
    return depth


def json_text_suspect(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON `text` may hold unstorable text or nest past `max_depth`: a cheap pass that
    lets clean text (nearly all of it) skip the walk that names each problem."""
    if _SUSPECT_ESCAPE.search(text):
        return True
    if text.count("[") + text.count("{") <= max_depth:
        return False
    return nesting_depth(text, stop_after=max_depth) > max_depth


def json_problems(value: Any, *, label: str = "body", max_depth: int = MAX_JSON_DEPTH) -> list[str]:
    """Every string (keys too) that cannot be stored, and nesting deeper than `max_depth`.

    Each problem names its JSON path ("input.items[3].name: contains a NUL character"); `label`
    names the value itself. At most MAX_PROBLEMS are listed. Clean values are recognised from
    their JSON text; the rest are walked iteratively, so no nesting can raise RecursionError.
    """
    try:
        text = json.dumps(value, default=str)
    except (RecursionError, ValueError):
        text = None
    if text is not None and not json_text_suspect(text, max_depth=max_depth):
        return []
    return walk_problems(value, label=label, max_depth=max_depth)


def walk_problems(value: Any, *, label: str = "body", max_depth: int = MAX_JSON_DEPTH) -> list[str]:
    """json_problems without the quick pass: for a value whose JSON text is already suspect."""
    problems: list[str] = []
    stack: list[tuple[Any, _Path, int]] = [(value, None, 0)]
    while stack and len(problems) < MAX_PROBLEMS:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                problems.append(f"{_render(path, label)}: {problem}")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= max_depth:
            problems.append(f"{_render(path, label)}: nested deeper than {max_depth} levels")
            continue
        if isinstance(item, list):
            stack.extend((child, (path, f"[{i}]"), depth + 1) for i, child in _reversed(item))
            continue
        children = []
        for key, child in item.items():
            problem = text_problem(key) if isinstance(key, str) else None
            if problem:
                problems.append(f"{_render(path, label)}: key {_quoted(key)} {problem}")
            children.append((child, (path, _segment(key)), depth + 1))
        stack.extend(reversed(children))
    if stack and len(problems) >= MAX_PROBLEMS:
        problems.append(f"(only the first {MAX_PROBLEMS} problems are listed)")
    return problems


def _reversed(items: list[Any]) -> Any:
    return zip(range(len(items) - 1, -1, -1), reversed(items), strict=True)


def _segment(key: Any) -> str:
    text = str(key)
    return f".{text}" if _PLAIN_KEY.fullmatch(text) else f"[{_quoted(text)}]"


def _quoted(text: str) -> str:
    """The key as ASCII JSON, cut short: safe to show whatever it holds."""
    return json.dumps(text if len(text) <= 40 else text[:40] + "...")


def _render(path: _Path, label: str) -> str:
    segments: list[str] = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    text = "".join(reversed(segments)).lstrip(".") or label
    if len(text) > _MAX_PATH_CHARS:
        return text[: _MAX_PATH_CHARS // 2] + "..." + text[-_MAX_PATH_CHARS // 2 :]
    return text
