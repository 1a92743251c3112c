"""What happened: executions, their node runs and their spans.

Only `executions.store` writes these rows. Allowed status transitions are declared here, next to
the statuses, and the store derives every write's guard from them (`sources`, `unfinished`):
editing a table changes what every write accepts, with no SQL or store code to edit.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Literal, TypedDict

from django.db import connections, models
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .conditions import ValueCondition
from .cursors import Position, encode_cursor
from .probes import Probe


class ExecutionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Parked (workflows.waits): no process holds it; lease_expires_at is when it is due again.
    WAITING = "waiting", "Waiting"


EXECUTION_TRANSITIONS: dict[str, frozenset[str]] = {
    ExecutionStatus.RUNNING: frozenset(
        {
            ExecutionStatus.COMPLETED,
            ExecutionStatus.FAILED,
            ExecutionStatus.CANCELLED,
            ExecutionStatus.WAITING,
        }
    ),
    ExecutionStatus.WAITING: frozenset({ExecutionStatus.RUNNING, ExecutionStatus.CANCELLED}),
    ExecutionStatus.COMPLETED: frozenset(),
    ExecutionStatus.FAILED: frozenset(),
    ExecutionStatus.CANCELLED: frozenset(),
}


class NodeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    # A sleep node's run until its due time; a wait or subworkflow node's until its event.
    SLEEPING = "sleeping", "Sleeping"
    WAITING = "waiting", "Waiting"


# One row per node run: a loop's second pass through a node is a new row (its `visit`), so a
# finished node run never starts again. A running one may begin its next attempt (a retry after
# its backoff, or a resume after the process running it died): running -> running.
_PARKED_TARGETS = frozenset(
    {
        NodeStatus.SLEEPING,
        NodeStatus.WAITING,
        NodeStatus.COMPLETED,
        NodeStatus.FAILED,
        NodeStatus.SKIPPED,
    }
)
NODE_TRANSITIONS: dict[str, frozenset[str]] = {
    NodeStatus.PENDING: frozenset({NodeStatus.RUNNING, NodeStatus.SKIPPED}),
    NodeStatus.RUNNING: _PARKED_TARGETS | {NodeStatus.RUNNING},
    # A parked node run is taken up without a new attempt: it ends, or it parks again.
    NodeStatus.SLEEPING: _PARKED_TARGETS,
    NodeStatus.WAITING: _PARKED_TARGETS,
    NodeStatus.COMPLETED: frozenset(),
    NodeStatus.FAILED: frozenset(),
    NodeStatus.SKIPPED: frozenset(),
}


def sources(transitions: Mapping[str, frozenset[str]], target: str) -> tuple[str, ...]:
    """The statuses a row may move to `target` from: the guard of every write that sets it."""
    return tuple(status for status, targets in transitions.items() if target in targets)


def unfinished(transitions: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    """The statuses that still lead somewhere: only a live execution takes node writes or a claim,
    so a finished or cancelled run is never written to by a late engine."""
    return tuple(status for status, targets in transitions.items() if targets)


# The columns each shape of a list reads: a list never decodes definitions or inputs, and the
# page's rows leave out the outputs too (a long run's outputs are hundreds of KB).
ROW_FIELDS = (
    "execution_id",
    "workflow_id",
    "workflow_name",
    "status",
    "started_at",
    "ended_at",
    "execution_time_ms",
    "nodes_executed",
    "error",
    "rerun_of",
    "rerun_from_node",
    "parent",
    "parent_node_id",
    "lease_owner",
    "lease_expires_at",
    # The snapshot's key, so a row's definition is one query away when a read about one of its
    # nodes needs it (page() joins the snapshot for its node count anyway).
    "snapshot",
)
SUMMARY_FIELDS = (*ROW_FIELDS, "outputs")
NODE_FIELDS = (
    "execution_id",
    "node_id",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "input",
    "output",
    "error",
    "visit",
    "attempt",
    "attempts",
    "reused",
    "wake_at",
    "waiting_for",
)

# What a list reads per execution: "row" the columns a page row shows, "summary" also the
# outputs, error and node runs (c4c's list item without spans), "full" also the spans.
ListShape = Literal["row", "summary", "full"]


@dataclass(frozen=True, slots=True)
class ExecutionRows:
    """One execution with its node runs and spans, in the order they are shown."""

    execution: "Execution"
    nodes: list["NodeExecution"]
    spans: list["Span"]


@dataclass(frozen=True, slots=True)
class ExecutionFilters:
    """What a list may be narrowed to, all AND-ed; an empty field narrows nothing.

    Times must be aware; durations are whole ms, both bounds inclusive, and a run still going
    has none (a duration bound leaves it out). `values` are conditions on the input or outputs
    (executions.conditions). `oldest`/`newest` bound the rows a search may scan, both inclusive:
    executions.filters sets them so a condition no index serves reads a bounded number of rows.
    Parsed from requests in executions.filters. `apply()` (SQL) and `matches()` (a row already
    read) select the same rows: tests pin it.
    """

    statuses: tuple[str, ...] = ()
    workflow_id: str = ""
    started_after: datetime | None = None
    started_before: datetime | None = None
    execution_ids: tuple[str, ...] = ()
    min_duration_ms: int | None = None
    max_duration_ms: int | None = None
    values: tuple[ValueCondition, ...] = ()
    oldest: Position | None = None
    newest: Position | None = None

    @property
    def scans(self) -> bool:
        """Whether it has conditions no B-tree index serves (durations, values)."""
        return bool(
            self.values or self.min_duration_ms is not None or self.max_duration_ms is not None
        )

    def indexed(self) -> "ExecutionFilters":
        """Only the conditions the indexes serve: status, workflow, start times, ids, window."""
        return replace(self, min_duration_ms=None, max_duration_ms=None, values=())

    def apply(self, executions: "ExecutionQuerySet") -> "ExecutionQuerySet":
        if self.statuses:
            executions = executions.filter(status__in=self.statuses)
        if self.workflow_id:
            executions = executions.filter(workflow_id=self.workflow_id)
        if self.started_after is not None:
            executions = executions.filter(started_at__gt=self.started_after)
        if self.started_before is not None:
            executions = executions.filter(started_at__lt=self.started_before)
        if self.execution_ids:
            executions = executions.filter(execution_id__in=self.execution_ids)
        if self.min_duration_ms is not None:
            executions = executions.filter(execution_time_ms__gte=self.min_duration_ms)
        if self.max_duration_ms is not None:
            executions = executions.filter(execution_time_ms__lte=self.max_duration_ms)
        for condition in self.values:
            executions = executions.filter(condition.expression())
        if self.oldest is not None:
            # A plain bound first, so the index range starts there (as page() explains).
            executions = executions.filter(started_at__gte=self.oldest.started_at).filter(
                Q(started_at__gt=self.oldest.started_at) | Q(pk__gte=self.oldest.pk)
            )
        if self.newest is not None:
            executions = executions.filter(started_at__lte=self.newest.started_at).filter(
                Q(started_at__lt=self.newest.started_at) | Q(pk__lte=self.newest.pk)
            )
        return executions

    def matches(self, execution: "Execution") -> bool:
        """Whether a row read by id belongs in the list these filters select. With `values`,
        the row needs its input and outputs (ExecutionQuerySet.load_values reads them)."""
        place = (execution.started_at, execution.pk)
        return (
            (not self.statuses or execution.status in self.statuses)
            and (not self.workflow_id or execution.workflow_id == self.workflow_id)
            and (self.started_after is None or execution.started_at > self.started_after)
            and (self.started_before is None or execution.started_at < self.started_before)
            and (not self.execution_ids or execution.execution_id in self.execution_ids)
            and _within(execution.execution_time_ms, self.min_duration_ms, self.max_duration_ms)
            and all(c.holds(execution.input, execution.outputs) for c in self.values)
            and (self.oldest is None or place >= (self.oldest.started_at, self.oldest.pk))
            and (self.newest is None or place <= (self.newest.started_at, self.newest.pk))
        )


def _within(value: int | None, low: int | None, high: int | None) -> bool:
    """Whether `value` is in [low, high] (None: unbounded); no value is in a bounded range."""
    if low is None and high is None:
        return True
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


@dataclass(frozen=True, slots=True)
class ExecutionPage:
    """One page of a newest-first list, with cursors to the pages on either side (or None)."""

    rows: list[ExecutionRows]
    older: str | None
    newer: str | None

    @property
    def executions(self) -> list["Execution"]:
        return [row.execution for row in self.rows]


class ExecutionQuerySet(models.QuerySet["Execution"]):
    """Every read of executions, one per shape: a page of a list (page(), and row() for one
    run in a row's shape), one execution (one(), and detail() with its node runs and spans),
    and the few columns other reads need (outcome(), statuses(), unfinished_children()); the
    counters' stats are ExecutionCounter.objects.stats(). The API, the pages, the streams and
    start-up recovery all read through these, with query counts pinned in tests."""

    def page(
        self,
        filters: ExecutionFilters | None = None,
        *,
        limit: int,
        shape: ListShape = "summary",
        after: Position | None = None,
        before: Position | None = None,
        offset: int = 0,
    ) -> ExecutionPage:
        """`limit` executions, newest first: after (older than) or before (newer than) a cursor.

        One query for the executions, plus one each for their nodes and spans if the shape has
        them. limit + 1 rows tell whether a further page exists without a COUNT. Each cursor
        condition leads with a plain bound on started_at so the index range starts at the cursor
        (an OR alone made SQLite walk the index from the newest row).
        """
        fields = ROW_FIELDS if shape == "row" else SUMMARY_FIELDS
        executions = (filters or ExecutionFilters()).apply(
            self.only(*fields).annotate(defined_node_count=F("snapshot__node_count"))
        )
        if before is not None:
            newer_first = executions.filter(started_at__gte=before.started_at).filter(
                Q(started_at__gt=before.started_at) | Q(pk__gt=before.pk)
            )
            found = list(newer_first.order_by("started_at", "id")[: limit + 1])
            more_newer = len(found) > limit
            found = found[:limit][::-1]
            more_older = True
        else:
            if after is not None:
                executions = executions.filter(started_at__lte=after.started_at).filter(
                    Q(started_at__lt=after.started_at) | Q(pk__lt=after.pk)
                )
            found = list(executions.order_by("-started_at", "-id")[offset : offset + limit + 1])
            more_older = len(found) > limit
            found = found[:limit]
            more_newer = after is not None
        return ExecutionPage(
            rows=_with_children(
                found, nodes=shape != "row", spans=shape == "full", node_fields=NODE_FIELDS
            ),
            older=encode_cursor(found[-1]) if found and more_older else None,
            newer=encode_cursor(found[0]) if found and more_newer else None,
        )

    def scan_bound(
        self,
        filters: ExecutionFilters,
        *,
        rows: int,
        after: Position | None = None,
        before: Position | None = None,
    ) -> Position | None:
        """The `rows`-th row the filters' indexed conditions select from the cursor on (older
        than `after`, or newer than `before`), or None when there are fewer: how far a search
        whose other conditions scan row by row may read. One index walk of `rows` entries.
        """
        executions = filters.indexed().apply(self.all())
        if before is not None:
            executions = executions.filter(started_at__gte=before.started_at).filter(
                Q(started_at__gt=before.started_at) | Q(pk__gt=before.pk)
            )
            ordered = executions.order_by("started_at", "id")
        else:
            if after is not None:
                executions = executions.filter(started_at__lte=after.started_at).filter(
                    Q(started_at__lt=after.started_at) | Q(pk__lt=after.pk)
                )
            ordered = executions.order_by("-started_at", "-id")
        found = list(ordered.values_list("started_at", "id")[rows - 1 : rows])
        return Position(*found[0]) if found else None

    def load_values(self, executions: list["Execution"]) -> None:
        """Read the input and outputs of rows read without them (a page's rows), in one query:
        what ExecutionFilters.matches() needs for conditions on values."""
        by_pk = {execution.pk: execution for execution in executions}
        for pk, input, outputs in self.filter(pk__in=by_pk).values_list("pk", "input", "outputs"):
            by_pk[pk].input, by_pk[pk].outputs = input, outputs

    def row(self, execution_id: str) -> "Execution | None":
        """One execution in a list row's shape (no children, no large columns), or None: page()'s
        one query. What a read about one of its nodes, or a check of its status, starts from."""
        named = ExecutionFilters(execution_ids=(execution_id,))
        found = self.page(named, limit=1, shape="row").executions
        return found[0] if found else None

    def one(self, execution_id: str) -> "Execution | None":
        """One execution, every column and its definition (its snapshot joined), without its
        node runs or spans, or None: one query."""
        return self.select_related("snapshot").filter(execution_id=execution_id).first()

    def detail(self, execution_id: str) -> ExecutionRows | None:
        """One execution, every column and its definition, with its node runs and spans: three
        queries."""
        execution = self.one(execution_id)
        if execution is None:
            return None
        return _with_children([execution], nodes=True, spans=True)[0]

    def outcome(self, execution_id: str) -> tuple[str, Any, Any] | None:
        """One execution's status, outputs and error (what a parent takes from its child), or
        None: one query, no definition."""
        found = self.filter(execution_id=execution_id).values_list("status", "outputs", "error")
        return found.first()

    def statuses(self, execution_ids: Collection[str]) -> dict[str, str]:
        """The status of each execution named that exists: one query."""
        named = self.filter(execution_id__in=execution_ids)
        return dict(named.values_list("execution_id", "status"))

    def unfinished_children(self, execution_id: str) -> list[str]:
        """The ids of the runs a run started (sub-workflow nodes) that have not ended: one
        query."""
        children = self.filter(
            parent__execution_id=execution_id, status__in=unfinished(EXECUTION_TRANSITIONS)
        )
        return list(children.values_list("execution_id", flat=True))

    def with_previous_run(self) -> "ExecutionQuerySet":
        """Each execution annotated with `previous_run_id`: the execution_id of the run of the
        same workflow that started just before it (ties by id), or None. What the detail page's
        "Compare with previous run" links to, read in the same query as the execution: a LIMIT 1
        on the workflow's started_at index (a plain bound first, as page() explains)."""
        earlier = (
            Execution.objects.filter(
                workflow_id=models.OuterRef("workflow_id"),
                started_at__lte=models.OuterRef("started_at"),
            )
            .filter(
                Q(started_at__lt=models.OuterRef("started_at")) | Q(pk__lt=models.OuterRef("pk"))
            )
            .order_by("-started_at", "-id")
            .values("execution_id")[:1]
        )
        return self.annotate(previous_run_id=models.Subquery(earlier))

    def by_idempotency_key(self, key: str) -> "Execution | None":
        """The execution a client's Idempotency-Key started, or None: one indexed read."""
        return self.filter(idempotency_key=key).first()

    def lapsed(self, now: datetime, *, limit: int) -> list["Execution"]:
        """What the sweep takes over by `now`: running executions whose lease ran out, oldest
        expiry first (their owner stopped renewing: it died; or nobody claimed a queued run: its
        message was lost), then, up to `limit` in all, the waiting ones that are due (`due`).

        Only what a takeover compares and the run needs to resume; one read on each partial
        index (running rows by expiry, waiting rows by due time).
        """
        # Each read only after a compiled one found something: the sweep's answer is "none"
        # almost every second.
        lapsed: list[Execution] = []
        if _LAPSED.any(now, using=self.db):
            found = self.select_related("snapshot").lapsed_leases(now)
            lapsed = list(found.order_by("lease_expires_at")[:limit])
        if not _DUE.any(now, using=self.db):
            return lapsed
        return lapsed + self.due(now, limit=limit - len(lapsed))

    def lapsed_leases(self, now: datetime) -> "ExecutionQuerySet":
        """Running executions whose lease ran out by `now`."""
        return self.filter(status=ExecutionStatus.RUNNING, lease_expires_at__lt=now)

    def due_by(self, now: datetime) -> "ExecutionQuerySet":
        """Waiting executions due by `now`."""
        return self.filter(status=ExecutionStatus.WAITING, lease_expires_at__lte=now)

    def due(self, now: datetime, *, limit: int) -> list["Execution"]:
        """Waiting (parked) executions whose due time has come, earliest first: a sleep ended,
        a wait timed out, or a signal or child arrived (which sets it to now). One read on the
        partial index of waiting rows by due time."""
        if limit <= 0:
            return []
        due = self.select_related("snapshot").due_by(now)
        return list(due.order_by("lease_expires_at")[:limit])

    def next_due(self) -> datetime | None:
        """The earliest due time of the waiting executions (the timer sleeps until then)."""
        return (
            self.filter(status=ExecutionStatus.WAITING, lease_expires_at__isnull=False)
            .order_by("lease_expires_at")
            .values_list("lease_expires_at", flat=True)
            .first()
        )

    def prunable(self, cutoffs: Mapping[str, datetime]) -> "ExecutionQuerySet":
        """The finished runs past their keep-by: for each status in `cutoffs` (only finished
        ones count: a running run is never pruned), those started before its cutoff."""
        finished = set(cutoffs) - set(unfinished(EXECUTION_TRANSITIONS))
        past = Q(pk__in=[])
        for status in finished:
            past |= Q(status=status, started_at__lt=cutoffs[status])
        return self.filter(past)

    def prunable_batch(self, status: str, before: datetime, *, limit: int) -> list[int]:
        """The keys of up to `limit` of the oldest `status` runs started before `before`: one
        range of the status index. A running status selects nothing."""
        if status in unfinished(EXECUTION_TRANSITIONS):
            return []
        oldest = self.filter(status=status, started_at__lt=before).order_by("started_at", "id")
        return list(oldest.values_list("pk", flat=True)[:limit])

    def prunable_counts(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        """How many runs of each status pruning would delete now (what --dry-run prints)."""
        counted = self.prunable(cutoffs).values_list("status").annotate(n=models.Count("pk"))
        return dict(counted.order_by())

    def held_elsewhere(self, execution_ids: Collection[str], owner: str) -> dict[str, str]:
        """Of the executions `execution_ids`, those `owner` may no longer run, each with why:
        its status when it ended (cancelled, by another process) or "taken" (another process
        holds its lease).

        The heartbeat's read, once every C4C_CANCEL_CHECK_SECONDS while the process runs
        anything: a row that is not found (deleted, or not visible yet) is not reported, so a
        run is stopped only on evidence. Nor is a run that `owner` itself completed or failed:
        its walk is still returning (saving its spans), and stopping it then would answer its
        client from a row without them.
        """
        gone: dict[str, str] = {}
        if not execution_ids:
            return gone
        rows = self.filter(execution_ids_in(execution_ids)).values_list(
            "execution_id", "status", "lease_owner"
        )
        ended_here = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED)
        for execution_id, status, lease_owner in rows:
            if status == ExecutionStatus.RUNNING:
                if lease_owner != owner:
                    gone[execution_id] = "taken"
            elif lease_owner != owner or status not in ended_here:
                gone[execution_id] = status
        return gone


_LAPSED = Probe(lambda now: Execution.objects.lapsed_leases(now))
_DUE = Probe(lambda now: Execution.objects.due_by(now))


def execution_ids_in(execution_ids: Collection[str]) -> RawSQL:
    """A filter for the executions `execution_ids` (not empty) whose ids are bound as they are.

    The ORM's `execution_id__in` prepares every id through the field, ~6 us each: the heartbeat,
    which names every run this process holds (up to C4C_MAX_QUEUED queued ones) each tick, spent
    4-7 ms a tick on 700 ids that way, 1.2 ms with this.
    """
    column = Execution._meta.get_field("execution_id").column
    assert column
    quoted = connections["default"].ops.quote_name(column)
    placeholders = ",".join(["%s"] * len(execution_ids))
    return RawSQL(f"{quoted} IN ({placeholders})", tuple(execution_ids), models.BooleanField())


def _with_children(
    executions: list["Execution"],
    *,
    nodes: bool,
    spans: bool,
    node_fields: tuple[str, ...] = (),
) -> list[ExecutionRows]:
    """The executions' nodes and spans, read in one query each and grouped by execution.

    Not prefetch_related: that links every child back to its execution, and those reference
    cycles keep a page's thousands of objects alive until a full garbage collection, which on a
    server holding 1M executions ran every ~15 list requests and took 35-65 ms.
    """
    ids = [execution.pk for execution in executions]
    nodes_of: dict[int, list[NodeExecution]] = defaultdict(list)
    spans_of: dict[int, list[Span]] = defaultdict(list)
    if ids and nodes:
        node_rows = NodeExecution.objects.filter(execution_id__in=ids)
        if node_fields:
            node_rows = node_rows.only(*node_fields)
        for node in node_rows.order_by("sequence", "id"):
            nodes_of[node.execution_id].append(node)
    if ids and spans:
        for span in Span.objects.filter(execution_id__in=ids).order_by("start_time_us", "id"):
            spans_of[span.execution_id].append(span)
    return [ExecutionRows(e, nodes_of[e.pk], spans_of[e.pk]) for e in executions]


def canonical_json(definition: Any) -> str:
    """A definition as one exact text: keys sorted, no spaces, ASCII only (so any stored JSON,
    even one holding a lone surrogate, encodes), whatever order its writer put its keys in."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def definition_hash(definition: Any) -> str:
    """The SHA-256 (hex) of the definition's canonical JSON: a snapshot's key."""
    return hashlib.sha256(canonical_json(definition).encode("ascii")).hexdigest()


def defined_node_count(definition: Any) -> int:
    """len(definition["nodes"]), 0 when the definition has no list of nodes (an older version's
    row, or a hand-edited one): what a list shows as the run's node total."""
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    return len(nodes) if isinstance(nodes, list) else 0


class DefinitionSnapshotQuerySet(models.QuerySet["DefinitionSnapshot"]):
    def unused(self) -> "DefinitionSnapshotQuerySet":
        """Snapshots no execution points to (their last run was pruned or deleted)."""
        return self.exclude(models.Exists(Execution.objects.filter(snapshot=models.OuterRef("pk"))))

    def unused_keys(self, *, limit: int) -> list[str]:
        return list(self.unused().order_by().values_list("pk", flat=True)[:limit])

    def left_unused_by(self, cutoffs: Mapping[str, datetime]) -> "DefinitionSnapshotQuerySet":
        """Snapshots that pruning with `cutoffs` would leave unused (and then delete)."""
        kept = Execution.objects.exclude(
            pk__in=Execution.objects.prunable(cutoffs).values("pk")
        ).filter(snapshot=models.OuterRef("pk"))
        return self.exclude(models.Exists(kept))


class DefinitionSnapshot(models.Model):
    """A definition that ran, stored once however many runs used it (keyed by its hash).

    Each run used to keep its own copy: 2 MB inline configs made 20 GB per 10k runs. The store
    writes a snapshot (INSERT ... ON CONFLICT DO NOTHING) the first time a process runs that
    definition; pruning deletes the snapshots no execution points to any more. `node_count` is
    counted once here, so a list shows it with a join and never decodes a definition.
    """

    hash = models.CharField(
        max_length=64, primary_key=True, help_text="SHA-256 of the definition's canonical JSON."
    )
    definition = models.JSONField(help_text="The definition as c4c's JSON.")
    node_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = DefinitionSnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        workflow = self.definition.get("id") if isinstance(self.definition, dict) else None
        return f"{workflow or 'definition'} ({self.hash[:12]})"

    @classmethod
    def of(cls, definition: Any) -> "DefinitionSnapshot":
        """The (unsaved) snapshot of `definition`: what the store writes once per definition."""
        return cls(
            hash=definition_hash(definition),
            definition=definition,
            node_count=defined_node_count(definition),
        )


class Execution(models.Model):
    execution_id = models.CharField(max_length=200, unique=True)
    workflow_id = models.CharField(max_length=200)
    workflow_name = models.CharField(max_length=300)
    workflow_version = models.CharField(max_length=50, blank=True)
    snapshot = models.ForeignKey(
        DefinitionSnapshot,
        on_delete=models.PROTECT,
        related_name="executions",
        help_text="The definition that ran (shared by every run of the same definition).",
    )
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.RUNNING
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    execution_time_ms = models.PositiveBigIntegerField(null=True, blank=True)
    input = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    nodes_executed = models.JSONField(default=list, blank=True)
    error = models.JSONField(null=True, blank=True, help_text="{name, message, stack}")
    # What `input` (and the definition) hold in REDACTED's place, encrypted (executions.secrets):
    # a resumed or re-run run gets its real secrets back. Null when the run has none.
    sealed_secrets = models.TextField(  # noqa: DJ001 - null is "nothing sealed", no empty seal
        null=True, blank=True, editable=False, help_text="The run's secrets, encrypted."
    )
    trace_id = models.CharField(max_length=32, blank=True)
    # The root span of the part of the run going on, noted with its first saved spans: a root
    # ends (and is saved) last, so a process that dies leaves its spans under a root never saved,
    # which the run's resumption saves in its place (store.span_root_lost).
    root_span_id = models.CharField(max_length=16, blank=True, default="", db_default="")
    # The lease (executions.runtime): the process that runs it renews lease_expires_at; once it
    # has passed, any web process or worker may take the run over and resume it. No owner: a
    # run queued for a worker, which claims it (lease_expires_at then bounds the wait).
    lease_owner = models.CharField(
        max_length=200,
        blank=True,
        help_text="The process running it (server/pid/boot); empty while queued.",
    )
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Past this, another process may take the run over."
    )
    rerun_of = models.ForeignKey(
        "self",
        to_field="execution_id",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reruns",
        help_text="The execution this one runs again.",
    )
    rerun_from_node = models.CharField(
        max_length=200, blank=True, help_text="The node a re-run started from (empty: the start)."
    )
    idempotency_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text="The client's Idempotency-Key that started it.",
    )
    parent = models.ForeignKey(
        "self",
        to_field="execution_id",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The execution whose subworkflow node started this one.",
    )
    parent_node_id = models.CharField(
        max_length=200, blank=True, help_text="The parent's subworkflow node that started it."
    )

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["-started_at", "-id"], name="exec_started_idx"),
            models.Index(fields=["status", "-started_at", "-id"], name="exec_status_started_idx"),
            models.Index(
                fields=["workflow_id", "-started_at", "-id"], name="exec_workflow_started_idx"
            ),
            # Both filters at once: with only the two above, a rare workflow filtered on a
            # common status walked the whole status range (1.8 s at 1M on SQLite).
            models.Index(
                fields=["workflow_id", "status", "-started_at", "-id"],
                name="exec_wf_status_started_idx",
            ),
            # The sweep's read (lapsed()): only running rows, by expiry.
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status="running"),
                name="exec_running_lease_idx",
            ),
            # The timer's read (due()): only waiting rows, by due time.
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status="waiting"),
                name="exec_waiting_due_idx",
            ),
        ]
        # Django's view_execution lets a user read runs; these are the rest of what the API, the
        # streams and the pages check (the viewer, operator and admin groups hold them).
        permissions = [
            ("execute_workflow", "Can execute workflows"),
            ("cancel_execution", "Can cancel and re-run executions"),
            ("manage_c4c", "Can manage tokens, schedules and pruning"),
        ]

    def __str__(self) -> str:
        return self.execution_id

    @property
    def definition(self) -> Any:
        """The definition that ran (its snapshot's; read with the row by detail())."""
        return self.snapshot.definition

    @definition.setter
    def definition(self, definition: Any) -> None:
        self.snapshot = DefinitionSnapshot.of(definition)

    @property
    def node_count(self) -> int:
        """Nodes in the definition; taken from page()'s joined column when the row has it."""
        counted: int | None = getattr(self, "defined_node_count", None)
        if counted is not None:
            return counted
        return self.snapshot.node_count


