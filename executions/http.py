"""The HTTP surface as one django-ninja API: its OpenAPI document (/openapi.json) and /docs.

Wiring, not an edge: the one module that may see both the API (executions.api) and the streams
(executions.live), so that /openapi.json describes every endpoint of ours. The document is
generated from pydantic models - the API's schemas, each procedure's contract, the events'
TypedDicts - never written by hand. Errors keep the API's one shape, {"error", "errors"?}: ninja's
own ({"detail": ...}, tracebacks under DEBUG) never reach a client. GET /metrics
(executions.metrics) is a plain route beside the API: Prometheus' text, not a JSON operation.
"""

import copy
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, path, re_path
from ninja import NinjaAPI, Swagger
from ninja.errors import HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.parser import Parser

from workflows.registry import Procedure, procedure_registry

from . import metrics
from .api import hooks, procedures, views
from .api.bodies import error
from .api.requests import BadRequest
from .limits import JsonRejected, load_json
from .live.openapi import stream_paths

logger = logging.getLogger(__name__)

ERROR_BODY_REF = "#/components/schemas/ErrorBody"

# Where a parameter came from, as ninja's error locations start: not a field name.
_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}


class JsonParser(Parser):
    """Bodies through executions.limits: depth, NaN and unstorable text refused with a message."""

    def parse_body(self, request: HttpRequest) -> Any:
        return load_json(request.body)


class C4CApi(NinjaAPI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._documents: dict[tuple[str, tuple[Procedure, ...]], OpenAPISchema] = {}

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """Generated once per root path and set of procedures (pydantic takes ~0.1 s of the GIL to
        build it); each caller gets its own copy to change."""
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        key = (path_prefix, tuple(procedure_registry().all()))
        if key not in self._documents:
            self._documents[key] = self._build_openapi_schema(path_prefix)
        return copy.deepcopy(self._documents[key])

    def _build_openapi_schema(self, path_prefix: str) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix)
        streams, stream_defs = stream_paths()
        _, contract_defs = procedures.contract_components()
        schema["paths"].update(streams)
        components = schema["components"]["schemas"]
        for name, definition in {**stream_defs, **contract_defs}.items():
            components.setdefault(name, definition)
        # The server answers a request line past 16 KiB with 414 before any view (c4c_site).
        too_long = {
            "description": "The request line is longer than the server reads",
            "content": {"application/json": {"schema": {"$ref": ERROR_BODY_REF}}},
        }
        for operations in schema["paths"].values():
            for operation in operations.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["responses"].setdefault("414", too_long)
        return schema


def _field_lines(errors: list[dict[str, Any]]) -> list[str]:
    lines = []
    for item in errors:
        loc = [str(part) for part in item.get("loc", ())]
        if loc and loc[0] in _SOURCES:
            loc = loc[1:]
            # A body given as one model is nested under the view's parameter name.
            if loc and loc[0] == "body":
                loc = loc[1:]
        lines.append(f"{'.'.join(loc) or 'body'}: {item.get('msg', 'invalid')}")
    return lines


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    lines = _field_lines(exc.errors)
    return error("; ".join(lines), 400, errors=lines)


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if isinstance(cause, JsonRejected | BadRequest):
        return error(cause.message, exc.status_code, errors=cause.errors)
    return error(str(exc), exc.status_code)


def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error("Not found", 404)


def _refused(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Django's own refusals (a body past DATA_UPLOAD_MAX_MEMORY_SIZE, ...) are the client's."""
    if isinstance(exc, RequestDataTooBig):
        return error("Request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE allows", 413)
    return error("Bad request", 400)


def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Logged in full; the client learns only that it was our fault (nothing it sent echoes)."""
    logger.exception("Unhandled error in %s %s", request.method, request.path)
    return error("Internal server error", 500)


def build_api() -> C4CApi:
    built = C4CApi(
        title="c4c for Django",
        version="1.0.0",
        description="Run code-defined workflows, persist every execution, watch them live. "
        "Speaks the c4c framework's HTTP contract.",
        urls_namespace="executions-api",
        parser=JsonParser(),
        docs=Swagger(settings={"persistAuthorization": False}),
    )
    # ninja hands each handler the raised instance (its annotations also admit the class).
    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (ValidationError, _validation_error),
        (HttpError, _http_error),
        (Http404, _not_found),
        (SuspiciousOperation, _refused),
        (Exception, _server_error),
    ]
    for kind, handler in handlers:
        built.add_exception_handler(kind, handler)
    built.add_router("", views.router)
    built.add_router("", procedures.router())
    built.add_router("", hooks.router)
    return built


api = build_api()


async def metrics_text(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus' text format (executions.metrics says what it counts and sums)."""
    if request.method not in ("GET", "HEAD"):
        return error("Method not allowed: GET /metrics", 405)
    text = await sync_to_async(metrics.render, thread_sensitive=False)()
    return HttpResponse(text, content_type=metrics.CONTENT_TYPE)


def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any other path under the API's prefixes: JSON 404 as c4c answers, never an HTML page."""
    return error("Not found", 404)


urlpatterns: list[URLPattern | URLResolver] = [
    path("", api.urls),
    path("metrics", metrics_text, name="metrics"),
    re_path(r"^(?:workflow|rpc)/(?P<rest>(?s:.*))$", not_found),
]
