"""The c4c JSON API under /workflow/: thin async views over the runtime, store and serializers.

Views are async so daphne never queues API calls behind Django's single sync thread: reads run on
asgiref's thread pool, runs on the bounded run pool (dispatch.py). These are API endpoints for
non-browser clients (curl, the c4c CLI) and use no cookies, so instead of CSRF tokens every POST
must carry a JSON content type (json_only).

They are operations of a django-ninja Router (executions.http builds the API): ninja routes them
and describes them in /openapi.json - request bodies and query parameters generated from the
models in `requests`, responses from `schemas` - but each view still parses its own request and
returns its response as built. Ninja's own parsing would change the 400 messages clients rely
on; as it is, ninja adds one call (~30 us) per request and the bytes on the wire are unchanged.
"""

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps
from inspect import iscoroutinefunction
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from ninja import Router

from workflows.definitions import WorkflowDefinition
from workflows.library import workflow_library
from workflows.validation import parse_definition
from workflows.waits import SIGNAL_NAME

from .. import bulk, dispatch, runtime, secrets, store
from ..filters import search
from ..limits import JsonRejected, load_json
from ..models import (
    BulkAction,
    Execution,
    ExecutionCounter,
    ExecutionStatus,
    NodeLog,
)
from ..payloads import bounded
from ..serializers import (
    execution_json,
    list_json,
    node_log_line,
    run_result,
    to_json,
    workflow_summary,
)
from .bodies import json_object
from .bulk_schemas import BulkAccepted, BulkChanged, BulkCount, BulkProgress
from .log_schemas import NodeLogs, NodeLogsQuery
from .openapi import json_body, query_parameters
from .requests import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_KEY_MAX_CHARS,
    BadRequest,
    BulkCountQuery,
    BulkRequest,
    ExecuteRequest,
    ListQuery,
    RerunRequest,
    idempotency_key,
    parse,
)
from .schemas import (
    Accepted,
    DefinitionBody,
    ErrorBody,
    ExecutionBody,
    ExecutionList,
    RerunAccepted,
    RunResult,
    SignalAccepted,
    ValidationResult,
    WorkflowList,
)

View = Callable[..., Any]

REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": False,
    "description": "Any client-chosen token (a UUID, say): a request sent again with the same "
    "key answers with the run it started instead of starting a second one.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": IDEMPOTENCY_KEY_MAX_CHARS,
        "pattern": "^[!-~]([ -~]*[!-~])?$",
    },
}


def _error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _json_body(request: HttpRequest) -> Any:
    try:
        return load_json(request.body or b"{}")
    except JsonRejected as exc:
        raise BadRequest(exc.message, exc.errors) from exc


def _json_object(request: HttpRequest) -> dict[str, Any]:
    body = _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest(f"Request body must be a JSON object, not {type(body).__name__}")
    return body


class NotFound(Exception):
    pass


def _resolve(body: ExecuteRequest) -> WorkflowDefinition:
    """The definition to run: the library's by id, or an inline one after full validation."""
    if body.workflow is not None and body.workflow_id is not None:
        raise BadRequest("Give either workflowId or workflow, not both")
    if body.workflow is not None:
        definition, errors = parse_definition(body.workflow)
        if errors or definition is None:
            raise BadRequest("Invalid workflow definition", errors)
        return definition
    if body.workflow_id is None:
        raise BadRequest("Request needs workflowId or workflow")
    definition = workflow_library().get(body.workflow_id)
    if definition is None:
        raise NotFound(f"Workflow '{body.workflow_id}' not found")
    return definition


def _bad(exc: BadRequest) -> JsonResponse:
    return _error(exc.message, 400, errors=exc.errors)


def json_only(view: View) -> View:
    """A JSON content type only: the API's defence against cross-site requests.

    A page on another site can make a browser POST a form or text/plain here, but not
    application/json without a CORS preflight, which this server never grants; API clients send
    JSON anyway. So the check stands in for CSRF tokens, which API clients do not have.
    """

    def refusal(request: HttpRequest) -> JsonResponse | None:
        if request.content_type == "application/json":
            return None
        given = request.content_type or "none"
        return _error(f"Content-Type must be application/json, not {given}", 415)

    if iscoroutinefunction(view):

        @wraps(view)
        async def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            return refusal(request) or await view(request, *args, **kwargs)

    else:

        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            return refusal(request) or view(request, *args, **kwargs)

    return checked


router = Router(tags=["workflow"])


