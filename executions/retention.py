"""Retention: which finished runs are past their keep-by, and pruning them in short batches.

C4C_RETENTION_DAYS (unset: keep everything) and C4C_RETENTION_DAYS_<STATUS> say how long a
finished run is kept, by its start time; `c4c prune --older-than` names one age for every
finished status instead. A running or queued run is never pruned, whatever its age.

Pruning deletes C4C_PRUNE_BATCH executions per transaction (each with its node runs, spans and
counter moves: executions.store.executions_delete), oldest first, status by status, and then the
definition snapshots no run uses any more: every transaction is short, so a writer (a run
recording its nodes) waits for one batch at most. Any number of processes may prune at once:
each row is deleted and counted once. It runs from `c4c prune`, from a serving process's
heartbeat (executions.leases, inline dispatch) and from Celery beat (executions.tasks.prune).
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from . import store
from .conf import app_settings
from .models import EXECUTION_TRANSITIONS, DefinitionSnapshot, Execution

_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = 7 * _UNITS["d"]


def parse_age(text: str) -> timedelta:
    """An age like 90m, 12h, 30d or 2w (a whole positive number and a unit); ValueError
    otherwise."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in _UNITS or not number.isdigit() or int(number) <= 0:
        raise ValueError(f"'{text}' is not an age like 12h, 30d or 2w (units: m, h, d, w)")
    return int(number) * _UNITS[unit]


def finished_statuses() -> tuple[str, ...]:
    """The statuses a run cannot leave: the only ones pruning considers."""
    return tuple(status for status, targets in EXECUTION_TRANSITIONS.items() if not targets)


def cutoffs(
    now: datetime | None = None, older_than: timedelta | None = None
) -> dict[str, datetime]:
    """Per finished status, the start time before which its runs go: `older_than` for every
    status, or each status's retention from the settings (a status kept forever is left out,
    so with no retention set this is empty)."""
    now = now or timezone.now()
    if older_than is not None:
        return dict.fromkeys(finished_statuses(), now - older_than)
    found: dict[str, datetime] = {}
    for status in finished_statuses():
        days = app_settings.retention_days(status)
        if days is not None:
            found[status] = now - timedelta(days=days)
    return found


@dataclass
class PruneReport:
    """What a prune deleted, and whether it stopped at its time budget with more to delete."""

    executions: Counter[str] = field(default_factory=Counter)
    snapshots: int = 0
    more: bool = False


@dataclass(frozen=True)
class PrunePlan:
    """What a prune would delete now (a dry run): runs per status, and the snapshots left
    unused by them."""

    executions: dict[str, int]
    snapshots: int


def plan(limits: dict[str, datetime]) -> PrunePlan:
    return PrunePlan(
        executions=Execution.objects.prunable_counts(limits),
        snapshots=DefinitionSnapshot.objects.left_unused_by(limits).count(),
    )


def prune(
    limits: dict[str, datetime], *, batch: int | None = None, budget_seconds: float | None = None
) -> PruneReport:
    """Delete the runs past `limits` and then the snapshots left unused, a batch per
    transaction, until none is left or `budget_seconds` has passed (then `more` is set and the
    rest waits for the next call)."""
    size = batch or app_settings.C4C_PRUNE_BATCH
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    report = PruneReport()

    def out_of_time() -> bool:
        report.more = deadline is not None and time.monotonic() >= deadline
        return report.more

    for status, before in limits.items():
        while pks := Execution.objects.prunable_batch(status, before, limit=size):
            report.executions += store.executions_delete(pks=pks)
            if out_of_time():
                return report
    while keys := DefinitionSnapshot.objects.unused_keys(limit=size):
        deleted = store.snapshots_delete_unused(keys=keys)
        report.snapshots += deleted
        if not deleted or out_of_time():
            break
    return report


class PeriodicPrune:
    """The heartbeat's pruning in a serving process: every C4C_PRUNE_INTERVAL_SECONDS while
    retention is set, a slice of at most SLICE_SECONDS per tick until the backlog is gone, so
    the heartbeat keeps renewing leases on time whatever the backlog."""

    SLICE_SECONDS = 0.25

    def __init__(self) -> None:
        self._last = float("-inf")
        self._backlog = False

    def __call__(self) -> PruneReport | None:
        now = time.monotonic()
        if not self._backlog and now - self._last < app_settings.C4C_PRUNE_INTERVAL_SECONDS:
            return None
        self._last = now
        limits = cutoffs()
        if not limits:
            self._backlog = False
            return None
        report = prune(limits, budget_seconds=self.SLICE_SECONDS)
        self._backlog = report.more
        return report
