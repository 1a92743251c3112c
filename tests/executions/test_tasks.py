"""The Celery task in-process (eager): it claims its run and runs library workflows as written."""

from typing import Any

import pytest
from celery.utils.nodenames import gethostname

from c4c_site.celery import worker_identity
from executions import runtime, store, tasks
from executions.models import Execution
from tests import factories
from tests.executions.conftest import math_definition
from workflows.builder import Workflow, sequential
from workflows.definitions import WorkflowDefinition
from workflows.library import WorkflowLibrary

pytestmark = pytest.mark.django_db


def _is_big(ctx: Any) -> bool:
    return ctx.get("add")["result"] > 10


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
    monkeypatch.setattr(tasks, "workflow_library", lambda: library)
    return library


def _run_task(definition: WorkflowDefinition, execution_id: str) -> str:
    return tasks.run_execution.apply(
        args=[execution_id, definition.to_json_dict(), {}], throw=True
    ).get()


def test_library_workflow_keeps_its_python_predicate_on_the_celery_path(library) -> None:
    definition = library.get("predicate-flow")
    assert definition is not None
    factories.started_run(workflow=definition, execution_id="pred-1", owner="")

    assert _run_task(definition, "pred-1") == "completed"

    row = Execution.objects.get(execution_id="pred-1")
    assert row.nodes_executed == ["add", "big", "yes"]
    assert row.worker_id == worker_identity(gethostname())


def test_snapshot_that_differs_from_the_library_runs_as_recorded(library) -> None:
    recorded = WorkflowDefinition.model_validate(math_definition("predicate-flow"))
    factories.started_run(workflow=recorded, execution_id="pred-2", owner="")

    assert _run_task(recorded, "pred-2") == "completed"

    row = Execution.objects.get(execution_id="pred-2")
    assert row.nodes_executed == ["add", "multiply", "subtract"]
    assert tasks.definition_to_run(recorded.to_json_dict()) == recorded


def test_inline_snapshot_is_validated_into_a_definition() -> None:
    snapshot = math_definition("not-in-any-library")
    definition = tasks.definition_to_run(snapshot)
    assert definition.to_json_dict() == WorkflowDefinition.model_validate(snapshot).to_json_dict()


def test_run_cancelled_while_queued_is_not_run(math_workflow) -> None:
    factories.started_run(workflow=math_workflow, execution_id="cancelled-in-queue", owner="")
    runtime.cancel("cancelled-in-queue")

    assert _run_task(math_workflow, "cancelled-in-queue") == "cancelled"

    row = Execution.objects.get(execution_id="cancelled-in-queue")
    assert row.nodes.count() == 0
    assert row.worker_id == ""


def test_message_delivered_twice_runs_only_once(math_workflow) -> None:
    factories.started_run(workflow=math_workflow, execution_id="twice", owner="")
    assert _run_task(math_workflow, "twice") == "completed"
    first_end = Execution.objects.get(execution_id="twice").ended_at

    assert _run_task(math_workflow, "twice") == "completed"

    row = Execution.objects.get(execution_id="twice")
    assert row.ended_at == first_end
    assert row.nodes.count() == 3


def test_claim_takes_only_an_unowned_running_row(math_workflow) -> None:
    factories.started_run(workflow=math_workflow, execution_id="claimed", owner="")
    assert store.execution_claim(execution_id="claimed", owner="celery@a/1/x") is not None
    assert store.execution_claim(execution_id="claimed", owner="celery@b/2/y") is None
    assert store.execution_claim(execution_id="nope", owner="celery@b/2/y") is None
    assert Execution.objects.get(execution_id="claimed").worker_id == "celery@a/1/x"
