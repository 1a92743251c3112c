"""Liveness by lease: the runs this process holds, and the one thread that keeps them its own.

Every running execution is owned through a lease (Execution.lease_owner, lease_expires_at). A
process holds a run from the moment it queues it on its pool until the run ends (`runs`), and
one heartbeat thread per process does three things (DBOS and Temporal do the same with their
own names; our database is the only coordinator):

- every C4C_CANCEL_CHECK_SECONDS, while it holds anything, one indexed read of its runs' rows:
  a run another process cancelled (or took over, after this process stalled past its lease) has
  its RunControl cancelled, so the work stops within that interval wherever the cancel came from;
- every third of C4C_LEASE_SECONDS, one UPDATE renews the leases of every run it holds;
- every tick, each held run's `on_tick` (the runtime's: it saves the run's due span batch), so
  what ended before a long node started is shown while that node runs, not after it;
- in a serving process (a daphne process, a Celery worker: `enable_sweep`), every second (or
  third of a lease, if shorter), the sweep (executions.dispatch.sweep) takes over the runs whose
  lease lapsed and the waiting runs that are due; it also runs at the earliest due time of the
  waiting runs (read after each sweep, or told by `due_at`), so a sleep ends on time, not up to a
  second late, and at once when `wake(sweep=True)` says a signal or child made one due;
- in a serving process that prunes (`enable_prune`: inline dispatch), every tick, the periodic
  prune (executions.retention.PeriodicPrune), which does nothing until its interval is up and
  then deletes in slices short enough to keep the leases renewed on time.

Holding nothing costs nothing: no query. A forked child (a Celery pool process) starts with
nothing held and its own heartbeat, since threads do not survive a fork.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections

from workflows.context import RunControl

from . import store
from .conf import app_settings
from .models import Execution, ExecutionStatus

logger = logging.getLogger(__name__)

# A sweep is one read on the partial index of running rows by expiry: every second at most, so a
# run is resumed within about a second of its lease lapsing, whatever the lease.
SWEEP_SECONDS = 1.0
# The shortest tick while a waiting run is due soon: the timer's resolution.
DUE_TICK_SECONDS = 0.005


@dataclass(slots=True)
class HeldRun:
    """A run this process holds: the control that stops it, whether it was lost to another
    process (then nothing more may be recorded or announced for it here), and what the heartbeat
    does for it at each tick while it runs (None: nothing)."""

    control: RunControl = field(default_factory=RunControl)
    lost: bool = False
    on_tick: Callable[[], None] | None = None


class HeldRuns:
    """execution_id -> HeldRun for every run this process has queued or is running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, HeldRun] = {}

    def hold(self, execution: Execution, control: RunControl | None = None) -> HeldRun:
        """Hold `execution` (again: the same HeldRun) and make sure the heartbeat runs. A first
        hold may give the run the control a thread already waits on (dispatch's)."""
        with self._lock:
            held = self._runs.get(execution.execution_id)
            if held is None:
                held = self._runs[execution.execution_id] = HeldRun(control or RunControl())
        heartbeat.ensure_running()
        return held

    def release(self, execution_id: str) -> None:
        with self._lock:
            self._runs.pop(execution_id, None)
            last = not self._runs
        if last:
            heartbeat.released_all()

    def get(self, execution_id: str) -> HeldRun | None:
        with self._lock:
            return self._runs.get(execution_id)

    def snapshot(self) -> dict[str, HeldRun]:
        with self._lock:
            return dict(self._runs)

    def forget_all(self) -> None:
        with self._lock:
            self._runs = {}


runs = HeldRuns()


def stop_lost(held: dict[str, HeldRun], owner: str) -> None:
    """Stop each held run whose row says this process may no longer run it."""
    for execution_id, why in Execution.objects.held_elsewhere(held.keys(), owner).items():
        run = held[execution_id]
        if why == "taken":
            run.lost = True
            run.control.cancel("Execution taken over by another process: its lease lapsed here")
        elif why == ExecutionStatus.CANCELLED:
            run.control.cancel("Execution cancelled")
        else:
            run.control.cancel(f"Execution {why} elsewhere")


