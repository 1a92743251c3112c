"""Request bodies loaded as JSON that is safe to store: bounded nesting, text every database holds.

Any view (or django-ninja's parser) calls `load_json(raw)`. A body that is not UTF-8 JSON, nests
deeper than workflows.limits.MAX_JSON_DEPTH, holds NaN or Infinity, or holds a string with a NUL
character or a lone surrogate anywhere (keys too) raises JsonRejected, whose `.message` says what
is wrong and `.errors` lists every problem by its JSON path. Nothing such a body carries can then
reach a write, a page or a stream.
"""

import json
import math
from typing import Any

from workflows.limits import MAX_JSON_DEPTH, json_text_suspect, walk_problems


class JsonRejected(ValueError):
    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or [message]


def _not_json(text: str) -> None:
    raise ValueError(f"{text} is not a JSON value")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]} is out of range")
    return number


def load_json(raw: bytes) -> Any:
    """The JSON value of `raw`, or JsonRejected naming every problem."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JsonRejected(
            f"Request body is not valid JSON: not UTF-8 (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        value = json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except RecursionError as exc:
        raise JsonRejected(f"body: nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except ValueError as exc:
        raise JsonRejected(f"Request body is not valid JSON: {exc}") from exc
    # Strict UTF-8 without raw control characters spells NUL and surrogates only as escapes, so
    # the text itself shows whether the value needs the walk that names each problem.
    if json_text_suspect(text):
        problems = walk_problems(value)
        if problems:
            raise JsonRejected("; ".join(problems), problems)
    return value
