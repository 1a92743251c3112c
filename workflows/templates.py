"""`{{nodeId.field}}` and `{{input.field}}` in a procedure node's config, resolved as it runs.

The first segment names where the value comes from: `input` (the run's input), the id of a node
that already ran (its output), or a workflow variable (e.g. `error` inside an onError handler).
Further segments walk into dicts (keys) and lists (indices). A string that is exactly one template
keeps the value's type (`"{{add.result}}"` gives the number 15); a template inside longer text is
interpolated as text (containers as compact JSON).
"""

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from .errors import TemplateError

TEMPLATE = re.compile(r"\{\{\s*([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}")

Lookup = Callable[[str], tuple[bool, Any]]


def has_templates(value: Any) -> bool:
    """Whether a config needs rendering at all; checked once per node so most nodes skip it."""
    return any(True for _ in references(value))


def references(value: Any) -> Iterator[str]:
    """Every dotted reference in a config value, e.g. "add.result"."""
    if isinstance(value, str):
        if "{{" in value:
            yield from (m.group(1) for m in TEMPLATE.finditer(value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from references(item)


def render(value: Any, lookup: Lookup) -> Any:
    """A copy of `value` with every template replaced; `lookup(root)` -> (found, value)."""
    if isinstance(value, str):
        return _render_string(value, lookup) if "{{" in value else value
    if isinstance(value, dict):
        return {key: render(item, lookup) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, lookup) for item in value]
    return value


def _render_string(text: str, lookup: Lookup) -> Any:
    whole = TEMPLATE.fullmatch(text.strip())
    if whole:
        return resolve(whole.group(1), lookup)

    def interpolate(match: re.Match[str]) -> str:
        found = resolve(match.group(1), lookup)
        if isinstance(found, str):
            return found
        return json.dumps(found, separators=(",", ":"), default=str)

    return TEMPLATE.sub(interpolate, text)


def resolve(reference: str, lookup: Lookup) -> Any:
    root, *path = reference.split(".")
    found, value = lookup(root)
    if not found:
        raise TemplateError(f"Template {{{{{reference}}}}}: {root} has no value (yet)")
    for step, key in enumerate(path):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif (
            isinstance(value, list)
            and key.lstrip("-").isdigit()
            and -len(value) <= int(key) < len(value)
        ):
            value = value[int(key)]
        else:
            walked = ".".join([root, *path[:step]])
            raise TemplateError(f"Template {{{{{reference}}}}}: {walked} has no {key!r}")
    return value
