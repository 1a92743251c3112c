"""`{{nodeId.field}}` and `{{input.field}}` in a procedure node's config, resolved as it runs.

The first segment names where the value comes from: `input` (the run's input), the id of a node
that already ran (its output), or a workflow variable (e.g. `error` inside an onError handler).
Further segments walk into dicts (keys) and lists (indices). A string that is exactly one template
keeps the value's type (`"{{add.result}}"` gives the number 15); a template inside longer text is
interpolated as text (containers as compact JSON).

Expansion is bounded: a 136 KB config that repeats `{{input.b}}` 3,000 times over a 100 KB value
asks for 300 MB. The rendered config's size (text as UTF-8, referenced values as their JSON) is
counted as it is built, before each piece is made, and the node fails with ExpansionTooLarge once
it passes settings.C4C_MAX_EXPANDED_BYTES, so a node's input never costs more memory than that.
"""

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from .errors import TemplateError
from .limits import max_expanded_bytes

TEMPLATE = re.compile(r"\{\{\s*([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}")

Lookup = Callable[[str], tuple[bool, Any]]


class ExpansionTooLarge(TemplateError):
    """A node's rendered config would pass C4C_MAX_EXPANDED_BYTES."""


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


def render(value: Any, lookup: Lookup, *, limit: int | None = None) -> Any:
    """A copy of `value` with every template replaced; `lookup(root)` -> (found, value).

    Raises ExpansionTooLarge when the copy would be larger than `limit` bytes (default
    settings.C4C_MAX_EXPANDED_BYTES).
    """
    return _Renderer(lookup, max_expanded_bytes() if limit is None else limit).render(value)


class _Renderer:
    def __init__(self, lookup: Lookup, limit: int) -> None:
        self.lookup = lookup
        self.limit = limit
        self.left = limit
        self.sizes: dict[str, int] = {}

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise ExpansionTooLarge(
                f"Templates expand this node's input beyond C4C_MAX_EXPANDED_BYTES "
                f"({self.limit} bytes)"
            )

    def render(self, value: Any) -> Any:
        if isinstance(value, str):
            if "{{" not in value:
                self.spend(_text_bytes(value))
                return value
            return self.render_string(value)
        if isinstance(value, dict):
            rendered = {}
            for key, item in value.items():
                self.spend(_text_bytes(key) if isinstance(key, str) else 1)
                rendered[key] = self.render(item)
            return rendered
        if isinstance(value, list | tuple):
            return [self.render(item) for item in value]
        return value

    def render_string(self, text: str) -> Any:
        whole = TEMPLATE.fullmatch(text.strip())
        if whole:
            return self.resolve(whole.group(1))

        def interpolate(match: re.Match[str]) -> str:
            found = self.resolve(match.group(1))
            if isinstance(found, str):
                return found
            return json.dumps(found, separators=(",", ":"), default=str)

        literal = TEMPLATE.sub("", text)
        self.spend(_text_bytes(literal))
        return TEMPLATE.sub(interpolate, text)

    def resolve(self, reference: str) -> Any:
        """The referenced value, paid for before it is used (each size measured once)."""
        value = resolve(reference, self.lookup)
        size = self.sizes.get(reference)
        if size is None:
            size = self.sizes[reference] = _json_bytes(value, self.left + 1)
        self.spend(size)
        return value


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


def _text_bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _json_bytes(value: Any, stop_after: int) -> int:
    """About the size of `value` as JSON, counted without building it; stops past `stop_after`."""
    size = 0
    stack = [value]
    while stack and size <= stop_after:
        item = stack.pop()
        if isinstance(item, str):
            size += _text_bytes(item) + 2
        elif isinstance(item, dict):
            size += 2
            for key, child in item.items():
                size += _text_bytes(str(key)) + 4
                stack.append(child)
        elif isinstance(item, list | tuple):
            size += 2
            stack.extend(item)
        else:
            size += len(str(item)) + 1
    return size