class ExecutionStats(TypedDict):
    """c4c's stats block: total plus the three statuses its UI shows (cancelled is in total)."""

    total: int
    completed: int
    failed: int
    running: int
    waiting: int


class ExecutionCounterManager(models.Manager["ExecutionCounter"]):
    _compiled: ClassVar[dict[str, tuple[str, tuple[Any, ...] | None]]] = {}

    def stats(self) -> ExecutionStats:
        """The counters as c4c's stats block: one indexed read of at most four rows.

        Read for every executions.update, so the SELECT is compiled from this model once per
        database and then only executed: building the ORM query each time cost several times the
        read itself.
        """
        compiled = self._compiled.get(self.db)
        if compiled is None:
            query = self.get_queryset().values_list("status", "count").query
            sql, params = query.get_compiler(using=self.db).as_sql()
            # No parameters at all, not (): the SQLite backend then skips rewriting placeholders.
            compiled = self._compiled[self.db] = (sql, tuple(params) or None)
        with connections[self.db].cursor() as cursor:
            cursor.execute(*compiled)
            counts: dict[str, int] = dict(cursor.fetchall())
        return {
            "total": sum(counts.values()),
            "completed": counts.get(ExecutionStatus.COMPLETED, 0),
            "failed": counts.get(ExecutionStatus.FAILED, 0),
            "running": counts.get(ExecutionStatus.RUNNING, 0),
            "waiting": counts.get(ExecutionStatus.WAITING, 0),
        }


