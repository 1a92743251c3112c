"""What a serving process does once, before it answers its first request.

Called from the ASGI module (daphne imports it once per process), never from management commands
or the test database: failing "interrupted" runs is only right when a server takes over.
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


def recover_interrupted() -> list[str]:
    """Fail the runs a previous process of this server left running, with a reason saying so."""
    from .store import executions_fail_interrupted, server_id

    failed = executions_fail_interrupted()
    if failed:
        logger.warning(
            "Marked %d execution(s) of server %s as failed: interrupted by a restart (%s)",
            len(failed),
            server_id(),
            ", ".join(failed[:10]),
        )
    return failed
