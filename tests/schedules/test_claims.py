"""Claiming slots: each slot is recorded once, the overlap policy decides what a slot does while
the previous run goes on, and the catch-up policy which slots missed during downtime fire, up to
C4C_SCHEDULE_MAX_CATCHUP. No run is started here (schedules.store.slots_claim only records);
test_scheduler.py starts them."""

from datetime import timedelta

import pytest

from executions import runtime
from schedules import store
from schedules.models import FireStatus, Schedule, ScheduleFire
from tests.schedules.conftest import NOW, fires, schedule, started_fire

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("grace")]

MINUTE = timedelta(minutes=1)


def test_a_new_schedule_starts_from_its_next_slot_after_now() -> None:
    made = schedule(cron="*/5 * * * *", now=NOW + timedelta(minutes=1))

    assert made.next_slot == NOW + 5 * MINUTE
    assert made.last_slot is None


def test_a_due_slot_is_claimed_once_by_whoever_read_it_first() -> None:
    made = schedule()
    read_by_a = Schedule.objects.get(pk=made.pk)
    read_by_b = Schedule.objects.get(pk=made.pk)

    won = store.slots_claim(schedule=read_by_a, now=NOW + MINUTE, owner="a")
    lost = store.slots_claim(schedule=read_by_b, now=NOW + MINUTE, owner="b")

    assert [(fire.slot, fire.status, fire.fired_by) for fire in won] == [
        (NOW + MINUTE, FireStatus.PENDING, "a")
    ]
    assert lost == []
    made.refresh_from_db()
    assert made.next_slot == NOW + 2 * MINUTE
    assert made.last_slot == NOW + MINUTE


def test_nothing_is_claimed_before_the_slot() -> None:
    made = schedule()

    assert store.slots_claim(schedule=made, now=NOW + MINUTE - timedelta(seconds=1)) == []
    assert fires(made) == []


def test_a_slot_recorded_already_is_not_recorded_again_when_the_schedule_moves_back() -> None:
    made = schedule()
    store.slots_claim(schedule=made, now=NOW + MINUTE)
    # Edited to another expression and back: its next slot is computed again from "now".
    made.cron = "*/1 * * * *"
    store.schedule_save(schedule=made, now=NOW + MINUTE - timedelta(seconds=30))

    again = store.slots_claim(schedule=made, now=NOW + MINUTE)

    assert again == []
    assert fires(made) == [("09:01:00", "pending")]


def test_a_disabled_schedule_claims_nothing_and_drops_its_queue() -> None:
    made = schedule(overlap="queue")
    started_fire(made, NOW)
    store.slots_claim(schedule=made, now=NOW + MINUTE)
    assert fires(made) == [("09:00:00", "started"), ("09:01:00", "queued")]

    store.schedule_set_enabled(schedule=made, enabled=False, now=NOW + MINUTE)

    assert store.slots_claim(schedule=made, now=NOW + 2 * MINUTE) == []
    assert fires(made)[-1] == ("09:01:00", "skipped")
    assert Schedule.objects.due(NOW + 10 * MINUTE).count() == 0


def test_enabling_again_starts_from_the_next_slot_not_the_slots_it_was_off_for() -> None:
    made = schedule(catch_up="all")
    store.schedule_set_enabled(schedule=made, enabled=False, now=NOW)

    store.schedule_set_enabled(schedule=made, enabled=True, now=NOW + 30 * MINUTE)

    assert made.next_slot == NOW + 31 * MINUTE
    assert store.slots_claim(schedule=made, now=NOW + 31 * MINUTE) != []
    assert fires(made) == [("09:31:00", "pending")]


# Overlap ----------------------------------------------------------------------------------------


def test_overlap_skip_records_the_slot_as_skipped_while_the_previous_run_goes_on() -> None:
    made = schedule(overlap="skip")
    started_fire(made, NOW)

    (fire,) = store.slots_claim(schedule=made, now=NOW + MINUTE)

    assert fire.status == FireStatus.SKIPPED
    assert fire.note == "The previous run had not ended"


def test_overlap_skip_fires_once_the_previous_run_has_ended() -> None:
    made = schedule(overlap="skip")
    started_fire(made, NOW, status="completed")

    (fire,) = store.slots_claim(schedule=made, now=NOW + MINUTE)

    assert fire.status == FireStatus.PENDING


def test_a_fire_still_starting_counts_as_a_run_going_on() -> None:
    made = schedule(overlap="skip")
    store.slots_claim(schedule=made, now=NOW + MINUTE)  # pending: its run is being started
    made.refresh_from_db()

    (fire,) = store.slots_claim(schedule=made, now=NOW + 2 * MINUTE)

    assert fire.status == FireStatus.SKIPPED