class ExecutionCounter(models.Model):
    """Executions per status, kept by the store in the same transaction as each transition.

    Counting a million rows on every list request or event is what makes a dashboard slow; a
    counter row per status keeps the stats O(1).
    """

    status = models.CharField(max_length=16, choices=ExecutionStatus.choices, primary_key=True)
    count = models.BigIntegerField(default=0)

    objects = ExecutionCounterManager()

    def __str__(self) -> str:
        return f"{self.status}: {self.count}"


class NodeExecutionQuerySet(models.QuerySet["NodeExecution"]):
    def checkpoints_of(self, execution: Execution) -> list["NodeExecution"]:
        """Every node run of `execution` in walk order: what a resume or a re-run continues from."""
        return list(self.filter(execution=execution).order_by("sequence", "id"))


class NodeExecution(models.Model):
    """One node run: the `visit`-th time the execution reached the node (loops pass again).

    `attempt` is the attempt in progress or the last one. `attempts` lists every attempt
    ({number, status, startTime, endTime, error, retryAt}: the API's shape, ISO times) once there
    is more than one, and is null for the common node that ran once, which pays nothing for it.
    """

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="nodes")
    node_id = models.CharField(max_length=200)
    node_type = models.CharField(max_length=32)
    procedure_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.PENDING)
    sequence = models.PositiveIntegerField(help_text="Its place in the walk (the node index).")
    visit = models.PositiveIntegerField(default=1, help_text="The nth time the run reached it.")
    attempt = models.PositiveIntegerField(default=1, help_text="The current or last attempt.")
    attempts = models.JSONField(
        null=True, blank=True, help_text="Every attempt, once there is more than one."
    )
    reused = models.BooleanField(
        default=False, help_text="Copied from the execution re-run, not run in this one."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    # The real output when `output` holds REDACTED in a secret's place, encrypted
    # (executions.secrets): the checkpoint a resumed run replays. Null when it has no secret.
    sealed_output = models.TextField(  # noqa: DJ001 - null is "nothing sealed", no empty seal
        null=True, blank=True, editable=False, help_text="The output's secrets, encrypted."
    )
    # A parked node run (sleeping, waiting): its own due time (a sleep's end, a wait's timeout)
    # and what it waits for ("signal:<name>", "execution:<child id>", "branches:<ids>").
    wake_at = models.DateTimeField(null=True, blank=True)
    # db_default: the node start's INSERT (executions.sql) names only the columns a start sets.
    waiting_for = models.CharField(max_length=300, blank=True, default="", db_default="")

    objects = NodeExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["execution", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "node_id", "visit"], name="node_run_once_per_visit"
            )
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}:{self.node_id}#{self.visit}"


