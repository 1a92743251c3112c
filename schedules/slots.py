"""When a schedule fires: its slots, computed by croniter in the schedule's time zone, kept in UTC.

A slot is an instant (an aware UTC datetime); its ISO form (`2025-03-30T01:00:00Z`) names it in
a run's input and idempotency key. Daylight saving time follows cron's usual rules:

- a wall time skipped when clocks go forward fires at the first instant after the gap (a daily
  02:30 in Europe/Berlin fires at 03:00 on the last Sunday of March), once however many of its
  times fell in the gap;
- a wall time that happens twice when clocks go back fires twice when the hour field is `*`
  (an hourly or per-minute schedule keeps its pace in real time) and once, the first time,
  otherwise (a daily 02:30 does not run twice that night).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from workflows.schedules import cron_problem, timezone_problem

# Slots one search walks at most before it gives up (a cron that matches nothing for years,
# such as 30 February, would otherwise walk forever).
MAX_WALK = 100_000
_ONE_SECOND = timedelta(seconds=1)


class NoSlot(ValueError):
    """The expression has no slot in reach (e.g. `0 0 30 2 *`: the 30th of February)."""


def local(moment: datetime | None, zone: str) -> str:
    """A slot as its schedule's zone reads it, with the zone's abbreviation ("—" for none)."""
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def iso(slot: datetime) -> str:
    """The slot's name: ISO 8601 in UTC with a Z, to the second."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression read in a time zone (both checked: ValueError says what is wrong)."""

    expression: str
    zone: ZoneInfo

    @classmethod
    def of(cls, expression: str, timezone: str) -> "Cron":
        problem = cron_problem(expression) or timezone_problem(timezone)
        if problem:
            raise ValueError(problem)
        return cls(expression, ZoneInfo(timezone))

    @property
    def _hour_is_wildcard(self) -> bool:
        return self.expression.split()[1] == "*"

    def _repeated(self, slot: datetime) -> bool:
        """Whether `slot` is the second occurrence of a wall time clocks went back over."""
        wall = slot.astimezone(self.zone).replace(tzinfo=None)
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        is_real = first.astimezone(self.zone).replace(tzinfo=None) == wall
        return is_real and first != second and slot.astimezone(UTC) == second

    def _walk(self, start: datetime, *, forward: bool) -> Iterator[datetime]:
        """Slots after (or before) `start`, in UTC, DST rules applied, each once."""
        walker = croniter(self.expression, start.astimezone(self.zone))
        step = walker.get_next if forward else walker.get_prev
        previous: datetime | None = None
        for _ in range(MAX_WALK):
            try:
                slot = step(datetime).astimezone(UTC)
            except CroniterBadDateError:
                return
            if slot == previous or (not self._hour_is_wildcard and self._repeated(slot)):
                continue
            previous = slot
            yield slot

    def after(self, moment: datetime) -> datetime:
        """The first slot strictly after `moment`."""
        for slot in self._walk(moment, forward=True):
            return slot
        raise NoSlot(f"'{self.expression}' has no slot within {MAX_WALK} steps of {moment}")

    def upcoming(self, moment: datetime, count: int) -> list[datetime]:
        """The next `count` slots after `moment` (fewer if the expression runs out)."""
        slots: list[datetime] = []
        for slot in self._walk(moment, forward=True):
            slots.append(slot)
            if len(slots) == count:
                break
        return slots

    def due(self, since: datetime, until: datetime, *, limit: int) -> tuple[list[datetime], bool]:
        """The slots in [since, until], oldest first: the newest `limit` of them, and whether
        older ones were left out. Walks back from `until`, so a long downtime of a per-second
        schedule costs `limit` steps, not one per missed second."""
        newest_first: list[datetime] = []
        more = False
        # croniter's get_prev is strictly before its start: start a second late to include `until`.
        for slot in self._walk(until.replace(microsecond=0) + _ONE_SECOND, forward=False):
            if slot > until:
                continue
            if slot < since:
                break
            if len(newest_first) == limit:
                more = True
                break
            newest_first.append(slot)
        return newest_first[::-1], more
