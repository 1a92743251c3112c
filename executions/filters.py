"""A list's filters read from a request once, for the API, the list page and bulk actions; and
the search that keeps a filter no index serves to a bounded number of rows.

Parameters (the API's query string and bulk `filter` object, the page's URL; all AND-ed):
- `status`: running, completed, failed, cancelled, waiting; repeated or comma-separated: any;
- `workflowId` (the page's URL: `workflow`): a workflow id;
- `startedAfter`, `startedBefore`: ISO 8601 times, exclusive; without an offset: UTC;
- `minDuration`, `maxDuration`: whole milliseconds, inclusive; a run still going has none;
- `where`: conditions on the input or outputs (executions.conditions), `input.orderId = 4711`,
  `output.customer.country = "DE"`, several joined by `and` or the parameter repeated.

Every refusal is a FilterError whose message starts with the parameter's name; the edges answer
it with a 400.

Bounded search: a condition no index serves (a duration; any `where` on SQLite; on PostgreSQL a
`where` with no `=`, which its GIN indexes serve) is checked row by row. `search()` then reads
at most C4C_SEARCH_SCAN_ROWS rows (default 10,000) that the indexed conditions select, newest
first from the cursor: when they do not fill the page, the answer says the search stopped there
and gives the cursor to go on from (`Search.stopped`), rather than walking the whole history.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection

from .conditions import MAX_CONDITIONS, ConditionError, ValueCondition, parse_conditions
from .cursors import BadPosition, Position, encode_cursor, storable_time
from .models import Execution, ExecutionFilters, ExecutionPage, ExecutionStatus, ListShape

# An int column's range, and then some: no stored duration is longer.
MAX_DURATION_MS = 2**31 - 1


def scan_rows() -> int:
    """C4C_SEARCH_SCAN_ROWS: the rows one search page may check row by row (at least 1)."""
    return max(1, int(getattr(settings, "C4C_SEARCH_SCAN_ROWS", 10_000)))


class FilterError(ValueError):
    """A filter parameter the server cannot use; the message starts with its name."""

    def __init__(self, parameter: str, problem: str, *, message: str | None = None) -> None:
        super().__init__(message or f"{parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


def parse_statuses(values: Iterable[str], parameter: str = "status") -> tuple[str, ...]:
    """Statuses, each value possibly comma-separated; FilterError naming an unknown one."""
    statuses: list[str] = []
    for value in values:
        for status in (s.strip() for s in value.split(",")):
            if not status:
                continue
            if status not in ExecutionStatus.values:
                problem = f"must be one of {', '.join(ExecutionStatus.values)}, not {status!r}"
                raise FilterError(parameter, problem, message=f"{parameter} {problem}")
            if status not in statuses:
                statuses.append(status)
    return tuple(statuses)


def parse_time(text: str, parameter: str) -> datetime:
    """An ISO 8601 time (a date picker's 2025-01-31T12:00 too), in UTC when it has no offset."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise FilterError(
            parameter, f"not a time: {text[:60]!r} (like 2025-01-31T12:00 or 2025-01-31T12:00Z)"
        ) from None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return storable_time(aware, parameter)
    except BadPosition as exc:
        raise FilterError(parameter, exc.problem) from None


def parse_duration(text: str | int, parameter: str) -> int:
    """Whole milliseconds, 0 to 2**31 - 1."""
    try:
        value = text if isinstance(text, int) else int(str(text).strip())
    except ValueError:
        raise FilterError(parameter, f"not a whole number of milliseconds: {text!r}") from None
    if not 0 <= value <= MAX_DURATION_MS:
        raise FilterError(parameter, f"must be between 0 and {MAX_DURATION_MS} ms, not {value}")
    return value


def parse_where(texts: Iterable[str]) -> tuple[ValueCondition, ...]:
    """The conditions of every `where` value, AND-ed; FilterError naming the one it cannot read."""
    conditions: list[ValueCondition] = []
    for text in texts:
        if not text.strip():
            continue
        try:
            conditions.extend(parse_conditions(text))
        except ConditionError as exc:
            raise FilterError("where", f"{exc} in {text[:200]!r}") from None
    if len(conditions) > MAX_CONDITIONS:
        raise FilterError("where", f"{len(conditions)} conditions; at most {MAX_CONDITIONS}")
    return tuple(conditions)


def _durations(low: int | None, high: int | None) -> tuple[int | None, int | None]:
    if low is not None and high is not None and low > high:
        raise FilterError("minDuration", f"{low} ms is more than maxDuration ({high} ms)")
    return low, high


def from_params(
    params: Mapping[str, Sequence[str]], *, workflow_param: str = "workflowId"
) -> ExecutionFilters:
    """The filters a query string names (each name with its values, as QueryDict.lists()).
    Other names are the caller's (limit, cursor, ...) and ignored here."""

    def last(name: str) -> str:
        values = params.get(name) or [""]
        return values[-1].strip()

    min_text, max_text = last("minDuration"), last("maxDuration")
    after, before = last("startedAfter"), last("startedBefore")
    low, high = _durations(
        parse_duration(min_text, "minDuration") if min_text else None,
        parse_duration(max_text, "maxDuration") if max_text else None,
    )
    return ExecutionFilters(
        statuses=parse_statuses(params.get("status") or ()),
        workflow_id=last(workflow_param),
        started_after=parse_time(after, "startedAfter") if after else None,
        started_before=parse_time(before, "startedBefore") if before else None,
        min_duration_ms=low,
        max_duration_ms=high,
        values=parse_where(params.get("where") or ()),
    )


