"""NodeLog: the lines procedures logged per node attempt (workflows.logs, README "Logs per node").

A table of its own, not a column of NodeExecution: the list and detail reads of node runs never
carry logs, and a node that logs nothing has no row here.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0008_json_search"),
    ]

    operations = [
        migrations.CreateModel(
            name="NodeLog",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("attempt", models.PositiveIntegerField()),
                (
                    "number",
                    models.PositiveIntegerField(
                        help_text="Its place among the attempt's lines, from 1."
                    ),
                ),
                ("level", models.CharField(max_length=16)),
                ("logger", models.CharField(blank=True, max_length=200)),
                ("message", models.TextField(blank=True)),
                ("logged_at", models.DateTimeField()),
                (
                    "dropped",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="On an attempt's last line: the lines it dropped past its caps.",
                    ),
                ),
                (
                    "node",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="logs",
                        to="executions.nodeexecution",
                    ),
                ),
            ],
            options={
                "ordering": ["node", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("node", "attempt", "number"), name="node_log_line_once"
                    )
                ],
            },
        ),
    ]
