"""What happened: executions, their node runs and their spans.

Only `executions.store` writes these rows. Allowed status transitions are declared here, next to
the statuses, and the store derives every write's guard from them (`sources`, `unfinished`):
editing a table changes what every write accepts, with no SQL or store code to edit.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Func, Prefetch
from django.db.models.sql.compiler import SQLCompiler


class ExecutionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


EXECUTION_TRANSITIONS: dict[str, frozenset[str]] = {
    ExecutionStatus.RUNNING: frozenset(
        {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
    ),
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


NODE_TRANSITIONS: dict[str, frozenset[str]] = {
    NodeStatus.PENDING: frozenset({NodeStatus.RUNNING, NodeStatus.SKIPPED}),
    # A node inside a loop (a cycle through a condition) runs again.
    NodeStatus.RUNNING: frozenset({NodeStatus.COMPLETED, NodeStatus.FAILED, NodeStatus.SKIPPED}),
    NodeStatus.COMPLETED: frozenset({NodeStatus.RUNNING}),
    NodeStatus.FAILED: frozenset({NodeStatus.RUNNING}),
    NodeStatus.SKIPPED: frozenset(),
}


def sources(transitions: Mapping[str, frozenset[str]], target: str) -> tuple[str, ...]:
    """The statuses a row may move to `target` from: the guard of every write that sets it."""
    return tuple(status for status, targets in transitions.items() if target in targets)


def unfinished(transitions: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    """The statuses that still lead somewhere: only a live execution takes node writes or a claim,
    so a finished or cancelled run is never written to by a late engine."""
    return tuple(status for status, targets in transitions.items() if targets)


class DefinedNodeCount(Func):
    """len(definition["nodes"]), counted by the database: a list never decodes the definitions.

    A definition can be a thousand nodes long; reading it for one number per row would make a
    page's cost grow with the size of the workflows listed on it.
    """

    template = "COALESCE(json_array_length(%(expressions)s, '$.nodes'), 0)"
    output_field = models.IntegerField()

    def __init__(self) -> None:
        super().__init__(F("definition"))

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, Any]:
        nodes = "(%(expressions)s -> 'nodes')"
        template = (
            f"CASE WHEN jsonb_typeof({nodes}) = 'array' THEN jsonb_array_length({nodes}) ELSE 0 END"
        )
        return self.as_sql(compiler, connection, template=template, **extra)


LIST_FIELDS = (
    "execution_id",
    "workflow_id",
    "workflow_name",
    "status",
    "started_at",
    "ended_at",
    "execution_time_ms",
    "outputs",
    "nodes_executed",
    "error",
)
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
)


@dataclass(frozen=True, slots=True)
class ExecutionRows:
    """One execution with its node runs and spans, in the order they are shown."""

    execution: "Execution"
    nodes: list["NodeExecution"]
    spans: list["Span"]


class ExecutionQuerySet(models.QuerySet["Execution"]):
    """The reads that shape executions for the API, the streams and the pages (no N+1)."""

    def for_list(self, *, with_spans: bool = False) -> Self:
        """Newest first, nodes (and spans if asked) fetched in one query each for the page."""
        qs = self.order_by("-started_at", "-id").prefetch_related(
            Prefetch("nodes", queryset=NodeExecution.objects.order_by("sequence", "id"))
        )
        if with_spans:
            qs = qs.prefetch_related(
                Prefetch("spans", queryset=Span.objects.order_by("start_time_us", "id"))
            )
        return qs

    def summaries(self) -> Self:
        """Newest first, only the columns a list row shows, the node count computed in SQL."""
        return (
            self.order_by("-started_at", "-id")
            .only(*LIST_FIELDS)
            .annotate(defined_node_count=DefinedNodeCount())
        )

    def with_rows(self, *, spans: bool = True) -> list[ExecutionRows]:
        """Evaluate this (sliced) queryset, then read its nodes and spans in one query each.

        Not prefetch_related: that links every child back to its execution, and those reference
        cycles keep a page's thousands of objects alive until a full garbage collection, which
        on a server holding 1M executions ran every ~15 list requests and took 35-65 ms.
        """
        executions = list(self)
        ids = [execution.pk for execution in executions]
        nodes: dict[int, list[NodeExecution]] = defaultdict(list)
        spans_of: dict[int, list[Span]] = defaultdict(list)
        if ids:
            node_rows = NodeExecution.objects.filter(execution_id__in=ids).only(*NODE_FIELDS)
            for node in node_rows.order_by("sequence", "id"):
                nodes[node.execution_id].append(node)
        if ids and spans:
            for span in Span.objects.filter(execution_id__in=ids).order_by("start_time_us", "id"):
                spans_of[span.execution_id].append(span)
        return [ExecutionRows(e, nodes[e.pk], spans_of[e.pk]) for e in executions]


class Execution(models.Model):
    execution_id = models.CharField(max_length=200, unique=True)
    workflow_id = models.CharField(max_length=200)
    workflow_name = models.CharField(max_length=300)
    workflow_version = models.CharField(max_length=50, blank=True)
    definition = models.JSONField(help_text="Snapshot of the definition that ran.")
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.RUNNING
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    execution_time_ms = models.PositiveIntegerField(null=True, blank=True)
    input = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    nodes_executed = models.JSONField(default=list, blank=True)
    error = models.JSONField(null=True, blank=True, help_text="{name, message, stack}")
    trace_id = models.CharField(max_length=32, blank=True)
    worker_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The server process that runs it; start-up recovery fails only its own rows.",
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
            models.Index(
                fields=["worker_id"],
                condition=models.Q(status="running"),
                name="exec_running_worker_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.execution_id

    @property
    def node_count(self) -> int:
        """Nodes in the definition; taken from summaries()' annotation when the row has it."""
        counted = getattr(self, "defined_node_count", None)
        if counted is not None:
            return counted
        nodes = self.definition.get("nodes") if isinstance(self.definition, dict) else None
        return len(nodes) if isinstance(nodes, list) else 0


class ExecutionCounterQuerySet(models.QuerySet["ExecutionCounter"]):
    def stats(self) -> dict[str, int]:
        """c4c's stats block: total plus the three statuses its UI shows (cancelled is in total)."""
        counts = dict(self.values_list("status", "count"))
        return {
            "total": sum(counts.values()),
            "completed": counts.get(ExecutionStatus.COMPLETED, 0),
            "failed": counts.get(ExecutionStatus.FAILED, 0),
            "running": counts.get(ExecutionStatus.RUNNING, 0),
        }


class ExecutionCounter(models.Model):
    """Executions per status, kept by the store in the same transaction as each transition.

    Counting a million rows on every list request or event is what makes a dashboard slow; a
    counter row per status keeps the stats O(1).
    """

    status = models.CharField(max_length=16, choices=ExecutionStatus.choices, primary_key=True)
    count = models.BigIntegerField(default=0)

    objects = ExecutionCounterQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.status}: {self.count}"


class NodeExecution(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="nodes")
    node_id = models.CharField(max_length=200)
    node_type = models.CharField(max_length=32)
    procedure_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.PENDING)
    sequence = models.PositiveIntegerField(help_text="Order in which the node first started.")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "node_id"], name="node_once_per_execution")
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}:{self.node_id}"


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
