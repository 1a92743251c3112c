"""Bulk cancel and re-run: count the runs a filter (or a list of ids) selects, then act on exactly
those runs in the background, with progress a client polls.

- count(): the matching runs, newest first, and a token (`expect`) digesting the filter in
  words and the exact set of rows. A client shows the count and the words, and confirms.
- start(): counts again and compares the token: if any run entered or left the set since (a
  new run, a status that changed under a status filter, a run pruned), it refuses (Changed: the
  API's 409) with the new count and token. Otherwise it records a BulkAction and hands that
  very list to a background thread, and the caller answers at once (202).
- The thread takes the runs one by one through the runtime, as a single cancel or re-run does,
  so leases, events and counters stay right: cancel skips runs that already ended, re-run skips
  runs still going; each is counted, and the first errors kept. Re-runs go through
  runtime.rerun -> dispatch (the run pool or Celery); a full pool is waited for, a run at a
  time, never flooded.
- Caps (this module's settings; see README "Search"): C4C_BULK_MAX_CANCELS (10,000) and
  C4C_BULK_MAX_RERUNS (100) runs per action; a filter that matches more is refused (422), as is
  one that would check more than C4C_SEARCH_SCAN_ROWS rows one by one (executions.filters).

The thread lives in the process that accepted the action, one action at a time per process;
progress is a row (BulkAction), so any process answers GET .../bulk/<bulkId>. A process that
dies mid-way leaves its action "running" with the count it reached; the runs it did not reach
are untouched and a new count picks them up.
"""

import hashlib
import logging
import secrets
import string
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import close_old_connections, connections

from . import dispatch, runtime, store
from .filters import describe, too_wide
from .models import BulkAction, BulkActionStatus, Execution, ExecutionFilters, ExecutionStatus
from .serializers import iso_ms

logger = logging.getLogger(__name__)

Action = Literal["cancel", "rerun"]
ACTIONS: tuple[Action, ...] = ("cancel", "rerun")
# Failures an action keeps the messages of; the rest are only counted.
KEPT_ERRORS = 20
# How often progress is written while an action goes on.
PROGRESS_SECONDS = 0.2
# How long a re-run waits for a place in a full run pool before it counts as failed.
POOL_WAIT_SECONDS = 60.0

_ID_ALPHABET = string.ascii_lowercase + string.digits


def max_runs(action: Action) -> int:
    """C4C_BULK_MAX_CANCELS or C4C_BULK_MAX_RERUNS: the runs one action may take."""
    if action == "rerun":
        return max(1, int(getattr(settings, "C4C_BULK_MAX_RERUNS", 100)))
    return max(1, int(getattr(settings, "C4C_BULK_MAX_CANCELS", 10_000)))


class BulkRefused(Exception):
    """An action that cannot be counted or started; `status` is the HTTP answer's."""

    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Changed(BulkRefused):
    """The runs the filter selects are not the ones counted: count again (a 409)."""

    status = 409

    def __init__(self, counted: "Counted") -> None:
        super().__init__(
            f"The runs matching {counted.description} changed since they were counted "
            f"({counted.count} now): count again and confirm the new count"
        )
        self.counted = counted


@dataclass(frozen=True, slots=True)
class Counted:
    """What an action would act on: `count` runs, `running` of them still going."""

    action: Action
    description: str
    count: int
    running: int
    token: str
    execution_ids: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "filter": self.description,
            "count": self.count,
            "running": self.running,
            "finished": self.count - self.running,
            "expect": self.token,
        }


def count(action: Action, filters: ExecutionFilters) -> Counted:
    """The runs `action` would take, newest first; BulkRefused past a cap."""
    why = too_wide(filters)
    if why is not None:
        raise BulkRefused(why)
    cap = max_runs(action)
    rows = list(
        filters.apply(Execution.objects.all())
        .order_by("-started_at", "-id")
        .values_list("pk", "execution_id", "status")[: cap + 1]
    )
    if len(rows) > cap:
        setting = "C4C_BULK_MAX_RERUNS" if action == "rerun" else "C4C_BULK_MAX_CANCELS"
        raise BulkRefused(
            f"A bulk {action} takes at most {cap} runs ({setting}) and more match: "
            "narrow the filter"
        )
    description = describe(filters)
    digest = hashlib.sha256(f"{description}\n".encode())
    digest.update(",".join(str(pk) for pk, _, _ in rows).encode())
    return Counted(
        action=action,
        description=description,
        count=len(rows),
        running=sum(1 for _, _, status in rows if status == ExecutionStatus.RUNNING),
        token=digest.hexdigest()[:32],
        execution_ids=tuple(execution_id for _, execution_id, _ in rows),
    )


