"""The pool: where a run on it is recorded and walked.

transaction=True: runs execute on pool threads with their own connections.
"""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from executions import dispatch, store
from executions.models import Execution

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
