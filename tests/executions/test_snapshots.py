"""Definition snapshots: one row per distinct definition, written once per process, deleted
when no run uses it, and migration 0006 moving every stored definition into them."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions import retention, store
from executions.models import DefinitionSnapshot, Execution, definition_hash
from tests import factories
from tests.workflows.helpers import C4C_SIMPLE_MATH

OTHER = {**C4C_SIMPLE_MATH, "id": "other-math"}
THIRD = {**C4C_SIMPLE_MATH, "id": "third"}


def _snapshot_writes(queries: CaptureQueriesContext) -> int:
    return sum('INTO "executions_definitionsnapshot"' in q["sql"] for q in queries)


@pytest.mark.django_db
def test_runs_of_one_definition_share_one_snapshot() -> None:
    first, second = factories.execution(), factories.execution(status="failed")
    other = factories.execution(workflow=OTHER)
    assert first.snapshot_id == second.snapshot_id != other.snapshot_id
    assert DefinitionSnapshot.objects.count() == 2
    stored = Execution.objects.detail(second.execution_id)
    assert stored is not None
    assert stored.execution.definition == factories.definition().to_json_dict()
    assert stored.execution.node_count == 3


def test_the_hash_does_not_depend_on_key_order() -> None:
    shuffled = dict(reversed(list(C4C_SIMPLE_MATH.items())))
    assert definition_hash(shuffled) == definition_hash(dict(C4C_SIMPLE_MATH))
    assert definition_hash(OTHER) != definition_hash(dict(C4C_SIMPLE_MATH))


@pytest.mark.django_db(transaction=True)
def test_a_process_writes_a_definitions_snapshot_once_and_again_after_it_was_pruned() -> None:
    with CaptureQueriesContext(connection) as first:
        factories.execution(execution_id="first", started_at=timezone.now() - timedelta(days=9))
    with CaptureQueriesContext(connection) as second:
        factories.execution(execution_id="second", started_at=timezone.now() - timedelta(days=9))
    assert (_snapshot_writes(first), _snapshot_writes(second)) == (1, 0)
    report = retention.prune(retention.cutoffs(older_than=timedelta(days=1)))
    assert report.snapshots == 1
    assert not DefinitionSnapshot.objects.exists()
    again = factories.execution(execution_id="again")
    assert DefinitionSnapshot.objects.filter(pk=again.snapshot_id).exists()
    assert Execution.objects.get(execution_id="again").definition["id"] == C4C_SIMPLE_MATH["id"]


@pytest.mark.django_db
def test_a_definition_started_again_is_encoded_once_while_remembered(monkeypatch) -> None:
    encoded: list[str] = []
    of = DefinitionSnapshot.of

    def counted(definition: dict[str, Any]) -> DefinitionSnapshot:
        encoded.append(definition["id"])
        return of(definition)

    monkeypatch.setattr(DefinitionSnapshot, "of", counted)
    monkeypatch.setattr(store, "_snapshots_of", store._SnapshotsOf())
    monkeypatch.setattr(store._SnapshotsOf, "SIZE", 2)
    math, other, third = (factories.definition(w) for w in (C4C_SIMPLE_MATH, OTHER, THIRD))
    for defined in (math, math, factories.definition(), other, third, math):
        factories.execution(workflow=defined)
    # The same object once; an equal new object anew; the first forgotten after two others.
    math_id = C4C_SIMPLE_MATH["id"]
    assert encoded == [math_id, math_id, "other-math", "third", math_id]
    assert DefinitionSnapshot.objects.count() == 3


@pytest.mark.django_db
def test_a_snapshot_stays_while_any_run_uses_it() -> None:
    old = timezone.now() - timedelta(days=40)
    factories.execution(execution_id="old", started_at=old)
    factories.execution(execution_id="new")
    factories.execution(execution_id="old-other", workflow=OTHER, started_at=old)
    retention.prune(retention.cutoffs(older_than=timedelta(days=30)))
    kept = Execution.objects.get(execution_id="new")
    assert list(DefinitionSnapshot.objects.values_list("pk", flat=True)) == [kept.snapshot_id]


@pytest.mark.django_db(transaction=True)
def test_migration_0006_moves_every_stored_definition_into_one_snapshot_per_definition() -> None:
    executor = MigrationExecutor(connection)
    before, after = (
        [("executions", "0005_permissions")],
        [("executions", "0006_definition_snapshots")],
    )
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldExecution = old_apps.get_model("executions", "Execution")
    odd = {"id": "odd", "nodes": {"not": "a list"}}
    now = timezone.now()
    for index, definition in enumerate([C4C_SIMPLE_MATH, OTHER, C4C_SIMPLE_MATH, odd]):
        OldExecution.objects.create(
            execution_id=f"run-{index}",
            workflow_id=definition["id"],
            workflow_name=definition["id"],
            definition=definition,
            status="completed",
            started_at=now,
        )
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new_apps = executor.loader.project_state(after).apps
    Snapshot = new_apps.get_model("executions", "DefinitionSnapshot")
    NewExecution = new_apps.get_model("executions", "Execution")
    snapshots = {s.pk: (s.definition, s.node_count) for s in Snapshot.objects.all()}
    assert snapshots == {
        definition_hash(C4C_SIMPLE_MATH): (C4C_SIMPLE_MATH, len(C4C_SIMPLE_MATH["nodes"])),
        definition_hash(OTHER): (OTHER, len(OTHER["nodes"])),
        definition_hash(odd): (odd, 0),
    }
    pointed = dict(NewExecution.objects.values_list("execution_id", "snapshot_id"))
    assert pointed == {
        "run-0": definition_hash(C4C_SIMPLE_MATH),
        "run-1": definition_hash(OTHER),
        "run-2": definition_hash(C4C_SIMPLE_MATH),
        "run-3": definition_hash(odd),
    }
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
