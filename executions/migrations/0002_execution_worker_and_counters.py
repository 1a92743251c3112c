from django.db import migrations, models
from django.db.models import Count


def seed_counters(apps, schema_editor) -> None:
    """One counter row per status, so the store only ever UPDATEs them (no upsert race)."""
    Execution = apps.get_model("executions", "Execution")
    ExecutionCounter = apps.get_model("executions", "ExecutionCounter")
    counts = dict(Execution.objects.values_list("status").annotate(n=Count("id")))
    for status in ("running", "completed", "failed", "cancelled"):
        ExecutionCounter.objects.update_or_create(
            status=status, defaults={"count": counts.get(status, 0)}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="worker_id",
            field=models.CharField(
                blank=True,
                help_text=(
                    "The server process that runs it; start-up recovery fails only its own rows."
                ),
                max_length=64,
            ),
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(
                condition=models.Q(("status", "running")),
                fields=["worker_id"],
                name="exec_running_worker_idx",
            ),
        ),
        migrations.RunPython(seed_counters, migrations.RunPython.noop),
    ]
