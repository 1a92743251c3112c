"""ASGI entry point served by daphne: channels' protocol router in front of Django.

Importing it is "the server starts": request tracing is installed before Django builds its
middleware chain, the process starts sweeping for runs whose process died (any server's:
a run's lease says when it is free to take over, not its server's name), and its scheduler fires
due schedules (schedules.scheduler; the database makes each slot fire once across processes).
The HTTP surface - /workflow/ (the JSON API and its SSE streams), /rpc/, /health, /procedures,
/openapi.json, /docs and /metrics - gets its own Django handler (c4c_site.api_handler) whose
middleware is settings.API_MIDDLEWARE: the full chain costs a third of the server's CPU per
execution (see c4c_site.middleware), and none of it applies (no sessions or CSRF middleware: when
C4C_REQUIRE_AUTH is on, its auth middleware reads a bearer token, or the session cookie and then
checks CSRF itself; POSTs must be JSON). Its requests are traced by OpenTelemetry's ASGI
middleware instead. /docs loads its assets from /static/, which the full chain serves.
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")

from c4c_site.request_line import answer_overlong_request_lines
from executions.startup import instrument, start_sweeping
from schedules.startup import start_scheduling

instrument()
answer_overlong_request_lines()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import re_path  # noqa: E402
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware  # noqa: E402

from accounts import policy  # noqa: E402
from c4c_site.api_handler import ApiHandler  # noqa: E402

django_asgi_app = get_asgi_application()

# The API surface's paths (with /metrics) are the policy's, so that what this handler serves and
# what accounts.policy guards as the API are one list.
API_PATHS = policy.API_PATHS

# Request spans for the API come from OpenTelemetry's ASGI middleware, which stays on the event
# loop; per-chunk send/receive spans would add one span per SSE event, so they are left out.
api_asgi_app = OpenTelemetryMiddleware(ApiHandler(), exclude_spans=["receive", "send"])
start_sweeping()
start_scheduling()

application = ProtocolTypeRouter(
    {
        # Django's stubs type re_path() for views only; channels routes ASGI apps with it.
        "http": URLRouter(
            [
                re_path(API_PATHS, api_asgi_app),  # type: ignore[arg-type,list-item]
                re_path(r"", django_asgi_app),  # type: ignore[arg-type,list-item]
            ],
        )
    }
)

# What is loaded by now lives as long as the process: moved out of the collector's sight, a full
# collection (every few list requests) costs a few ms instead of 35-65 ms of list latency.
gc.freeze()
