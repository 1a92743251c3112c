"""Schedules and their fires: the tables, their statuses and every read of them.

A Schedule's `next_slot` is the earliest slot no scheduler has handled yet; the scheduler that
moves it on (a compare-and-set on the row, schedules.store.slots_claim) owns the slots it passed.
Each slot it handles becomes one ScheduleFire, unique on (schedule, slot): whatever else goes
wrong, no slot is recorded, and so started, twice. A fire keeps the id of the execution it
started; executions know nothing of schedules (the run's input says `startedBy`), and an
execution pruned later leaves the fire pointing at nothing, which reads as finished.
"""

from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone as django_timezone

from executions.models import EXECUTION_TRANSITIONS, Execution, unfinished
from executions.probes import Probe

from .slots import Cron


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip the slot while the previous run is unfinished"
    QUEUE = "queue", "Queue the slot until the previous run ends"
    ALLOW = "allow", "Allow runs side by side"


class CatchUpPolicy(models.TextChoices):
    NONE = "none", "None: only slots from now on"
    LAST = "last", "Last: the latest missed slot, once"
    ALL = "all", "All: every missed slot (bounded)"


class ScheduleSource(models.TextChoices):
    ADMIN = "admin", "Admin"
    CODE = "code", "Code"


class FireStatus(models.TextChoices):
    PENDING = "pending", "Starting"
    QUEUED = "queued", "Queued"
    STARTED = "started", "Started"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Not started"


# pending -> started (its run is recorded) | failed (it cannot start: the workflow is gone);
# queued -> pending (the previous run ended) | skipped (the schedule was deleted or disabled).
FIRE_TRANSITIONS: dict[str, frozenset[str]] = {
    FireStatus.PENDING: frozenset({FireStatus.STARTED, FireStatus.FAILED}),
    FireStatus.QUEUED: frozenset({FireStatus.PENDING, FireStatus.SKIPPED}),
    FireStatus.STARTED: frozenset(),
    FireStatus.SKIPPED: frozenset(),
    FireStatus.FAILED: frozenset(),
}


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    def by_schedule_id(self, schedule_id: str) -> "Schedule | None":
        """One schedule by its public id, or None: one indexed read."""
        return self.filter(schedule_id=schedule_id).first()

    def due(self, now: datetime) -> "ScheduleQuerySet":
        """Enabled schedules with a slot due by `now`, most overdue first: one indexed read,
        after a compiled one that says whether there is any (each tick asks)."""
        if not _DUE.any(now, using=self.db):
            return self.none()
        return self.due_by(now).order_by("next_slot", "pk")

    def due_by(self, now: datetime) -> "ScheduleQuerySet":
        """Enabled schedules with a slot due by `now`."""
        return self.filter(enabled=True, next_slot__lte=now)

    def with_last_fire(self) -> "ScheduleQuerySet":
        """Each schedule with `last_fire_status` and `last_execution_id` of its newest fire: the
        list page's rows in one query."""
        newest = ScheduleFire.objects.filter(schedule=models.OuterRef("pk")).order_by("-slot")
        return self.annotate(
            last_fire_status=models.Subquery(newest.values("status")[:1]),
            last_execution_id=models.Subquery(newest.values("execution_id")[:1]),
        )


class Schedule(models.Model):
    """A cron expression in a time zone that starts a library workflow with a fixed input."""

    schedule_id = models.SlugField(max_length=100, unique=True)
    workflow_id = models.CharField(max_length=200, help_text="The library workflow it starts.")
    cron = models.CharField(
        max_length=200,
        help_text="Minute hour day month weekday [second]: '0 9 * * 1-5'.",
    )
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="The IANA zone the cron reads in (Europe/Berlin)."
    )
    input = models.JSONField(
        default=dict, blank=True, help_text="Each run's input; startedBy is added to it."
    )
    enabled = models.BooleanField(default=True)
    overlap = models.CharField(
        max_length=8, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    catch_up = models.CharField(
        max_length=8,
        choices=CatchUpPolicy.choices,
        default=CatchUpPolicy.NONE,
        help_text="Which slots missed while no server ran fire when one is back.",
    )
    source = models.CharField(
        max_length=8, choices=ScheduleSource.choices, default=ScheduleSource.ADMIN, editable=False
    )
    created_at = models.DateTimeField(default=django_timezone.now, editable=False)
    updated_at = models.DateTimeField(default=django_timezone.now, editable=False)
    next_slot = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The next slot no scheduler handled yet."
    )
    last_slot = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The latest slot a scheduler handled."
    )

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["schedule_id"]
        indexes = [models.Index(fields=["enabled", "next_slot"], name="schedule_due_idx")]

    def __str__(self) -> str:
        return self.schedule_id

    @property
    def slots(self) -> Cron:
        return Cron.of(self.cron, self.timezone)

    def upcoming(self, count: int, now: datetime | None = None) -> list[datetime]:
        """Its next `count` slots from now (none while disabled)."""
        if not self.enabled:
            return []
        return self.slots.upcoming(now or django_timezone.now(), count)


