"""What a serving process does once, before it answers its first request.

Called from the ASGI module (daphne imports it once per process) and from a Celery node when it
is ready (c4c_site.celery), never from management commands or the test database: only a process
that stays up should take other processes' runs over.
"""

import django


def instrument() -> None:
    """Trace HTTP requests; must run before the ASGI handler builds its middleware chain."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    django.setup()
    from .tracing import configure_tracing

    configure_tracing()
    instrumentor = DjangoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def start_sweeping(*, requeue: bool | None = None) -> None:
    """Sweep for runs whose lease lapsed from now on, every second (executions.leases): resume
    them on this process's pool, or (`requeue`, default when C4C_DISPATCH is celery) queue them
    for a worker. The first sweep runs at once. Pruning starts with it (start_pruning)."""
    from functools import partial

    from .dispatch import sweep
    from .leases import heartbeat

    heartbeat.enable_sweep(partial(sweep, requeue=requeue))
    start_pruning()


def start_pruning() -> None:
    """On inline dispatch, prune from this process's heartbeat every C4C_PRUNE_INTERVAL_SECONDS
    while retention is set (executions.retention). Scaled out on Celery, beat runs the prune
    task instead, so worker nodes do not prune."""
    from .conf import app_settings
    from .leases import heartbeat
    from .retention import PeriodicPrune

    if app_settings.C4C_DISPATCH == "inline":
        heartbeat.enable_prune(PeriodicPrune())