class Heartbeat:
    """The process's one thread for leases, remote cancels and (when enabled) the sweep."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sweep: Callable[[], object] | None = None
        self._prune: Callable[[], object] | None = None
        self._wake = threading.Event()
        self._sweep_now = False
        # The earliest due time of the waiting runs, as a time.time() value; None: none known.
        self._next_due: float | None = None
        # False from a tick that finds runs held until one closes its connection with none held:
        # whether the end of the last held run must wake it (released_all).
        self._idle = True
        self._closing = False  # woken by released_all

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._loop, name="c4c-heartbeat", daemon=True)
            self._thread.start()

    def wake(self, *, sweep: bool = False) -> None:
        """Tick now; with `sweep`, sweep in this tick too (a waiting run has just become due)."""
        if sweep:
            self._sweep_now = True
        self._wake.set()

    def released_all(self) -> None:
        """Nothing is held any more: if a tick queried for the runs since the last close, wake
        the heartbeat to close its database connection at once, not a tick later (no idle
        PostgreSQL session outlives a process's last run). Runs shorter than a tick leave it
        idle, and cost it no wake-up."""
        if not self._idle:
            self._closing = True
            self._wake.set()

    def due_at(self, when: datetime) -> None:
        """A run parked here is due at `when`: sweep then, if that is before anything known."""
        due = when.timestamp()
        if self._next_due is None or due < self._next_due:
            self._next_due = due
            self._wake.set()

    def enable_sweep(self, sweep: Callable[[], object]) -> None:
        """Sweep lapsed leases from this process too (daphne, a Celery worker), starting now."""
        self._sweep = sweep
        self.ensure_running()
        self._wake.set()

    def enable_prune(self, prune: Callable[[], object]) -> None:
        """Prune from this process too (a daphne process on inline dispatch)."""
        self._prune = prune
        self.ensure_running()

    def reset_after_fork(self) -> None:
        """A forked child holds nothing, has no heartbeat thread, and sweeps or prunes only if
        told to."""
        self._lock = threading.Lock()
        self._thread = None
        self._sweep = None
        self._prune = None
        self._wake = threading.Event()
        self._sweep_now = False
        self._next_due = None
        self._idle = True
        self._closing = False

    def _tick_seconds(self) -> float:
        """Until the next tick: the cancel-check interval, or less when a waiting run is due."""
        seconds = app_settings.C4C_CANCEL_CHECK_SECONDS
        if self._sweep is not None and self._next_due is not None:
            seconds = max(DUE_TICK_SECONDS, min(seconds, self._next_due - time.time()))
        return seconds

    def _close_when_idle(self) -> None:
        """Close this thread's connection if a tick queried for runs and none is held now.
        Read again, not a tick's snapshot: a run released after this read finds the heartbeat
        not idle and wakes it, so the last one's connection never waits for a tick."""
        if self._idle or runs.snapshot():
            return
        self._idle = True
        try:
            connections.close_all()
        except Exception:
            logger.exception("The heartbeat could not close its database connection")

    def _loop(self) -> None:
        renewed = swept = float("-inf")
        # When the next tick is (time.monotonic()), and the due time the last one knew.
        tick_at, known_due = 0.0, self._next_due
        while True:
            self._wake.wait(max(0.0, tick_at - time.monotonic()))
            self._wake.clear()
            now = time.monotonic()
            closing, self._closing = self._closing, False
            if closing and now < tick_at and not self._sweep_now and self._next_due == known_due:
                # Woken by released_all alone: close, and keep the tick's time. A full tick here
                # would see the next run held (as likely as not, one after another) and be woken
                # again at its end: a tick per run.
                self._close_when_idle()
                continue
            every = app_settings.C4C_LEASE_SECONDS / 3
            try:
                held = runs.snapshot()
                if held:
                    self._idle = False
                    owner = store.process_owner()
                    stop_lost(held, owner)
                    for execution_id, run in held.items():
                        tick = run.on_tick
                        if tick is None:
                            continue
                        try:
                            tick()
                        except Exception:
                            logger.exception("Heartbeat work for %s failed", execution_id)
                    if now - renewed >= every:
                        store.leases_renew(owner=owner, execution_ids=list(held))
                        renewed = now
                sweep = self._sweep
                next_due = self._next_due
                due = self._sweep_now or now - swept >= min(every, SWEEP_SECONDS)
                if sweep is not None and (due or (next_due and time.time() >= next_due)):
                    swept, self._sweep_now = now, False
                    began = time.time()
                    taken = sweep()
                    upcoming = Execution.objects.next_due()
                    self._next_due = upcoming.timestamp() if upcoming else None
                    if not taken and self._next_due is not None and self._next_due <= began:
                        # Due before this sweep began but not taken (no room in the pool): the
                        # every-second sweep will. One that fell due during the sweep is kept,
                        # or it would wake up to a second late.
                        self._next_due = None
                prune = self._prune
                if prune is not None:
                    prune()
                self._close_when_idle()
            except Exception:
                logger.exception("Heartbeat tick failed; retrying at the next one")
                connections.close_all()
            tick_at, known_due = time.monotonic() + self._tick_seconds(), self._next_due


heartbeat = Heartbeat()


def _after_fork_in_child() -> None:
    runs.forget_all()
    heartbeat.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
