"""Dashboard pages: the executions list, one execution, the workflow catalogue.

Each page renders partial templates on first load; the `*_live` views render the same partials
as JSON so the page scripts can swap them in when an SSE event says something changed. Every
read goes through the executions core's QuerySet methods (`page`, `detail`, `stats`), and a
stored execution that cannot be shown renders as a notice saying why, never as a 500.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from workflows.library import workflow_library

from ..cursors import BadPosition, decode_cursor
from ..filters import FilterError, Search, as_json, as_params, describe, from_params, search
from ..models import (
    Execution,
    ExecutionCounter,
    ExecutionFilters,
    ExecutionRows,
    ExecutionStatus,
    NodeStatus,
)
from ..serializers import NOT_JSON_NUMBER, NOT_UNICODE, graph_nodes, stored_problem, to_json
from .compare import compare_runs
from .graph import drawing_problem, layout_workflow
from .timeline import span_rows, time_axis, trace_duration_ms
from .waits import approval, parked_waits, wait_nodes

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
# What sending a signal needs (accounts.policy.EXECUTE; executions imports no accounts module).
SIGNAL_PERMISSION = "executions.execute_workflow"
MAX_LIVE_IDS = 50


class BadPageInput(ValueError):
    """A query parameter the page cannot use; shown to the user as a 400 naming the parameter."""


@dataclass(frozen=True, slots=True)
class ListFilters:
    """The list page's filters as its form sends them, kept as typed to fill the form again.

    What they select is read by executions.filters (the API's parser: the same names, but
    `workflow` for workflowId), so the page's URL is a shareable search; FilterError names what
    it cannot read. Times without an offset (a date picker's) are UTC.
    """

    status: str
    workflow: str
    started_after: str = ""
    started_before: str = ""
    min_duration: str = ""
    max_duration: str = ""
    where: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> "ListFilters":
        def value(name: str) -> str:
            return request.GET.get(name, "").strip()

        made = cls(
            status=value("status"),
            workflow=value("workflow"),
            started_after=value("startedAfter"),
            started_before=value("startedBefore"),
            min_duration=value("minDuration"),
            max_duration=value("maxDuration"),
            where=" and ".join(w.strip() for w in request.GET.getlist("where") if w.strip()),
        )
        made.selection()
        return made

    def _pairs(self) -> tuple[tuple[str, str], ...]:
        return (
            ("status", self.status),
            ("workflow", self.workflow),
            ("startedAfter", self.started_after),
            ("startedBefore", self.started_before),
            ("minDuration", self.min_duration),
            ("maxDuration", self.max_duration),
            ("where", self.where),
        )

    def selection(self) -> ExecutionFilters:
        params = {name: [value] for name, value in self._pairs() if value}
        return from_params(params, workflow_param="workflow")

    def query(self) -> str:
        """The filters as a query string, to carry them across pages and live refreshes."""
        return urlencode({name: value for name, value in self._pairs() if value})

    @property
    def narrowed(self) -> bool:
        return any(value for _, value in self._pairs())

    @property
    def advanced(self) -> bool:
        """Whether a time or duration is set (their fields then start shown)."""
        hidden = ("startedAfter", "startedBefore", "minDuration", "maxDuration")
        return any(value for name, value in self._pairs() if name in hidden)

    def picker(self, name: str) -> str:
        """A time as a datetime-local input shows it (UTC, no offset)."""
        selected = self.selection()
        moment = selected.started_after if name == "after" else selected.started_before
        return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else ""

    @property
    def after_picker(self) -> str:
        return self.picker("after")

    @property
    def before_picker(self) -> str:
        return self.picker("before")


def _search(request: HttpRequest, filters: ListFilters) -> Search:
    """The page of rows the request's `after` or `before` cursor asks for (the first page
    without one), its row-by-row checks bounded (executions.filters.search); BadPosition when a
    cursor is not one this server made."""
    after, before = request.GET.get("after", ""), request.GET.get("before", "")
    return search(
        filters.selection(),
        limit=PAGE_SIZE,
        shape="row",
        after=decode_cursor(after, "after") if after else None,
        before=decode_cursor(before, "before") if before else None,
    )


def _bad_input(request: HttpRequest, error: ValueError) -> HttpResponse:
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
        found = _search(request, filters)
    except (FilterError, BadPosition) as error:
        return _bad_input(request, error)
    selection = filters.selection()
    workflows = _workflow_choices()
    filter_workflows = list(workflows)
    if filters.workflow and all(wf["id"] != filters.workflow for wf in workflows):
        # Executions of a workflow no longer in the code can still be filtered on.
        filter_workflows.append({"id": filters.workflow, "name": filters.workflow, "version": ""})
    context = {
        "page": found.page,
        "search": found,
        "searching_newer": bool(request.GET.get("before")),
        "filters": filters,
        "selection_words": describe(selection),
        # What the bulk actions send: the count's query string and the POST's `filter`.
        "bulk_query": urlencode(as_params(selection)),
        "bulk_filter": json.dumps(as_json(selection)),
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
    except FilterError as error:
        return JsonResponse({"error": str(error)}, status=400)
    stats_html = render_to_string(
        "executions/_stats.html", {"stats": ExecutionCounter.objects.stats()}, request
    )
    ids = tuple(i for i in request.GET.get("ids", "").split(",") if i)[:MAX_LIVE_IDS]
    if ids:
        selection = filters.selection()
        named = ExecutionFilters(execution_ids=ids)
        found = Execution.objects.page(named, limit=len(ids), shape="row").executions
        if selection.values:
            Execution.objects.load_values(found)
        rows = [
            {
                "id": execution.execution_id,
                "matches": selection.matches(execution),
                "html": render_to_string("executions/_row.html", {"execution": execution}),
            }
            for execution in found
        ]
        return JsonResponse({"stats": stats_html, "rows": rows})
    first = search(filters.selection(), limit=PAGE_SIZE, shape="row")
    page_context = {"page": first.page, "search": first, "filters": filters}
    return JsonResponse(
        {
            "stats": stats_html,
            "body": render_to_string("executions/_rows.html", page_context),
            "pager": render_to_string("executions/_pager.html", page_context),
        }
    )


def may_signal(request: HttpRequest) -> bool:
    """Whether the page offers Approve / Reject and Send signal: to whoever the API lets send a
    signal (execute_workflow, accounts.policy), to anyone when sign-in is off."""
    if not getattr(settings, "C4C_REQUIRE_AUTH", False):
        return True
    user = getattr(request, "user", None)
    return user is not None and user.has_perm(SIGNAL_PERMISSION)


def detail_context(rows: ExecutionRows, *, signals: bool = False) -> dict[str, Any]:
    """What the detail page and its partials show, from rows already read (no queries);
    `signals`: whether to offer the run's signals (may_signal)."""
    execution = rows.execution
    finished = execution.status not in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING)
    total_ms = trace_duration_ms(rows.spans)
    waits = parked_waits(execution.definition, rows.nodes)
    return {
        "execution": execution,
        "going_on": not finished,
        "waits": waits,
        "approval": approval(waits),
        "may_signal": signals,
        # The foreign key's column is the original's execution_id: no query to name it.
        "rerun_of": execution.rerun_of_id,
        "rerun_from_node": execution.rerun_from_node,
        # Annotated by with_previous_run() where the page reads the execution: no query here.
        "previous_run": getattr(execution, "previous_run_id", None),
        "node_details": graph_nodes(execution.definition, rows.nodes, finished=finished),
        "span_rows": span_rows(rows.spans),
        "axis": time_axis(total_ms),
        "trace_ms": total_ms,
        "span_count": len(rows.spans),
    }


