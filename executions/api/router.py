"""The /workflow/* JSON API as a django-ninja Router: its views, described for the OpenAPI document.

The views parse their own requests (executions.api.requests: the 400/415 messages clients rely
on) and return their responses as built, so ninja only routes and documents: a view's answer
reaches the client byte for byte, and ninja adds one function call per request. The request
bodies and query parameters below are generated from the same pydantic models the views parse
with; the response bodies from executions.api.schemas.
"""

from typing import Any

from ninja import Router
from pydantic import BaseModel

from . import views
from .requests import ExecuteRequest, ListQuery
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

REF_TEMPLATE = "#/components/schemas/{model}"


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE, by_alias=True)
    if "$defs" in schema:
        raise ValueError(f"{model.__name__} nests models: give them to the API's components")
    return schema


def json_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """An operation's requestBody: `model`'s JSON Schema, sent as application/json."""
    body: dict[str, Any] = {
        "required": True,
        "content": {"application/json": {"schema": _schema(model)}},
    }
    if description:
        body["description"] = description
    return {"requestBody": body}


def query_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """One query parameter per field of `model`, named by its alias (as clients send it)."""
    schema = _schema(model)
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in field.items() if k not in ("title", "description")},
        }
        if field.get("type") == "array":
            parameter["explode"] = True
        if field.get("description"):
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return {"parameters": parameters}


router = Router(tags=["workflow"])

router.post(
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
)(views.execute)
router.get(
    "/workflow/executions",
    response={200: ExecutionList, 400: ErrorBody},
    url_name="list",
    summary="Executions, newest first, with stats and a cursor to the next page",
    openapi_extra=query_parameters(ListQuery),
)(views.executions)
router.get(
    "/workflow/executions/{execution_id}",
    response={200: ExecutionBody, 404: ErrorBody},
    url_name="detail",
    summary="One execution with its nodes and spans",
)(views.execution)
router.post(
    "/workflow/executions/{execution_id}/cancel",
    response={200: ExecutionBody, 404: ErrorBody, 409: ErrorBody, 415: ErrorBody},
    url_name="cancel",
    summary="Cancel a running execution (not in c4c)",
)(views.cancel)
router.get(
    "/workflow/definitions",
    response=WorkflowList,
    url_name="definitions",
    summary="Every workflow this server can run by id",
)(views.definitions)
router.get(
    "/workflow/definitions/{workflow_id}",
    response={200: DefinitionBody, 404: ErrorBody},
    url_name="definition",
    summary="One workflow definition as c4c's JSON",
)(views.definition)
router.post(
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
)(views.validate)
