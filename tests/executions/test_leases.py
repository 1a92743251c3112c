"""Leases: one winner per takeover, renewal by the holder's heartbeat, and a run stopped here when
another process cancels it or takes it over.

The heartbeat tests run the real thread: transaction=True, so its connection sees the rows.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from executions import leases, store
from executions.models import Execution
from tests import factories
from tests.executions.conftest import within

# slow: they wait on the heartbeat's real intervals.
pytestmark = pytest.mark.slow

OTHER_OWNER = "web-2:8000/77/other"


@contextmanager
def holding(execution: Execution) -> Iterator[leases.HeldRun]:
    """This process holds `execution` (as dispatch does) until the block ends: inside the test's
    body, since a run still held when a test's body ends is waited for (tests/conftest.py)."""
    run = leases.runs.hold(execution)
    try:
        yield run
    finally:
        leases.runs.release(execution.execution_id)


@pytest.mark.django_db
def test_of_two_processes_taking_one_lapsed_run_exactly_one_wins(math_workflow) -> None:
    lapsed = factories.lapse(factories.execution(status="running", workflow=math_workflow))
    first_read = Execution.objects.get(pk=lapsed.pk)
    second_read = Execution.objects.get(pk=lapsed.pk)

    won = store.execution_take_over(execution=first_read, owner="sweeper-a/1/a")
    lost = store.execution_take_over(execution=second_read, owner="sweeper-b/2/b")

    assert won is not None
    assert lost is None
    assert Execution.objects.get().lease_owner == "sweeper-a/1/a"


