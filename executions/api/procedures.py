"""c4c's server beside the workflow API: GET /health, GET /procedures, POST /rpc/<procedureName>.

As `c4c serve all` answers them: /procedures lists every registered procedure with its contract,
/rpc/<name> runs one procedure with its input and output checked by that contract. Each
procedure gets its own operation in the OpenAPI document (operationId = its name, request and
200 bodies = its pydantic models), as c4c's generator writes them; the generic
/rpc/{procedureName} answers every other name with 404.

A call is traced like a procedure node: one span named after the procedure, status OK or ERROR.
Status codes: 400 body not JSON (or the procedure itself failed, as c4c answers), 404 unknown
procedure, 415 not JSON content, 422 input (or output) outside the contract, naming the field.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from workflows.errors import ProcedureInputError, ProcedureOutputError, validation_messages
from workflows.registry import Procedure, procedure_registry
from workflows.secrets import Redactor

from .bodies import error, json_object, not_json
from .requests import BadRequest
from .schemas import ErrorBody, HealthBody, ProcedureList

TRACER_NAME = "c4c.rpc"
# Prefixed so that a contract model never takes the name of a schema of the API's.
PREFIX = "contract."
REF_TEMPLATE = "#/components/schemas/" + PREFIX + "{model}"
_ERRORS = {400: ErrorBody, 404: ErrorBody, 415: ErrorBody, 422: ErrorBody}

View = Callable[..., Awaitable[HttpResponse]]


def _database_check() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


async def health(request: HttpRequest) -> JsonResponse:
    """200 when the database answers; 503 naming what failed otherwise (for load balancers)."""
    database = await sync_to_async(_database_check, thread_sensitive=False)()
    ok = database == "ok"
    return JsonResponse(
        {"status": "ok" if ok else "error", "checks": {"database": database}},
        status=200 if ok else 503,
    )


def _contract(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def procedures(request: HttpRequest) -> JsonResponse:
    """Every procedure's name, description, metadata and JSON Schema contract (c4c's shape+)."""
    return JsonResponse(
        {
            "procedures": [
                {
                    "name": proc.name,
                    "description": proc.description,
                    "metadata": {"category": proc.category, "tags": list(proc.tags)},
                    "inputSchema": _contract(proc.input_model),
                    "outputSchema": _contract(proc.output_model),
                }
                for proc in procedure_registry().all()
            ]
        }
    )


_encode = json.JSONEncoder(allow_nan=False, ensure_ascii=False).encode


def _invoke(proc: Procedure, data: dict[str, Any]) -> HttpResponse:
    """Its span and any log line it writes carry no secret of `data` (workflows.secrets), as a
    procedure node's do; the caller, who sent them, gets its error messages as they are."""
    redactor = Redactor()
    redactor.learn(data)
    redactor.learn_contract(proc.input_model, data)
    tracer = trace.get_tracer(TRACER_NAME)
    with (
        redactor.active(),
        tracer.start_as_current_span(
            proc.name,
            attributes={"procedure.name": proc.name, "rpc.transport": "http"},
            record_exception=False,
            set_status_on_exception=False,
        ) as span,
    ):
        try:
            output = proc.invoke(data)
            body = _encode(output)
        except (ProcedureInputError, ProcedureOutputError) as exc:
            span.set_status(Status(StatusCode.ERROR, redactor.redact_text(str(exc))))
            cause = exc.__cause__
            lines = validation_messages(cause) if isinstance(cause, ValidationError) else None
            return error(str(exc), 422, errors=lines or [str(exc)])
        except ValueError as exc:
            # Only the encoder raises ValueError after invoke: NaN or Infinity in the output.
            message = f"Output of {proc.name} is not JSON: {exc}"
            span.set_status(Status(StatusCode.ERROR, redactor.redact_text(message)))
            return error(message, 422, errors=[message])
        except Exception as exc:
            # c4c answers a procedure's own failure 400 with its message.
            span.add_event(
                "exception",
                {
                    "exception.type": type(exc).__name__,
                    "exception.message": redactor.redact_text(str(exc)),
                },
            )
            span.set_status(Status(StatusCode.ERROR, redactor.redact_text(str(exc))))
            return error(f"{proc.name} failed: {type(exc).__name__}: {exc}", 400)
        span.set_status(Status(StatusCode.OK))
    return HttpResponse(body, content_type="application/json")


async def _call(request: HttpRequest, name: str) -> HttpResponse:
    refused = not_json(request)
    if refused is not None:
        return refused
    proc = procedure_registry().get(name)
    if proc is None:
        return error(f"Procedure '{name}' not found", 404)
    try:
        data = json_object(request, empty={})
    except BadRequest as exc:
        return error(exc.message, 400, errors=exc.errors)
    return await sync_to_async(_invoke, thread_sensitive=False)(proc, data)


def _rpc_view(name: str) -> View:
    async def rpc_procedure(request: HttpRequest) -> HttpResponse:
        return await _call(request, name)

    return rpc_procedure


async def rpc(request: HttpRequest, procedureName: str) -> HttpResponse:
    """Any name that is not a registered procedure: 404, as c4c answers."""
    return await _call(request, procedureName)


def contract_components() -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    """Every procedure's input and output models as OpenAPI components, one pydantic pass.

    Returns the $ref of each model by "<procedure>:input|output" and the component schemas;
    pydantic gives two different models of one name distinct component names.
    """
    registered = procedure_registry().all()
    models = [(p.input_model, "validation") for p in registered]
    models += [(p.output_model, "serialization") for p in registered]
    refs, definitions = models_json_schema(models, ref_template=REF_TEMPLATE)  # type: ignore[arg-type]
    by_name = {
        f"{p.name}:{part}": refs[(model, mode)]  # type: ignore[index]
        for p in registered
        for part, model, mode in (
            ("input", p.input_model, "validation"),
            ("output", p.output_model, "serialization"),
        )
    }
    return by_name, {PREFIX + k: v for k, v in definitions.get("$defs", {}).items()}


def router() -> Router:
    """The operations of this module; built after start-up, when every procedure is registered."""
    built = Router(tags=["c4c server"])
    built.get("/health", response={200: HealthBody, 503: HealthBody}, summary="Health check")(
        health
    )
    built.get("/procedures", response=ProcedureList, summary="Every procedure's contract")(
        procedures
    )
    refs, _ = contract_components()
    for proc in procedure_registry().all():
        built.post(
            f"/rpc/{proc.name}",
            response={200: None, **_ERRORS},
            operation_id=proc.name,
            summary=proc.description or proc.name,
            tags=["rpc", *proc.tags],
            url_name=f"rpc-{proc.name}",
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": refs[f"{proc.name}:input"]}},
                },
                "responses": {
                    200: {
                        "description": "The procedure's output",
                        "content": {"application/json": {"schema": refs[f"{proc.name}:output"]}},
                    }
                },
            },
        )(_rpc_view(proc.name))
    built.post(
        "/rpc/{path:procedureName}",
        response={404: ErrorBody, 415: ErrorBody},
        summary="Any other procedure name: 404",
        tags=["rpc"],
        url_name="rpc",
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )(rpc)
    return built
