"""The shipped procedures that take part in durable runs: custom.delay stops, custom.flaky fails."""

import sys
import threading
import time
from functools import partial
from types import FrameType

import pytest

from workflows import procedures
from workflows.checkpoints import Checkpoint
from workflows.context import RunControl

from .helpers import Background, chain

RETURNS_WITHIN_S = 1.0


def _running(code: object) -> bool:
    """Whether any thread is executing `code` (a function's __code__) right now."""
    frame: FrameType | None
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code is code:
                return True
            frame = frame.f_back
    return False


@pytest.mark.slow
def test_cancelling_a_sixty_second_delay_returns_within_a_second_and_frees_threads(
    run, observer, settings
) -> None:
    settings.C4C_DELAY_SCALE = 1.0
    delay_code = procedures.delay.__code__
    before = threading.active_count()
    for _ in range(3):  # cancelled delays must not pile up threads
        control = RunControl()
        wait = chain(
            {"id": "wait", "procedureName": "custom.delay", "config": {"ms": 60_000}},
            {"id": "never", "procedureName": "custom.log", "config": {"message": "no"}},
        )
        background = Background(partial(run, wait, control=control))
        time.sleep(0.2)
        assert _running(delay_code)
        control.cancel()
        cancelled_at = time.monotonic()
        result = background.join(RETURNS_WITHIN_S)
        assert result is not None, "run_workflow still waits on the delay"
        assert time.monotonic() - cancelled_at < RETURNS_WITHIN_S
        assert not background.thread.is_alive()
        assert result.error is not None
        assert (result.status, result.error.name) == ("cancelled", "CancelledError")
        assert result.nodes_executed == ["wait"]
        deadline = time.monotonic() + RETURNS_WITHIN_S
        while _running(delay_code) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _running(delay_code), "custom.delay still holds its procedure thread"
    assert threading.active_count() <= before + 1
    failure = observer.failure("wait")
    assert (failure["error"].name, failure["handled_by"]) == ("CancelledError", None)


def test_flaky_fails_its_first_attempts_then_answers_with_the_attempt(run, observer) -> None:
    retry = {"maxAttempts": 4, "initialIntervalMs": 0}
    result = run(
        chain(
            {"id": "f", "procedureName": "custom.flaky", "config": {"failTimes": 2}, "retry": retry}
        )
    )
    assert result.outputs == {"f": {"attempt": 3}}
    assert [kw["error"].message for kw in observer.calls_of("node_attempt_failed")] == [
        "custom.flaky: attempt 1 fails (2 planned failures)",
        "custom.flaky: attempt 2 fails (2 planned failures)",
    ]


def test_flaky_counts_on_from_the_attempt_a_resumed_run_gives_it(run) -> None:
    definition = chain(
        {
            "id": "f",
            "procedureName": "custom.flaky",
            "config": {"failTimes": 2},
            "retry": {"maxAttempts": 1},
        }
    )
    assert run(definition).status == "failed"
    resumed = run(definition, checkpoints=[Checkpoint("f", "running", attempt=2)])
    assert resumed.outputs == {"f": {"attempt": 3}}
