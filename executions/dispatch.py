"""Where runs execute: a bounded thread pool in this process (default) or Celery workers; and the
sweep that keeps every run going after its process died.

The pool keeps runs off daphne's event loop and off Django's single thread for sync code, and
bounds both concurrency (C4C_WORKER_THREADS) and backlog (C4C_MAX_QUEUED): past it, callers get
QueueFull and the API answers 503 instead of queueing without end. A run queued on the pool is
held by this process from the start (executions.leases): its lease is renewed while it waits, and
a cancel stops it before it starts. A run walks on its place's thread, and its place is free
again the moment the run is cancelled, whatever its procedures do.

With C4C_DISPATCH=celery, background runs go to the broker and any number of worker processes run
them: the row is recorded with no owner and a claim deadline (C4C_CLAIM_SECONDS), and the worker
that takes the message claims it (executions.tasks). The message carries the execution id and,
for a new run, its input as sent (the row keeps it cut at C4C_MAX_PAYLOAD_BYTES and redacted),
sealed (executions.secrets) so that no secret crosses or rests in the broker in clear; a run queued
again by the sweep carries only the id. Publishing is bounded by C4C_BROKER_TIMEOUT whatever
the broker does (it may refuse, or accept the connection and never answer): past it, or on a
refusal, the recorded run is deleted - nothing was started, so the same request (same
executionId or Idempotency-Key) can be sent again - and BrokerUnavailable tells the API to
answer 503. If a worker claimed the run meanwhile (the message did arrive), it stands and the
caller gets it.

sweep(): every run whose lease lapsed - its process died, or its queued message was lost - and
every waiting run that is due (workflows.waits) is taken over with a compare-and-set (one winner
among all sweeping processes) and resumed here, or queued for a worker again.
"""

import asyncio
import functools
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection, connections
from django.utils import timezone
from django.utils.module_loading import import_string
from opentelemetry import context as otel_context

from workflows.attempts import procedure_threads, run_attempt
from workflows.context import AttemptSignal, RunControl
from workflows.definitions import WorkflowDefinition
from workflows.errors import CancelledError
from workflows.secrets import Redactor

from . import leases, metrics, runtime, secrets, store
from .conf import app_settings
from .models import Execution, ExecutionStatus

logger = logging.getLogger(__name__)

TASK_NAME = "executions.run_execution"
# Runs one sweep takes over at most: the rest wait for the next sweep (or another process).
SWEEP_BATCH = 100

T = TypeVar("T")


class QueueFull(Exception):
    pass


class BrokerUnavailable(QueueFull):
    """The Celery broker refused the run or did not answer within C4C_BROKER_TIMEOUT; nothing
    was started, and the caller may send the same request again."""


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


@dataclass(eq=False, slots=True)
class _Job:
    """A run (or any call) waiting for a place in the pool, or walking in one."""

    call: Callable[[], Any]
    future: "Future[Any]"
    trace_context: otel_context.Context
    # Cancelling it gives its place back at once (None: only its end does).
    control: RunControl | None
    # Called once the pool is done with the run: at its end, or at once when it is cancelled.
    ended: Callable[[], None] | None
    # Its place (and its admission) given back: its walk ended or its run was cancelled.
    settled: bool = False


