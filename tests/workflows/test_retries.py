"""Retry policies: attempts, backoff, what is never retried, and what the observer hears."""

import time
from datetime import timedelta

from pydantic import BaseModel

from workflows.context import ProcedureContext
from workflows.registry import procedure

from .helpers import chain

# Timing bounds leave room for a loaded machine; the lower bounds are the ones that matter.
SLACK_S = 0.5


class Value(BaseModel):
    value: int = 0


def _failing(registry, name: str, error: type[Exception] = ConnectionError, times: int = 99):
    """Register `name`: fails its first `times` attempts with `error`; keeps each attempt's time."""
    seen: list[tuple[int, float]] = []

    @procedure(name, registry=registry)
    def failing(data: Value, ctx: ProcedureContext) -> Value:
        seen.append((ctx.attempt, time.monotonic()))
        if ctx.attempt <= times:
            raise error(f"attempt {ctx.attempt}")
        return Value(value=ctx.attempt)

    return seen


def test_failing_node_runs_max_attempts_times_with_growing_backoff(run, observer, registry) -> None:
    seen = _failing(registry, "t.fails")
    retry = {"maxAttempts": 3, "initialIntervalMs": 60, "backoffCoefficient": 2.0}
    result = run(
        chain({"id": "call", "procedureName": "t.fails", "retry": retry}), registry=registry
    )

    assert result.status == "failed"
    assert (result.error.name, result.error.message) == ("ConnectionError", "attempt 3")
    assert [attempt for attempt, _ in seen] == [1, 2, 3]
    first_wait, second_wait = (seen[1][1] - seen[0][1]), (seen[2][1] - seen[1][1])
    assert 0.06 <= first_wait < 0.06 + SLACK_S
    assert 0.12 <= second_wait < 0.12 + SLACK_S


def test_every_attempt_is_reported_and_the_node_finishes_once(run, observer, registry) -> None:
    _failing(registry, "t.fails_twice", times=2)
    retry = {"maxAttempts": 5, "initialIntervalMs": 20, "backoffCoefficient": 3.0}
    result = run(
        chain({"id": "call", "procedureName": "t.fails_twice", "retry": retry}), registry=registry
    )

    assert result.status == "completed"
    assert result.outputs == {"call": {"value": 3}}
    assert observer.node_hooks("call") == [
        "node_started",
        "node_attempt_failed",
        "node_attempt_started",
        "node_attempt_failed",
        "node_attempt_started",
        "node_completed",
    ]
    failed = observer.calls_of("node_attempt_failed")
    assert [(kw["attempt"], kw["error"].message) for kw in failed] == [
        (1, "attempt 1"),
        (2, "attempt 2"),
    ]
    assert [kw["retry_at"] - kw["ended_at"] for kw in failed] == [
        timedelta(milliseconds=20),
        timedelta(milliseconds=60),
    ]
    started = observer.calls_of("node_attempt_started")
    assert [kw["attempt"] for kw in started] == [2, 3]
    # The due time is reported before the wait: the next attempt starts at or after it.
    assert all(s["started_at"] >= f["retry_at"] for f, s in zip(failed, started, strict=True))
    assert observer.calls_of("node_completed")[0]["attempt"] == 3


def test_retries_exhausted_go_to_on_error_once(run, observer, registry) -> None:
    _failing(registry, "t.fails")
    result = run(
        chain(
            {
                "id": "call",
                "procedureName": "t.fails",
                "retry": {"maxAttempts": 2, "initialIntervalMs": 0},
                "onError": "recover",
            },
            {
                "id": "recover",
                "procedureName": "custom.log",
                "config": {"message": "{{error.message}}"},
            },
        ),
        registry=registry,
    )
    assert result.status == "completed"
    assert result.outputs["recover"]["message"] == "attempt 2"
    failure = observer.failure("call")
    assert (failure["attempt"], failure["handled_by"]) == (2, "recover")


def test_named_errors_and_their_subclasses_are_not_retried(run, observer, registry) -> None:
    seen = _failing(registry, "t.missing", error=KeyError)
    retry = {"maxAttempts": 3, "initialIntervalMs": 0, "nonRetryableErrors": ["LookupError"]}
    result = run(
        chain({"id": "call", "procedureName": "t.missing", "retry": retry}), registry=registry
    )
    assert result.error.name == "KeyError"
    assert len(seen) == 1
    assert observer.failure("call")["attempt"] == 1


def test_contract_errors_are_never_retried(run, observer) -> None:
    retry = {"maxAttempts": 5, "initialIntervalMs": 0}
    result = run(
        chain({"id": "add", "procedureName": "math.add", "config": {"a": "ten"}, "retry": retry})
    )
    assert result.error.name == "ProcedureInputError"
    assert observer.node_hooks("add") == ["node_started", "node_failed"]
    bad_output = run(chain({"id": "bad", "procedureName": "test.bad_output", "retry": retry}))
    assert bad_output.error.name == "ProcedureOutputError"
    assert "node_attempt_failed" not in observer.hooks


def test_workflow_retry_is_the_default_and_a_node_policy_replaces_it(run, registry) -> None:
    seen_default = _failing(registry, "t.uses_default")
    seen_own = _failing(registry, "t.has_own")
    result = run(
        chain(
            {"id": "a", "procedureName": "t.uses_default", "onError": "b", "next": None},
            {"id": "b", "procedureName": "t.has_own", "retry": {"maxAttempts": 1}},
            retry={"maxAttempts": 3, "initialIntervalMs": 0},
        ),
        registry=registry,
    )
    assert result.status == "failed"
    assert (len(seen_default), len(seen_own)) == (3, 1)
