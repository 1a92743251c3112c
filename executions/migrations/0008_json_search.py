"""Search by values and bulk actions (executions.conditions, executions.filters, executions.bulk).

On PostgreSQL only, two GIN indexes serve the `=` conditions on values:
- exec_input_gin (input jsonb_path_ops): `input @> '{"orderId": 4711}'`, containment being
  what jsonb_path_ops indexes (smaller and faster than jsonb_ops for it);
- exec_outputs_gin (outputs, jsonb_ops): containment per node (`outputs.<node>.<path> = v`) and
  the jsonpath `outputs @@ '$.*.customer.country == "DE"'` for any node's output, whose
  wildcard only jsonb_ops can serve.
SQLite has no such index: its searches are bounded by rows instead (executions.filters).
Created without CONCURRENTLY: on a large table, run this migration when writes can wait.

BulkAction: the progress of a bulk cancel or re-run.
"""

from typing import Any

import django.utils.timezone
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import ProjectState


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL on PostgreSQL; nothing on other databases (their state is unchanged either way)."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


INDEXES: list[Any] = [
    PostgresOnlySQL(
        sql="CREATE INDEX IF NOT EXISTS exec_input_gin "
        "ON executions_execution USING gin (input jsonb_path_ops)",
        reverse_sql="DROP INDEX IF EXISTS exec_input_gin",
    ),
    PostgresOnlySQL(
        sql="CREATE INDEX IF NOT EXISTS exec_outputs_gin "
        "ON executions_execution USING gin (outputs jsonb_ops)",
        reverse_sql="DROP INDEX IF EXISTS exec_outputs_gin",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0007_sealed_secrets"),
    ]

    operations = [
        *INDEXES,
        migrations.CreateModel(
            name="BulkAction",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bulk_id", models.CharField(max_length=40, unique=True)),
                ("action", models.CharField(max_length=16)),
                (
                    "selection",
                    models.TextField(help_text="The filter or the runs it acts on, in words."),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("running", "Running"),
                            ("completed", "Completed"),
                            ("failed", "Failed"),
                        ],
                        default="running",
                        max_length=16,
                    ),
                ),
                ("total", models.PositiveIntegerField()),
                ("done", models.PositiveIntegerField(default=0)),
                ("succeeded", models.PositiveIntegerField(default=0)),
                ("skipped", models.PositiveIntegerField(default=0)),
                ("failed", models.PositiveIntegerField(default=0)),
                (
                    "errors",
                    models.JSONField(blank=True, default=list, help_text="The first few failures."),
                ),
                (
                    "started_runs",
                    models.JSONField(
                        blank=True, default=list, help_text="The executions a re-run started."
                    ),
                ),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-started_at", "-id"],
            },
        ),
    ]