class NodeLogQuerySet(models.QuerySet["NodeLog"]):
    def of_node(
        self, execution: "Execution", node_id: str, *, after: int = 0, limit: int
    ) -> list["NodeLog"]:
        """The lines every run of one node logged, in the order they were written (their id),
        after line id `after`: at most `limit` of them, each with its node run (for the visit).
        One indexed query."""
        return list(
            self.select_related("node")
            .only("node__visit", *NODE_LOG_FIELDS)
            .filter(node__execution=execution, node__node_id=node_id, pk__gt=after)
            .order_by("pk")[:limit]
        )


NODE_LOG_FIELDS = (
    "node",
    "attempt",
    "number",
    "level",
    "logger",
    "message",
    "logged_at",
    "dropped",
)


class NodeLog(models.Model):
    """One line a procedure logged during one attempt of a node run (workflows.logs).

    A node run that logs nothing has none: the common node pays nothing. Each attempt keeps at
    most C4C_MAX_LOG_LINES lines and C4C_MAX_LOG_BYTES bytes; its last line says how many more
    were dropped (`dropped`), when any were. Written by the store in one INSERT per batch.
    """

    node = models.ForeignKey(NodeExecution, on_delete=models.CASCADE, related_name="logs")
    attempt = models.PositiveIntegerField()
    number = models.PositiveIntegerField(help_text="Its place among the attempt's lines, from 1.")
    level = models.CharField(max_length=16)
    logger = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)
    logged_at = models.DateTimeField()
    dropped = models.PositiveIntegerField(
        default=0, help_text="On an attempt's last line: the lines it dropped past its caps."
    )

    objects = NodeLogQuerySet.as_manager()

    class Meta:
        ordering = ["node", "id"]
        constraints = [
            models.UniqueConstraint(fields=["node", "attempt", "number"], name="node_log_line_once")
        ]

    def __str__(self) -> str:
        return f"{self.node_id}#{self.attempt}.{self.number} {self.level}"


