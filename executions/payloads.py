"""Inputs and outputs made safe to store: JSON-native and bounded in size.

A procedure may return anything (a set, a datetime, a 50 MB string). A write or a page must never
fail because of it, so values are encoded once here: what JSON cannot hold becomes a readable
string, and anything larger than C4C_MAX_PAYLOAD_BYTES becomes a truncation marker that says so.

Text no database can store is replaced, never refused (the run already happened): a NUL
character (PostgreSQL's text and jsonb refuse it) and a lone surrogate such as "\ud800" (not
Unicode: no UTF-8 page or stream can carry it) each become U+FFFD, the replacement character,
in values and keys alike. A value nested too deep to encode becomes a string saying so.
"""

import json
import math
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from .conf import app_settings

TRUNCATED_KEY = "$truncated"
PREVIEW_CHARS = 1_000
REPLACEMENT = "\\ufffd"

# In ASCII JSON every NUL and surrogate is a \u escape. Escapes are matched left to right, so an
# escaped backslash followed by "u0000" is read as the two escapes it is; a high surrogate
# followed by a low one is a valid pair (an emoji) and is kept.
_ESCAPE = re.compile(
    r"\\(?:u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|u(0000|d[89a-f][0-9a-f]{2})|.)"
)


class _LenientEncoder(DjangoJSONEncoder):
    """Dates, decimals and UUIDs as Django encodes them; sets as lists; anything else as repr."""

    def default(self, o: Any) -> Any:
        if isinstance(o, set | frozenset | tuple):
            return list(o)
        try:
            return super().default(o)
        except TypeError:
            return f"<{type(o).__name__}: {repr(o)[:200]}>"


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON (PostgreSQL's jsonb refuses them): store them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_finite(v) for v in value]
    return value


def _replace_escape(match: re.Match[str]) -> str:
    return REPLACEMENT if match.group(3) else match.group(0)


def _storable_json(text: str) -> str:
    """ASCII JSON text with every NUL and lone surrogate escape replaced by U+FFFD's."""
    if "\\u0000" not in text and "\\ud" not in text:
        return text
    return _ESCAPE.sub(_replace_escape, text)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable_text(text: str) -> bool:
    """Whether every database and UTF-8 stream holds `text` as it is (cheap for ASCII)."""
    return "\x00" not in text and (text.isascii() or not _UNSTORABLE.search(text))


def storable_text(text: str) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD, for a plain text column."""
    return text if is_storable_text(text) else _UNSTORABLE.sub("\ufffd", text)


def dumps(value: Any) -> str:
    """Compact ASCII JSON for any value that every database stores, never raising."""
    try:
        try:
            text = json.dumps(value, cls=_LenientEncoder, separators=(",", ":"), allow_nan=False)
        except ValueError:
            text = json.dumps(_finite(value), cls=_LenientEncoder, separators=(",", ":"))
    except RecursionError:
        text = json.dumps(f"<{type(value).__name__} nested too deeply to store>")
    return _storable_json(text)


def storable(value: Any) -> Any:
    """The JSON-native form of `value` with unstorable text replaced, at any size (errors)."""
    return json.loads(dumps(value))


def bounded(value: Any, *, limit: int | None = None) -> Any:
    """The JSON-native form of `value`, or a truncation marker when it is larger than `limit`."""
    if value is None or isinstance(value, bool | int):
        return value
    max_bytes = app_settings.C4C_MAX_PAYLOAD_BYTES if limit is None else limit
    text = dumps(value)
    size = len(text.encode())
    if size > max_bytes:
        return {
            TRUNCATED_KEY: True,
            "originalBytes": size,
            "limitBytes": max_bytes,
            "preview": text[:PREVIEW_CHARS],
        }
    return json.loads(text)
