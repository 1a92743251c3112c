"""The Celery task in-process (eager): it claims its run, resumes it from what it recorded, and
runs library workflows as written."""

import json
from typing import Any

import pytest

from executions import dispatch, runtime, secrets, store, tasks
from executions.models import Execution
from tests import factories
from tests.executions.conftest import math_definition
from workflows.builder import Workflow, sequential
from workflows.definitions import WorkflowDefinition
from workflows.library import WorkflowLibrary

# The task walks its run on a thread of its own (executions.dispatch.walk_off), whose connection
# must see the rows the test wrote.
pytestmark = pytest.mark.django_db(transaction=True)


def _is_big(ctx: Any) -> bool:
    result: int = ctx.get("add")["result"]
    return result > 10


@pytest.fixture
def library(monkeypatch) -> WorkflowLibrary:
    """A library holding a workflow whose condition is a Python predicate (no JSON form)."""
    library = WorkflowLibrary()
    library.register(
        Workflow("predicate-flow")
        .procedure("add", "math.add", config={"a": 10, "b": 5})
        .condition("big", predicate=_is_big, when_true="yes", when_false="no")
        .add(sequential("yes"))
        .add(sequential("no"))
        .build(),
        source="tests",
    )
    monkeypatch.setattr(runtime, "workflow_library", lambda: library)
    return library


def _run_task(execution_id: str) -> str:
    return str(tasks.run_execution.apply(args=(execution_id,), throw=True).get())


def test_library_workflow_keeps_its_python_predicate_on_the_celery_path(library) -> None:
    definition = library.get("predicate-flow")
    assert definition is not None
    factories.started_run(workflow=definition, execution_id="pred-1", owner="")

    assert _run_task("pred-1") == "completed"

    row = Execution.objects.get(execution_id="pred-1")
    assert row.nodes_executed == ["add", "big", "yes"]
    assert row.lease_owner == store.process_owner()


def test_snapshot_that_differs_from_the_library_runs_as_recorded(library) -> None:
    recorded = WorkflowDefinition.model_validate(math_definition("predicate-flow"))
    factories.started_run(workflow=recorded, execution_id="pred-2", owner="")

    assert _run_task("pred-2") == "completed"

    row = Execution.objects.get(execution_id="pred-2")
    assert row.nodes_executed == ["add", "multiply", "subtract"]
    assert runtime.definition_to_run(recorded.to_json_dict()) == recorded


def test_inline_snapshot_is_validated_into_a_definition() -> None:
    snapshot = math_definition("not-in-any-library")
    definition = runtime.definition_to_run(snapshot)
    assert definition.to_json_dict() == WorkflowDefinition.model_validate(snapshot).to_json_dict()


def test_run_cancelled_while_queued_is_not_run(math_workflow) -> None:
    factories.started_run(workflow=math_workflow, execution_id="cancelled-in-queue", owner="")
    runtime.cancel("cancelled-in-queue")

    assert _run_task("cancelled-in-queue") == "cancelled"

    row = Execution.objects.get(execution_id="cancelled-in-queue")
    assert row.nodes.count() == 0
    assert row.lease_owner == ""


def test_message_delivered_twice_runs_only_once(math_workflow) -> None:
    factories.started_run(workflow=math_workflow, execution_id="twice", owner="")
    assert _run_task("twice") == "completed"
    first_end = Execution.objects.get(execution_id="twice").ended_at

    assert _run_task("twice") == "completed"

    row = Execution.objects.get(execution_id="twice")
    assert row.ended_at == first_end
    assert row.nodes.count() == 3


def test_claim_takes_only_an_unowned_running_row(math_workflow) -> None:
    factories.started_run(workflow=math_workflow, execution_id="claimed", owner="")
    assert store.execution_claim(execution_id="claimed", owner="celery@a/1/x") is not None
    assert store.execution_claim(execution_id="claimed", owner="celery@b/2/y") is None
    assert store.execution_claim(execution_id="nope", owner="celery@b/2/y") is None
    assert Execution.objects.get(execution_id="claimed").lease_owner == "celery@a/1/x"


