"""The Django handler of the API surface (c4c_site.asgi routes its paths here): its own
middleware chain and its own URLconf.

Its middleware is settings.API_MIDDLEWARE: the full chain costs a third of the server's CPU per
execution (see c4c_site.middleware), and none of it applies. Its URLconf is c4c_site.api_urls, the
API's patterns first.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Any

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.http import HttpResponseBase

API_URLCONF = "c4c_site.api_urls"


class ApiHandler(ASGIHandler):
    """Django's ASGI handler with settings.API_MIDDLEWARE in place of settings.MIDDLEWARE, and
    c4c_site.api_urls (the API's patterns first) as each request's URLconf."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django reads the list from settings only; it is swapped while this one handler builds
        # its chain, once, at start-up, before any request is served.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    def create_request(
        self, scope: Mapping[str, Any], body_file: IO[bytes]
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        created = super().create_request(scope, body_file)
        if created[0] is not None:
            created[0].urlconf = API_URLCONF
        return created

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Mapping[str, Any]]],
        send: Callable[[Mapping[str, Any]], Awaitable[None]],
    ) -> None:
        # Django wraps each request in a ThreadSensitiveContext, so its sync request_started and
        # request_finished receivers start a thread per request - one idle thread per open SSE
        # stream. The API's views are async or cheap, and runs close their own connections in
        # the dispatch pool, so its requests share the one thread for sync code instead.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)
