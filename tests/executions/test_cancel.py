"""Cancel stops work: a delay of 60 s cancelled frees its pool thread within a second, from this
process or (through the heartbeat) from another; a queued run never starts; the cancelled row is
never overwritten by the run winding down.

transaction=True: runs execute on pool threads with their own connections.
"""

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django_eventstream.utils import get_storage
from pydantic import BaseModel

from executions import dispatch, leases, runtime, store
from executions.live import events
from executions.models import Execution, NodeExecution
from tests import factories
from tests.executions.conftest import BATCHED_EVENTS, delay_definition, within
from workflows.definitions import WorkflowDefinition
from workflows.registry import ProcedureRegistry, procedure

# slow: they wait on real threads and the heartbeat.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _start_long_run(execution_id: str) -> Execution:
    """A run of one 60-second custom.delay on this process's pool, once its node is running."""
    definition = factories.definition(delay_definition(60_000))
    execution = async_to_sync(dispatch.start_in_background)(
        definition=definition, input={}, execution_id=execution_id
    )
    within(5, lambda: NodeExecution.objects.filter(execution=execution, status="running").exists())
    # node.started leaves just after its row commits: wait for it, so tests start from there.
    channel = events.execution_channel(execution_id)
    within(5, lambda: "node.started" in _sent_names(channel, 0))
    return execution


def _run_over(execution_id: str) -> bool:
    """The pool thread let go of the run (it is no longer held here)."""
    return leases.runs.get(execution_id) is None


def test_a_cancelled_sixty_second_delay_frees_its_pool_thread_within_a_second() -> None:
    execution = _start_long_run("long-cancelled")
    since = get_storage().get_current_id(events.execution_channel("long-cancelled"))

    runtime.cancel("long-cancelled")
    took = within(1.0, lambda: _run_over("long-cancelled"))

    assert took < 1.0
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == "cancelled"
    assert row.error is not None
    assert row.error["message"] == runtime.CANCELLED_MESSAGE
    assert NodeExecution.objects.get(execution=row).status == "skipped"
    sent = [
        e.type for e in get_storage().get_events(events.execution_channel(row.execution_id), since)
    ]
    assert sent.count("workflow.failed") == 1
    assert "workflow.completed" not in sent


def test_a_cancel_recorded_by_another_process_stops_the_run_here_within_a_second() -> None:
    """The other process writes the row only; this process's heartbeat sees it and stops."""
    _start_long_run("cancelled-elsewhere")

    store.execution_cancel(execution_id="cancelled-elsewhere")

    assert within(1.5, lambda: _run_over("cancelled-elsewhere")) < 1.5
    assert Execution.objects.get(execution_id="cancelled-elsewhere").status == "cancelled"


def test_a_run_cancelled_while_it_waits_for_a_pool_thread_never_starts(math_workflow) -> None:
    """Held as dispatch holds a queued run; when its pool thread comes, it does nothing."""
    queued = factories.started_run(workflow=math_workflow, execution_id="waiting")
    leases.runs.hold(queued)

    runtime.cancel("waiting")
    output = runtime.run(execution=queued, definition=math_workflow, input={})

    assert output.body["status"] == "cancelled"
    assert not NodeExecution.objects.filter(execution=queued).exists()
    assert _run_over("waiting")


def _sent_names(channel: str, since: int) -> list[str]:
    return [e.type for e in get_storage().get_events(channel, since)]


def test_the_cancel_event_is_sent_once_and_the_result_after_it() -> None:
    execution = _start_long_run("announced")
    since = get_storage().get_current_id(events.execution_channel("announced"))

    channel = events.execution_channel(execution.execution_id)
    runtime.cancel("announced")
    # The pool thread lets go at once; the walk it left winds down and sends the result after.
    within(2.0, lambda: "workflow.result" in _sent_names(channel, since))

    # The spans and log lines the walk had not sent yet go out with its end (span.ended,
    # node.log), before the result.
    sent = [
        (e.type, json.loads(e.data))
        for e in get_storage().get_events(channel, since)
        if e.type not in BATCHED_EVENTS
    ]
    names = [name for name, _ in sent]
    assert names == ["workflow.failed", "workflow.result"]
    assert sent[1][1]["result"]["status"] == "cancelled"


