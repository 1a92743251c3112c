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
from collections.abc import Callable
from functools import wraps
from inspect import iscoroutinefunction
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from ninja import Router

from workflows.definitions import WorkflowDefinition
from workflows.library import workflow_library
from workflows.validation import parse_definition

from .. import dispatch, runtime, store
from ..limits import JsonRejected, load_json
from ..models import Execution, ExecutionCounter
from ..serializers import execution_detail, execution_summary, showable_json, workflow_summary
from .openapi import json_body, query_parameters
from .requests import BadRequest, ExecuteRequest, ListQuery, parse
from .schemas import (
    Accepted,
    DefinitionBody,
    ErrorBody,
    ExecutionBody,
    ExecutionList,
    RunResult,
    ValidationResult,
    WorkflowList,
)

View = Callable[..., Any]


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


@router.post(
    "/workflow/execute",
    response={
        200: RunResult,
        202: Accepted,
        400: ErrorBody,
        404: ErrorBody,
        409: ErrorBody,
        415: ErrorBody,
        503: ErrorBody,
    },
    url_name="execute",
    summary="Run a workflow (by id or inline); 202 at once with async or Prefer: respond-async",
    openapi_extra=json_body(ExecuteRequest),
)
@json_only
async def execute(request: HttpRequest) -> HttpResponse:
    try:
        data = _json_object(request)
        body: ExecuteRequest = parse(ExecuteRequest, data)
        definition = _resolve(body)
    except BadRequest as exc:
        return _bad(exc)
    except NotFound as exc:
        return _error(str(exc), 404)
    run_async = body.run_async or "respond-async" in request.headers.get("Prefer", "")
    try:
        if run_async:
            execution = await dispatch.start_in_background(
                definition=definition, input=body.input, execution_id=body.run_id
            )
        else:
            result = await dispatch.execute_now(
                definition=definition, input=body.input, execution_id=body.run_id
            )
    except store.DuplicateExecution as exc:
        return _error(str(exc), 409)
    except dispatch.QueueFull as exc:
        response = _error(str(exc), 503)
        response["Retry-After"] = "1"
        return response
    ignored = body.ignored_keys
    if not run_async:
        if ignored:
            # The result's text is the workflow.result event's: extended, not encoded again.
            result = f'{result[:-1]},"ignoredKeys":{json.dumps(ignored)}}}'
        return HttpResponse(result, content_type="application/json")
    location = reverse("executions-api:detail", args=[execution.execution_id])
    accepted: dict[str, Any] = {
        "executionId": execution.execution_id,
        "workflowId": execution.workflow_id,
        "status": execution.status,
        "location": location,
    }
    if ignored:
        accepted["ignoredKeys"] = ignored
    response = JsonResponse(accepted, status=202)
    response["Location"] = location
    return response


def _listing(query: ListQuery) -> bytes:
    page = Execution.objects.page(
        query.filters(),
        limit=query.limit,
        shape=query.fields,
        after=query.position(),
        offset=query.offset,
    )
    if query.fields == "summary":
        items = [execution_summary(row.execution, row.nodes) for row in page.rows]
    else:
        items = [execution_detail(row.execution, row.nodes, row.spans) for row in page.rows]
    body: dict[str, Any] = {"executions": items, "stats": ExecutionCounter.objects.stats()}
    if page.older:
        body["nextCursor"] = page.older
    return showable_json(body, "executions")


def _json(content: bytes) -> HttpResponse:
    return HttpResponse(content, content_type="application/json")


@router.get(
    "/workflow/executions",
    response={200: ExecutionList, 400: ErrorBody},
    url_name="list",
    summary="Executions, newest first, with stats and a cursor to the next page",
    openapi_extra=query_parameters(ListQuery),
)
async def executions(request: HttpRequest) -> HttpResponse:
    params: dict[str, Any] = {k: request.GET.getlist(k) for k in request.GET}
    params = {k: v if k == "status" else v[-1] for k, v in params.items()}
    try:
        query: ListQuery = parse(ListQuery, params)
    except BadRequest as exc:
        return _bad(exc)
    return _json(await sync_to_async(_listing, thread_sensitive=False)(query))


def _execution_json(execution_id: str) -> bytes | None:
    rows = Execution.objects.detail(execution_id)
    if rows is None:
        return None
    body = {"execution": execution_detail(rows.execution, rows.nodes, rows.spans)}
    return showable_json(body, "execution")


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


def _cancel(execution_id: str) -> bytes:
    runtime.cancel(execution_id)
    return _execution_json(execution_id) or b"{}"


@router.post(
    "/workflow/executions/{execution_id}/cancel",
    response={200: ExecutionBody, 404: ErrorBody, 409: ErrorBody, 415: ErrorBody},
    url_name="cancel",
    summary="Cancel a running execution (not in c4c)",
)
@json_only
async def cancel(request: HttpRequest, execution_id: str) -> HttpResponse:
    """Not in c4c: stops a running execution (its next node write is refused)."""
    try:
        content = await sync_to_async(_cancel, thread_sensitive=False)(execution_id)
    except store.ExecutionNotFound as exc:
        return _error(str(exc), 404)
    except store.TransitionError as exc:
        return _error(str(exc), 409)
    return _json(content)


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