class _Pool:
    """C4C_WORKER_THREADS places where runs walk, and C4C_MAX_QUEUED more runs waiting for one.

    A run walks on its place's thread (a procedure thread, workflows.attempts): no second thread
    waits for it. Its place is given back when its walk ends or, if it was submitted with its
    RunControl, the moment it is cancelled: a procedure that ignores the cancel keeps only its
    own thread (Python cannot stop one), never a place, and the next run starts on a new thread.
    A cancelled run's future answers None at once, whatever its walk still does; its writes are
    refused by the cancelled row. A thread whose run ended takes the next waiting run itself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: deque[_Job] = deque()
        self._admitted = 0  # runs walking or waiting, each admitted by reserve()
        self._walking = 0  # places taken

    def reserve(self) -> None:
        """Take a place in the pool before writing anything, so a full pool leaves no row."""
        limit = app_settings.C4C_WORKER_THREADS + app_settings.C4C_MAX_QUEUED
        with self._lock:
            if self._admitted >= limit:
                raise QueueFull("Too many executions are running or queued; retry later")
            self._admitted += 1

    def release(self) -> None:
        """Give back a reservation that was never submitted."""
        with self._lock:
            self._admitted -= 1

    def submit(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        reserved: bool = False,
        control: RunControl | None = None,
        ended: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> "Future[T | None]":
        """Walk `fn(*args, **kwargs)` in a place, now or when one is free; its future answers
        what it returns, or None if `control` was cancelled first. `ended` is called once, when
        the pool is done with it."""
        if not reserved:
            self.reserve()
        # Only the trace context crosses into the pool thread (the run's root span links to the
        # request that started it); copying every contextvar would share Django's per-context
        # connection storage between threads.
        job = _Job(
            functools.partial(fn, *args, **kwargs),
            Future(),
            otel_context.get_current(),
            control,
            ended,
        )
        # Running from now on, for whoever waits: a waiting client that goes away cancels its
        # wait, never the run (which keeps its place until it ends).
        job.future.set_running_or_notify_cancel()
        metrics.QUEUE_DEPTH.inc()
        with self._lock:
            start = self._walking < app_settings.C4C_WORKER_THREADS
            if start:
                self._walking += 1
            else:
                self._waiting.append(job)
        if start:
            self._start(job)
        return job.future

    def _start(self, job: _Job) -> None:
        try:
            procedure_threads.submit(functools.partial(self._work, job))
        except BaseException:  # no thread to be had (the interpreter is shutting down)
            metrics.QUEUE_DEPTH.dec()
            self._give_back(job)
            raise

    def _work(self, job: _Job | None) -> None:
        """Walk the job, then each waiting run its place passes to, on this thread."""
        while job is not None:
            try:
                self._walk(job)
            except BaseException:  # the pool's own failure: its place must still go back
                logger.exception("The run pool failed around a run")
            job = self._settle(job)

    def _walk(self, job: _Job) -> None:
        """Walk the job; its future answers its outcome unless a cancel answered first (the
        signal settles which: the walk's end or the cancel)."""
        metrics.QUEUE_DEPTH.dec()
        signal = AttemptSignal()
        watched = job.control is not None and job.control.watch(signal)
        if watched:
            signal.on_stop(functools.partial(self._cancelled, job))
        close_old_connections()
        token = otel_context.attach(job.trace_context)
        try:
            value = job.call()
        except BaseException as exc:
            signal.finish(error=exc)
            if signal.reason is None:
                job.future.set_exception(exc)
        else:
            signal.finish(value)
            if signal.reason is None:
                job.future.set_result(value)
        finally:
            otel_context.detach(token)
            if watched and job.control is not None:
                job.control.unwatch(signal)
            _release_connections()

    def _cancelled(self, job: _Job) -> None:
        """The run was cancelled while it walked: its place and its caller are free now."""
        self._give_back(job)
        job.future.set_result(None)

    def _settle(self, job: _Job) -> _Job | None:
        """Give the job's place back, once (its walk ended, or its run was cancelled): returns
        the waiting run the place passes to, None when the place is free or was given already."""
        with self._lock:
            if job.settled:
                return None
            job.settled = True
            self._admitted -= 1
            following = self._waiting.popleft() if self._waiting else None
            if following is None:
                self._walking -= 1
        if job.ended is not None:
            job.ended()
        return following

    def _give_back(self, job: _Job) -> None:
        """Settle the job off its walk's thread: the next waiting run starts on a thread of its
        own."""
        following = self._settle(job)
        if following is not None:
            self._start(following)


pool = _Pool()


def _walked(walk: Callable[[], T]) -> T:
    """A run's walk on the thread that walks it, that thread's connections released after."""
    try:
        return walk()
    finally:
        _release_connections()


def walk_off(run: Execution, job: Callable[..., Any], /, **kwargs: Any) -> runtime.RunOutput:
    """Walk a held run (`job(**kwargs)`: runtime.resume) on a thread of its own while this
    Celery task's thread waits for it to end or for the run to be cancelled (or lost).

    On a cancel the task is free at once and answers with the run as stored: a procedure that
    ignores the cancel keeps only its abandoned walk busy (Python cannot stop a thread), whose
    writes the cancelled row refuses, never the worker process. One thread hop per run.
    """
    held = leases.runs.hold(run)
    try:
        walked: runtime.RunOutput = run_attempt(
            functools.partial(_walked, functools.partial(job, **kwargs)),
            AttemptSignal(),
            control=held.control,
            deadline=None,
            expired=TimeoutError,
        )
        return walked
    except CancelledError:
        return runtime.stored_output(run)
    finally:
        leases.runs.release(run.execution_id)


def _queue_here(run: Execution, job: Callable[..., Any], /, **kwargs: Any) -> None:
    """Queue a recorded run (its pool place reserved) on this process's pool, held from now on:
    its lease is renewed while it waits, and a cancel stops it before it starts or frees its
    place at once while it walks."""
    held = leases.runs.hold(run)
    try:
        pool.submit(
            job,
            reserved=True,
            control=held.control,
            ended=functools.partial(leases.runs.release, run.execution_id),
            **kwargs,
        )
    except BaseException:
        leases.runs.release(run.execution_id)
        raise


class _Publish:
    """One message on its way to the broker; abandoned when its caller stopped waiting."""

    __slots__ = ("abandoned", "args", "done")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args
        self.done: Future[None] = Future()
        self.abandoned = False


class _Publisher:
    """Sends run messages from one thread of its own, so a broker that hangs holds that thread
    and nothing else: each caller waits at most C4C_BROKER_TIMEOUT, and messages whose callers
    gave up are never sent. A transport's own socket timeouts (c4c_site.settings) end the hung
    send; this bound holds for any Celery app and transport."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Publish] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def publish(self, execution_id: str, input: dict[str, Any] | None = None) -> None:
        """Send the run's message (message_args)."""
        job = _Publish(message_args(execution_id, input))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="c4c-publisher", daemon=True
                )
                self._thread.start()
        self._jobs.put(job)
        try:
            job.done.result(timeout=app_settings.C4C_BROKER_TIMEOUT)
        except FutureTimeout:
            job.abandoned = True
            raise BrokerUnavailable(
                f"The Celery broker did not take the run within "
                f"{app_settings.C4C_BROKER_TIMEOUT:g} s; retry later"
            ) from None
        except Exception as exc:
            raise BrokerUnavailable(f"The Celery broker refused the run: {exc}") from exc

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job.abandoned or not job.done.set_running_or_notify_cancel():
                continue
            try:
                celery_app().send_task(TASK_NAME, args=job.args)
            except Exception as exc:
                job.done.set_exception(exc)
            else:
                job.done.set_result(None)

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._jobs = queue.SimpleQueue()
        self._thread = None


