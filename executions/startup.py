"""What a serving process does once, before it answers its first request.

Called from the ASGI module (daphne imports it once per process) and from a Celery node when it
is ready (c4c_site.celery), never from management commands or the test database: failing
"interrupted" runs is only right when a server or worker takes over.
"""

import logging

import django

logger = logging.getLogger(__name__)


def instrument() -> None:
    """Trace HTTP requests; must run before the ASGI handler builds its middleware chain."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    django.setup()
    from .tracing import configure_tracing

    configure_tracing()
    instrumentor = DjangoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def recover_interrupted(*, server: str | None = None, owner: str | None = None) -> list[str]:
    """Fail the runs a stopped process of this server left running, and tell open dashboards.

    A web server calls it with its defaults (C4C_SERVER_ID, this process); a Celery node with its
    node name and identity (c4c_site.celery).
    """
    from .runtime import fail_interrupted
    from .store import server_id

    failed = fail_interrupted(server=server, owner=owner)
    if failed:
        logger.warning(
            "Marked %d execution(s) of %s as failed: their process stopped before they finished "
            "(%s)",
            len(failed),
            server or server_id(),
            ", ".join(failed[:10]),
        )
    return failed
