"""Where runs execute: a bounded thread pool in this process (default) or Celery workers.

The pool keeps runs off daphne's event loop and off Django's single thread for sync code, and
bounds both concurrency (C4C_WORKER_THREADS) and backlog (C4C_MAX_QUEUED): past it, callers get
QueueFull and the API answers 503 instead of queueing without end. With C4C_DISPATCH=celery,
background runs go to the broker and any number of worker processes run them.
"""

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from workflows.definitions import WorkflowDefinition

from . import runtime
from .models import Execution

T = TypeVar("T")


class QueueFull(Exception):
    pass


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._slots: threading.BoundedSemaphore | None = None

    def _ensure(self) -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
        with self._lock:
            if self._executor is None or self._slots is None:
                workers = settings.C4C_WORKER_THREADS
                self._executor = ThreadPoolExecutor(workers, thread_name_prefix="c4c-run")
                self._slots = threading.BoundedSemaphore(workers + settings.C4C_MAX_QUEUED)
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

        def job() -> T:
            close_old_connections()
            try:
                return fn(*args, **kwargs)
            finally:
                close_old_connections()
                slots.release()

        try:
            return executor.submit(job)
        except RuntimeError:
            slots.release()
            raise


pool = _Pool()


async def execute_now(
    *, definition: WorkflowDefinition, input: dict[str, Any], execution_id: str | None
) -> dict[str, Any]:
    """Run to the end on the pool and return the c4c result (raises QueueFull when full)."""
    future = pool.submit(
        runtime.execute, definition=definition, input=input, execution_id=execution_id
    )
    return await asyncio.wrap_future(future)


async def start_in_background(
    *, definition: WorkflowDefinition, input: dict[str, Any], execution_id: str | None
) -> Execution:
    """Record the start now and leave the run to the pool or to Celery; returns at once."""
    start = sync_to_async(runtime.start, thread_sensitive=False)
    if settings.C4C_DISPATCH == "celery":
        from c4c_site.celery import app

        execution = await start(
            definition=definition, input=input, execution_id=execution_id, owner=""
        )
        app.send_task(
            "executions.run_execution",
            args=[execution.execution_id, definition.to_json_dict(), input],
        )
        return execution
    pool.reserve()
    try:
        execution = await start(definition=definition, input=input, execution_id=execution_id)
    except BaseException:
        pool.release()
        raise
    pool.submit(runtime.run, execution=execution, definition=definition, input=input, reserved=True)
    return execution
