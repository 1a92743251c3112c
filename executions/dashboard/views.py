"""Dashboard pages: the executions list, one execution, the workflow catalogue.

Each page renders partial templates on first load; the `*_live` views render the same partials
as JSON so the page scripts can swap them in when an SSE event says something changed.
"""

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from workflows.library import workflow_library

from ..models import (
    DefinedNodeCount,
    Execution,
    ExecutionCounter,
    ExecutionStatus,
    NodeExecution,
    NodeStatus,
    Span,
)
from .graph import layout_workflow
from .timeline import span_rows, time_axis, trace_duration_ms

PAGE_SIZE = 50
MAX_LIVE_IDS = 50
_LIST_FIELDS = (
    "id",
    "execution_id",
    "workflow_id",
    "workflow_name",
    "status",
    "started_at",
    "ended_at",
    "execution_time_ms",
    "nodes_executed",
)


class BadPageInput(ValueError):
    """A query parameter the page cannot use; shown to the user as a 400 naming the parameter."""


@dataclass(frozen=True, slots=True)
class ListFilters:
    status: str
    workflow: str

    @classmethod
    def from_request(cls, request: HttpRequest) -> "ListFilters":
        status = request.GET.get("status", "").strip()
        if status and status not in ExecutionStatus.values:
            allowed = ", ".join(ExecutionStatus.values)
            raise BadPageInput(f"status must be one of {allowed}, not {status!r}")
        return cls(status=status, workflow=request.GET.get("workflow", "").strip())

    def apply(self, executions: QuerySet[Execution]) -> QuerySet[Execution]:
        if self.status:
            executions = executions.filter(status=self.status)
        if self.workflow:
            executions = executions.filter(workflow_id=self.workflow)
        return executions

    def matches(self, execution: Execution) -> bool:
        return (not self.status or execution.status == self.status) and (
            not self.workflow or execution.workflow_id == self.workflow
        )

    def query(self) -> str:
        """The filters as a query string, to carry them across pages and live refreshes."""
        pairs = (("status", self.status), ("workflow", self.workflow))
        return urlencode({name: value for name, value in pairs if value})


def encode_cursor(execution: Execution) -> str:
    """A keyset position (started_at, id): paging stays one index range scan at any depth."""
    raw = f"{execution.started_at.isoformat()}|{execution.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, name: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        started, pk = raw.rsplit("|", 1)
        started_at = datetime.fromisoformat(started)
        if started_at.tzinfo is None:
            raise ValueError("naive time")
        return started_at, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadPageInput(f"{name} is not a cursor this page made: {cursor[:60]!r}") from exc


@dataclass(frozen=True, slots=True)
class ListPage:
    executions: list[Execution]
    older: str | None
    newer: str | None


def _list_rows() -> QuerySet[Execution]:
    """The row template's columns; the node count comes from SQL, not the decoded definition."""
    return Execution.objects.only(*_LIST_FIELDS).annotate(defined_node_count=DefinedNodeCount())


def list_page(filters: ListFilters, *, after: str = "", before: str = "") -> ListPage:
    """One page of executions, newest first, with cursors to the pages on either side.

    One query: PAGE_SIZE + 1 rows tell whether a further page exists without a COUNT. Each
    cursor condition leads with a plain bound on started_at so the index range starts at the
    cursor (an OR alone made SQLite walk the index from the newest row).
    """
    executions = filters.apply(_list_rows())
    if before:
        started_at, pk = decode_cursor(before, "before")
        newer_rows = list(
            executions.filter(started_at__gte=started_at)
            .filter(Q(started_at__gt=started_at) | Q(pk__gt=pk))
            .order_by("started_at", "id")[: PAGE_SIZE + 1]
        )
        has_newer = len(newer_rows) > PAGE_SIZE
        rows = list(reversed(newer_rows[:PAGE_SIZE]))
        return ListPage(
            executions=rows,
            older=encode_cursor(rows[-1]) if rows else None,
            newer=encode_cursor(rows[0]) if rows and has_newer else None,
        )
    if after:
        started_at, pk = decode_cursor(after, "after")
        executions = executions.filter(started_at__lte=started_at).filter(
            Q(started_at__lt=started_at) | Q(pk__lt=pk)
        )
    rows = list(executions.order_by("-started_at", "-id")[: PAGE_SIZE + 1])
    has_older = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return ListPage(
        executions=rows,
        older=encode_cursor(rows[-1]) if rows and has_older else None,
        newer=encode_cursor(rows[0]) if rows and after else None,
    )


def _bad_input(request: HttpRequest, error: BadPageInput) -> HttpResponse:
    return render(request, "executions/bad_request.html", {"message": str(error)}, status=400)


def _workflow_choices() -> list[dict[str, str]]:
    return [
        {"id": wf.id, "name": wf.display_name, "version": wf.version}
        for wf in sorted(workflow_library().all(), key=lambda wf: wf.display_name.lower())
    ]


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("executions:list")


@require_GET
def execution_list(request: HttpRequest) -> HttpResponse:
    try:
        filters = ListFilters.from_request(request)
        page = list_page(
            filters, after=request.GET.get("after", ""), before=request.GET.get("before", "")
        )
    except BadPageInput as error:
        return _bad_input(request, error)
    workflows = _workflow_choices()
    filter_workflows = list(workflows)
    if filters.workflow and all(wf["id"] != filters.workflow for wf in workflows):
        # Executions of a workflow no longer in the code can still be filtered on.
        filter_workflows.append({"id": filters.workflow, "name": filters.workflow, "version": ""})
    context = {
        "page": page,
        "filters": filters,
        "stats": ExecutionCounter.objects.stats(),
        "statuses": ExecutionStatus.choices,
        "workflows": workflows,
        "filter_workflows": filter_workflows,
        "live": not request.GET.get("after") and not request.GET.get("before"),
        "page_size": PAGE_SIZE,
    }
    return render(request, "executions/list.html", context)