class Seconds(BaseModel):
    seconds: float


@pytest.fixture
def stubborn(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """`test.stubborn`: sleeps without ever looking at its context (cancel cannot reach it).
    Put in the process's registry for this test only; the event is set when it returns."""
    returned = threading.Event()
    own = ProcedureRegistry()

    @procedure("test.stubborn", registry=own)
    def sleeps(data: Seconds) -> Seconds:
        time.sleep(data.seconds)
        returned.set()
        return data

    factories.procedures(monkeypatch, own)
    yield returned
    assert returned.wait(5), "the abandoned procedure went on to its end"


def _stubborn_definition() -> WorkflowDefinition:
    """test.stubborn for 2 s, then math.add."""
    return factories.definition(
        {
            "id": "stubborn",
            "name": "Stubborn",
            "startNode": "stuck",
            "nodes": [
                {
                    "id": "stuck",
                    "type": "procedure",
                    "procedureName": "test.stubborn",
                    "config": {"seconds": 2},
                    "next": "after",
                },
                {"id": "after", "type": "procedure", "procedureName": "math.add", "config": {}},
            ],
        }
    )


def test_a_procedure_that_ignores_the_cancel_does_not_hold_the_pool_thread(stubborn) -> None:
    definition = _stubborn_definition()
    execution = async_to_sync(dispatch.start_in_background)(
        definition=definition, input={}, execution_id="stubborn"
    )
    within(5, lambda: NodeExecution.objects.filter(execution=execution).exists())

    runtime.cancel("stubborn")

    assert within(1.0, lambda: _run_over("stubborn")) < 1.0
    assert not stubborn.is_set(), "the pool thread was freed only when the procedure returned"
    assert stubborn.wait(5)
    time.sleep(0.2)  # the abandoned walk ends: every write it tries is refused
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == "cancelled"
    assert list(NodeExecution.objects.filter(execution=row).values_list("node_id", "status")) == [
        ("stuck", "skipped")
    ]


def test_a_cancelled_run_whose_procedure_ignores_it_gives_its_place_to_the_next_at_once(
    stubborn, settings, math_workflow
) -> None:
    """One place: the run queued behind the stubborn one starts on the cancel, not when the
    stubborn procedure returns."""
    settings.C4C_WORKER_THREADS = 1
    stuck = async_to_sync(dispatch.start_in_background)(
        definition=_stubborn_definition(), input={}, execution_id="stubborn-place"
    )
    within(5, lambda: NodeExecution.objects.filter(execution=stuck).exists())
    queued = async_to_sync(dispatch.start_in_background)(
        definition=math_workflow, input={"a": 2, "b": 3}, execution_id="next-in-line"
    )
    time.sleep(0.2)
    assert not NodeExecution.objects.filter(execution=queued).exists()

    runtime.cancel("stubborn-place")

    def next_completed() -> bool:
        return Execution.objects.get(pk=queued.pk).status == "completed"

    assert within(1.0, next_completed) < 1.0
    assert not stubborn.is_set(), "the place was given back only when the procedure returned"


def test_a_waiting_clients_run_answers_cancelled_at_once_though_its_procedure_ignores_it(
    stubborn,
) -> None:
    """POST /workflow/execute without async: started and walked on the walk's thread, while the
    pool thread waiting for it answers the cancel."""
    answers: list[dict[str, Any]] = []

    def client() -> None:
        text = async_to_sync(dispatch.execute_now)(
            definition=_stubborn_definition(), input={}, execution_id="stubborn-waited"
        )
        answers.append(json.loads(text))

    caller = threading.Thread(target=client)
    caller.start()
    within(
        5, lambda: NodeExecution.objects.filter(execution__execution_id="stubborn-waited").exists()
    )

    runtime.cancel("stubborn-waited")

    assert within(1.0, lambda: bool(answers)) < 1.0
    assert not stubborn.is_set(), "the answer waited for the procedure to return"
    assert answers[0]["executionId"] == "stubborn-waited"
    assert answers[0]["status"] == "cancelled"
    assert _run_over("stubborn-waited")
    caller.join(5)