def _unavailable(exc: Exception) -> JsonResponse:
    """503 for a full run pool or a broker that refused or timed out: nothing was started, so
    the same request may be sent again (with the same executionId or Idempotency-Key)."""
    response = _error(str(exc), 503)
    response["Retry-After"] = "1"
    return response


def _accepted(execution: Execution, status: int, **extra: Any) -> JsonResponse:
    """The Accepted body for a run that goes on without the client, with its Location."""
    location = reverse("executions-api:detail", args=[execution.execution_id])
    body = {
        "executionId": execution.execution_id,
        "workflowId": execution.workflow_id,
        "status": execution.status,
        "location": location,
        **extra,
    }
    response = JsonResponse(body, status=status)
    response["Location"] = location
    return response


def _other_request(
    execution: Execution, body: ExecuteRequest, definition: WorkflowDefinition
) -> str | None:
    """What differs between the request that started `execution` and this one, or None.

    Compared as the store keeps a run: a library workflow by its id (its code may have changed
    since), an inline one by its definition, and the input as it was stored - secrets unsealed
    (executions.secrets), since the rows hold them redacted.
    """
    if body.run_id is not None and body.run_id != execution.execution_id:
        return f"it named the run '{execution.execution_id}', not '{body.run_id}'"
    try:
        sealed = secrets.unsealed_run(execution)
    except secrets.SealedSecretsUnreadable as exc:
        return str(exc)
    if body.workflow is None:
        if execution.workflow_id != definition.id:
            return f"it ran workflow '{execution.workflow_id}', not '{definition.id}'"
    elif sealed.get("definition", execution.definition) != definition.to_json_dict():
        return "it ran another inline workflow definition"
    if bounded(sealed.get("input", execution.input)) != bounded(body.input):
        return "it had another input"
    return None


def _replay(
    key: str, body: ExecuteRequest, definition: WorkflowDefinition, run_async: bool
) -> HttpResponse | None:
    """The answer for a key that already started a run, or None when it started none.

    The same request again gets that run instead of a second one (Idempotent-Replayed: true):
    its result (200) when the client waits for it and it has ended, else where to read it (200
    for an async request, 202 for a waiting one whose run goes on). A different request under the
    same key is a client's mistake: 422, and nothing runs.
    """
    execution = Execution.objects.by_idempotency_key(key)
    if execution is None:
        return None
    problem = _other_request(execution, body, definition)
    if problem is not None:
        return _error(
            f"{IDEMPOTENCY_KEY_HEADER} '{key}' started execution '{execution.execution_id}' "
            f"for another request: {problem}",
            422,
        )
    rows = None if run_async else Execution.objects.detail(execution.execution_id)
    if rows is None or rows.execution.status == ExecutionStatus.RUNNING:
        response: HttpResponse = _accepted(execution, 200 if run_async else 202)
    else:
        response = _json(to_json(run_result(rows.execution, rows.spans)))
    response[REPLAYED_HEADER] = "true"
    return response


@router.post(
    "/workflow/execute",
    response={
        200: RunResult | Accepted,
        202: Accepted,
        400: ErrorBody,
        404: ErrorBody,
        409: ErrorBody,
        415: ErrorBody,
        422: ErrorBody,
        503: ErrorBody,
    },
    url_name="execute",
    summary="Run a workflow (by id or inline); 202 at once with async or Prefer: respond-async",
    description="With an Idempotency-Key, the same request again answers with the run that key "
    "started (Idempotent-Replayed: true): 200 with its result once it has ended, or where to "
    "read it (200 async, 202 while a waiting client's run goes on). The key with another "
    "request: 422. A full run pool or a Celery broker that refuses or does not answer within a "
    "few seconds: 503 with Retry-After, nothing started; send the same request again.",
    openapi_extra={**json_body(ExecuteRequest), "parameters": [IDEMPOTENCY_PARAMETER]},
)
@json_only
async def execute(request: HttpRequest) -> HttpResponse:
    try:
        data = _json_object(request)
        body: ExecuteRequest = parse(ExecuteRequest, data)
        definition = _resolve(body)
        key = idempotency_key(request.headers.get(IDEMPOTENCY_KEY_HEADER))
    except BadRequest as exc:
        return _bad(exc)
    except NotFound as exc:
        return _error(str(exc), 404)
    run_async = body.run_async or "respond-async" in request.headers.get("Prefer", "")
    replay = sync_to_async(_replay, thread_sensitive=False)
    if key is not None and (replayed := await replay(key, body, definition, run_async)):
        return replayed
    try:
        if run_async:
            execution = await dispatch.start_in_background(
                definition=definition,
                input=body.input,
                execution_id=body.run_id,
                idempotency_key=key,
            )
        else:
            result = await dispatch.execute_now(
                definition=definition,
                input=body.input,
                execution_id=body.run_id,
                idempotency_key=key,
            )
    except store.DuplicateExecution as exc:
        # Another request with the same key started its run first: answer with that run.
        if key is not None and (replayed := await replay(key, body, definition, run_async)):
            return replayed
        return _error(str(exc), 409)
    except dispatch.QueueFull as exc:
        return _unavailable(exc)
    ignored = body.ignored_keys
    if not run_async:
        if ignored:
            # The result's text is the workflow.result event's: extended, not encoded again.
            result = f'{result[:-1]},"ignoredKeys":{json.dumps(ignored)}}}'
        return HttpResponse(result, content_type="application/json")
    return _accepted(execution, 202, **({"ignoredKeys": ignored} if ignored else {}))


