"""What a procedure logs while it runs, captured per node attempt (README, "Logs per node").

Capture: one handler (CaptureHandler) sits on the root logger, installed once per process (and
put back if a logging config replaced the root's handlers). For each record it asks a context
variable which attempt is capturing; the engine sets that variable around each procedure call
(`capture()`), on the walking thread, and the procedure thread of an attempt with a deadline
inherits it with the rest of the attempt's context. So a record lands in the attempt whose code
made it: never in another run's, another branch's or another attempt's, and records made outside
any attempt (the server, the store, other runs' engine code) pass the handler by. An attempt
that was abandoned (its timeout passed, its run was cancelled) and goes on logging writes into a
closed buffer: those records are not kept.

What is captured: every record that reaches the root logger while the attempt runs, i.e. what
the logging config lets through (the project's root level is LOG_LEVEL, INFO by default; a
logger with propagate=False keeps its records to itself). `print` is not captured: stdout is one
stream for the whole process (servers, test runners, other runs' threads write to it too) and
taking it over would mean replacing sys.stdout for everyone; a procedure that wants its words
kept logs them. Threads a procedure starts itself do not inherit the attempt (Python copies no
context into a new thread) unless it runs them in `contextvars.copy_context()`.

Each line is redacted with the run's Redactor (workflows.secrets) - the arguments structurally
(a dict's secret keys), then the formatted message and any traceback as text - and bounded: a
message is cut at MAX_LINE_CHARS, and an attempt keeps at most C4C_MAX_LOG_LINES lines and
C4C_MAX_LOG_BYTES bytes of messages; what does not fit is counted and reported by one last line,
"N more lines dropped" (its `dropped` = N). Each kept line is also added to the attempt's span
(the procedure span) as an OpenTelemetry event named "log".

Delivery: the engine gives each AttemptLog a `deliver` callback (its observer's node_logs). The
lines still pending when the attempt ends are delivered by the engine on the walking thread
before it reports the attempt's outcome. While a long attempt runs, the process's LogPump thread
delivers what it logged every LOG_BATCH_SECONDS, so its lines are seen live and a chatty
procedure costs one delivery per batch, not one per line. Deliveries of one attempt never
overlap and come in line order. The pump runs only while some attempt has lines waiting; a
failure of a delivery it makes is kept and raised by the engine when the attempt ends.
"""

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import trace

from .conf import app_settings
from .secrets import Redactor

