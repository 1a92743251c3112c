"""The pool: where a run on it is recorded and walked.

transaction=True: runs execute on pool threads with their own connections.
"""

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from executions import dispatch, store
from executions.models import Execution
from tests import factories
from tests.executions.conftest import delay_definition

# slow: real pool and walk threads.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _noting_thread(threads: dict[str, int], name: str, write: Callable[..., Any]) -> Any:
    def noted(**kwargs: Any) -> Any:
        threads[name] = threading.get_ident()
        return write(**kwargs)

    return noted


def test_a_waited_run_is_recorded_on_the_thread_that_walks_it(monkeypatch, math_workflow) -> None:
    """One connection for the whole run: on SQLite a row written on another makes the walk's
    connection read again every page it had cached."""
    threads: dict[str, int] = {}
    for name in ("execution_start", "node_start", "execution_finish"):
        monkeypatch.setattr(store, name, _noting_thread(threads, name, getattr(store, name)))

    async_to_sync(dispatch.execute_now)(definition=math_workflow, input={}, execution_id="here")

    assert Execution.objects.get(execution_id="here").status == "completed"
    assert len(set(threads.values())) == 1, threads


def test_a_waited_run_whose_client_goes_away_runs_on_and_then_frees_its_place(
    settings, math_workflow
) -> None:
    """The client's wait is cancelled (Django cancels a view whose client disconnected), not the
    run: it ends as it would have, and the pool's one place serves the next run."""
    settings.C4C_WORKER_THREADS = 1
    slow = factories.definition(delay_definition(300))

    async def leave_early() -> None:
        waiting = asyncio.ensure_future(
            dispatch.execute_now(definition=slow, input={}, execution_id="left")
        )
        await asyncio.sleep(0.1)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting

    async def next_run() -> str:
        run = dispatch.execute_now(definition=math_workflow, input={"a": 1}, execution_id="next")
        return await asyncio.wait_for(run, timeout=10)  # a place kept would wait for ever

    async_to_sync(leave_early)()
    answer = async_to_sync(next_run)()

    assert json.loads(answer)["status"] == "completed"
    assert Execution.objects.get(execution_id="left").status == "completed"
