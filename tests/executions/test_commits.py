"""Group commit (executions.commits): node writes of concurrent runs committed by one writer.

transaction=True: the writer thread has its own connection, and the runs' threads theirs.
"""

import threading
from collections.abc import Iterator

import pytest
from django.db import transaction

from executions import runtime, store
from executions.commits import committer
from executions.models import Execution, NodeExecution, Span
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def group_commit(settings) -> Iterator[None]:
    settings.C4C_GROUP_COMMIT = True
    yield
    committer.stop()


def test_concurrent_runs_written_through_the_writer_are_each_complete() -> None:
    definition = factories.definition()

    def runs() -> None:
        for _ in range(5):
            runtime.execute(definition=definition, input={})

    threads = [threading.Thread(target=runs) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Execution.objects.filter(status="completed").count() == 20
    assert NodeExecution.objects.filter(status="completed").count() == 60
    for execution in Execution.objects.all():
        assert execution.outputs["add"] == {"result": 15}
        assert Span.objects.filter(execution=execution).count() == 7


def test_a_refused_write_fails_only_its_caller() -> None:
    finished = factories.execution(status="completed")
    running = factories.execution(status="running")
    node = factories.definition().nodes[0]
    errors: list[BaseException] = []
    written: list[NodeExecution] = []

    def start(execution: Execution) -> None:
        try:
            written.append(
                committer.write(
                    store.node_start,
                    execution=execution,
                    node=node,
                    node_index=0,
                    input={},
                    started_at=running.started_at,
                )
            )
        except store.TransitionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in (finished, running)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(errors) == 1
    assert "completed" in str(errors[0])
    assert [row.execution_id for row in written] == [running.pk]
    assert NodeExecution.objects.get(execution=running).status == "running"


def test_a_write_inside_the_callers_transaction_stays_in_it() -> None:
    running = factories.execution(status="running")
    node = factories.definition().nodes[0]
    with transaction.atomic():
        committer.write(
            store.node_start,
            execution=running,
            node=node,
            node_index=0,
            input={},
            started_at=running.started_at,
        )
        transaction.set_rollback(True)
    assert not NodeExecution.objects.filter(execution=running).exists()


def _writers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "c4c-group-commit"]


def test_a_stopped_writer_ends_and_the_next_write_starts_another() -> None:
    definition = factories.definition()
    runtime.execute(definition=definition, input={})
    assert len(_writers()) == 1

    committer.stop()
    assert _writers() == []

    runtime.execute(definition=definition, input={})
    assert len(_writers()) == 1
    assert Execution.objects.filter(status="completed").count() == 2