# A longer message is cut here (the rest would rarely be read in a panel and costs every reader).
MAX_LINE_CHARS = 4096
CUT_MARK = "…(cut)"
# How often the pump delivers a running attempt's new lines.
LOG_BATCH_SECONDS = 0.25
# How long the pump thread waits with nothing to deliver before it ends.
PUMP_IDLE_SECONDS = 2.0
SPAN_EVENT = "log"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One captured line; `dropped` is set only on the last line of an attempt that had to drop
    lines, and says how many."""

    number: int
    level: str
    logger: str
    message: str
    at: datetime
    dropped: int = 0


Deliver = Callable[[list[LogLine]], None]


class AttemptLog:
    """The lines of one procedure attempt: bounded, redacted, handed out each once."""

    def __init__(
        self,
        *,
        deliver: Deliver,
        redactor: Redactor | None = None,
        span: trace.Span | None = None,
        max_lines: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.deliver = deliver
        self.redactor = redactor
        self.span = span
        self.max_lines = app_settings.C4C_MAX_LOG_LINES if max_lines is None else max_lines
        self.max_bytes = app_settings.C4C_MAX_LOG_BYTES if max_bytes is None else max_bytes
        self.kept = 0
        self.bytes = 0
        self.dropped = 0
        self.closed = False
        self.watched = False  # handed to the pump (only an attempt that logged is)
        # A delivery made by the pump that failed: the engine raises it when the attempt ends.
        self.error: BaseException | None = None
        self._pending: list[LogLine] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._due = 0.0

    def add(self, record: logging.LogRecord) -> None:
        """Keep `record` as a line, or count it dropped once the attempt's budget is spent."""
        message = self._message(record)
        size = len(message.encode("utf-8", "replace"))
        with self._lock:
            if self.closed:
                return
            if self.kept >= self.max_lines or self.bytes + size > self.max_bytes:
                self.dropped += 1
                return
            self.kept += 1
            self.bytes += size
            line = LogLine(
                number=self.kept,
                level=record.levelname,
                logger=record.name,
                message=message,
                at=datetime.fromtimestamp(record.created, UTC),
            )
            self._pending.append(line)
            if self.span is not None and self.span.is_recording():
                self.span.add_event(
                    SPAN_EVENT,
                    {"log.level": line.level, "log.logger": line.logger, "log.message": message},
                    timestamp=int(record.created * 1e9),
                )
            first = len(self._pending) == 1
        if first and not self.watched:
            self.watched = True
            pump.watch(self)

    def _message(self, record: logging.LogRecord) -> str:
        args = record.args
        redactor = self.redactor
        if redactor is not None and args:
            redacted = redactor.redact(args)
            args = tuple(redacted) if isinstance(args, tuple) else redacted
        try:
            text = str(record.msg) % args if args else str(record.msg)
        except (TypeError, ValueError):
            text = f"{record.msg} {args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text = (
                f"{text}\n{record.exc_text or logging.Formatter().formatException(record.exc_info)}"
            )
        if redactor is not None:
            text = redactor.redact_text(text)
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + CUT_MARK
        return text

    def close(self) -> None:
        """The attempt has ended: nothing more is kept; the dropped marker becomes pending."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self.dropped:
                marker = LogLine(
                    number=self.kept + 1,
                    level="WARNING",
                    logger="c4c.logs",
                    message=f"{self.dropped} more lines dropped "
                    f"(an attempt keeps {self.max_lines} lines, {self.max_bytes} bytes)",
                    at=datetime.now(UTC),
                    dropped=self.dropped,
                )
                self._pending.append(marker)
                if self.span is not None and self.span.is_recording():
                    self.span.add_event("log.dropped", {"log.dropped": self.dropped})

    def take(self) -> list[LogLine]:
        """The lines not handed out yet, oldest first."""
        with self._lock:
            lines, self._pending = self._pending, []
        return lines

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def flush(self, *, wait: bool) -> None:
        """Deliver the pending lines. `wait`: the engine's final flush waits for a pump delivery
        in flight; the pump skips an attempt that is being flushed."""
        if not self._flushing.acquire(blocking=wait):
            return
        try:
            lines = self.take()
            if lines:
                self.deliver(lines)
        finally:
            self._flushing.release()

    def due(self, now: float) -> bool:
        """Whether the pump should deliver now (once per LOG_BATCH_SECONDS per attempt)."""
        if now < self._due:
            return False
        self._due = now + LOG_BATCH_SECONDS
        return True


_current: contextvars.ContextVar[AttemptLog | None] = contextvars.ContextVar(
    "c4c_attempt_log", default=None
)
# Records made while this thread delivers lines or adds a span event are not captured again.
_busy = threading.local()


class CaptureHandler(logging.Handler):
    """Routes each record to the attempt capturing in its context; ignores the rest.

    `handle` is overridden so that a record nobody captures costs one context variable read,
    without the handler lock every other record of the process would otherwise queue on.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        log = _current.get()
        if log is None or log.closed or getattr(_busy, "active", False):
            return False
        _busy.active = True
        try:
            log.add(record)
        except Exception:
            self.handleError(record)
        finally:
            _busy.active = False
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


_handler = CaptureHandler()


def install_capture() -> None:
    """Put the capture handler on the root logger (idempotent; cheap enough to call per attempt,
    so that a logging config applied later, which replaces the root's handlers, is repaired)."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)


@contextlib.contextmanager
def capture(log: AttemptLog) -> Iterator[AttemptLog]:
    """Capture what is logged in this context (and the procedure thread that copies it) into
    `log`; closed on the way out, so an abandoned attempt's later records are not kept."""
    install_capture()
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)
        log.close()
        if log.watched:
            pump.forget(log)


def finish(log: AttemptLog) -> None:
    """The attempt has ended (capture() has closed it): deliver what is left, on this thread,
    then raise what a delivery by the pump raised, if anything did."""
    _busy.active = True
    try:
        log.flush(wait=True)
    finally:
        _busy.active = False
    if log.error is not None:
        raise log.error


class LogPump:
    """One daemon thread per process that delivers running attempts' lines in batches.

    It runs only while some attempt has lines waiting, and ends after PUMP_IDLE_SECONDS with
    none. `on_thread_end` callbacks run on the pump thread before it ends (the executions app
    closes the database connection the deliveries opened there).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: set[AttemptLog] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_thread_end: list[Callable[[], None]] = []

    def watch(self, log: AttemptLog) -> None:
        with self._lock:
            self._logs.add(log)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="c4c-log-pump", daemon=True)
                self._thread.start()

    def forget(self, log: AttemptLog) -> None:
        with self._lock:
            self._logs.discard(log)

    def _run(self) -> None:
        idle_since = time.monotonic()
        _busy.active = True
        try:
            while True:
                time.sleep(LOG_BATCH_SECONDS)
                with self._lock:
                    logs = [log for log in self._logs if not log.closed]
                    if not logs and time.monotonic() - idle_since > PUMP_IDLE_SECONDS:
                        self._thread = None
                        return
                if logs:
                    idle_since = time.monotonic()
                now = time.monotonic()
                for log in logs:
                    if log.pending and log.error is None and log.due(now):
                        try:
                            log.flush(wait=False)
                        except Exception as exc:
                            log.error = exc
        finally:
            _busy.active = False
            for callback in self.on_thread_end:
                callback()


pump = LogPump()