def test_message_of_an_earlier_version_with_definition_and_input_still_runs(math_workflow) -> None:
    factories.started_run(workflow=math_workflow, execution_id="old-message", owner="")
    legacy: tuple[Any, ...] = (math_workflow.to_json_dict(), {})
    done = tasks.run_execution.apply(args=("old-message", *legacy), throw=True)
    assert done.get() == "completed"


def test_a_run_queued_again_after_its_worker_died_resumes_from_its_nodes(math_workflow) -> None:
    """The sweep re-queued it (owner ""): the claiming worker runs only what was not done."""
    execution = factories.execution(
        status="running",
        workflow=math_workflow,
        execution_id="requeued",
        nodes={"add": "completed", "multiply": "running"},
        owner="celery@dead/7/x",
    )
    add_before = factories.node_run(execution, "add")
    assert store.execution_take_over(execution=factories.lapse(execution), owner="") is not None

    assert _run_task("requeued") == "completed"

    row = Execution.objects.get(execution_id="requeued")
    assert row.nodes_executed == ["add", "multiply", "subtract"]
    add = factories.node_run(row, "add")
    assert (add.started_at, add.attempt, add.output) == (
        add_before.started_at,
        1,
        add_before.output,
    )
    multiply = factories.node_run(row, "multiply")
    assert (multiply.status, multiply.attempt) == ("completed", 2)
    assert factories.attempts_of(multiply)[0]["error"]["name"] == "InterruptedError"


TEMPLATED = {
    "id": "says-a-word",
    "name": "Says a word",
    "startNode": "say",
    "nodes": [
        {
            "id": "say",
            "type": "procedure",
            "procedureName": "custom.log",
            "config": {"message": "{{input.word}}"},
        }
    ],
}


def test_a_new_run_uses_the_input_its_message_carries_not_the_stored_cut(settings) -> None:
    """The row keeps an input past C4C_MAX_PAYLOAD_BYTES as a marker; the message has it all."""
    settings.C4C_MAX_PAYLOAD_BYTES = 200
    sent = {"word": "hello", "padding": "x" * 1_000}
    factories.started_run(workflow=TEMPLATED, execution_id="big-input", input=sent, owner="")

    done = tasks.run_execution.apply(args=dispatch.message_args("big-input", sent), throw=True)

    assert done.get() == "completed"
    row = Execution.objects.get(execution_id="big-input")
    assert row.outputs["say"]["message"] == "hello"


def test_a_message_carries_a_new_runs_input_sealed_never_in_clear() -> None:
    sent = {"word": "hello", "apiKey": "sk-live-in-the-broker"}

    args = dispatch.message_args("sealed-input", sent)

    assert "sk-live-in-the-broker" not in json.dumps(args)
    assert secrets.unseal(args[-1], what="the message") == sent
    assert dispatch.message_args("requeued", None) == ("requeued",)


def test_a_message_of_an_earlier_version_with_the_input_in_clear_still_runs(settings) -> None:
    sent = {"word": "hello"}
    factories.started_run(workflow=TEMPLATED, execution_id="clear-input", input=sent, owner="")

    done = tasks.run_execution.apply(args=("clear-input", None, sent), throw=True)

    assert done.get() == "completed"


def test_a_requeued_run_whose_input_was_stored_cut_fails_saying_why(settings) -> None:
    settings.C4C_MAX_PAYLOAD_BYTES = 200
    factories.started_run(
        workflow=TEMPLATED,
        execution_id="cut-input",
        input={"word": "hello", "padding": "x" * 1_000},
        owner="",
    )

    assert _run_task("cut-input") == "failed"

    error = Execution.objects.get(execution_id="cut-input").error
    assert error is not None
    assert error["name"] == "CannotResume"
    assert "input was stored cut" in error["message"]