class SpanStatusCode(models.TextChoices):
    UNSET = "UNSET", "Unset"
    OK = "OK", "OK"
    ERROR = "ERROR", "Error"


class Span(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="spans")
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=16, default="INTERNAL")
    start_time_us = models.BigIntegerField(help_text="Microseconds since the epoch.")
    end_time_us = models.BigIntegerField(help_text="Microseconds since the epoch.")
    status_code = models.CharField(
        max_length=8, choices=SpanStatusCode.choices, default=SpanStatusCode.UNSET
    )
    status_message = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["execution", "start_time_us", "id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "span_id"], name="span_once_per_execution")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.span_id})"

    @property
    def duration_ms(self) -> float:
        return (self.end_time_us - self.start_time_us) / 1000


class BulkActionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class BulkActionQuerySet(models.QuerySet["BulkAction"]):
    def by_bulk_id(self, bulk_id: str) -> "BulkAction | None":
        """One action's progress by its public id, or None: one indexed read."""
        return self.filter(bulk_id=bulk_id).first()


class BulkAction(models.Model):
    """A cancel or re-run over many executions, done in the background (executions.bulk).

    Its own bookkeeping only: each execution it touches is written by the runtime's cancel and
    rerun, as a single cancel or re-run is. `total` runs were counted and confirmed; `done` of
    them have been handled so far, each one `succeeded` (cancelled, or re-run), `skipped`
    (already ended, or still running for a re-run) or `failed` (its error in `errors`).
    """

    bulk_id = models.CharField(max_length=40, unique=True)
    action = models.CharField(max_length=16)
    selection = models.TextField(help_text="The filter or the runs it acts on, in words.")
    status = models.CharField(
        max_length=16, choices=BulkActionStatus.choices, default=BulkActionStatus.RUNNING
    )
    total = models.PositiveIntegerField()
    done = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first few failures.")
    started_runs = models.JSONField(
        default=list, blank=True, help_text="The executions a re-run started."
    )
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = BulkActionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.bulk_id}"


