"""Definition snapshots: each distinct definition stored once, keyed by its hash.

Executions kept their own copy of the definition that ran. This creates DefinitionSnapshot, moves
every existing row's definition into the snapshot of its hash (in batches by primary key, so a
table of millions is never read at once), points the rows at it, and drops the per-run copy.
Going back copies each snapshot into its runs again.

The hash and node count are computed here as they were when this was written (the model's
functions may change later; a migration must keep meaning what it did).
"""

import hashlib
import json
from typing import Any

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

BATCH = 500


def _hash(definition: Any) -> str:
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _node_count(definition: Any) -> int:
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    return len(nodes) if isinstance(nodes, list) else 0


def _immediate_constraints(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Check the new foreign key as each row is written: on PostgreSQL, deferred checks still
    pending at the ALTER TABLE that follows would refuse it ("pending trigger events")."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def to_snapshots(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _immediate_constraints(schema_editor)
    Execution = apps.get_model("executions", "Execution")
    DefinitionSnapshot = apps.get_model("executions", "DefinitionSnapshot")
    last = 0
    while True:
        rows = list(
            Execution.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "definition")[:BATCH]
        )
        if not rows:
            return
        runs_of: dict[str, list[int]] = {}
        snapshots: dict[str, Any] = {}
        for pk, definition in rows:
            key = _hash(definition)
            snapshots.setdefault(key, definition)
            runs_of.setdefault(key, []).append(pk)
        DefinitionSnapshot.objects.bulk_create(
            [
                DefinitionSnapshot(
                    hash=key, definition=definition, node_count=_node_count(definition)
                )
                for key, definition in snapshots.items()
            ],
            ignore_conflicts=True,
        )
        for key, pks in runs_of.items():
            Execution.objects.filter(pk__in=pks).update(snapshot_id=key)
        last = rows[-1][0]


def from_snapshots(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _immediate_constraints(schema_editor)
    Execution = apps.get_model("executions", "Execution")
    DefinitionSnapshot = apps.get_model("executions", "DefinitionSnapshot")
    for snapshot in DefinitionSnapshot.objects.order_by("pk").iterator(chunk_size=BATCH):
        Execution.objects.filter(snapshot_id=snapshot.pk).update(definition=snapshot.definition)


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0005_permissions"),
    ]

    operations = [
        migrations.CreateModel(
            name="DefinitionSnapshot",
            fields=[
                (
                    "hash",
                    models.CharField(
                        help_text="SHA-256 of the definition's canonical JSON.",
                        max_length=64,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("definition", models.JSONField(help_text="The definition as c4c's JSON.")),
                ("node_count", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.AddField(
            model_name="execution",
            name="snapshot",
            field=models.ForeignKey(
                help_text="The definition that ran (shared by every run of the same definition).",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="executions",
                to="executions.definitionsnapshot",
            ),
        ),
        migrations.AlterField(
            model_name="execution",
            name="definition",
            field=models.JSONField(help_text="Snapshot of the definition that ran.", null=True),
        ),
        migrations.RunPython(to_snapshots, from_snapshots),
        migrations.RemoveField(
            model_name="execution",
            name="definition",
        ),
        migrations.AlterField(
            model_name="execution",
            name="snapshot",
            field=models.ForeignKey(
                help_text="The definition that ran (shared by every run of the same definition).",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="executions",
                to="executions.definitionsnapshot",
            ),
        ),
    ]