@require_GET
def execution_list_live(request: HttpRequest) -> JsonResponse:
    """Fresh partials for the list: the named rows after an update, or the whole first page."""
    try:
        filters = ListFilters.from_request(request)
    except BadPageInput as error:
        return JsonResponse({"error": str(error)}, status=400)
    stats_html = render_to_string(
        "executions/_stats.html", {"stats": ExecutionCounter.objects.stats()}, request
    )
    ids = [i for i in request.GET.get("ids", "").split(",") if i][:MAX_LIVE_IDS]
    if ids:
        found = _list_rows().filter(execution_id__in=ids)
        rows = [
            {
                "id": execution.execution_id,
                "startedAt": execution.started_at.isoformat(),
                "matches": filters.matches(execution),
                "html": render_to_string("executions/_row.html", {"execution": execution}),
            }
            for execution in found
        ]
        return JsonResponse({"stats": stats_html, "rows": rows})
    page_context = {"page": list_page(filters), "filters": filters}
    return JsonResponse(
        {
            "stats": stats_html,
            "body": render_to_string("executions/_rows.html", page_context),
            "pager": render_to_string("executions/_pager.html", page_context),
        }
    )


def _node_details(
    definition: dict[str, Any], nodes: Iterable[NodeExecution], finished: bool
) -> dict[str, dict[str, Any]]:
    """What the graph needs per node: a status for every defined node, details for those run.

    A node with no row is pending while the run goes on and skipped once it has ended (a branch
    not taken).
    """
    details: dict[str, dict[str, Any]] = {}
    for node in definition.get("nodes") or []:
        if isinstance(node, dict) and node.get("id"):
            details[node["id"]] = {
                "nodeId": node["id"],
                "nodeType": node.get("type", ""),
                "procedureName": node.get("procedureName", ""),
                "status": NodeStatus.SKIPPED if finished else NodeStatus.PENDING,
            }
    for node in nodes:
        details[node.node_id] = {
            "nodeId": node.node_id,
            "nodeType": node.node_type,
            "procedureName": node.procedure_name,
            "status": node.status,
            "startTime": node.started_at.isoformat() if node.started_at else None,
            "endTime": node.ended_at.isoformat() if node.ended_at else None,
            "duration": node.duration_ms,
            "input": node.input,
            "output": node.output,
            "error": node.error,
        }
    return details


def detail_context(
    execution: Execution, nodes: Sequence[NodeExecution], spans: Sequence[Span]
) -> dict[str, Any]:
    """What the detail page and its partials show, from rows already read (no queries)."""
    finished = execution.status != ExecutionStatus.RUNNING
    total_ms = trace_duration_ms(spans)
    return {
        "execution": execution,
        "node_details": _node_details(execution.definition or {}, nodes, finished),
        "span_rows": span_rows(spans),
        "axis": time_axis(total_ms),
        "trace_ms": total_ms,
        "span_count": len(spans),
    }


def detail_page_context(
    execution: Execution, nodes: Sequence[NodeExecution], spans: Sequence[Span]
) -> dict[str, Any]:
    """The partials' context plus what only the full page draws: the graph and its legend."""
    context = detail_context(execution, nodes, spans)
    context["graph"] = layout_workflow(execution.definition or {})
    context["legend"] = NodeStatus.values
    return context


def _read_rows(execution: Execution) -> tuple[list[NodeExecution], list[Span]]:
    """The execution's nodes and spans: with the execution itself, 3 queries in all."""
    nodes = list(execution.nodes.order_by("sequence", "id"))
    spans = list(Span.objects.filter(execution=execution).order_by("start_time_us", "id"))
    return nodes, spans


def _find_execution(execution_id: str) -> Execution | None:
    return Execution.objects.filter(execution_id=execution_id).first()


def _not_found(request: HttpRequest, execution_id: str) -> HttpResponse:
    # Rendered explicitly so DEBUG's technical 404 page never replaces it.
    return render(request, "executions/not_found.html", {"execution_id": execution_id}, status=404)


@require_GET
def execution_detail(request: HttpRequest, execution_id: str) -> HttpResponse:
    execution = _find_execution(execution_id)
    if execution is None:
        return _not_found(request, execution_id)
    context = detail_page_context(execution, *_read_rows(execution))
    return render(request, "executions/detail.html", context)


@require_GET
def execution_detail_live(request: HttpRequest, execution_id: str) -> JsonResponse:
    execution = _find_execution(execution_id)
    if execution is None:
        return JsonResponse({"error": f"Execution '{execution_id}' not found"}, status=404)
    context = detail_context(execution, *_read_rows(execution))
    return JsonResponse(
        {
            "status": execution.status,
            "header": render_to_string("executions/_execution_header.html", context, request),
            "nodes": context["node_details"],
            "timeline": render_to_string("executions/_timeline.html", context, request),
            "trace": render_to_string("executions/_trace.html", context, request),
        }
    )


@require_GET
def workflow_list(request: HttpRequest) -> HttpResponse:
    definitions = sorted(workflow_library().all(), key=lambda wf: wf.display_name.lower())
    cards = [
        {
            "definition": wf,
            "node_count": len(wf.nodes),
            "graph": layout_workflow(wf.to_json_dict()),
        }
        for wf in definitions
    ]
    context = {"cards": cards, "workflows": _workflow_choices()}
    return render(request, "executions/workflows.html", context)