# List reads get a thread of their own (C4C_LIST_READS, default 1) instead of the shared pool
# every sync call of every request runs on, and before each page that thread rests as long as it
# computed the one before: however many clients page through history at once, they wait their
# turn in line and list reads hold at most about half of the process's Python time (the GIL),
# the runs the rest (BENCHMARKS.md, "Reading history while runs go on"). A read that finds the
# thread rested answers at once.
DEFAULT_LIST_READS = 1
_list_readers: ThreadPoolExecutor | None = None
_list_readers_lock = threading.Lock()
_list_reader_rest = threading.local()


def _list_reader() -> ThreadPoolExecutor:
    global _list_readers
    with _list_readers_lock:
        if _list_readers is None:
            threads = int(getattr(settings, "C4C_LIST_READS", DEFAULT_LIST_READS))
            _list_readers = ThreadPoolExecutor(threads, thread_name_prefix="c4c-list")
        return _list_readers


def _read_listing(query: ListQuery) -> bytes:
    """_listing on a list thread, once it has rested as long as its last read computed. As the
    run pool does, an SQLite connection is kept for the thread's next read and any other closed
    (a PostgreSQL session per idle thread is waste)."""
    rested = getattr(_list_reader_rest, "until", 0.0) - time.monotonic()
    if rested > 0:
        time.sleep(rested)
    computed_from = time.thread_time()
    try:
        return _listing(query)
    finally:
        if connection.vendor == "sqlite":
            close_old_connections()
        else:
            connections.close_all()
        _list_reader_rest.until = time.monotonic() + time.thread_time() - computed_from


def _listing(query: ListQuery) -> bytes:
    found = search(
        query.filters(),
        limit=query.limit,
        shape=query.shape(),
        after=query.position(),
        offset=query.offset,
    )
    page = found.page
    body = list_json(
        page.rows,
        query.shape(),
        ExecutionCounter.objects.stats(),
        page.older or found.stopped_cursor,
    )
    if found.stopped is not None and not body.endswith(b'"cutShort":true}'):
        # The rows it checked held no more matches: nextCursor goes on from the last checked.
        stopped = {"checkedRuns": found.scanned, "message": found.message}
        body = body[:-1] + b',"searchStopped":' + to_json(stopped) + b"}"
    return body


def _json(content: bytes) -> HttpResponse:
    return HttpResponse(content, content_type="application/json")


# Query parameters that may be given more than once: every value counts.
_REPEATED = frozenset({"status", "where", "executionId"})


def _query_params(request: HttpRequest) -> dict[str, Any]:
    """The query string for a request model: repeatable names as lists, others' last value."""
    return {
        name: values if name in _REPEATED else values[-1] for name, values in request.GET.lists()
    }


SEARCH_DESCRIPTION = (
    "Filters (all AND-ed): `status`, `workflowId`, `startedAfter`/`startedBefore`, "
    "`minDuration`/`maxDuration` (ms) and `where`, conditions on values inside the input or "
    'outputs: `where=input.orderId = 4711`, `where=output.customer.country = "DE"` (syntax '
    "under the `where` parameter). On PostgreSQL `=` conditions use GIN indexes. A condition no "
    "index serves (a duration; any `where` on SQLite; `!=`, `<`, ... on PostgreSQL) is checked "
    "row by row over at most C4C_SEARCH_SCAN_ROWS runs (default 10,000) per page: when those "
    "hold no more matches the answer has `searchStopped` {checkedRuns, message} and a "
    "`nextCursor` that goes on from the last run checked."
)


