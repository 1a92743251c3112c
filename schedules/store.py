"""Every write of schedules and their fires, each a short transaction with its guard.

How one slot fires exactly once, however many processes run the scheduler:

1. `slots_claim`: the schedule's row is locked and compared with the `next_slot` that was read
   (SELECT ... FOR UPDATE on PostgreSQL, which re-reads a row changed while it waited; SQLite's
   IMMEDIATE transactions take the one write lock at BEGIN). Only the process that finds it
   unchanged moves it on and records the slots it passed as ScheduleFire rows, unique on
   (schedule, slot), in the same transaction: a slot is claimed by one process or by none.
2. `fire_start` starts the run of a fire claimed as pending, through executions.dispatch.begin
   (the pool here, or Celery) with the idempotency key `schedule:<id>:<slot>`, and records the
   execution id. A process that dies between 1 and 2 leaves the fire pending; after
   C4C_SCHEDULE_RETRY_SECONDS any scheduler takes it (`fire_retake`, a compare-and-set) and
   starts it, and the idempotency key makes a second start answer the first run.
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from executions import dispatch, runtime
from executions import store as executions_store
from executions.models import Execution, sources
from workflows.library import workflow_library
from workflows.schedules import STARTED_BY

from .conf import app_settings
from .models import (
    FIRE_TRANSITIONS,
    CatchUpPolicy,
    FireStatus,
    OverlapPolicy,
    Schedule,
    ScheduleFire,
)
from .slots import Cron, NoSlot, iso

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = (
    "workflow_id",
    "cron",
    "timezone",
    "input",
    "enabled",
    "overlap",
    "catch_up",
)


def idempotency_key(schedule_id: str, slot: datetime) -> str:
    """The key a fire's run is started with: one run per schedule and slot, whoever starts it."""
    return f"schedule:{schedule_id}:{iso(slot)}"


def _next_slot(cron: Cron, now: datetime) -> datetime | None:
    try:
        return cron.after(now)
    except NoSlot:
        return None


def schedule_save(*, schedule: Schedule, now: datetime | None = None) -> Schedule:
    """Create or update a schedule (checked by the caller's form, or ValueError from its cron).

    A new schedule, one enabled again, or one whose cron or time zone changed starts from its
    next slot after now: slots before (a disabled spell, an old expression) never fire. Turning
    a schedule off drops the slots it had queued (recorded as skipped).
    """
    now = now or timezone.now()
    cron = schedule.slots  # ValueError for a bad cron or zone, before anything is written
    with transaction.atomic():
        before = (
            Schedule.objects.select_for_update()
            .filter(pk=schedule.pk)
            .values("cron", "timezone", "enabled")
            .first()
            if schedule.pk
            else None
        )
        schedule.updated_at = now
        if before is None:
            schedule.created_at = now
            schedule.next_slot = _next_slot(cron, now)
            schedule.save(force_insert=schedule.pk is None)
            return schedule
        moved = (before["cron"], before["timezone"]) != (schedule.cron, schedule.timezone) or (
            schedule.enabled and not before["enabled"]
        )
        fields = [*EDITABLE_FIELDS, "updated_at", "source"]
        if moved:
            schedule.next_slot = _next_slot(cron, now)
            fields.append("next_slot")
        schedule.save(update_fields=fields)
        if before["enabled"] and not schedule.enabled:
            _drop_queue(schedule, now, note="The schedule was disabled")
    return schedule


def schedule_set_enabled(
    *, schedule: Schedule, enabled: bool, now: datetime | None = None
) -> Schedule:
    schedule.enabled = enabled
    return schedule_save(schedule=schedule, now=now)


def _drop_queue(schedule: Schedule, now: datetime, *, note: str) -> None:
    ScheduleFire.objects.filter(schedule=schedule, status=FireStatus.QUEUED).update(
        status=FireStatus.SKIPPED, note=note, updated_at=now
    )