def test_overlap_queue_queues_the_slot_until_the_previous_run_ends() -> None:
    made = schedule(overlap="queue")
    first = started_fire(made, NOW)

    store.slots_claim(schedule=made, now=NOW + MINUTE)
    assert store.queue_release(now=NOW + MINUTE) == []  # the previous run goes on

    runtime.cancel(first.execution_id)  # it ends (any end will do)
    released = store.queue_release(now=NOW + MINUTE + timedelta(seconds=5))

    assert [(fire.slot, fire.status) for fire in released] == [(NOW + MINUTE, "pending")]
    assert fires(made) == [("09:00:00", "started"), ("09:01:00", "pending")]


def test_overlap_queue_releases_one_slot_at_a_time_oldest_first() -> None:
    made = schedule(overlap="queue")
    first = started_fire(made, NOW)
    for minutes in (1, 2, 3):
        made.refresh_from_db()
        store.slots_claim(schedule=made, now=NOW + minutes * MINUTE)
    assert fires(made)[1:] == [
        ("09:01:00", "queued"),
        ("09:02:00", "queued"),
        ("09:03:00", "queued"),
    ]
    runtime.cancel(first.execution_id)

    released = store.queue_release(now=NOW + 3 * MINUTE)
    again = store.queue_release(now=NOW + 3 * MINUTE)

    assert [fire.slot for fire in released] == [NOW + MINUTE]
    assert again == []  # the released slot's run is starting: it is the run going on now
    assert [status for _, status in fires(made)[2:]] == ["queued", "queued"]


def test_a_full_queue_skips_further_slots(settings) -> None:
    settings.C4C_SCHEDULE_MAX_CATCHUP = 2
    made = schedule(overlap="queue")
    started_fire(made, NOW)
    for minutes in (1, 2, 3):
        made.refresh_from_db()
        store.slots_claim(schedule=made, now=NOW + minutes * MINUTE)

    assert fires(made)[1:] == [
        ("09:01:00", "queued"),
        ("09:02:00", "queued"),
        ("09:03:00", "skipped"),
    ]
    assert ScheduleFire.objects.get(schedule=made, slot=NOW + 3 * MINUTE).note.startswith(
        "The queue was full"
    )


def test_overlap_allow_fires_every_slot_alongside() -> None:
    made = schedule(overlap="allow", catch_up="all")
    started_fire(made, NOW)

    claimed = store.slots_claim(schedule=made, now=NOW + 3 * MINUTE)

    assert [fire.status for fire in claimed] == ["pending"] * 3


# Catch-up after downtime ------------------------------------------------------------------------


def _after_downtime(catch_up: str, overlap: str = "allow") -> list[tuple[str, str]]:
    """The schedule's fires once a scheduler is back, 10 minutes and 5 seconds after its next
    slot (nine slots missed, the tenth 5 s late: within the grace)."""
    made = schedule(catch_up=catch_up, overlap=overlap)
    store.slots_claim(schedule=made, now=NOW + 10 * MINUTE + timedelta(seconds=5))
    made.refresh_from_db()
    assert made.next_slot == NOW + 11 * MINUTE
    return fires(made)


def test_catch_up_none_fires_only_the_slot_that_is_on_time() -> None:
    assert _after_downtime("none") == [("09:10:00", "pending")]


def test_catch_up_last_fires_the_newest_slot_once() -> None:
    made = schedule(catch_up="last", overlap="allow")

    store.slots_claim(schedule=made, now=NOW + 10 * MINUTE + timedelta(seconds=30))

    assert fires(made) == [("09:10:00", "pending")]  # 30 s late: missed, but the newest


def test_catch_up_none_fires_nothing_when_every_slot_was_missed() -> None:
    made = schedule(catch_up="none")

    store.slots_claim(schedule=made, now=NOW + 10 * MINUTE + timedelta(seconds=30))

    assert fires(made) == []
    made.refresh_from_db()
    assert made.next_slot == NOW + 11 * MINUTE


def test_catch_up_all_fires_every_missed_slot() -> None:
    assert _after_downtime("all") == [(f"09:{m:02d}:00", "pending") for m in range(1, 11)]


def test_catch_up_all_with_overlap_skip_runs_the_first_and_skips_the_rest() -> None:
    assert _after_downtime("all", overlap="skip") == [("09:01:00", "pending")] + [
        (f"09:{m:02d}:00", "skipped") for m in range(2, 11)
    ]


def test_catch_up_all_fires_only_the_newest_slots_past_its_bound(settings, caplog) -> None:
    settings.C4C_SCHEDULE_MAX_CATCHUP = 3

    assert _after_downtime("all") == [(f"09:{m:02d}:00", "pending") for m in (8, 9, 10)]
    assert "slots missed before 2025-06-02T09:08:00Z not fired: more than" in caplog.text