def new_bulk_id() -> str:
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))
    return f"bulk_{int(time.time() * 1000)}_{suffix}"


_executor_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _worker() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(1, thread_name_prefix="c4c-bulk")
        return _executor


def start(action: Action, filters: ExecutionFilters, expect: str) -> BulkAction:
    """Record the action and start it in the background, if the runs are still those counted
    (`expect` is count()'s token); Changed if not."""
    counted = count(action, filters)
    if counted.token != expect:
        raise Changed(counted)
    job = store.bulk_action_start(
        bulk_id=new_bulk_id(),
        action=action,
        selection=counted.description,
        total=counted.count,
        status=BulkActionStatus.RUNNING if counted.count else BulkActionStatus.COMPLETED,
    )
    if counted.count:
        _worker().submit(_run, job.pk, action, counted.execution_ids)
    return job


def progress(bulk_id: str) -> BulkAction | None:
    return BulkAction.objects.by_bulk_id(bulk_id)


def as_json(job: BulkAction) -> dict[str, Any]:
    """GET /workflow/executions/bulk/<bulkId>: how far the action got."""
    return {
        "bulkId": job.bulk_id,
        "action": job.action,
        "filter": job.selection,
        "status": job.status,
        "count": job.total,
        "done": job.done,
        "succeeded": job.succeeded,
        "skipped": job.skipped,
        "failed": job.failed,
        "errors": job.errors,
        "startedRuns": job.started_runs,
        "startedAt": iso_ms(job.started_at),
        "endedAt": iso_ms(job.ended_at),
    }


Outcome = tuple[Literal["succeeded", "skipped", "failed"], str | None]


def _cancel_one(execution_id: str) -> Outcome:
    try:
        runtime.cancel(execution_id)
    except store.TransitionError:
        return "skipped", None  # it ended before its turn
    except store.ExecutionNotFound:
        return "skipped", None  # pruned since the count
    return "succeeded", None


def _rerun_one(execution_id: str) -> Outcome:
    found = Execution.objects.row(execution_id)
    if found is None or found.status == ExecutionStatus.RUNNING:
        return "skipped", None  # still going (its outputs are not final), or pruned
    waited = 0.0
    while True:
        try:
            started = runtime.rerun(execution_id=execution_id)
        except dispatch.QueueFull as exc:
            if waited >= POOL_WAIT_SECONDS:
                return "failed", f"{execution_id}: {exc}"
            time.sleep(0.25)
            waited += 0.25
            continue
        except (ValueError, store.StoreError) as exc:
            return "failed", f"{execution_id}: {exc}"
        return "succeeded", started.execution_id


class _Progress:
    """Counts as the action goes, written to its row at most every PROGRESS_SECONDS."""

    def __init__(self, pk: int) -> None:
        self.pk = pk
        self.counts = {"done": 0, "succeeded": 0, "skipped": 0, "failed": 0}
        self.errors: list[str] = []
        self.started_runs: list[str] = []
        self.written = time.monotonic()

    def add(self, action: Action, outcome: Outcome) -> None:
        kind, detail = outcome
        self.counts["done"] += 1
        self.counts[kind] += 1
        if kind == "failed" and detail and len(self.errors) < KEPT_ERRORS:
            self.errors.append(detail)
        if kind == "succeeded" and action == "rerun" and detail:
            self.started_runs.append(detail)
        if time.monotonic() - self.written >= PROGRESS_SECONDS:
            self.write()

    def write(self, status: str | None = None) -> None:
        store.bulk_action_progress(
            pk=self.pk,
            counts=self.counts,
            errors=self.errors,
            started_runs=self.started_runs,
            status=status,
        )
        self.written = time.monotonic()


def _run(pk: int, action: Action, execution_ids: tuple[str, ...]) -> None:
    """The background half of start(): each run in turn, then the row says how it ended."""
    close_old_connections()
    one: Callable[[str], Outcome] = _rerun_one if action == "rerun" else _cancel_one
    done = _Progress(pk)
    status = BulkActionStatus.COMPLETED
    try:
        for execution_id in execution_ids:
            done.add(action, one(execution_id))
    except Exception as exc:
        logger.exception("Bulk %s %s stopped", action, pk)
        status = BulkActionStatus.FAILED
        done.errors.append(f"stopped: {type(exc).__name__}: {exc}")
    finally:
        try:
            done.write(status=status)
        finally:
            connections.close_all()