@pytest.mark.django_db(transaction=True)
def test_many_sweepers_at_once_take_a_run_once(math_workflow) -> None:
    """Threads with their own connections race the same compare-and-set."""
    lapsed = factories.lapse(factories.execution(status="running", workflow=math_workflow))
    winners: list[str] = []
    start = threading.Barrier(4)

    def take(name: str) -> None:
        read = Execution.objects.get(pk=lapsed.pk)
        start.wait()
        if store.execution_take_over(execution=read, owner=name) is not None:
            winners.append(name)
        connections.close_all()

    threads = [threading.Thread(target=take, args=(f"sweeper-{i}/1/x",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1
    assert Execution.objects.get().lease_owner == winners[0]


@pytest.mark.django_db
def test_a_lease_renewed_meanwhile_is_not_taken(math_workflow) -> None:
    """The owner was only slow: its renewal moved the expiry the sweeper read."""
    execution = factories.lapse(factories.execution(status="running", workflow=math_workflow))
    read = Execution.objects.get(pk=execution.pk)
    assert (
        store.leases_renew(owner=store.process_owner(), execution_ids=[execution.execution_id]) == 1
    )

    assert store.execution_take_over(execution=read, owner=OTHER_OWNER) is None
    assert Execution.objects.get().lease_owner == store.process_owner()


@pytest.mark.django_db
def test_a_full_queue_of_held_runs_is_checked_and_renewed_in_one_statement_each(
    math_workflow, django_assert_num_queries
) -> None:
    """The heartbeat names every run held here, queued ones too: more ids than SQLite once bound
    in one statement (999), most of them not recorded (yet)."""
    mine = factories.execution(status="running", workflow=math_workflow)
    cancelled = factories.execution(status="cancelled", workflow=math_workflow)
    taken = factories.execution(status="running", workflow=math_workflow, owner=OTHER_OWNER)
    recorded = [mine.execution_id, cancelled.execution_id, taken.execution_id]
    held = [f"wf_exec_queued_{i}" for i in range(1_200)] + recorded
    owner = store.process_owner()

    with django_assert_num_queries(2):
        lost = Execution.objects.held_elsewhere(held, owner)
        renewed = store.leases_renew(owner=owner, execution_ids=held)

    assert lost == {cancelled.execution_id: "cancelled", taken.execution_id: "taken"}
    assert renewed == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_held_run_ended_here_is_not_stopped_but_one_ended_elsewhere_is(
    math_workflow, status
) -> None:
    """Between its end's write and its walk's return (saving its spans), a run is still held: a
    tick then must not cancel it, or its waiting client is answered from a row without them."""
    here = factories.execution(status=status, workflow=math_workflow)
    elsewhere = factories.execution(status=status, workflow=math_workflow, owner=OTHER_OWNER)

    lost = Execution.objects.held_elsewhere(
        [here.execution_id, elsewhere.execution_id], store.process_owner()
    )

    assert lost == {elsewhere.execution_id: status}


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_the_leases_of_the_runs_this_process_holds(
    math_workflow, settings
) -> None:
    settings.C4C_LEASE_SECONDS = 0.6  # renewed every 0.2 s
    mine = factories.execution(status="running", workflow=math_workflow)
    not_held = factories.execution(status="running", workflow=math_workflow)
    first_expiry = mine.lease_expires_at
    assert first_expiry is not None
    with holding(mine):
        time.sleep(1.5)

    renewed = Execution.objects.get(pk=mine.pk).lease_expires_at
    assert renewed is not None
    assert renewed > first_expiry + timedelta(seconds=0.5)
    assert renewed > timezone.now()
    untouched = Execution.objects.get(pk=not_held.pk).lease_expires_at
    assert untouched == not_held.lease_expires_at
    assert untouched is not None
    assert untouched < timezone.now()


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch, settings) -> Iterator[list[float]]:
    """The times the heartbeat begins a wait for its next tick, from now. At the end it is woken
    into short waits, so a long interval a test set does not outlive it."""
    begun: list[float] = []
    tick_seconds = leases.heartbeat._tick_seconds

    def counted() -> float:
        begun.append(time.monotonic())
        return tick_seconds()

    monkeypatch.setattr(leases.heartbeat, "_tick_seconds", counted)
    yield begun
    settings.C4C_CANCEL_CHECK_SECONDS = 0.05
    leases.heartbeat.wake()


@pytest.mark.django_db(transaction=True)
def test_runs_shorter_than_a_tick_do_not_wake_the_heartbeat(math_workflow, settings, ticks) -> None:
    """What a run's end costs it: nothing, unless a tick saw it (then its connection closes)."""
    settings.C4C_CANCEL_CHECK_SECONDS = 1.0
    execution = factories.execution(status="running", workflow=math_workflow)
    leases.heartbeat.ensure_running()
    ticks.clear()

    for _ in range(50):
        with holding(execution):
            time.sleep(0.005)  # a short run, as long as the API's simple ones

    # At most the wait it was in, and the one a run seen by its tick woke for closing.
    assert len(ticks) <= 2


@pytest.mark.django_db(transaction=True)
def test_the_last_run_a_tick_saw_ending_closes_the_heartbeats_connection_at_once(
    math_workflow, settings, ticks, monkeypatch
) -> None:
    settings.C4C_CANCEL_CHECK_SECONDS = 0.05
    execution = factories.execution(status="running", workflow=math_workflow)
    closed: list[float] = []
    close_all = connections.close_all

    def noted_close_all() -> None:
        if threading.current_thread().name == "c4c-heartbeat":
            closed.append(time.monotonic())
        close_all()

    monkeypatch.setattr(connections, "close_all", noted_close_all)
    with holding(execution):
        leases.heartbeat.wake()  # out of a wait begun under another test's interval
        within(1.0, lambda: len(ticks) >= 2)  # a tick saw the run
        settings.C4C_CANCEL_CHECK_SECONDS = 30.0
        seen = len(ticks)
        within(1.0, lambda: len(ticks) > seen)  # and waits 30 s for the next
        closed.clear()
        released = time.monotonic()
    took = within(1.0, lambda: bool(closed))

    assert took < 1.0
    assert closed[0] >= released


@pytest.mark.django_db(transaction=True)
def test_a_cancel_recorded_by_another_process_stops_the_run_here_within_a_second(
    math_workflow,
) -> None:
    execution = factories.execution(status="running", workflow=math_workflow)
    with holding(execution) as run:
        # What runtime.cancel does in the other process: the row, not this process's control.
        store.execution_cancel(execution_id=execution.execution_id)

        took = within(1.0, lambda: run.control.cancelled)
    assert took < 1.0
    assert not run.lost
    assert run.control.message == "Execution cancelled"


@pytest.mark.django_db(transaction=True)
def test_a_run_taken_over_elsewhere_is_stopped_here_and_marked_lost(math_workflow) -> None:
    """This process stalled past its lease and another took the run: it must stop, and record
    nothing more (its writes are fenced by the lease anyway)."""
    execution = factories.execution(status="running", workflow=math_workflow)
    with holding(execution) as run:
        read = Execution.objects.get(pk=factories.lapse(execution).pk)
        assert store.execution_take_over(execution=read, owner=OTHER_OWNER) is not None

        within(1.0, lambda: run.control.cancelled)
    assert run.lost


@pytest.mark.django_db(transaction=True)
def test_a_run_this_process_owns_but_no_longer_holds_lapses(math_workflow, settings) -> None:
    """Renewal is for the runs the process holds, not every row naming it: a run whose thread
    is gone here lapses and is swept like any other."""
    settings.C4C_LEASE_SECONDS = 0.3
    settings.C4C_CANCEL_CHECK_SECONDS = 0.05
    execution = factories.execution(status="running", workflow=math_workflow)
    expiry = execution.lease_expires_at
    leases.heartbeat.ensure_running()
    time.sleep(0.5)
    row = Execution.objects.get()
    assert row.lease_owner == store.process_owner()
    assert row.lease_expires_at == expiry
    assert Execution.objects.lapsed(timezone.now(), limit=10) == [row]


@pytest.mark.django_db(transaction=True)
def test_a_run_that_falls_due_during_a_sweep_is_swept_right_after_it(
    math_workflow, monkeypatch
) -> None:
    """A sweep that begins before a waiting run is due and ends after it took nothing: the timer
    still fires for that run at once, not at the every-second sweep (CI saw a sleep end 1.01 s
    late that way)."""
    row = factories.execution(status="running", workflow=math_workflow)
    due = timezone.now() + timedelta(seconds=0.4)
    parked = factories.run_result(row, status="waiting")
    store.execution_park(execution=row, result=replace(parked, wake_at=due))
    calls: list[float] = []

    def sweep() -> list[str]:
        calls.append(time.time())
        if len(calls) == 1:
            time.sleep(due.timestamp() + 0.05 - time.time())
        return []

    monkeypatch.setattr(leases.heartbeat, "_sweep", None)  # restored when the test ends
    leases.heartbeat.enable_sweep(sweep)

    within(1.0, lambda: len(calls) >= 2)
    assert calls[0] < due.timestamp() < calls[1] < due.timestamp() + 0.3