def with_durations(
    filters: ExecutionFilters, low: int | None, high: int | None
) -> ExecutionFilters:
    """`filters` with a duration range, checked as from_params checks it."""
    low, high = _durations(low, high)
    return replace(filters, min_duration_ms=low, max_duration_ms=high)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_params(filters: ExecutionFilters, *, workflow_param: str = "workflowId") -> dict[str, str]:
    """The filters as query parameters (as from_params reads them), in a fixed order."""
    pairs = {
        "status": ",".join(filters.statuses),
        workflow_param: filters.workflow_id,
        "startedAfter": _iso(filters.started_after) if filters.started_after else "",
        "startedBefore": _iso(filters.started_before) if filters.started_before else "",
        "minDuration": "" if filters.min_duration_ms is None else str(filters.min_duration_ms),
        "maxDuration": "" if filters.max_duration_ms is None else str(filters.max_duration_ms),
        "where": " and ".join(condition.text() for condition in filters.values),
    }
    return {name: value for name, value in pairs.items() if value}


def as_json(filters: ExecutionFilters) -> dict[str, Any]:
    """The filters as a bulk action's `filter` object (what the API's FilterBody reads)."""
    body: dict[str, Any] = dict(as_params(filters))
    if filters.statuses:
        body["status"] = list(filters.statuses)
    for name in ("minDuration", "maxDuration"):
        if name in body:
            body[name] = int(body[name])
    if filters.values:
        body["where"] = [condition.text() for condition in filters.values]
    return body


def describe(filters: ExecutionFilters) -> str:
    """The filters in words, exactly (what a bulk action's confirmation states)."""
    parts: list[str] = []
    if filters.execution_ids:
        ids = ", ".join(filters.execution_ids)
        parts.append(f"executionId in ({ids})")
    if filters.statuses:
        statuses = filters.statuses
        parts.append(
            f"status = {statuses[0]}"
            if len(statuses) == 1
            else f"status in ({', '.join(statuses)})"
        )
    if filters.workflow_id:
        parts.append(f'workflowId = "{filters.workflow_id}"')
    if filters.started_after:
        parts.append(f"started after {_iso(filters.started_after)}")
    if filters.started_before:
        parts.append(f"started before {_iso(filters.started_before)}")
    if filters.min_duration_ms is not None:
        parts.append(f"duration >= {filters.min_duration_ms} ms")
    if filters.max_duration_ms is not None:
        parts.append(f"duration <= {filters.max_duration_ms} ms")
    parts.extend(condition.text() for condition in filters.values)
    return " and ".join(parts) if parts else "all runs"


def bounded_by_scan(filters: ExecutionFilters) -> bool:
    """Whether this database checks some of the filters row by row (module docstring)."""
    if not filters.scans:
        return False
    if connection.vendor == "postgresql":
        return not any(condition.op == "=" for condition in filters.values)
    return True


@dataclass(slots=True)
class _Row:
    """A row's place, as encode_cursor reads it."""

    pk: int
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Search:
    """A page of a search, and where the search stopped when it read its row budget without
    filling the page (None: it did not stop short)."""

    page: ExecutionPage
    stopped: Position | None
    scanned: int

    @property
    def stopped_cursor(self) -> str | None:
        """The cursor that goes on from where the search stopped (in its direction)."""
        if self.stopped is None:
            return None
        return encode_cursor(_Row(pk=self.stopped.pk, started_at=self.stopped.started_at))

    @property
    def message(self) -> str | None:
        if self.stopped is None:
            return None
        return (
            f"The search stopped after checking {self.scanned} runs without filling the page: "
            "go on from its cursor, or narrow it by time, status or workflow."
        )


def search(
    filters: ExecutionFilters,
    *,
    limit: int,
    shape: ListShape = "summary",
    after: Position | None = None,
    before: Position | None = None,
    offset: int = 0,
) -> Search:
    """Execution.objects.page() with at most scan_rows() rows checked row by row."""
    budget = scan_rows()
    bound = None
    if bounded_by_scan(filters):
        bound = Execution.objects.scan_bound(
            filters, rows=offset + budget, after=after, before=before
        )
    narrowed = filters
    if bound is not None:
        narrowed = (
            replace(filters, newest=bound) if before is not None else replace(filters, oldest=bound)
        )
    page = Execution.objects.page(
        narrowed, limit=limit, shape=shape, after=after, before=before, offset=offset
    )
    further = page.newer if before is not None else page.older
    stopped = bound if bound is not None and further is None else None
    return Search(page=page, stopped=stopped, scanned=offset + budget)


def too_wide(filters: ExecutionFilters) -> str | None:
    """Why a bulk action may not count this filter (it would check more than scan_rows() rows
    one by one), or None."""
    if not bounded_by_scan(filters):
        return None
    budget = scan_rows()
    if Execution.objects.scan_bound(filters, rows=budget + 1) is None:
        return None
    return (
        f"This filter checks its duration or value conditions row by row over more than "
        f"{budget} runs (C4C_SEARCH_SCAN_ROWS): narrow it by time, status or workflow first."
    )