def _fire_move(fire: ScheduleFire, status: str, now: datetime, **values: str) -> bool:
    """Move a fire to `status` if the transition table allows it from where it stands now."""
    moved = ScheduleFire.objects.filter(
        pk=fire.pk, status__in=sources(FIRE_TRANSITIONS, status)
    ).update(status=status, updated_at=now, **values)
    if moved:
        fire.status, fire.updated_at = status, now
        for name, value in values.items():
            setattr(fire, name, value)
    return bool(moved)


def _chosen(schedule: Schedule, due: list[datetime], now: datetime) -> list[datetime]:
    """The due slots the catch-up policy fires: every on-time one (found within the grace),
    and of the missed ones none, the newest, or all."""
    on_time_from = now - timedelta(seconds=app_settings.C4C_SCHEDULE_GRACE_SECONDS)
    on_time = [slot for slot in due if slot >= on_time_from]
    missed = [slot for slot in due if slot < on_time_from]
    if schedule.catch_up == CatchUpPolicy.ALL:
        return due
    if schedule.catch_up == CatchUpPolicy.LAST and not on_time:
        return missed[-1:]
    return on_time


def slots_claim(
    *, schedule: Schedule, now: datetime | None = None, owner: str = ""
) -> list[ScheduleFire]:
    """Claim the slots of `schedule` due by `now`, if no other process claimed them since
    `schedule` was read; returns the fires recorded (pending ones are to be started by the
    caller: fire_start), or [] when another process won."""
    now = now or timezone.now()
    limit = app_settings.C4C_SCHEDULE_MAX_CATCHUP
    with transaction.atomic():
        locked = (
            Schedule.objects.select_for_update()
            .filter(pk=schedule.pk, enabled=True, next_slot=schedule.next_slot)
            .first()
        )
        if locked is None or locked.next_slot is None:
            return []
        cron = locked.slots
        due, more = cron.due(locked.next_slot, now, limit=limit)
        chosen = _chosen(locked, due, now)
        locked.next_slot = _next_slot(cron, now)
        if chosen:
            locked.last_slot = chosen[-1]
        locked.save(update_fields=["next_slot", "last_slot"])
        fires = _record(locked, chosen, now, owner)
    if more:
        logger.warning(
            "Schedule %s: slots missed before %s not fired: more than C4C_SCHEDULE_MAX_CATCHUP "
            "(%d) were due",
            locked.schedule_id,
            iso(due[0]),
            limit,
        )
    if len(due) > len(chosen):
        logger.warning(
            "Schedule %s: %d missed slot(s) not fired (catch-up %s)",
            locked.schedule_id,
            len(due) - len(chosen),
            locked.catch_up,
        )
    return fires


def _record(
    schedule: Schedule, slots: Sequence[datetime], now: datetime, owner: str
) -> list[ScheduleFire]:
    """One fire per slot, its status by the overlap policy; a slot already recorded (the
    schedule was moved back over it) is left as it was."""
    if not slots:
        return []
    overlap = schedule.overlap
    busy = overlap != OverlapPolicy.ALLOW and ScheduleFire.objects.unfinished_of(schedule).exists()
    queued = 0
    if overlap == OverlapPolicy.QUEUE:
        queued = ScheduleFire.objects.filter(schedule=schedule, status=FireStatus.QUEUED).count()
        busy = busy or queued > 0
    fires = []
    for slot in slots:
        note = ""
        if not busy:
            status = FireStatus.PENDING
            busy = overlap != OverlapPolicy.ALLOW
        elif overlap == OverlapPolicy.QUEUE and queued < app_settings.C4C_SCHEDULE_MAX_CATCHUP:
            status = FireStatus.QUEUED
            queued += 1
        elif overlap == OverlapPolicy.QUEUE:
            status, note = FireStatus.SKIPPED, "The queue was full (C4C_SCHEDULE_MAX_CATCHUP)"
        else:
            status, note = FireStatus.SKIPPED, "The previous run had not ended"
        fire = ScheduleFire(
            schedule=schedule,
            slot=slot,
            status=status,
            note=note,
            fired_by=owner,
            created_at=now,
            updated_at=now,
        )
        try:
            with transaction.atomic():
                fire.save(force_insert=True)
        except IntegrityError:
            continue
        fires.append(fire)
    return fires


