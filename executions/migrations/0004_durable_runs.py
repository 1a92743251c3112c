"""Durable runs (issue 10): leases instead of server names, node runs per visit with their
attempts, re-runs and idempotency keys."""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def expire_running_leases(apps, schema_editor) -> None:
    """Runs left running by a version without leases have no one renewing them: the first sweep
    takes each over and resumes it from its recorded nodes."""
    Execution = apps.get_model("executions", "Execution")
    Execution.objects.filter(status="running").update(lease_expires_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0003_execution_workflow_status_index"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="nodeexecution",
            name="node_once_per_execution",
        ),
        migrations.RemoveIndex(
            model_name="execution",
            name="exec_running_worker_idx",
        ),
        migrations.RenameField(
            model_name="execution",
            old_name="worker_id",
            new_name="lease_owner",
        ),
        migrations.AddField(
            model_name="execution",
            name="idempotency_key",
            field=models.CharField(
                blank=True,
                help_text="The client's Idempotency-Key that started it.",
                max_length=200,
                null=True,
                unique=True,
            ),
        ),
        migrations.AddField(
            model_name="execution",
            name="lease_expires_at",
            field=models.DateTimeField(
                blank=True, help_text="Past this, another process may take the run over.", null=True
            ),
        ),
        migrations.AlterField(
            model_name="execution",
            name="lease_owner",
            field=models.CharField(
                blank=True,
                help_text="The process running it (server/pid/boot); empty while queued.",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="execution",
            name="rerun_from_node",
            field=models.CharField(
                blank=True,
                help_text="The node a re-run started from (empty: the start).",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="execution",
            name="rerun_of",
            field=models.ForeignKey(
                blank=True,
                help_text="The execution this one runs again.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="reruns",
                to="executions.execution",
                to_field="execution_id",
            ),
        ),
        migrations.AddField(
            model_name="nodeexecution",
            name="attempt",
            field=models.PositiveIntegerField(default=1, help_text="The current or last attempt."),
        ),
        migrations.AddField(
            model_name="nodeexecution",
            name="attempts",
            field=models.JSONField(
                blank=True, help_text="Every attempt, once there is more than one.", null=True
            ),
        ),
        migrations.AddField(
            model_name="nodeexecution",
            name="reused",
            field=models.BooleanField(
                default=False, help_text="Copied from the execution re-run, not run in this one."
            ),
        ),
        migrations.AddField(
            model_name="nodeexecution",
            name="visit",
            field=models.PositiveIntegerField(
                default=1, help_text="The nth time the run reached it."
            ),
        ),
        migrations.AlterField(
            model_name="nodeexecution",
            name="sequence",
            field=models.PositiveIntegerField(help_text="Its place in the walk (the node index)."),
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(
                condition=models.Q(("status", "running")),
                fields=["lease_expires_at"],
                name="exec_running_lease_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="nodeexecution",
            constraint=models.UniqueConstraint(
                fields=("execution", "node_id", "visit"), name="node_run_once_per_visit"
            ),
        ),
        migrations.RunPython(expire_running_leases, migrations.RunPython.noop),
    ]
