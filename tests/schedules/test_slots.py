"""Slot arithmetic: cron in a time zone, seconds, daylight saving time, and the bounded walk back
over slots missed during downtime."""

from datetime import UTC, datetime, timedelta

import pytest

from schedules.slots import Cron, iso, local
from workflows.schedules import cron_problem, timezone_problem

BERLIN = "Europe/Berlin"


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_a_weekday_morning_schedule_reads_its_hours_in_its_zone() -> None:
    cron = Cron.of("0 9 * * 1-5", BERLIN)

    # Friday 2025-06-06 10:00 Berlin (08:00 UTC): next is Monday 09:00 Berlin, 07:00 UTC.
    assert cron.after(utc(2025, 6, 6, 8, 0)) == utc(2025, 6, 9, 7, 0)
    assert [iso(s) for s in cron.upcoming(utc(2025, 6, 9, 7, 0), 2)] == [
        "2025-06-10T07:00:00Z",
        "2025-06-11T07:00:00Z",
    ]


def test_the_same_cron_in_another_zone_fires_at_another_instant() -> None:
    moment = utc(2025, 1, 15, 0, 0)

    assert Cron.of("0 9 * * *", "UTC").after(moment) == utc(2025, 1, 15, 9, 0)
    assert Cron.of("0 9 * * *", "America/New_York").after(moment) == utc(2025, 1, 15, 14, 0)


def test_a_sixth_field_counts_seconds() -> None:
    cron = Cron.of("* * * * * */2", "UTC")

    assert cron.upcoming(utc(2025, 6, 2, 9, 0, 0), 3) == [
        utc(2025, 6, 2, 9, 0, 2),
        utc(2025, 6, 2, 9, 0, 4),
        utc(2025, 6, 2, 9, 0, 6),
    ]


def test_a_slot_is_strictly_after_the_moment_asked_about() -> None:
    assert Cron.of("0 * * * *", "UTC").after(utc(2025, 6, 2, 9, 0)) == utc(2025, 6, 2, 10, 0)


def test_a_daily_time_skipped_by_spring_forward_fires_once_right_after_the_gap() -> None:
    # Berlin, 2025-03-30: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
    slots = Cron.of("30 2 * * *", BERLIN).upcoming(utc(2025, 3, 29, 12, 0), 3)

    assert [local(s, BERLIN) for s in slots] == [
        "2025-03-30 03:00:00 CEST",
        "2025-03-31 02:30:00 CEST",
        "2025-04-01 02:30:00 CEST",
    ]


def test_half_hourly_slots_in_the_spring_gap_collapse_into_one() -> None:
    slots = Cron.of("*/30 * * * *", BERLIN).upcoming(utc(2025, 3, 30, 0, 0), 3)

    assert [local(s, BERLIN) for s in slots] == [
        "2025-03-30 01:30:00 CET",
        "2025-03-30 03:00:00 CEST",
        "2025-03-30 03:30:00 CEST",
    ]


def test_a_daily_time_repeated_by_fall_back_fires_once() -> None:
    # Berlin, 2025-10-26: 03:00 CEST becomes 02:00 CET; 02:30 happens twice that night.
    slots = Cron.of("30 2 * * *", BERLIN).upcoming(utc(2025, 10, 25, 12, 0), 3)

    assert [local(s, BERLIN) for s in slots] == [
        "2025-10-26 02:30:00 CEST",
        "2025-10-27 02:30:00 CET",
        "2025-10-28 02:30:00 CET",
    ]


def test_an_hourly_schedule_keeps_its_pace_through_the_repeated_hour() -> None:
    slots = Cron.of("0 * * * *", BERLIN).upcoming(utc(2025, 10, 25, 23, 30), 4)

    assert [iso(s) for s in slots] == [
        "2025-10-26T00:00:00Z",  # 02:00 CEST
        "2025-10-26T01:00:00Z",  # 02:00 CET, the second time
        "2025-10-26T02:00:00Z",
        "2025-10-26T03:00:00Z",
    ]


def test_walking_back_over_dst_finds_the_same_slots_as_walking_forward() -> None:
    cron = Cron.of("30 2 * * *", BERLIN)
    forward = cron.upcoming(utc(2025, 10, 20, 0, 0), 10)

    back, more = cron.due(forward[0], forward[-1], limit=100)

    assert back == forward
    assert not more


def test_due_slots_include_both_ends_oldest_first() -> None:
    cron = Cron.of("* * * * *", "UTC")

    due, more = cron.due(utc(2025, 6, 2, 9, 0), utc(2025, 6, 2, 9, 3), limit=10)

    assert due == [utc(2025, 6, 2, 9, m) for m in range(4)]
    assert not more


def test_a_long_downtime_is_walked_back_only_as_far_as_the_bound() -> None:
    """A year of a per-second schedule costs `limit` steps, not 31 million."""
    cron = Cron.of("* * * * * *", "UTC")
    until = utc(2025, 6, 2, 9, 0, 0)

    due, more = cron.due(until - timedelta(days=365), until, limit=5)

    assert due == [until - timedelta(seconds=s) for s in range(4, -1, -1)]
    assert more


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "is not a valid cron expression"),
        ("* * *", "has 3 fields"),
        ("@hourly", "write the fields instead of a nickname"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_a_bad_cron_is_refused_with_what_is_wrong(expression: str, message: str) -> None:
    problem = cron_problem(expression)

    assert problem is not None
    assert message in problem
    with pytest.raises(ValueError, match=message):
        Cron.of(expression, "UTC")


def test_an_unknown_time_zone_is_refused_naming_it() -> None:
    assert "'Mars/Olympus' is not a known time zone" in (timezone_problem("Mars/Olympus") or "")
    with pytest.raises(ValueError, match="not a known time zone"):
        Cron.of("* * * * *", "Mars/Olympus")