@router.get(
    "/workflow/executions",
    response={200: ExecutionList, 400: ErrorBody},
    url_name="list",
    summary="Executions, newest first, with stats and a cursor to the next page",
    description=SEARCH_DESCRIPTION,
    openapi_extra=query_parameters(ListQuery),
)
async def executions(request: HttpRequest) -> HttpResponse:
    try:
        query: ListQuery = parse(ListQuery, _query_params(request))
        query.filters()
    except BadRequest as exc:
        return _bad(exc)
    read = sync_to_async(_read_listing, thread_sensitive=False, executor=_list_reader())
    return _json(await read(query))


def _bulk_refused(exc: bulk.BulkRefused) -> JsonResponse:
    if isinstance(exc, bulk.Changed):
        return _error(exc.message, 409, count=exc.counted.count, expect=exc.counted.token)
    return _error(exc.message, exc.status)


def _bulk_count(query: BulkCountQuery) -> dict[str, Any]:
    return bulk.count(query.action, query.selection()).as_json()


# Registered before /workflow/executions/{execution_id}: the first path that matches is routed.
@router.get(
    "/workflow/executions/bulk/count",
    response={200: BulkCount, 400: ErrorBody, 422: ErrorBody},
    url_name="bulk-count",
    summary="Count the runs a bulk cancel or re-run would take, and the token to confirm it",
    description="The runs are those the filter parameters select (as GET /workflow/executions "
    "reads them), or the `executionId`s given. Send `expect` back with POST "
    "/workflow/executions/bulk. 422: more runs than one action takes (C4C_BULK_MAX_CANCELS, "
    "C4C_BULK_MAX_RERUNS), or a filter that would check more than C4C_SEARCH_SCAN_ROWS runs row "
    "by row.",
    openapi_extra=query_parameters(BulkCountQuery),
)
async def bulk_count(request: HttpRequest) -> HttpResponse:
    try:
        query: BulkCountQuery = parse(BulkCountQuery, _query_params(request))
        query.selection()
    except BadRequest as exc:
        return _bad(exc)
    try:
        counted = await sync_to_async(_bulk_count, thread_sensitive=False)(query)
    except bulk.BulkRefused as exc:
        return _bulk_refused(exc)
    return JsonResponse(counted)


def _bulk_start(body: BulkRequest) -> BulkAction:
    return bulk.start(body.action, body.selection(), body.expect)


@router.post(
    "/workflow/executions/bulk",
    response={
        202: BulkAccepted,
        400: ErrorBody,
        409: BulkChanged,
        415: ErrorBody,
        422: ErrorBody,
    },
    url_name="bulk",
    summary="Cancel or re-run many runs in the background (not in c4c)",
    description="Acts on exactly the runs GET /workflow/executions/bulk/count counted for the "
    "same action and filter (or executionIds): if any run entered or left that set since, 409 "
    "with the new `count` and `expect`, and nothing is done. Otherwise 202 at once; each run "
    "goes through the same cancel or re-run as the single endpoints (a cancel skips runs that "
    "ended, a re-run runs still going), and GET its `location` for progress.",
    openapi_extra=json_body(BulkRequest),
)
@json_only
async def bulk_start(request: HttpRequest) -> HttpResponse:
    try:
        body: BulkRequest = parse(BulkRequest, _json_object(request))
        body.selection()
    except BadRequest as exc:
        return _bad(exc)
    try:
        job = await sync_to_async(_bulk_start, thread_sensitive=False)(body)
    except bulk.BulkRefused as exc:
        return _bulk_refused(exc)
    location = reverse("executions-api:bulk-progress", args=[job.bulk_id])
    answer = {"bulkId": job.bulk_id, "count": job.total, "status": job.status}
    response = JsonResponse({**answer, "location": location}, status=202)
    response["Location"] = location
    return response


@router.get(
    "/workflow/executions/bulk/{bulk_id}",
    response={200: BulkProgress, 404: ErrorBody},
    url_name="bulk-progress",
    summary="How far a bulk cancel or re-run got",
)
async def bulk_progress(request: HttpRequest, bulk_id: str) -> HttpResponse:
    job = await sync_to_async(bulk.progress, thread_sensitive=False)(bulk_id)
    if job is None:
        return _error(f"Bulk action '{bulk_id}' not found", 404)
    return JsonResponse(bulk.as_json(job))


def _execution_json(execution_id: str) -> bytes | None:
    rows = Execution.objects.detail(execution_id)
    if rows is None:
        return None
    return execution_json(rows.execution, rows.nodes, rows.spans)


