"""Running one procedure attempt so that its run can stop waiting for it.

The thread that walks a run (or a parallel branch) hands the attempt to a procedure thread and
waits for the first of: the procedure returns, the run is cancelled, the deadline passes. Python
cannot stop a thread, so a sync procedure that ignores its stop signal is abandoned: it finishes
on its procedure thread, which then serves other attempts, and its result is dropped. The walking
thread is never held past a timeout or a cancel.

Procedure threads are reused (starting a thread costs more than running a cheap procedure), and a
new one starts whenever none is idle, so an abandoned attempt never delays another run's.
"""

import contextvars
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .context import AttemptSignal, RunControl


class ProcedureThreads:
    """Daemon threads that run attempts: an idle one if there is one, else a new one.

    At most `max_idle` threads wait for work; one idle for `idle_seconds` ends. `working()`
    counts the attempts still going, abandoned ones included (a shutdown or a test waits on it).
    """

    def __init__(self, *, max_idle: int = 16, idle_seconds: float = 60.0) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._names = itertools.count(1)
        self._working = 0

    def working(self) -> int:
        with self._lock:
            return self._working

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._working += 1
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # that thread is promised this job
        self._jobs.put(job)
        if spawn:
            name = f"c4c-procedure-{next(self._names)}"
            threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # no job is promised to this thread: it may end
                        self._idle -= 1
                        return
                continue
            try:
                job()
            finally:
                with self._lock:
                    self._working -= 1
            with self._lock:
                if self._idle >= self._max_idle:
                    return
                self._idle += 1


procedure_threads = ProcedureThreads()


def run_attempt(
    call: Callable[[], Any],
    signal: AttemptSignal,
    *,
    control: RunControl | None,
    deadline: float | None,
    expired: Callable[[], BaseException],
) -> Any:
    """Run `call` on a procedure thread; return its value or raise its error.

    Raises the stop reason instead when the run is cancelled (CancelledError, from `control`) or
    `deadline` (time.monotonic()) passes first (`expired()`), whether or not the procedure ever
    notices.
    """
    if control is not None and not control.watch(signal):
        signal.stop(control.error())
        return signal.outcome()
    try:
        context = contextvars.copy_context()  # the caller's: its span parents the procedure's
        procedure_threads.submit(lambda: context.run(_settle, call, signal))
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not signal.wait(timeout):
            signal.stop(expired())
        return signal.outcome()
    finally:
        if control is not None:
            control.unwatch(signal)


def _settle(call: Callable[[], Any], signal: AttemptSignal) -> None:
    try:
        value = call()
    except BaseException as exc:  # the waiting thread re-raises whatever it was
        signal.finish(error=exc)
    else:
        signal.finish(value)
