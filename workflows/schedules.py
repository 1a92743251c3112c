"""Schedules declared in code next to a workflow, and the checks every schedule passes.

An app's `workflows.py` declares one with `declare_schedule(ScheduleDeclaration(...))` beside
the `register_workflow` of the workflow it starts; discovery imports those modules, so the
declarations are here once Django is ready. The schedules app copies them into its table when a
serving process starts (source "code"; the enabled state an operator chose is kept) and fires
them. Pure Python like the rest of this package: what a schedule is, not when or where it runs.

A cron expression has 5 fields (minute hour day month weekday) or 6, the sixth being seconds
(`* * * * * */2`: every two seconds), as croniter reads them; the time zone is an IANA name.
"""

import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from .errors import DuplicateDefinition

OverlapPolicy = Literal["skip", "queue", "allow"]
CatchUpPolicy = Literal["none", "last", "all"]
OVERLAP_POLICIES: tuple[OverlapPolicy, ...] = ("skip", "queue", "allow")
CATCH_UP_POLICIES: tuple[CatchUpPolicy, ...] = ("none", "last", "all")
# The key the scheduler adds to every run's input: which schedule and slot started it.
STARTED_BY = "startedBy"
# "new" is the page that creates a schedule (/schedules/new), so no schedule may be called that.
RESERVED_IDS = frozenset({"new"})
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
SCHEDULE_ID_MAX_CHARS = 100


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a cron expression a schedule can use, or None."""
    fields = expression.split()
    if expression.strip().startswith("@"):
        return f"'{expression}': write the fields instead of a nickname ('0 * * * *' is @hourly)"
    if len(fields) not in (5, 6):
        return (
            f"'{expression}' has {len(fields)} fields: a cron expression has 5 (minute hour "
            "day month weekday) or 6 (then seconds last, e.g. '* * * * * */2')"
        )
    if not croniter.is_valid(expression):
        return f"'{expression}' is not a valid cron expression"
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        return f"'{expression}' never fires (no such date)"
    return None


def timezone_problem(name: str) -> str | None:
    """Why `name` is not an IANA time zone (Europe/Berlin, UTC), or None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"'{name}' is not a known time zone: use an IANA name such as UTC or Europe/Berlin"
    return None


def schedule_id_problem(schedule_id: str) -> str | None:
    """Why `schedule_id` cannot name a schedule (it is part of URLs and idempotency keys)."""
    if not _SLUG.fullmatch(schedule_id) or len(schedule_id) > SCHEDULE_ID_MAX_CHARS:
        return (
            f"'{schedule_id}' must be letters, digits, '-' and '_' only, at most "
            f"{SCHEDULE_ID_MAX_CHARS} characters"
        )
    if schedule_id in RESERVED_IDS:
        return f"'{schedule_id}' is reserved"
    return None


def input_problem(value: Any) -> str | None:
    """Why `value` cannot be a scheduled run's input (a JSON object, without startedBy)."""
    if not isinstance(value, dict):
        return "The input must be a JSON object"
    if STARTED_BY in value:
        return f"'{STARTED_BY}' is set by the scheduler: it names the schedule and slot"
    return None


@dataclass(frozen=True, slots=True)
class ScheduleDeclaration:
    """A schedule as code declares it. Declared schedules start disabled unless `enabled`: a
    deployment turns them on (admin or the Schedules page), and that choice survives restarts.

    overlap: what a slot does while this schedule's previous run is unfinished: "skip" it,
    "queue" it until that run ends, or "allow" it to run alongside. catch_up: which slots missed
    while no process was running fire once one is back: "none", the "last" one, or "all" (up to
    C4C_SCHEDULE_MAX_CATCHUP).
    """

    schedule_id: str
    workflow_id: str
    cron: str
    timezone: str = "UTC"
    input: dict[str, Any] = field(default_factory=dict)
    enabled: bool = False
    overlap: OverlapPolicy = "skip"
    catch_up: CatchUpPolicy = "none"

    def __post_init__(self) -> None:
        problems = [
            problem
            for problem in (
                schedule_id_problem(self.schedule_id),
                cron_problem(self.cron),
                timezone_problem(self.timezone),
                input_problem(self.input),
                None if self.workflow_id else "A schedule names the workflow it starts",
                None
                if self.overlap in OVERLAP_POLICIES
                else f"overlap must be one of {', '.join(OVERLAP_POLICIES)}",
                None
                if self.catch_up in CATCH_UP_POLICIES
                else f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}",
            )
            if problem
        ]
        if problems:
            raise ValueError(f"Schedule {self.schedule_id!r}: " + "; ".join(problems))


class ScheduleDeclarations:
    """schedule_id -> (declaration, declaring module); the same id from two modules is an error."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._declared: dict[str, tuple[ScheduleDeclaration, str]] = {}

    def declare(self, declaration: ScheduleDeclaration, *, source: str) -> ScheduleDeclaration:
        with self._lock:
            existing = self._declared.get(declaration.schedule_id)
            if existing is not None and existing[1] != source:
                raise DuplicateDefinition(
                    f"Schedule {declaration.schedule_id!r} is declared twice: in {existing[1]} "
                    f"and in {source}"
                )
            self._declared[declaration.schedule_id] = (declaration, source)
        return declaration

    def all(self) -> list[ScheduleDeclaration]:
        with self._lock:
            return sorted((d for d, _ in self._declared.values()), key=lambda d: d.schedule_id)


_declarations = ScheduleDeclarations()


def schedule_declarations() -> ScheduleDeclarations:
    """The process-wide declarations, filled while discovery imports the apps' workflows.py."""
    return _declarations


def declare_schedule(
    declaration: ScheduleDeclaration, *, source: str | None = None
) -> ScheduleDeclaration:
    """Declare a schedule in code; call it from an app's `workflows.py` (like register_workflow)."""
    caller = source or sys._getframe(1).f_globals.get("__name__", "<unknown module>")
    return _declarations.declare(declaration, source=f"module {caller}")