@router.get(
    "/workflow/executions/{execution_id}",
    response={200: ExecutionBody, 404: ErrorBody},
    url_name="detail",
    summary="One execution with its nodes and spans",
)
async def execution(request: HttpRequest, execution_id: str) -> HttpResponse:
    content = await sync_to_async(_execution_json, thread_sensitive=False)(execution_id)
    if content is None:
        return _error(f"Execution '{execution_id}' not found", 404)
    return _json(content)


def _node_logs(execution_id: str, node_id: str, query: NodeLogsQuery) -> dict[str, Any] | str:
    """The body of GET .../nodes/<nodeId>/logs, or why there is none (404)."""
    found = Execution.objects.row(execution_id)
    if found is None:
        return f"Execution '{execution_id}' not found"
    lines = NodeLog.objects.of_node(found, node_id, after=query.after, limit=query.limit + 1)
    if not lines:
        nodes = found.definition.get("nodes") if isinstance(found.definition, dict) else None
        if not any(isinstance(n, dict) and n.get("id") == node_id for n in nodes or ()):
            return f"Execution '{execution_id}' has no node '{node_id}'"
    more = len(lines) > query.limit
    lines = lines[: query.limit]
    return {
        "executionId": execution_id,
        "nodeId": node_id,
        "lines": [node_log_line(line, visit=line.node.visit) for line in lines],
        "nextAfter": lines[-1].pk if more else None,
    }


@router.get(
    "/workflow/executions/{execution_id}/nodes/{node_id}/logs",
    response={200: NodeLogs, 400: ErrorBody, 404: ErrorBody},
    url_name="node-logs",
    summary="What one node's procedure logged, every run and attempt of it (not in c4c)",
    description="Lines oldest first (by `id`), each with its visit, attempt, level, logger, "
    "time and message (secrets redacted). An attempt keeps C4C_MAX_LOG_LINES lines and "
    "C4C_MAX_LOG_BYTES bytes; its last line then says how many more it dropped (`dropped`). "
    "Lines arrive live as node.log events on the execution's stream. 404: no such execution, "
    "or no such node in its definition.",
    openapi_extra=query_parameters(NodeLogsQuery),
)
async def node_logs(request: HttpRequest, execution_id: str, node_id: str) -> HttpResponse:
    try:
        query: NodeLogsQuery = parse(NodeLogsQuery, {k: v[-1] for k, v in request.GET.lists()})
    except BadRequest as exc:
        return _bad(exc)
    body = await sync_to_async(_node_logs, thread_sensitive=False)(execution_id, node_id, query)
    if isinstance(body, str):
        return _error(body, 404)
    return JsonResponse(body)


def _rerun(execution_id: str, from_node: str | None) -> Execution:
    """A new run of a finished execution's stored definition and input (runtime.rerun).

    Refused while the original runs (TransitionError): the outputs a re-run reuses are not final
    yet, and both runs would do the same work at once. Cancel it first, or wait.
    """
    found = Execution.objects.row(execution_id)
    if found is None:
        raise store.ExecutionNotFound(execution_id)
    if found.status == ExecutionStatus.RUNNING:
        raise store.TransitionError(
            f"Execution '{execution_id}' is still running; cancel it or wait for it to end "
            "before re-running it"
        )
    return runtime.rerun(execution_id=execution_id, from_node=from_node)


@router.post(
    "/workflow/executions/{execution_id}/rerun",
    response={
        202: RerunAccepted,
        400: ErrorBody,
        404: ErrorBody,
        409: ErrorBody,
        415: ErrorBody,
        503: ErrorBody,
    },
    url_name="rerun",
    summary="Run a finished execution again, from the start or from one node (not in c4c)",
    description="A new execution of the original's stored definition and input (so it works "
    "after the code changed), answered at once like an async execute. With fromNode, the "
    "outputs of the nodes before it are reused (marked `reused`, not run). 400: fromNode is not "
    "a node the original reached; 404: no such execution; 409: the original is still running.",
    openapi_extra=json_body(RerunRequest, required=False),
)
@json_only
async def rerun(request: HttpRequest, execution_id: str) -> HttpResponse:
    try:
        body: RerunRequest = parse(RerunRequest, json_object(request, empty={}))
    except BadRequest as exc:
        return _bad(exc)
    try:
        execution = await sync_to_async(_rerun, thread_sensitive=False)(
            execution_id, body.from_node
        )
    except store.ExecutionNotFound as exc:
        return _error(str(exc), 404)
    except store.TransitionError as exc:
        return _error(str(exc), 409)
    except dispatch.QueueFull as exc:
        return _unavailable(exc)
    except ValueError as exc:
        return _error(str(exc), 400)
    extra = {"rerunOf": execution_id}
    if body.from_node is not None:
        extra["rerunFromNode"] = body.from_node
    return _accepted(execution, 202, **extra)