LIVE_EXECUTION_STATUSES = unfinished(EXECUTION_TRANSITIONS)


class ScheduleFireQuerySet(models.QuerySet["ScheduleFire"]):
    def unfinished_of(self, schedule: Schedule) -> "ScheduleFireQuerySet":
        """The schedule's fires whose run is being started or has not ended: what overlap
        looks at. Reads the (few) unfinished executions, not the schedule's history."""
        live = Execution.objects.filter(status__in=LIVE_EXECUTION_STATUSES)
        return self.filter(schedule=schedule).filter(
            Q(status=FireStatus.PENDING)
            | Q(status=FireStatus.STARTED, execution_id__in=live.values("execution_id"))
        )

    def stalled(self, before: datetime, *, limit: int) -> list["ScheduleFire"]:
        """Pending fires untouched since `before`: their scheduler died before the run started,
        or the run pool was full. Oldest first."""
        if not _STALLED.any(before, using=self.db):
            return []  # each tick's answer, almost always, from a compiled read
        found = self.pending_since(before).select_related("schedule")
        return list(found.order_by("updated_at", "pk")[:limit])

    def pending_since(self, before: datetime) -> "ScheduleFireQuerySet":
        """Pending fires untouched since `before`."""
        return self.filter(status=FireStatus.PENDING, updated_at__lte=before)

    def queue_heads(self) -> list["ScheduleFire"]:
        """The oldest queued fire of each schedule that has one: what may start next."""
        if not _QUEUED.any(using=self.db):
            return []  # each tick's answer, almost always, from a compiled read
        heads: dict[int, ScheduleFire] = {}
        queued = self.filter(status=FireStatus.QUEUED).select_related("schedule")
        for fire in queued.order_by("slot", "pk"):
            heads.setdefault(fire.schedule_id, fire)
        return list(heads.values())

    def recent_of(self, schedule: Schedule, limit: int) -> list["ScheduleFire"]:
        """The schedule's newest fires, each with `execution` (None when it has none or it was
        pruned): two queries."""
        fires = list(self.filter(schedule=schedule).order_by("-slot")[:limit])
        ids = [fire.execution_id for fire in fires if fire.execution_id]
        found = Execution.objects.filter(execution_id__in=ids).only(
            "execution_id", "status", "started_at", "ended_at", "execution_time_ms"
        )
        by_id = {execution.execution_id: execution for execution in found}
        for fire in fires:
            fire.execution = by_id.get(fire.execution_id)
        return fires


class ScheduleFire(models.Model):
    """One slot of one schedule, handled once: started (with its execution), queued, skipped."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires")
    slot = models.DateTimeField()
    status = models.CharField(max_length=8, choices=FireStatus.choices)
    # The run's id, not a foreign key: executions are pruned by the executions app, which knows
    # nothing of this table.
    execution_id = models.CharField(max_length=200, blank=True, db_index=True)
    note = models.CharField(max_length=500, blank=True, help_text="Why it was skipped or failed.")
    fired_by = models.CharField(
        max_length=200, blank=True, help_text="The process that claimed the slot."
    )
    created_at = models.DateTimeField(default=django_timezone.now)
    updated_at = models.DateTimeField(default=django_timezone.now)

    objects = ScheduleFireQuerySet.as_manager()

    class Meta:
        ordering = ["-slot"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="schedule_fire_once")
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="schedule_fire_status_idx")]

    execution: Any = None  # set by recent_of()

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.slot.isoformat()}"


# What the scheduler asks at every tick (schedules.scheduler), compiled once (executions.probes).
_DUE = Probe(lambda now: Schedule.objects.due_by(now))
_STALLED = Probe(lambda before: ScheduleFire.objects.pending_since(before))
_QUEUED = Probe(lambda _: ScheduleFire.objects.filter(status=FireStatus.QUEUED))