def fire_start(*, fire: ScheduleFire, now: datetime | None = None) -> ScheduleFire:
    """Start the run of a pending fire and record its execution id.

    The run's input is the schedule's plus `startedBy: {"schedule", "slot"}`; its idempotency
    key is `schedule:<id>:<slot>`, so starting a fire twice (a retake after a stall) answers the
    run the first start recorded. A full run pool or an unreachable broker leaves the fire
    pending, to be retaken after C4C_SCHEDULE_RETRY_SECONDS; a workflow that is not defined (or
    a run the runtime refuses) fails the fire, with the reason as its note.
    """
    schedule = fire.schedule
    definition = workflow_library().get(schedule.workflow_id)
    if definition is None:
        _fire_move(
            fire,
            FireStatus.FAILED,
            now or timezone.now(),
            note=f"Workflow '{schedule.workflow_id}' is not defined",
        )
        return fire
    slot = iso(fire.slot)
    key = idempotency_key(schedule.schedule_id, fire.slot)
    run_input = {**schedule.input, STARTED_BY: {"schedule": schedule.schedule_id, "slot": slot}}

    def record(owner: str | None) -> Execution:
        return runtime.start(
            definition=definition, input=run_input, owner=owner, idempotency_key=key
        )

    try:
        execution = dispatch.begin(record)
    except executions_store.DuplicateExecution:
        started = Execution.objects.by_idempotency_key(key)
        if started is None:
            raise
        execution = started
    except dispatch.QueueFull as exc:
        logger.warning("Schedule %s slot %s waits: %s", schedule.schedule_id, slot, exc)
        return fire
    except ValueError as exc:
        _fire_move(fire, FireStatus.FAILED, now or timezone.now(), note=str(exc)[:500])
        return fire
    moment = now or timezone.now()
    if not _fire_move(fire, FireStatus.STARTED, moment, execution_id=execution.execution_id):
        fire.refresh_from_db()  # another scheduler recorded it first: the same run, by its key
    return fire


def fire_retake(*, fire: ScheduleFire, now: datetime | None = None, owner: str = "") -> bool:
    """Take a stalled pending fire over to start it (one process wins: compare-and-set on the
    time it was last touched)."""
    now = now or timezone.now()
    taken = ScheduleFire.objects.filter(
        pk=fire.pk, status=FireStatus.PENDING, updated_at=fire.updated_at
    ).update(updated_at=now, fired_by=owner)
    if taken:
        fire.updated_at, fire.fired_by = now, owner
    return bool(taken)


def queue_release(*, now: datetime | None = None, owner: str = "") -> list[ScheduleFire]:
    """Move the oldest queued fire of each schedule whose previous run ended to pending; returns
    them, for the caller to start. The schedule's row is locked while its runs are looked at, so
    two processes never release two slots of one schedule at once."""
    now = now or timezone.now()
    released = []
    for head in ScheduleFire.objects.queue_heads():
        with transaction.atomic():
            schedule = Schedule.objects.select_for_update().filter(pk=head.schedule_id).first()
            if schedule is None or ScheduleFire.objects.unfinished_of(schedule).exists():
                continue
            oldest = (
                ScheduleFire.objects.filter(schedule=schedule, status=FireStatus.QUEUED)
                .order_by("slot", "pk")
                .first()
            )
            if oldest is None or not _fire_move(oldest, FireStatus.PENDING, now, fired_by=owner):
                continue
        oldest.schedule = schedule
        released.append(oldest)
    return released