publisher = _Publisher()


def celery_app() -> Any:
    """The app runs are sent with (C4C_CELERY_APP), imported here, at the first send: a process
    that never sends a run never loads Celery (5.5 MiB of a web process, BENCHMARKS.md)."""
    path = app_settings.C4C_CELERY_APP
    if path:
        return import_string(path)
    from celery import current_app

    return current_app


def message_args(execution_id: str, input: dict[str, Any] | None) -> tuple[Any, ...]:
    """executions.run_execution's arguments: the run's id, and a new run's input sealed (None:
    the stored one)."""
    return (execution_id,) if input is None else (execution_id, None, None, secrets.seal(input))


def _start_on_celery(
    record: Callable[[str | None], Execution], input: dict[str, Any] | None = None
) -> Execution:
    """Record the run unowned (the worker that takes it claims it), then queue it.

    The row commits before the message leaves, so a worker always finds it. When the broker does
    not take the message in time the run is deleted: nothing stays running with nobody to run it,
    and the same request can be sent again.
    """
    execution = record("")
    try:
        publisher.publish(execution.execution_id, input)
    except BrokerUnavailable as exc:
        if runtime.discard_unqueued(execution, exc):
            raise
        logger.warning(
            "The broker seemed down but a worker claimed %s: it runs", execution.execution_id
        )
    return execution


def begin(record: Callable[[str | None], Execution]) -> Execution:
    """Record a run through `record(owner)` and have it run from what it recorded (resume): on
    this process's pool (a place reserved before anything is written, so a full pool leaves no
    row) or on a Celery worker. Raises QueueFull or BrokerUnavailable; the run's start events
    are `record`'s to send."""
    if app_settings.C4C_DISPATCH == "celery":
        return _start_on_celery(record)
    pool.reserve()
    try:
        execution = record(None)
    except BaseException:
        pool.release()
        raise
    _queue_here(execution, runtime.resume, execution=execution)
    return execution


