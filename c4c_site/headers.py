"""The security headers of the API's chain (settings.API_MIDDLEWARE), as the pages get them.

The pages get theirs from Django's SecurityMiddleware, XFrameOptionsMiddleware and django-csp's
CSPMiddleware: sync classes that would move every API request to a thread and back (see
c4c_site.middleware), so the API's chain sets the same headers here, on the event loop:

- Content-Security-Policy: the pages' policy (settings.CONTENT_SECURITY_POLICY) on HTML - /docs,
  whose Swagger UI runs from /static/ with no inline script - and `default-src 'none'` on
  everything else (JSON, SSE): a response of ours shown as a document may load nothing.
- X-Frame-Options (settings.X_FRAME_OPTIONS), Referrer-Policy (SECURE_REFERRER_POLICY),
  Cross-Origin-Opener-Policy on HTML, X-Content-Type-Options.
- Strict-Transport-Security on requests that came over HTTPS (directly, or through a proxy named
  by SECURE_PROXY_SSL_HEADER) once SECURE_HSTS_SECONDS is above 0, as SecurityMiddleware does.
"""

from collections.abc import Awaitable, Callable

from csp.constants import HEADER as CSP_HEADER
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.decorators import async_only_middleware

Handler = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

NOT_A_DOCUMENT_POLICY = "default-src 'none'; frame-ancestors 'none'"


def _hsts() -> str | None:
    seconds = int(getattr(settings, "SECURE_HSTS_SECONDS", 0))
    if seconds <= 0:
        return None
    value = f"max-age={seconds}"
    if getattr(settings, "SECURE_HSTS_INCLUDE_SUBDOMAINS", False):
        value += "; includeSubDomains"
    if getattr(settings, "SECURE_HSTS_PRELOAD", False):
        value += "; preload"
    return value


@async_only_middleware
def api_headers(get_response: Handler) -> Handler:
    """Sets the headers above on every response of the API's chain (never overriding a view's)."""
    page_policy = build_policy()
    frame_options = str(getattr(settings, "X_FRAME_OPTIONS", "DENY"))
    referrer_policy = getattr(settings, "SECURE_REFERRER_POLICY", None)
    if isinstance(referrer_policy, list | tuple):
        referrer_policy = ",".join(referrer_policy)
    opener_policy = getattr(settings, "SECURE_CROSS_ORIGIN_OPENER_POLICY", None)
    hsts = _hsts()

    async def middleware(request: HttpRequest) -> HttpResponseBase:
        response = await get_response(request)
        headers = response.headers
        html = headers.get("Content-Type", "").startswith("text/html")
        headers.setdefault(CSP_HEADER, page_policy if html else NOT_A_DOCUMENT_POLICY)
        headers.setdefault("X-Frame-Options", frame_options)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        if referrer_policy:
            headers.setdefault("Referrer-Policy", referrer_policy)
        if html and opener_policy:
            headers.setdefault("Cross-Origin-Opener-Policy", opener_policy)
        if hsts is not None and request.is_secure():
            headers.setdefault("Strict-Transport-Security", hsts)
        return response

    return middleware
