"""Where runs execute: a bounded thread pool in this process (default) or Celery workers.

The pool keeps runs off daphne's event loop and off Django's single thread for sync code, and
bounds both concurrency (C4C_WORKER_THREADS) and backlog (C4C_MAX_QUEUED): past it, callers get
QueueFull and the API answers 503 instead of queueing without end. With C4C_DISPATCH=celery,
background runs go to the broker and any number of worker processes run them: the row is recorded
with no owner and the worker that takes the message claims it (executions.tasks); a broker that
refuses the message fails the run at once and the API answers 503 as for a full pool.
"""

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection, connections
from opentelemetry import context as otel_context

from workflows.definitions import WorkflowDefinition

from . import runtime
from .conf import app_settings
from .models import Execution

T = TypeVar("T")


class QueueFull(Exception):
    pass


class BrokerUnavailable(QueueFull):
    """The Celery broker refused the run; it is recorded as failed, and the caller may retry."""


def _release_connections() -> None:
    """After a run: keep an SQLite connection for the thread's next run, close others.

    Opening SQLite costs its PRAGMAs and a cold page cache on every run (6% of the server's CPU
    under load), and an open file blocks nobody, so CONN_MAX_AGE ages it out as for requests. A
    pool thread lives as long as the process, so holding a PostgreSQL connection between runs
    would keep a server session per thread (and block dropping a test database).
    """
    if connection.vendor == "sqlite":
        close_old_connections()
    else:
        connections.close_all()


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._slots: threading.BoundedSemaphore | None = None

    def _ensure(self) -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
        with self._lock:
            if self._executor is None or self._slots is None:
                workers = app_settings.C4C_WORKER_THREADS
                self._executor = ThreadPoolExecutor(workers, thread_name_prefix="c4c-run")
                self._slots = threading.BoundedSemaphore(workers + app_settings.C4C_MAX_QUEUED)
            return self._executor, self._slots

    def reserve(self) -> None:
        """Take a place in the pool before writing anything, so a full pool leaves no row."""
        _, slots = self._ensure()
        if not slots.acquire(blocking=False):
            raise QueueFull("Too many executions are running or queued; retry later")

    def release(self) -> None:
        self._ensure()[1].release()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, reserved: bool = False, **kwargs: Any
    ) -> "Future[T]":
        executor, slots = self._ensure()
        if not reserved:
            self.reserve()
        # Only the trace context crosses into the pool thread (the run's root span links to the
        # request that started it); copying every contextvar would share Django's per-context
        # connection storage between threads.
        trace_context = otel_context.get_current()

        def job() -> T:
            close_old_connections()
            token = otel_context.attach(trace_context)
            try:
                return fn(*args, **kwargs)
            finally:
                otel_context.detach(token)
                _release_connections()
                slots.release()

        try:
            return executor.submit(job)
        except RuntimeError:
            slots.release()
            raise


pool = _Pool()


async def execute_now(
    *, definition: WorkflowDefinition, input: dict[str, Any], execution_id: str | None
) -> str:
    """Run to the end on the pool and return the c4c result as JSON text (raises QueueFull when
    full); the text is the one the workflow.result event carried, encoded once."""
    future = pool.submit(
        runtime.execute, definition=definition, input=input, execution_id=execution_id
    )
    return (await asyncio.wrap_future(future)).json


def _start_on_celery(
    *, definition: WorkflowDefinition, input: dict[str, Any], execution_id: str | None
) -> Execution:
    """Record the run unowned (the worker that takes it claims it), then queue it.

    The row commits before the message leaves, so a worker always finds it. When the broker
    cannot take the message the run is failed at once: no row stays running with nobody to run it.
    """
    from c4c_site.celery import app

    execution = runtime.start(
        definition=definition, input=input, execution_id=execution_id, owner=""
    )
    try:
        app.send_task(
            "executions.run_execution",
            args=[execution.execution_id, definition.to_json_dict(), input],
        )
    except Exception as exc:
        message = f"Could not queue the run on the Celery broker: {exc}"
        runtime.fail_unqueued(execution, exc, message=message)
        raise BrokerUnavailable(message) from exc
    return execution


async def start_in_background(
    *, definition: WorkflowDefinition, input: dict[str, Any], execution_id: str | None
) -> Execution:
    """Record the start now and leave the run to the pool or to Celery; returns at once."""
    if app_settings.C4C_DISPATCH == "celery":
        return await sync_to_async(_start_on_celery, thread_sensitive=False)(
            definition=definition, input=input, execution_id=execution_id
        )
    start = sync_to_async(runtime.start, thread_sensitive=False)
    pool.reserve()
    try:
        execution = await start(definition=definition, input=input, execution_id=execution_id)
    except BaseException:
        pool.release()
        raise
    pool.submit(runtime.run, execution=execution, definition=definition, input=input, reserved=True)
    return execution