def detail_page_context(rows: ExecutionRows, *, signals: bool = False) -> dict[str, Any]:
    """The partials' context plus what only the full page draws: the graph, its legend and the
    wait nodes' configs (for the node panel)."""
    context = detail_context(rows, signals=signals)
    definition = rows.execution.definition
    context["wait_nodes"] = wait_nodes(definition)
    context["graph_problem"] = drawing_problem(definition)
    context["graph"] = None if context["graph_problem"] else layout_workflow(definition)
    context["legend"] = NodeStatus.values
    return context


def _cannot_show_context(execution: Execution, reason: str) -> dict[str, Any]:
    """The context of an execution shown only by its identity, status and times."""
    return {"execution": execution, "cannot_show": reason, "span_count": 0}


def _unrenderable(execution: Execution, error: ValueError) -> str:
    """The reason for a page that failed to encode, logged: a stored row no page can hold."""
    logger.warning("Execution %s cannot be shown", execution.execution_id, exc_info=error)
    return NOT_UNICODE if isinstance(error, UnicodeEncodeError) else NOT_JSON_NUMBER


def _not_found(request: HttpRequest, execution_id: str) -> HttpResponse:
    # Rendered explicitly so DEBUG's technical 404 page never replaces it.
    return render(request, "executions/not_found.html", {"execution_id": execution_id}, status=404)