def _cancel(execution_id: str) -> bytes:
    runtime.cancel(execution_id)
    return _execution_json(execution_id) or b"{}"


@router.post(
    "/workflow/executions/{execution_id}/cancel",
    response={200: ExecutionBody, 404: ErrorBody, 409: ErrorBody, 415: ErrorBody},
    url_name="cancel",
    summary="Cancel a running or queued execution (not in c4c)",
    description="Stops the run's work (a queued run never starts) and answers with the "
    "execution, now cancelled. 409: it has already ended.",
)
@json_only
async def cancel(request: HttpRequest, execution_id: str) -> HttpResponse:
    """Not in c4c: stops a running or queued execution."""
    try:
        content = await sync_to_async(_cancel, thread_sensitive=False)(execution_id)
    except store.ExecutionNotFound as exc:
        return _error(str(exc), 404)
    except store.TransitionError as exc:
        return _error(str(exc), 409)
    return _json(content)


def _signal(execution_id: str, name: str, payload: Any, sent_by: str) -> dict[str, Any]:
    if not SIGNAL_NAME.fullmatch(name):
        raise BadRequest(f"Signal name '{name[:100]}' must be 1-100 letters, digits or _ . : -")
    waiting = runtime.signal(execution_id=execution_id, name=name, payload=payload, sent_by=sent_by)
    return {"executionId": execution_id, "signal": name, "woke": waiting}


@router.post(
    "/workflow/executions/{execution_id}/signals/{name}",
    response={
        202: SignalAccepted,
        400: ErrorBody,
        404: ErrorBody,
        409: ErrorBody,
        415: ErrorBody,
    },
    url_name="signal",
    summary="Send a named signal to an execution (not in c4c)",
    description="The JSON object sent (none: {}) becomes the output of the wait node "
    "that waits for this name. A signal sent before the node waits is kept until it does; each "
    "wait node takes one, oldest first. `woke`: the run was waiting and is due now. 404: no "
    "such execution; 409: it has ended.",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
@json_only
async def send_signal(request: HttpRequest, execution_id: str, name: str) -> HttpResponse:
    try:
        payload = json_object(request, empty={})
        user = getattr(request, "user", None)
        sent_by = str(user.get_username()) if user is not None and user.is_authenticated else ""
        body = await sync_to_async(_signal, thread_sensitive=False)(
            execution_id, name, payload, sent_by
        )
    except BadRequest as exc:
        return _bad(exc)
    except store.ExecutionNotFound as exc:
        return _error(str(exc), 404)
    except store.TransitionError as exc:
        return _error(str(exc), 409)
    return JsonResponse(body, status=202)


@router.get(
    "/workflow/definitions",
    response=WorkflowList,
    url_name="definitions",
    summary="Every workflow this server can run by id",
)
def definitions(request: HttpRequest) -> JsonResponse:
    rows = sorted(workflow_library().all(), key=lambda d: d.id)
    return JsonResponse({"workflows": [workflow_summary(d) for d in rows]})


@router.get(
    "/workflow/definitions/{workflow_id}",
    response={200: DefinitionBody, 404: ErrorBody},
    url_name="definition",
    summary="One workflow definition as c4c's JSON",
)
def definition(request: HttpRequest, workflow_id: str) -> JsonResponse:
    found = workflow_library().get(workflow_id)
    if found is None:
        return _error(f"Workflow '{workflow_id}' not found", 404)
    return JsonResponse({"definition": found.to_json_dict()})


@router.post(
    "/workflow/validate",
    response={200: ValidationResult, 400: ErrorBody, 415: ErrorBody},
    url_name="validate",
    summary="Check a definition; every problem at once",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": 'A definition, or {"workflow": definition}.',
        }
    },
)
@json_only
def validate(request: HttpRequest) -> JsonResponse:
    """Body: a definition, or {"workflow": definition} as the execute endpoint takes it."""
    try:
        body = _json_object(request)
    except BadRequest as exc:
        return _bad(exc)
    data = body["workflow"] if set(body) == {"workflow"} else body
    _, errors = parse_definition(data)
    return JsonResponse({"valid": not errors, "errors": errors})
