"""The one cursor codec: a row's keyset position round-trips; anything else is refused by name."""

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from executions.cursors import BadPosition, Position, decode_cursor, encode_cursor, storable_time
from tests import factories


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_a_rows_cursor_decodes_to_its_position(db):
    row = factories.execution()
    assert decode_cursor(encode_cursor(row), "after") == Position(row.started_at, row.pk)


@pytest.mark.parametrize(
    ("cursor", "problem"),
    [
        ("not-a-cursor!!", "not a cursor this server made"),
        (_cursor("2025-01-01T00:00:00+00:00"), "not a cursor this server made"),
        (_cursor("2025-01-01T00:00:00+00:00|-1"), "not a cursor this server made"),
        (_cursor(f"2025-01-01T00:00:00+00:00|{2**63}"), "not a cursor this server made"),
        (_cursor("2025-01-01T00:00:00|1"), "the time needs a UTC offset"),
        (_cursor("0001-01-01T00:00:00+00:01|1"), "outside 0001-01-01..9999-12-31 in UTC"),
    ],
    ids=["garbage", "no-key", "negative-key", "key-beyond-64-bits", "naive", "before-year-1"],
)
def test_a_cursor_the_server_cannot_use_is_refused_naming_the_parameter(cursor, problem):
    with pytest.raises(BadPosition) as refused:
        decode_cursor(cursor, "before")
    assert str(refused.value).startswith("before: ")
    assert problem in refused.value.problem


def test_times_are_kept_in_utc_from_any_offset():
    east = datetime(2025, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=1, minutes=30)))
    assert storable_time(east, "startedAfter") == datetime(2025, 1, 1, tzinfo=UTC)
    edge = datetime.max.replace(tzinfo=UTC)
    assert storable_time(edge, "startedBefore") == edge
    west = datetime.max.replace(tzinfo=timezone(-timedelta(minutes=1)))
    with pytest.raises(BadPosition) as refused:
        storable_time(west, "startedBefore")
    assert str(refused.value) == (
        "startedBefore: 9999-12-31T23:59:59.999999-00:01 is outside 0001-01-01..9999-12-31 in UTC"
    )
