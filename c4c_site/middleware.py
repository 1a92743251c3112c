"""The middleware of the /workflow/ API: what it needs of Django's stack, with no thread hops.

Django's own middleware (and WhiteNoise, and OpenTelemetry's) are sync classes: under ASGI each
one moves the request to a worker thread and back, and Django starts a thread per request for
them. The API needs none of sessions, CSRF, messages or static files, so asgi.py serves
/workflow/ with API_MIDDLEWARE, and this keeps the protections that apply to it.

Both chains refuse a URL holding a NUL character (%00) with a 400 before any view runs (the full
chain is in MIDDLEWARE): PostgreSQL refuses NUL in every text lookup, so a view looking up
/executions/a%00b would answer 500.
"""

from collections.abc import Awaitable, Callable
from inspect import iscoroutinefunction
from typing import cast

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.decorators import async_only_middleware, sync_and_async_middleware

Handler = Callable[[HttpRequest], Awaitable[HttpResponseBase]]
SyncHandler = Callable[[HttpRequest], HttpResponseBase]
NUL_IN_URL = "The URL contains a NUL character (%00)"


def has_nul(request: HttpRequest) -> bool:
    """A NUL in the decoded path or anywhere in the query string."""
    return "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", "")


@async_only_middleware
def api_guard(get_response: Handler) -> Handler:
    """Host checked against ALLOWED_HOSTS (400 otherwise), NUL in the URL refused, nosniff set."""

    async def middleware(request: HttpRequest) -> HttpResponseBase:
        request.get_host()
        if has_nul(request):
            return JsonResponse({"error": NUL_IN_URL}, status=400)
        response = await get_response(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return middleware


def _refusal(request: HttpRequest) -> HttpResponseBase:
    """Django's 400 page for a browser (it shows no request data), JSON for anything else."""
    if "text/html" in request.headers.get("Accept", ""):
        raise SuspiciousOperation(NUL_IN_URL)
    return JsonResponse({"error": NUL_IN_URL}, status=400)


@sync_and_async_middleware
def refuse_nul(get_response: Handler | SyncHandler) -> Handler | SyncHandler:
    """The full chain's NUL check, on whichever side of sync and async the stack runs."""
    if iscoroutinefunction(get_response):
        get_async = cast(Handler, get_response)

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            return _refusal(request) if has_nul(request) else await get_async(request)

        return async_middleware
    get_sync = cast(SyncHandler, get_response)

    def middleware(request: HttpRequest) -> HttpResponseBase:
        return _refusal(request) if has_nul(request) else get_sync(request)

    return middleware
