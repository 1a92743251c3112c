"""Node and workflow timeouts, and sync procedures that ignore them (abandoned, not waited for)."""

import threading
import time

import pytest
from pydantic import BaseModel

from workflows.context import ProcedureContext
from workflows.registry import procedure

from .helpers import chain

# slow: they wait for real deadlines to pass.
pytestmark = pytest.mark.slow

SLACK_S = 0.6


class Ms(BaseModel):
    ms: int = 0


def _slow(**extra):
    return {"id": "slow", "procedureName": "test.ctx_sleep", "config": {"ms": 60_000}, **extra}


def test_node_timeout_fails_the_node_with_timeout_error_and_the_run_moves_on(run, observer) -> None:
    began = time.monotonic()
    result = run(
        chain(
            _slow(timeoutMs=100, onError="recover"),
            {
                "id": "recover",
                "procedureName": "custom.log",
                "config": {"message": "{{error.message}}"},
            },
        )
    )
    elapsed = time.monotonic() - began
    assert result.status == "completed"
    assert 0.1 <= elapsed < 0.1 + SLACK_S
    assert result.outputs["recover"]["message"] == "Node slow timed out after 100 ms"
    assert observer.failure("slow")["error"].name == "TimeoutError"


def test_a_timed_out_attempt_is_retried(run, observer, registry) -> None:
    @procedure("t.slow_first", registry=registry)
    def slow_first(data: Ms, ctx: ProcedureContext) -> Ms:
        ctx.sleep(60 if ctx.attempt == 1 else 0)
        return Ms(ms=ctx.attempt)

    retry = {"maxAttempts": 2, "initialIntervalMs": 0}
    result = run(
        chain({"id": "call", "procedureName": "t.slow_first", "timeoutMs": 100, "retry": retry}),
        registry=registry,
    )
    assert result.outputs == {"call": {"ms": 2}}
    assert observer.calls_of("node_attempt_failed")[0]["error"].name == "TimeoutError"


def test_workflow_timeout_fails_the_run_whatever_handlers_exist(run, observer) -> None:
    began = time.monotonic()
    result = run(
        chain(
            _slow(onError="recover"),
            {"id": "recover", "procedureName": "custom.log", "config": {"message": "no"}},
            timeoutMs=200,
        )
    )
    assert time.monotonic() - began < 0.2 + SLACK_S
    assert result.status == "failed"
    assert (result.error.name, result.error.message) == (
        "TimeoutError",
        "Workflow wf timed out after 200 ms",
    )
    assert result.nodes_executed == ["slow"]
    failure = observer.failure("slow")
    assert (failure["error"].name, failure["handled_by"]) == ("TimeoutError", None)


def test_workflow_timeout_cuts_a_backoff_wait_short(run, registry) -> None:
    @procedure("t.always_fails", registry=registry)
    def always_fails(data: Ms) -> Ms:
        raise ConnectionError("down")

    began = time.monotonic()
    result = run(
        chain(
            {
                "id": "call",
                "procedureName": "t.always_fails",
                "retry": {"maxAttempts": 3, "initialIntervalMs": 60_000},
            },
            timeoutMs=200,
        ),
        registry=registry,
    )
    assert time.monotonic() - began < 0.2 + SLACK_S
    assert result.error.name == "TimeoutError"


def test_a_sync_procedure_that_ignores_its_timeout_is_abandoned(run, observer, registry) -> None:
    finished = threading.Event()
    threads: list[threading.Thread] = []

    @procedure("t.stubborn", registry=registry)
    def stubborn(data: Ms) -> Ms:
        threads.append(threading.current_thread())
        time.sleep(data.ms / 1000)  # never looks at its context
        finished.set()
        return Ms(ms=data.ms)

    began = time.monotonic()
    result = run(
        chain(
            {
                "id": "stuck",
                "procedureName": "t.stubborn",
                "config": {"ms": 1500},
                "timeoutMs": 100,
            },
        ),
        registry=registry,
    )
    returned_after = time.monotonic() - began

    assert result.error.message == "Node stuck timed out after 100 ms"
    assert returned_after < 1.0, "the run waited for the abandoned procedure"
    assert not finished.is_set()
    assert threads[0] is not threading.current_thread()
    assert finished.wait(5), "the abandoned procedure went on running to its end"
    time.sleep(0.05)
    assert observer.node_hooks("stuck") == ["node_started", "node_failed"]
    assert result.outputs == {}
