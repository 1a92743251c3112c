"""What a running procedure knows about its run, and how the run's owner stops it.

A procedure gets a ProcedureContext by declaring a second parameter annotated with it, or by
calling `current_context()` while it runs:

    @procedure("billing.charge")
    def charge(data: Charge, ctx: ProcedureContext) -> Receipt:
        ctx.raise_if_cancelled()
        return gateway.charge(data.amount, idempotency_key=ctx.idempotency_key)

Stopping is cooperative for sync code: `ctx.cancelled` turns true, `ctx.sleep` wakes at once and
raises, and `ctx.on_cancel(callback)` runs a callback (close a socket to end a blocking read). An
async procedure's task is cancelled. A sync procedure that ignores all of it is abandoned: it
keeps its procedure thread until it returns, its result is dropped, and the run moves on.

The owner of a run (the runtime) passes a RunControl to run_workflow and calls `cancel()` from any
thread: every attempt running in that run, parallel branches included, is stopped with
CancelledError, backoff waits end, and run_workflow returns a cancelled result.
"""

import hashlib
import threading
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .errors import CancelledError


class AttemptSignal:
    """How one procedure attempt ends: the procedure returns (or raises), or it is stopped first.

    Whichever comes first settles the attempt; the other is ignored, so a procedure stopped by a
    timeout or cancel cannot report a late result.
    """

    __slots__ = (
        "_callbacks",
        "_done",
        "_error",
        "_lock",
        "_settled",
        "_stopped",
        "_value",
        "reason",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = False
        # Held until the attempt is settled: a bare lock is the cheapest thing a thread can wait
        # on (an Event builds a Condition and a fresh lock per wait), and this wait is per node.
        self._done = threading.Lock()
        self._done.acquire()
        self._stopped: threading.Event | None = None  # made when a procedure first waits on it
        self._callbacks: list[Callable[[], None]] | None = []
        self._value: Any = None
        self._error: BaseException | None = None
        self.reason: BaseException | None = None

    def stop(self, reason: BaseException) -> bool:
        """Stop the attempt with `reason`; False when the procedure had already finished."""
        with self._lock:
            if self._settled:
                return False
            self._settled, self.reason = True, reason
            stopped, callbacks, self._callbacks = self._stopped, self._callbacks, None
        self._done.release()
        if stopped is not None:
            stopped.set()
        for callback in callbacks or ():
            callback()
        return True

    def finish(self, value: Any = None, error: BaseException | None = None) -> None:
        """The procedure's own outcome; dropped when the attempt was stopped first."""
        with self._lock:
            if self._settled:
                return
            self._settled, self._value, self._error, self._callbacks = True, value, error, None
        self._done.release()

    def wait(self, timeout: float | None) -> bool:
        """Wait until the attempt is settled; False when `timeout` seconds passed first."""
        if not self._done.acquire(True, -1 if timeout is None else timeout):
            return False
        self._done.release()  # settled for good: a later wait returns at once
        return True

    def outcome(self) -> Any:
        """The procedure's value, or raise its error or the reason it was stopped."""
        if self.reason is not None:
            raise self.reason
        if self._error is not None:
            raise self._error
        return self._value

    def wait_stopped(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once when stopped; True when stopped."""
        with self._lock:
            if self.reason is not None:
                return True
            if self._stopped is None:
                self._stopped = threading.Event()
            stopped = self._stopped
        return stopped.wait(seconds)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the attempt is stopped (at once if it already was)."""
        with self._lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
            stopped = self.reason is not None
        if stopped:
            callback()


class _Unstoppable(AttemptSignal):
    """The signal of an attempt nobody can stop (no RunControl, no time limit)."""

    __slots__ = ()

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Never stopped, so nothing to keep: a kept callback would only leak."""


_UNSTOPPABLE = _Unstoppable()


class ProcedureContext:
    """The run, node and attempt a procedure is running for, and its stop signal."""

    __slots__ = ("_signal", "attempt", "execution_id", "node_id", "visit")

    def __init__(
        self,
        *,
        execution_id: str,
        node_id: str,
        attempt: int = 1,
        visit: int = 1,
        signal: AttemptSignal | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.node_id = node_id
        self.attempt = attempt
        self.visit = visit
        self._signal = signal if signal is not None else _UNSTOPPABLE

    @classmethod
    def standalone(cls, procedure_name: str) -> "ProcedureContext":
        """For a call outside a run (the /rpc endpoint, a test): its own id, never stopped."""
        return cls(execution_id=f"standalone-{uuid.uuid4().hex}", node_id=procedure_name)

    @property
    def idempotency_key(self) -> str:
        """Stable for this node run across its attempts and across a resume after a crash.

        Derived from the execution id, the node id and the visit (the nth time the run reached
        the node), not the attempt: a retry or a resumed run must present the same key to the
        service it calls, so that the service can recognise a request it already carried out
        (Temporal recommends the same: run id + activity id, never the attempt).
        """
        return _key(self.execution_id, self.node_id, str(self.visit))

    @property
    def attempt_key(self) -> str:
        """Unique to this attempt: execution id + node id + visit + attempt number."""
        return _key(self.execution_id, self.node_id, str(self.visit), str(self.attempt))

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled or this attempt timed out: stop and return."""
        return self._signal.reason is not None

    def raise_if_cancelled(self) -> None:
        """Raise CancelledError (or TimeoutError, when the attempt timed out) once stopped."""
        reason = self._signal.reason
        if reason is not None:
            raise type(reason)(*reason.args)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake and raise as raise_if_cancelled does the moment the attempt stops."""
        if self._signal.wait_stopped(max(0.0, seconds)):
            self.raise_if_cancelled()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` from the stopping thread when the attempt stops (now if it did)."""
        self._signal.on_stop(callback)


def _key(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"c4c-{digest[:40]}"


_current: ContextVar[ProcedureContext | None] = ContextVar("c4c_procedure_context", default=None)


def current_context() -> ProcedureContext:
    """The context of the procedure running on this thread (or in this task)."""
    context = _current.get()
    if context is None:
        raise LookupError("current_context() is only available while a procedure runs")
    return context


def enter_context(context: ProcedureContext) -> Any:
    """Make `context` current; returns the token for leave_context."""
    return _current.set(context)


def leave_context(token: Any) -> None:
    _current.reset(token)


class RunControl:
    """The owner's handle on a run: `cancel()` from any thread stops it.

    The engine registers each procedure attempt it starts, so a cancel reaches every attempt in
    flight (parallel branches included) and every backoff wait of the run.
    """

    __slots__ = ("_attempts", "_cancelled", "_lock", "message")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._attempts: set[AttemptSignal] = set()
        self.message = ""

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self, message: str = "Execution cancelled") -> None:
        """Stop the run: each attempt in flight gets CancelledError(message). Idempotent."""
        with self._lock:
            if self._cancelled.is_set():
                return
            self.message = message
            self._cancelled.set()
            attempts, self._attempts = self._attempts, set()
        for attempt in attempts:
            attempt.stop(self.error())

    def error(self) -> CancelledError:
        return CancelledError(self.message)

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once on cancel; True when cancelled."""
        return self._cancelled.wait(seconds)

    def watch(self, attempt: AttemptSignal) -> bool:
        """Stop `attempt` on cancel; False (and not watched) when the run is already cancelled."""
        with self._lock:
            if self._cancelled.is_set():
                return False
            self._attempts.add(attempt)
            return True

    def unwatch(self, attempt: AttemptSignal) -> None:
        with self._lock:
            self._attempts.discard(attempt)
