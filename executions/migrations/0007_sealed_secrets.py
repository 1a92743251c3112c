"""Sealed secrets: the encrypted real values of what a run stores redacted (executions.secrets).

Execution.sealed_secrets holds its input's (and an inline definition's) secrets, and
NodeExecution.sealed_output a node output's, so a resumed or re-run run gets them back. Both are
nullable and null for a run with no secret: existing rows need nothing.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0006_definition_snapshots"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="sealed_secrets",
            field=models.TextField(
                blank=True, editable=False, help_text="The run's secrets, encrypted.", null=True
            ),
        ),
        migrations.AddField(
            model_name="nodeexecution",
            name="sealed_output",
            field=models.TextField(
                blank=True, editable=False, help_text="The output's secrets, encrypted.", null=True
            ),
        ),
    ]
