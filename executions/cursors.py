"""The keyset position of a list page, and the times a list query may be bounded by.

A cursor is the (started_at, pk) of a row, base64 in a URL: paging by it stays one index range
scan at any depth, where an offset walks every row it skips. The API's `cursor` and the pages'
`after`/`before` are this one codec, so both refuse the same bad input the same way.

Times are checked here before they reach a query. The database keeps UTC, so a time is only
usable if it exists in UTC: 0001-01-01T00:00+01:00 and 9999-12-31T23:59-01:00 are valid Python
datetimes whose conversion overflows (a 500 on SQLite). Every refusal is a ValueError whose
message names the parameter, which the edges answer with a 400.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

# A signed 64-bit column's largest value: a larger int overflows SQLite's parameter binding.
_MAX_PK = 2**63 - 1


class BadPosition(ValueError):
    """A cursor or time bound the server cannot use; the message names the parameter."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


class Positioned(Protocol):
    """A row a cursor can point at: an Execution."""

    pk: int
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Position:
    """A row's place in the newest-first order: its start time, then its primary key."""

    started_at: datetime
    pk: int


def storable_time(value: datetime, parameter: str) -> datetime:
    """`value` in UTC, or BadPosition if it has no time zone or no UTC form."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadPosition(parameter, "the time needs a UTC offset, like 2025-01-31T12:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadPosition(
            parameter, f"{value.isoformat()} is outside 0001-01-01..9999-12-31 in UTC"
        ) from None


def encode_cursor(row: Positioned) -> str:
    raw = f"{row.started_at.isoformat()}|{row.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parameter: str) -> Position:
    """The position `encode_cursor` wrote, or BadPosition naming `parameter`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        started, pk = raw.rsplit("|", 1)
        started_at, row_pk = datetime.fromisoformat(started), int(pk)
        if not 0 <= row_pk <= _MAX_PK:
            raise ValueError("primary key out of range")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadPosition(parameter, f"not a cursor this server made: {cursor[:60]!r}") from None
    return Position(storable_time(started_at, parameter), row_pk)
