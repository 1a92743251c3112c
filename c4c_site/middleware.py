"""The middleware of the /workflow/ API: what it needs of Django's stack, with no thread hops.

Django's own middleware (and WhiteNoise, and OpenTelemetry's) are sync classes: under ASGI each
one moves the request to a worker thread and back, and Django starts a thread per request for
them. The API needs none of sessions, CSRF, messages or static files, so asgi.py serves
/workflow/ with API_MIDDLEWARE, and this keeps the protections that apply to it.

Both chains refuse a URL holding a NUL character (%00) with a 400 before any view runs (the full
chain is in MIDDLEWARE): PostgreSQL refuses NUL in every text lookup, so a view looking up
/executions/a%00b would answer 500.

Authentication (when settings.C4C_REQUIRE_AUTH is on, read per request) runs on both chains too,
with the permission each request needs taken from accounts.policy. `api_auth` is the API chain's:
`Authorization: Bearer <token>` (an accounts.ApiToken), or else the session cookie, loaded with
the configured SessionStore and django.contrib.auth's async helpers; a cookie-authenticated unsafe
request must pass Django's CSRF check (CsrfViewMiddleware's own, answering JSON). Refusals are
401 JSON with `WWW-Authenticate: Bearer`, or 403 JSON naming the permission. `site_auth` is the
full chain's: API paths (served there by the test client and `runserver`) get the very same
check; pages redirect to the login page with ?next=, and answer 403 without the permission.
"""

from collections.abc import Awaitable, Callable
from importlib import import_module
from inspect import iscoroutinefunction
from typing import Any, cast

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import aget_user
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import async_only_middleware, sync_and_async_middleware

from accounts import policy
from accounts.models import ApiToken

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


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check as it is, answering in the API's JSON instead of the HTML page."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponseBase:
        return JsonResponse({"error": f"CSRF check failed: {reason}"}, status=403)


def _csrf_refusal(request: HttpRequest) -> HttpResponseBase | None:
    """The check alone: the view it is handed stands for any view not marked csrf_exempt."""

    def view(request: HttpRequest) -> HttpResponseBase:
        raise AssertionError("the CSRF check never calls its view")

    check = _CsrfCheck(view)
    check.process_request(request)
    return check.process_view(request, view, (), {})


def _unauthenticated(message: str, challenge: str = "Bearer") -> JsonResponse:
    response = JsonResponse({"error": message}, status=401)
    response.headers["WWW-Authenticate"] = challenge
    return response


async def _session_user(request: HttpRequest) -> Any:
    """The user of the request's session cookie; anonymous without one."""
    if hasattr(request, "auser"):  # the full chain: SessionMiddleware and AuthenticationMiddleware
        return await request.auser()
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return AnonymousUser()
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(session_key)
    return await aget_user(request)


async def _api_refusal(request: HttpRequest) -> HttpResponseBase | None:
    """Why an API request may not go on (401, 403 JSON), or None with request.user set."""
    method = request.method or "GET"
    permission = policy.api_permission(method, request.path_info)
    if permission is None:
        return None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return _unauthenticated("The Authorization header must be 'Bearer <token>'")
        token = await ApiToken.objects.aauthenticate(credential.strip())
        if token is None:
            return _unauthenticated(
                "The token is not valid: unknown, revoked, or its user is inactive",
                'Bearer error="invalid_token"',
            )
        user = token.user
    else:
        user = await _session_user(request)
        if not user.is_authenticated:
            return _unauthenticated(
                "Authentication required: send 'Authorization: Bearer <token>' or sign in"
            )
        if method not in policy.SAFE_METHODS:
            refused = _csrf_refusal(request)
            if refused is not None:
                return refused
    if not await user.ahas_perm(permission):
        return JsonResponse(
            {"error": f"Permission '{permission}' is required", "permission": permission},
            status=403,
        )
    request.user = user
    return None


@async_only_middleware
def api_auth(get_response: Handler) -> Handler:
    """The API chain's authentication and permission check (see the module docstring)."""

    async def middleware(request: HttpRequest) -> HttpResponseBase:
        if settings.C4C_REQUIRE_AUTH:
            refused = await _api_refusal(request)
            if refused is not None:
                return refused
        return await get_response(request)

    return middleware


def _page_check(
    request: HttpRequest, user: Any, permission: str, allowed: bool
) -> HttpResponseBase | None:
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not allowed:
        raise PermissionDenied(f"Permission '{permission}' is required")
    return None


@sync_and_async_middleware
def site_auth(get_response: Handler | SyncHandler) -> Handler | SyncHandler:
    """The full chain's check: the API's on API paths, sign-in and view_execution on pages."""
    if iscoroutinefunction(get_response):
        get_async = cast(Handler, get_response)

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            if settings.C4C_REQUIRE_AUTH:
                refused = await _async_site_refusal(request)
                if refused is not None:
                    return refused
            return await get_async(request)

        return async_middleware
    get_sync = cast(SyncHandler, get_response)

    def middleware(request: HttpRequest) -> HttpResponseBase:
        if settings.C4C_REQUIRE_AUTH:
            refused = _sync_site_refusal(request)
            if refused is not None:
                return refused
        return get_sync(request)

    return middleware


async def _async_site_refusal(request: HttpRequest) -> HttpResponseBase | None:
    if policy.is_api(request.path_info):
        return await _api_refusal(request)
    permission = policy.page_permission(request.path_info)
    if permission is None:
        return None
    user = await request.auser()
    allowed = user.is_authenticated and await user.ahas_perm(permission)
    return _page_check(request, user, permission, allowed)


def _sync_site_refusal(request: HttpRequest) -> HttpResponseBase | None:
    if policy.is_api(request.path_info):
        return async_to_sync(_api_refusal)(request)
    permission = policy.page_permission(request.path_info)
    if permission is None:
        return None
    user = request.user
    return _page_check(
        request, user, permission, user.is_authenticated and user.has_perm(permission)
    )