async def execute_now(
    *,
    definition: WorkflowDefinition,
    input: dict[str, Any],
    execution_id: str | None,
    idempotency_key: str | None = None,
) -> str:
    """Run to the end on the pool and return the c4c result as JSON text (raises QueueFull when
    full); the text is the one the workflow.result event carried, encoded once. A cancel answers
    at once with the run as stored, whatever its procedures do.

    The run is started and walked on its place's thread: on SQLite a row written on a second
    connection makes the walk's connection read again every page it had cached (strace: 59
    reads of the database file per waited run, 7 with one connection).
    """
    control = RunControl()
    started: Execution | None = None

    def start_and_walk() -> runtime.RunOutput:
        nonlocal started
        redactor = Redactor.for_run(definition, input)
        started = runtime.start(
            definition=definition,
            input=input,
            execution_id=execution_id,
            idempotency_key=idempotency_key,
            redactor=redactor,
        )
        # Held once its row exists (an id is held by one run), with the control the pool watches.
        leases.runs.hold(started, control)
        return runtime.run(execution=started, definition=definition, input=input, redactor=redactor)

    def ended() -> None:
        if started is not None:
            leases.runs.release(started.execution_id)

    walked = pool.submit(start_and_walk, control=control, ended=ended)
    output = await asyncio.wrap_future(walked)
    if output is None:
        assert started is not None  # a cancel reaches only a held run
        output = await sync_to_async(runtime.stored_output, thread_sensitive=False)(started)
    return output.json


async def start_in_background(
    *,
    definition: WorkflowDefinition,
    input: dict[str, Any],
    execution_id: str | None,
    idempotency_key: str | None = None,
) -> Execution:
    """Record the start now and leave the run to the pool or to Celery; returns at once."""
    # Made off the event loop, with the row; a run walked here is redacted by the same one.
    redactor: Redactor | None = None

    def record(owner: str | None) -> Execution:
        nonlocal redactor
        redactor = Redactor.for_run(definition, input)
        return runtime.start(
            definition=definition,
            input=input,
            execution_id=execution_id,
            owner=owner,
            idempotency_key=idempotency_key,
            redactor=redactor,
        )

    if app_settings.C4C_DISPATCH == "celery":
        return await sync_to_async(_start_on_celery, thread_sensitive=False)(record, input)
    pool.reserve()
    try:
        execution = await sync_to_async(record, thread_sensitive=False)(None)
    except BaseException:
        pool.release()
        raise
    run = functools.partial(runtime.run, definition=definition, input=input, redactor=redactor)
    _queue_here(execution, run, execution=execution)
    return execution


def sweep(*, requeue: bool | None = None) -> list[str]:
    """Take over every run whose lease lapsed, and every waiting run that is due, and keep it
    going; returns their ids.

    A lapsed lease means its owner stopped renewing it (the process died, whatever its host,
    port or pid) or a queued run was never claimed (its message was lost); a waiting run's
    lease expiry is its due time (its sleep ended, its wait timed out, its signal or child came),
    and taking it over moves it back to running. Each is taken with a
    compare-and-set on the owner and expiry that were read, so when several processes sweep at
    once exactly one takes each run. Taken runs resume on this process's pool, as many as it has
    room for, or (`requeue`, default: C4C_DISPATCH is celery) go back to the broker for a worker
    to claim and resume.
    """
    if requeue is None:
        requeue = app_settings.C4C_DISPATCH == "celery"
    taken: list[str] = []
    for execution in Execution.objects.lapsed(timezone.now(), limit=SWEEP_BATCH):
        previous, lapsed_at = execution.lease_owner, execution.lease_expires_at
        woken = execution.status == ExecutionStatus.WAITING
        if requeue:
            if store.execution_take_over(execution=execution, owner="") is None:
                continue
            if woken:
                runtime.announce_woken(execution)
            try:
                publisher.publish(execution.execution_id)
            except BrokerUnavailable:
                logger.warning(
                    "Could not queue %s again: broker unavailable", execution.execution_id
                )
                break
        else:
            try:
                pool.reserve()
            except QueueFull:
                break
            if store.execution_take_over(execution=execution, owner=store.process_owner()) is None:
                pool.release()
                continue
            if woken:
                runtime.announce_woken(execution)
            _queue_here(execution, runtime.resume, execution=execution, previous_owner=previous)
        if woken:
            logger.info("Woke execution %s (due at %s)", execution.execution_id, lapsed_at)
        else:
            logger.warning(
                "Took over execution %s from %s (lease lapsed at %s)",
                execution.execution_id,
                previous or "its queue",
                lapsed_at,
            )
        taken.append(execution.execution_id)
    return taken


def _after_fork_in_child() -> None:
    publisher.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