@require_GET
def execution_detail(request: HttpRequest, execution_id: str) -> HttpResponse:
    rows = Execution.objects.with_previous_run().detail(execution_id)
    if rows is None:
        return _not_found(request, execution_id)
    reason = stored_problem(rows.execution)
    if reason is None:
        try:
            context = detail_page_context(rows, signals=may_signal(request))
            # The page embeds node_details as escaped JSON, which never fails: check it as the
            # live partials send it, so the page and its refreshes agree.
            to_json(context["node_details"])
            return render(request, "executions/detail.html", context)
        except ValueError as error:  # text no response can carry
            reason = _unrenderable(rows.execution, error)
    context = _cannot_show_context(rows.execution, reason)
    return render(request, "executions/detail.html", context)


def _live_parts(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """The detail page's partials as JSON; ValueError if their text cannot be encoded."""
    execution = context["execution"]
    parts = {"status": execution.status, "nodes": context.get("node_details", {})}
    for name, template in (
        ("header", "executions/_execution_header.html"),
        ("actions", "executions/_execution_actions.html"),
        ("timeline", "executions/_timeline.html"),
        ("trace", "executions/_trace.html"),
    ):
        parts[name] = render_to_string(template, context, request)
    if "cannot_show" in context:
        parts["cannotBeShown"] = context["cannot_show"]
    return HttpResponse(to_json(parts), content_type="application/json")


@require_GET
def execution_detail_live(request: HttpRequest, execution_id: str) -> HttpResponse:
    rows = Execution.objects.with_previous_run().detail(execution_id)
    if rows is None:
        return JsonResponse({"error": f"Execution '{execution_id}' not found"}, status=404)
    reason = stored_problem(rows.execution)
    if reason is None:
        try:
            return _live_parts(request, detail_context(rows, signals=may_signal(request)))
        except ValueError as error:
            reason = _unrenderable(rows.execution, error)
    return _live_parts(request, _cannot_show_context(rows.execution, reason))


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


@require_GET
def execution_compare(request: HttpRequest) -> HttpResponse:
    """Two executions side by side (`?a=<executionId>&b=<executionId>`; a run with itself too).

    400 when either id is missing, 404 naming the first that does not exist; a stored run that
    cannot be shown makes the page say so and link both runs' own pages, as the detail page does.
    """
    ids = {name: request.GET.get(name, "").strip() for name in ("a", "b")}
    missing = [name for name, value in ids.items() if not value]
    if missing:
        names = " and ".join(missing)
        return _bad_input(
            request,
            BadPageInput(
                f"Name the two executions to compare as ?a=<executionId>&b=<executionId>: "
                f"{names} {'is' if len(missing) == 1 else 'are'} missing."
            ),
        )
    a = Execution.objects.with_previous_run().detail(ids["a"])
    if a is None:
        return _not_found(request, ids["a"])
    b = a if ids["b"] == ids["a"] else Execution.objects.with_previous_run().detail(ids["b"])
    if b is None:
        return _not_found(request, ids["b"])
    context: dict[str, Any] = {"run_a": a.execution, "run_b": b.execution}
    reason = next(
        (
            f"run {letter} ({rows.execution.execution_id}) cannot be shown: {why}"
            for letter, rows in (("A", a), ("B", b))
            if (why := stored_problem(rows.execution))
        ),
        None,
    )
    if reason is None:
        try:
            context["comparison"] = compare_runs(a, b, now=timezone.now())
            context["previous_of_a"] = getattr(a.execution, "previous_run_id", None)
            return render(request, "executions/compare.html", context)
        except ValueError as error:  # text no response can carry
            reason = f"a stored value cannot be shown: {_unrenderable(a.execution, error)}"
    context["cannot_show"] = reason
    return render(request, "executions/compare.html", context)
