"""The middleware of the /workflow/ API: what it needs of Django's stack, with no thread hops.

Django's own middleware (and WhiteNoise, and OpenTelemetry's) are sync classes: under ASGI each
one moves the request to a worker thread and back, and Django starts a thread per request for
them. The API needs none of sessions, CSRF, messages or static files, so asgi.py serves
/workflow/ with API_MIDDLEWARE, and this keeps the two protections that apply to it.
"""

from collections.abc import Awaitable, Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.decorators import async_only_middleware

Handler = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


@async_only_middleware
def api_guard(get_response: Handler) -> Handler:
    """The Host header checked against ALLOWED_HOSTS (400 otherwise), and nosniff on replies."""

    async def middleware(request: HttpRequest) -> HttpResponseBase:
        request.get_host()
        response = await get_response(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return middleware
