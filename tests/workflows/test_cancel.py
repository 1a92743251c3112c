"""Cancelling a run through its RunControl stops the work, not only the record of it."""

import asyncio
import threading
import time
from collections.abc import Callable

from pydantic import BaseModel

from workflows.context import ProcedureContext, RunControl
from workflows.registry import procedure

from .helpers import Background, RecordingObserver, chain

RETURNS_WITHIN_S = 1.0


class Ms(BaseModel):
    ms: int = 0


def _cancel_once(control: RunControl, ready: Callable[[], bool]) -> float:
    """Cancel as soon as the run has reached the point under test (never a guessed delay)."""
    deadline = time.monotonic() + RETURNS_WITHIN_S
    while not ready():
        assert time.monotonic() < deadline, "the run never reached the point to cancel at"
        time.sleep(0.002)
    control.cancel()
    return time.monotonic()


def _started(observer: RecordingObserver, *node_ids: str) -> Callable[[], bool]:
    """Whether each node has started (its procedure is being called)."""
    return lambda: all("node_started" in observer.node_hooks(node_id) for node_id in node_ids)


def test_an_async_procedure_is_cancelled(run, registry) -> None:
    waiting, cancelled = threading.Event(), threading.Event()

    @procedure("t.async_wait", registry=registry)
    async def async_wait(data: Ms) -> Ms:
        waiting.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return data

    control = RunControl()
    background = Background(
        lambda: run(
            chain({"id": "w", "procedureName": "t.async_wait"}), control=control, registry=registry
        )
    )
    cancelled_at = _cancel_once(control, waiting.is_set)
    result = background.join(RETURNS_WITHIN_S)
    assert result is not None
    assert result.status == "cancelled"
    assert cancelled.wait(RETURNS_WITHIN_S), "the task was not cancelled"
    assert time.monotonic() - cancelled_at < RETURNS_WITHIN_S


def test_cancel_reaches_every_parallel_branch(run, observer) -> None:
    control = RunControl()
    definition = chain(
        {"id": "fan", "type": "parallel", "config": {"branches": ["a", "b"]}, "next": "after"},
        {"id": "a", "procedureName": "test.ctx_sleep", "config": {"ms": 60_000}, "next": None},
        {"id": "b", "procedureName": "test.async_sleep", "config": {"ms": 60_000}, "next": None},
        {"id": "after", "type": "sequential"},
    )
    background = Background(lambda: run(definition, control=control))
    cancelled_at = _cancel_once(control, _started(observer, "a", "b"))
    result = background.join(RETURNS_WITHIN_S)
    assert result is not None
    assert time.monotonic() - cancelled_at < RETURNS_WITHIN_S
    assert result.status == "cancelled"
    assert {observer.failure(n)["error"].name for n in ("fan", "a", "b")} == {"CancelledError"}
    assert "after" not in result.nodes_executed
    assert observer.branch_threads_finished == 2


def test_cancel_ends_a_backoff_wait(run, registry, observer) -> None:
    @procedure("t.down", registry=registry)
    def down(data: Ms) -> Ms:
        raise ConnectionError("down")

    control = RunControl()
    retry = {"maxAttempts": 3, "initialIntervalMs": 60_000}
    background = Background(
        lambda: run(
            chain({"id": "call", "procedureName": "t.down", "retry": retry}),
            control=control,
            registry=registry,
        )
    )
    # The first attempt failed: the node now waits out its 60 s backoff.
    first_failed = lambda: "node_attempt_failed" in observer.node_hooks("call")  # noqa: E731
    cancelled_at = _cancel_once(control, first_failed)
    result = background.join(RETURNS_WITHIN_S)
    assert result is not None
    assert time.monotonic() - cancelled_at < RETURNS_WITHIN_S
    assert result.status == "cancelled"


def test_a_cancelled_run_does_not_go_to_on_error(run, observer) -> None:
    control = RunControl()
    definition = chain(
        {"id": "slow", "procedureName": "test.ctx_sleep", "config": {"ms": 60_000}, "onError": "h"},
        {"id": "h", "procedureName": "custom.log", "config": {"message": "handled"}},
    )
    background = Background(lambda: run(definition, control=control))
    _cancel_once(control, _started(observer, "slow"))
    result = background.join(RETURNS_WITHIN_S)
    assert result is not None
    assert result.status == "cancelled"
    assert result.nodes_executed == ["slow"]


def test_a_run_cancelled_before_it_starts_runs_nothing(run, observer) -> None:
    control = RunControl()
    control.cancel("Cancelled while queued")
    result = run(chain({"id": "a", "procedureName": "custom.noop"}), control=control)
    assert (result.status, result.error.message) == ("cancelled", "Cancelled while queued")
    assert observer.hooks == ["execution_started", "execution_finished"]


def test_a_cooperative_procedure_sees_the_signal(run, registry) -> None:
    seen: list[str] = []
    polling, called_back = threading.Event(), threading.Event()

    @procedure("t.polls", registry=registry)
    def polls(data: Ms, ctx: ProcedureContext) -> Ms:
        ctx.on_cancel(called_back.set)
        polling.set()
        while not ctx.cancelled:
            time.sleep(0.01)
        try:
            ctx.raise_if_cancelled()
        except Exception as exc:
            seen.append(type(exc).__name__)
            raise
        return data

    control = RunControl()
    background = Background(
        lambda: run(
            chain({"id": "p", "procedureName": "t.polls"}), control=control, registry=registry
        )
    )
    _cancel_once(control, polling.is_set)
    assert background.join(RETURNS_WITHIN_S) is not None
    assert called_back.wait(RETURNS_WITHIN_S)
    deadline = time.monotonic() + RETURNS_WITHIN_S
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == ["CancelledError"]


def test_a_late_result_of_a_cancelled_attempt_is_dropped(run, observer, registry) -> None:
    entered, release = threading.Event(), threading.Event()

    @procedure("t.ignores", registry=registry)
    def ignores(data: Ms) -> Ms:
        entered.set()
        release.wait(5)
        return data

    # A deadline puts the attempt on a procedure thread, so the walk can leave it behind; with
    # no deadline the runtime leaves the whole walk behind instead (tests/executions).
    node = {"id": "i", "procedureName": "t.ignores", "timeoutMs": 60_000}
    control = RunControl()
    background = Background(lambda: run(chain(node), control=control, registry=registry))
    _cancel_once(control, entered.is_set)
    result = background.join(RETURNS_WITHIN_S)
    release.set()
    time.sleep(0.05)
    assert result is not None
    assert result.status == "cancelled"
    assert observer.node_hooks("i") == ["node_started", "node_failed"]
    assert result.outputs == {}
