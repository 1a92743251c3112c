"""Which permission each request needs: one table for the API, one rule for the pages.

The API surface (served by c4c_site.api_handler under settings.API_MIDDLEWARE) is every path
matching API_PATHS. Its reads need `view_execution`; an unsafe request needs what its row in
UNSAFE says, and `manage_c4c` when no row matches, so an endpoint added later is closed until it
is listed. /health stays open for load balancers. Pages (the full middleware chain) need a
signed-in user with `view_execution` (`manage_c4c` for the pages that change schedules), except
the sign-in pages themselves, the admin (Django's own staff login) and static files. Paths are
matched without their leading slash, as Django's URL resolver does.
"""

import re

VIEW = "executions.view_execution"
EXECUTE = "executions.execute_workflow"
CANCEL = "executions.cancel_execution"
MANAGE = "executions.manage_c4c"

API_PATHS = r"^(?:workflow/|rpc/|health$|procedures$|openapi\.json$|docs$|metrics$)"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_API = re.compile(API_PATHS)
_OPEN_API = re.compile(r"^health$")
# A webhook is authenticated by its own signature (executions.api.hooks), not by a user.
_SIGNED_API = re.compile(r"^workflow/hooks/[^/]+$")
UNSAFE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^workflow/execute$"), EXECUTE),
    (re.compile(r"^rpc/[^/]+$"), EXECUTE),
    # Validating runs nothing: whoever may read definitions may check one.
    (re.compile(r"^workflow/(?:definitions/)?validate$"), VIEW),
    (re.compile(r"^workflow/executions/[^/]+/(?:cancel|rerun)$"), CANCEL),
    (re.compile(r"^workflow/executions/bulk$"), CANCEL),
    # Sending a signal moves a run on (an approval is a decision to go on): an operator's act.
    (re.compile(r"^workflow/executions/[^/]+/signals/[^/]+$"), EXECUTE),
)
_OPEN_PAGES = re.compile(r"^(?:login$|logout$|admin/|static/|favicon\.ico$)")
# Pages that change something need the management permission (reading them needs VIEW).
_MANAGE_PAGES = re.compile(r"^schedules/(?:new$|[^/]+/(?:edit|toggle)$)")


def _relative(path: str) -> str:
    return path.lstrip("/")


def is_api(path: str) -> bool:
    return _API.match(_relative(path)) is not None


def api_permission(method: str, path: str) -> str | None:
    """The permission an API request needs; None when it is open to anyone."""
    relative = _relative(path)
    if _OPEN_API.match(relative):
        return None
    if method.upper() in SAFE_METHODS:
        return VIEW
    if method.upper() == "POST" and _SIGNED_API.match(relative):
        return None
    for pattern, permission in UNSAFE:
        if pattern.match(relative):
            return permission
    return MANAGE


def page_permission(path: str) -> str | None:
    """The permission a page needs (sign-in first); None for the pages anyone may open."""
    relative = _relative(path)
    if _OPEN_PAGES.match(relative):
        return None
    return MANAGE if _MANAGE_PAGES.match(relative) else VIEW
