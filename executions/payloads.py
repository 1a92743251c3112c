"""Inputs and outputs made safe to store: JSON-native and bounded in size.

A procedure may return anything (a set, a datetime, a 50 MB string). A write or a page must never
fail because of it, so values are encoded once here: what JSON cannot hold becomes a readable
string, and anything larger than C4C_MAX_PAYLOAD_BYTES becomes a truncation marker that says so.
"""

import json
import math
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from .conf import app_settings

TRUNCATED_KEY = "$truncated"
PREVIEW_CHARS = 1_000


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


def dumps(value: Any) -> str:
    """Compact JSON for any value, never raising."""
    try:
        return json.dumps(value, cls=_LenientEncoder, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), cls=_LenientEncoder, separators=(",", ":"))


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
