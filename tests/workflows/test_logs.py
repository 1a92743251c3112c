"""Logs per node attempt (workflows.logs): captured in the attempt's context only, redacted,
bounded, delivered in batches while the attempt runs and before its outcome, and added to the
procedure span as events."""

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from pydantic import BaseModel, SecretStr

from workflows.context import ProcedureContext
from workflows.definitions import WorkflowDefinition
from workflows.engine import run_workflow
from workflows.logs import LOG_BATCH_SECONDS, MAX_LINE_CHARS, LogLine
from workflows.observer import RunResult
from workflows.registry import ProcedureRegistry, procedure
from workflows.secrets import REDACTED

from .helpers import RecordingObserver, chain

log = logging.getLogger("tests.workflows.logs")


class Count(BaseModel):
    n: int = 1
    pause_ms: int = 0


class Said(BaseModel):
    said: int = 0


class Login(BaseModel):
    user: str
    password: SecretStr


class LoggingObserver(RecordingObserver):
    """The recording observer with the node_logs hook: each delivery with its thread."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: list[dict[str, Any]] = []

    def node_logs(self, **kwargs: Any) -> None:
        self._record("node_logs", kwargs)
        with self._lock:
            self.deliveries.append({**kwargs, "thread": threading.current_thread().name})

    def lines(self, node_id: str) -> list[LogLine]:
        return [line for d in self.deliveries if d["node"].id == node_id for line in d["lines"]]


@pytest.fixture
def logging_registry(registry: ProcedureRegistry) -> ProcedureRegistry:
    @procedure("t.say", registry=registry)
    def say(data: Count) -> Said:
        for i in range(data.n):
            log.info("line %d of %d", i + 1, data.n)
            if data.pause_ms:
                time.sleep(data.pause_ms / 1000)
        return Said(said=data.n)

    @procedure("t.say_async", registry=registry)
    async def say_async(data: Count) -> Said:
        await asyncio.sleep(0)
        log.warning("from a coroutine")
        return Said(said=1)

    @procedure("t.login", registry=registry)
    def login(data: Login) -> Said:
        secret = data.password.get_secret_value()
        log.info("logging in %s with %s", data.user, secret)
        log.info("as a dict: %(password)s", {"password": secret})
        return Said(said=2)

    @procedure("t.fail_loudly", registry=registry)
    def fail_loudly(data: Count, ctx: ProcedureContext) -> Said:
        log.error("attempt %d is about to fail", ctx.attempt)
        raise ConnectionError("down")

    return registry


def run_with(
    observer: RecordingObserver,
    registry: ProcedureRegistry,
    definition: dict[str, Any],
    input: dict[str, Any] | None = None,
    execution_id: str = "logs",
) -> RunResult:
    return run_workflow(
        WorkflowDefinition.model_validate(definition),
        input,
        execution_id=execution_id,
        observer=observer,
        registry=registry,
    )


def test_a_procedures_log_lines_are_delivered_for_its_node_before_it_completes(
    logging_registry: ProcedureRegistry,
) -> None:
    observer = LoggingObserver()
    definition = chain(
        {"id": "quiet", "procedureName": "math.add", "config": {"a": 1, "b": 2}},
        {"id": "chatty", "procedureName": "t.say", "config": {"n": 3}},
    )
    result = run_with(observer, logging_registry, definition)
    assert result.status == "completed"
    lines = observer.lines("chatty")
    assert [(line.number, line.level, line.message) for line in lines] == [
        (1, "INFO", "line 1 of 3"),
        (2, "INFO", "line 2 of 3"),
        (3, "INFO", "line 3 of 3"),
    ]
    assert {line.logger for line in lines} == {"tests.workflows.logs"}
    assert observer.lines("quiet") == []  # a node that logs nothing is never delivered
    hooks = observer.node_hooks("chatty")
    assert hooks.index("node_logs") < hooks.index("node_completed")


def test_an_observer_without_the_hook_runs_logging_procedures_as_before(
    logging_registry: ProcedureRegistry,
) -> None:
    observer = RecordingObserver()
    definition = chain({"id": "chatty", "procedureName": "t.say", "config": {"n": 2}})
    assert run_with(observer, logging_registry, definition).status == "completed"


def test_records_from_other_threads_and_outside_the_attempt_never_land_in_a_node(
    logging_registry: ProcedureRegistry,
) -> None:
    observer = LoggingObserver()
    stop = threading.Event()

    def noise() -> None:
        while not stop.is_set():
            log.info("noise from elsewhere")
            time.sleep(0.001)

    other = threading.Thread(target=noise)
    other.start()
    try:
        definition = chain({"id": "chatty", "procedureName": "t.say", "config": {"n": 5}})
        run_with(observer, logging_registry, definition)
        log.info("after the run")
    finally:
        stop.set()
        other.join()
    assert [line.message for line in observer.lines("chatty")] == [
        f"line {i} of 5" for i in range(1, 6)
    ]


def test_parallel_branches_and_concurrent_runs_keep_their_own_lines(
    logging_registry: ProcedureRegistry,
) -> None:
    definition = {
        "id": "fan",
        "name": "fan",
        "startNode": "fork",
        "nodes": [
            {"id": "fork", "type": "parallel", "config": {"branches": ["a", "b"]}},
            {"id": "a", "type": "procedure", "procedureName": "t.say", "config": {"n": 4}},
            {"id": "b", "type": "procedure", "procedureName": "t.say", "config": {"n": 7}},
        ],
    }
    observers = [LoggingObserver() for _ in range(6)]
    threads = [
        threading.Thread(
            target=run_with, args=(obs, logging_registry, definition, None, f"run-{i}")
        )
        for i, obs in enumerate(observers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for obs in observers:
        assert [line.number for line in obs.lines("a")] == [1, 2, 3, 4]
        assert [line.message for line in obs.lines("b")][-1] == "line 7 of 7"
        assert len(obs.lines("b")) == 7
        assert {d["execution_id"] for d in obs.deliveries} == {obs.calls[0][1]["execution_id"]}


@pytest.mark.slow
def test_an_attempt_on_a_procedure_thread_is_captured_and_an_abandoned_one_stops_counting(
    logging_registry: ProcedureRegistry,
) -> None:
    observer = LoggingObserver()
    definition = chain(
        {"id": "timed", "procedureName": "t.say", "config": {"n": 2}, "timeoutMs": 5_000},
        {
            "id": "abandoned",
            "procedureName": "t.say",
            "config": {"n": 20, "pause_ms": 20},
            "timeoutMs": 100,
            "onError": "after",
        },
        {"id": "after", "procedureName": "math.add", "config": {"a": 1, "b": 1}},
    )
    result = run_with(observer, logging_registry, definition)
    assert result.status == "completed"
    assert [line.message for line in observer.lines("timed")] == ["line 1 of 2", "line 2 of 2"]
    kept = len(observer.lines("abandoned"))
    assert 1 <= kept < 20
    time.sleep(0.5)  # the abandoned procedure goes on logging on its thread: none of it is kept
    assert len(observer.lines("abandoned")) == kept


def test_an_async_procedure_is_captured(logging_registry: ProcedureRegistry) -> None:
    observer = LoggingObserver()
    run_with(observer, logging_registry, chain({"id": "co", "procedureName": "t.say_async"}))
    assert [line.message for line in observer.lines("co")] == ["from a coroutine"]


def test_each_attempt_has_its_own_lines(logging_registry: ProcedureRegistry) -> None:
    observer = LoggingObserver()
    definition = chain(
        {
            "id": "flaky",
            "procedureName": "t.fail_loudly",
            "retry": {"maxAttempts": 3, "initialIntervalMs": 0},
        }
    )
    result = run_with(observer, logging_registry, definition)
    assert result.status == "failed"
    by_attempt = [
        (d["attempt"], [line.message for line in d["lines"]]) for d in observer.deliveries
    ]
    assert by_attempt == [
        (1, ["attempt 1 is about to fail"]),
        (2, ["attempt 2 is about to fail"]),
        (3, ["attempt 3 is about to fail"]),
    ]
    hooks = observer.node_hooks("flaky")
    assert hooks[:3] == ["node_started", "node_logs", "node_attempt_failed"]


def test_secrets_are_redacted_in_messages_and_arguments(
    logging_registry: ProcedureRegistry,
) -> None:
    observer = LoggingObserver()
    definition = chain(
        {
            "id": "login",
            "procedureName": "t.login",
            "config": {"user": "ada", "password": "{{input.password}}"},
        }
    )
    run_with(observer, logging_registry, definition, {"password": "hunter2-very-secret"})
    messages = [line.message for line in observer.lines("login")]
    assert messages == [f"logging in ada with {REDACTED}", f"as a dict: {REDACTED}"]


def test_lines_past_the_caps_are_dropped_and_counted_in_a_last_line(
    logging_registry: ProcedureRegistry, settings: Any
) -> None:
    settings.C4C_MAX_LOG_LINES = 5
    observer = LoggingObserver()
    run_with(
        observer,
        logging_registry,
        chain({"id": "chatty", "procedureName": "t.say", "config": {"n": 12}}),
    )
    lines = observer.lines("chatty")
    assert [line.number for line in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[-1].dropped == 7
    assert lines[-1].message.startswith("7 more lines dropped")

    settings.C4C_MAX_LOG_LINES = 1000
    settings.C4C_MAX_LOG_BYTES = 40  # "line N of 12" is 12 bytes: three fit
    observer = LoggingObserver()
    run_with(
        observer,
        logging_registry,
        chain({"id": "chatty", "procedureName": "t.say", "config": {"n": 12}}),
    )
    lines = observer.lines("chatty")
    assert len(lines) == 4
    assert lines[-1].dropped == 9


def test_a_long_message_is_cut(registry: ProcedureRegistry) -> None:
    @procedure("t.shout", registry=registry)
    def shout(data: Count) -> Said:
        log.info("x" * (MAX_LINE_CHARS * 2))
        return Said()

    observer = LoggingObserver()
    run_with(observer, registry, chain({"id": "loud", "procedureName": "t.shout"}))
    (line,) = observer.lines("loud")
    assert len(line.message) < MAX_LINE_CHARS + 10
    assert line.message.endswith("(cut)")


@pytest.mark.slow
def test_a_long_attempt_delivers_batches_while_it_runs(logging_registry: ProcedureRegistry) -> None:
    observer = LoggingObserver()
    # 40 lines over ~1 s: a batch every LOG_BATCH_SECONDS, far fewer deliveries than lines.
    definition = chain(
        {"id": "slow", "procedureName": "t.say", "config": {"n": 40, "pause_ms": 25}}
    )
    run_with(observer, logging_registry, definition)
    deliveries = [d for d in observer.deliveries if d["node"].id == "slow"]
    assert [line.number for d in deliveries for line in d["lines"]] == list(range(1, 41))
    live = [d for d in deliveries if d["thread"] == "c4c-log-pump"]
    assert len(live) >= 2, "lines were delivered while the attempt ran"
    assert len(deliveries) <= 1 + 1.0 / LOG_BATCH_SECONDS * 2


def test_a_failing_log_delivery_fails_the_run(logging_registry: ProcedureRegistry) -> None:
    class Refusing(LoggingObserver):
        def node_logs(self, **kwargs: Any) -> None:
            raise RuntimeError("cannot record logs")

    with pytest.raises(RuntimeError, match="cannot record logs"):
        run_with(Refusing(), logging_registry, chain({"id": "c", "procedureName": "t.say"}))


def test_log_lines_are_events_of_the_procedure_span(
    logging_registry: ProcedureRegistry, spans: Callable[[str], list[ReadableSpan]]
) -> None:
    observer = LoggingObserver()
    result = run_with(
        observer,
        logging_registry,
        chain({"id": "chatty", "procedureName": "t.say", "config": {"n": 2}}),
    )
    (procedure_span,) = [s for s in spans(result.trace_id) if s.name == "t.say"]
    events = [(e.name, dict(e.attributes or {})) for e in procedure_span.events]
    assert events == [
        ("log", {"log.level": "INFO", "log.logger": log.name, "log.message": "line 1 of 2"}),
        ("log", {"log.level": "INFO", "log.logger": log.name, "log.message": "line 2 of 2"}),
    ]