# Webhooks ---------------------------------------------------------------------------------------

DEFAULT_HOOK_IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookHookQuerySet(models.QuerySet["WebhookHook"]):
    def enabled_hook(self, hook_id: str) -> "WebhookHook | None":
        """The hook POST /workflow/hooks/<hook_id> fires; None when unknown or disabled."""
        return self.filter(hook_id=hook_id, enabled=True).first()


class WebhookHook(models.Model):
    """Another system's way to start a workflow: POST /workflow/hooks/<hook_id> (executions.api.
    hooks), signed with the hook's secret. The secret is kept sealed (executions.secrets) so that
    it can verify signatures, and is shown once, when it is created or rotated (admin)."""

    hook_id = models.SlugField(max_length=100, unique=True)
    workflow_id = models.CharField(max_length=200, help_text="The library workflow it starts.")
    enabled = models.BooleanField(default=True)
    sealed_secret = models.TextField(editable=False)
    idempotency_header = models.CharField(
        max_length=100,
        default=DEFAULT_HOOK_IDEMPOTENCY_HEADER,
        help_text="Header whose value makes a sender's retry answer the same run.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_fired_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = WebhookHookQuerySet.as_manager()

    class Meta:
        ordering = ["hook_id"]
        verbose_name = "webhook"

    def __str__(self) -> str:
        return self.hook_id


# Signals ----------------------------------------------------------------------------------------


class SignalQuerySet(models.QuerySet["Signal"]):
    def pending(self, execution: "Execution", names: Collection[str]) -> "SignalQuerySet":
        """Signals of those names delivered to the execution and not taken by a node yet."""
        return self.filter(execution=execution, name__in=names, taken_by="")


class Signal(models.Model):
    """A named message for a running or waiting execution (POST /workflow/executions/<id>/
    signals/<name>): a wait node of that name takes it, oldest first, and its payload becomes the
    node's output. Kept when it comes before the node waits; `taken_by` is the node run
    ("<node id>#<visit>") that took it, so a node run resumed after a crash takes the same one."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="signals")
    name = models.CharField(max_length=100)
    payload = models.JSONField(null=True, blank=True)
    sent_at = models.DateTimeField()
    sent_by = models.CharField(max_length=150, blank=True, help_text="The user who sent it.")
    taken_by = models.CharField(max_length=300, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True)

    objects = SignalQuerySet.as_manager()

    class Meta:
        ordering = ["sent_at", "id"]
        indexes = [models.Index(fields=["execution", "name", "taken_by"], name="signal_take_idx")]

    def __str__(self) -> str:
        return f"{self.execution_id}:{self.name}"
