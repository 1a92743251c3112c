"""JSON request bodies for every POST of the HTTP surface, and the content-type rule.

The API uses no cookies, so instead of CSRF tokens every POST must say it is JSON: a page on
another site can make a browser POST a form or text/plain here, but not application/json without
a CORS preflight, which this server never grants. Bodies are loaded by executions.limits, so
nesting, NaN and text no database can hold are refused before anything runs.
"""

from typing import Any

from django.http import HttpRequest, JsonResponse

from ..limits import JsonRejected, load_json
from .requests import BadRequest


def error(message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def not_json(request: HttpRequest) -> JsonResponse | None:
    """415 unless the request says its body is JSON; None when it does."""
    if request.content_type == "application/json":
        return None
    return error(
        f"Content-Type must be application/json, not {request.content_type or 'none'}", 415
    )


def json_object(request: HttpRequest, *, empty: Any = None) -> dict[str, Any]:
    """The body as a JSON object (an empty body is `empty` when given), or BadRequest."""
    if not request.body and empty is not None:
        return dict(empty)
    try:
        body = load_json(request.body)
    except JsonRejected as exc:
        raise BadRequest(exc.message, exc.errors) from exc
    if not isinstance(body, dict):
        raise BadRequest(f"Request body must be a JSON object, not {type(body).__name__}")
    return body
