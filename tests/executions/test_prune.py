"""Retention: finished runs past their keep-by are pruned with everything hanging off them, by
`c4c prune`, the heartbeat, Celery beat's task and the admin, and the counters stay exact."""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from c4c_site import cli
from executions import retention, store, tasks
from executions.models import Execution, ExecutionCounter, NodeExecution, Span
from tests import factories
from tests.workflows.helpers import C4C_SIMPLE_MATH

DONE = dict.fromkeys(("add", "multiply", "subtract"), "completed")


def _ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def _ids() -> set[str]:
    return set(Execution.objects.values_list("execution_id", flat=True))


def _counters_match_rows() -> None:
    """The O(1) counters say what a COUNT of the rows says."""
    rows = dict(Execution.objects.values_list("status").annotate(n=Count("pk")).order_by())
    stored = dict(ExecutionCounter.objects.values_list("status", "count"))
    assert {s: n for s, n in stored.items() if n} == rows


def _prune(*args: str) -> str:
    out = StringIO()
    call_command("prune", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_prune_deletes_finished_runs_past_retention_with_their_nodes_and_spans(
    settings,
) -> None:
    settings.C4C_RETENTION_DAYS = 20
    old = factories.execution(execution_id="old", started_at=_ago(40), nodes=DONE, spans=3)
    factories.execution(execution_id="recent", started_at=_ago(10), nodes=DONE, spans=3)
    factories.execution(execution_id="old-failed", status="failed", started_at=_ago(31))
    # Cancelled under 24 days after its start: PostgreSQL's execution_time_ms is an int4.
    factories.execution(execution_id="old-cancelled", status="cancelled", started_at=_ago(22))
    output = _prune()
    assert _ids() == {"recent"}
    assert not NodeExecution.objects.filter(execution_id=old.pk).exists()
    assert not Span.objects.filter(execution_id=old.pk).exists()
    assert NodeExecution.objects.count() == 3
    assert Span.objects.count() == 3
    assert "completed         1  deleted" in output
    assert "failed            1  deleted" in output
    _counters_match_rows()


@pytest.mark.django_db
def test_per_status_overrides_keep_failed_runs_longer_and_cancelled_ones_forever(
    settings,
) -> None:
    settings.C4C_RETENTION_DAYS = 5
    settings.C4C_RETENTION_DAYS_FAILED = 15
    settings.C4C_RETENTION_DAYS_CANCELLED = float("inf")
    factories.execution(execution_id="completed-8d", started_at=_ago(8))
    factories.execution(execution_id="failed-8d", status="failed", started_at=_ago(8))
    factories.execution(execution_id="failed-20d", status="failed", started_at=_ago(20))
    factories.execution(execution_id="cancelled-20d", status="cancelled", started_at=_ago(20))
    _prune()
    assert _ids() == {"failed-8d", "cancelled-20d"}
    _counters_match_rows()


@pytest.mark.django_db
def test_a_status_override_applies_without_a_default_retention(settings) -> None:
    settings.C4C_RETENTION_DAYS_COMPLETED = 7
    factories.execution(execution_id="completed-8d", started_at=_ago(8))
    factories.execution(execution_id="failed-1y", status="failed", started_at=_ago(365))
    _prune()
    assert _ids() == {"failed-1y"}


@pytest.mark.django_db
def test_running_and_queued_runs_are_never_pruned_whatever_their_age() -> None:
    running = factories.execution(execution_id="running", status="running", started_at=_ago(400))
    factories.execution(execution_id="queued", status="running", owner="", started_at=_ago(400))
    _prune("--older-than", "1d")
    assert _ids() == {"running", "queued"}
    assert store.executions_delete(pks=[running.pk]) == Counter()
    assert Execution.objects.filter(pk=running.pk).exists()
    _counters_match_rows()


@pytest.mark.django_db
def test_without_retention_nothing_is_deleted_and_the_command_says_why() -> None:
    factories.execution(execution_id="ancient", started_at=_ago(3650))
    output = _prune()
    assert "No retention is set (C4C_RETENTION_DAYS)" in output
    assert _ids() == {"ancient"}


@pytest.mark.django_db
def test_dry_run_prints_what_would_go_per_status_and_deletes_nothing() -> None:
    factories.execution(execution_id="c1", started_at=_ago(40), nodes=DONE)
    factories.execution(execution_id="c2", started_at=_ago(50))
    factories.execution(execution_id="f1", status="failed", started_at=_ago(40))
    factories.execution(execution_id="new", started_at=_ago(1))
    factories.execution(
        execution_id="other", workflow={**C4C_SIMPLE_MATH, "id": "x"}, started_at=_ago(40)
    )
    before = ExecutionCounter.objects.stats()
    output = _prune("--older-than", "30d", "--dry-run")
    lines = {line.split()[0]: line.split()[1] for line in output.splitlines()[1:]}
    assert output.startswith("Dry run: nothing is deleted.")
    assert lines == {"completed": "3", "failed": "1", "cancelled": "0", "snapshots": "1"}
    assert _ids() == {"c1", "c2", "f1", "new", "other"}
    assert ExecutionCounter.objects.stats() == before


@pytest.mark.django_db
@pytest.mark.parametrize("age", ["30", "30y", "3.5d", "0d", "d", ""])
def test_an_age_that_is_not_one_is_refused(age: str) -> None:
    with pytest.raises(CommandError, match="not an age like 12h, 30d or 2w"):
        _prune("--older-than", age)


@pytest.mark.parametrize(("age", "expected"), [("90m", 1.5 / 24), ("12h", 0.5), ("2w", 14)])
def test_ages_are_read_in_minutes_hours_days_and_weeks(age: str, expected: float) -> None:
    assert retention.parse_age(age) == timedelta(days=expected)


@pytest.mark.django_db
def test_c4c_prune_runs_the_command_and_exits_2_on_a_bad_age(capsys) -> None:
    factories.execution(execution_id="old", started_at=_ago(3))
    assert cli.main(["prune", "--older-than", "2d", "--dry-run"]) == 0
    assert "completed         1" in capsys.readouterr().out
    assert _ids() == {"old"}
    assert cli.main(["prune", "--older-than", "2x"]) == 2
    assert "not an age" in capsys.readouterr().err
    assert cli.main(["prune", "--older-than", "2d"]) == 0
    assert _ids() == set()


@pytest.mark.django_db
def test_a_rerun_outlives_the_run_it_re_ran() -> None:
    factories.execution(execution_id="original", started_at=_ago(40))
    factories.execution(execution_id="rerun", started_at=_ago(1), rerun_of="original")
    _prune("--older-than", "30d")
    assert Execution.objects.get(execution_id="rerun").rerun_of_id is None


@pytest.mark.django_db
def test_a_row_deleted_twice_is_counted_once() -> None:
    runs = [factories.execution(started_at=_ago(40)) for _ in range(3)]
    pks = [run.pk for run in runs]
    assert store.executions_delete(pks=pks) == Counter({"completed": 3})
    assert store.executions_delete(pks=pks) == Counter()
    assert ExecutionCounter.objects.stats()["total"] == 0


@pytest.mark.django_db
def test_a_time_budget_stops_between_batches_and_the_next_call_goes_on() -> None:
    for _ in range(5):
        factories.execution(started_at=_ago(40))
    limits = retention.cutoffs(older_than=timedelta(days=30))
    first = retention.prune(limits, batch=2, budget_seconds=0)
    assert (sum(first.executions.values()), first.more) == (2, True)
    rest = retention.prune(limits, batch=2)
    assert (sum(rest.executions.values()), rest.more) == (3, False)
    assert rest.snapshots == 1
    _counters_match_rows()


@pytest.mark.django_db
def test_the_heartbeats_prune_waits_its_interval_and_needs_retention(settings) -> None:
    factories.execution(execution_id="old", started_at=_ago(40))
    periodic = retention.PeriodicPrune()
    assert periodic() is None
    assert _ids() == {"old"}
    settings.C4C_RETENTION_DAYS = 30
    settings.C4C_PRUNE_INTERVAL_SECONDS = 3600
    periodic = retention.PeriodicPrune()
    report = periodic()
    assert report is not None
    assert report.executions == Counter({"completed": 1})
    factories.execution(execution_id="old-2", started_at=_ago(40))
    assert periodic() is None
    assert _ids() == {"old-2"}


@pytest.mark.django_db
def test_the_celery_beat_task_prunes_by_the_settings(settings) -> None:
    factories.execution(execution_id="old", status="failed", started_at=_ago(40))
    assert tasks.prune() == {"executions": {}, "snapshots": 0}
    settings.C4C_RETENTION_DAYS = 30
    assert tasks.prune() == {"executions": {"failed": 1}, "snapshots": 1}
    assert _ids() == set()


def test_celery_beat_sends_the_prune_task_every_interval() -> None:
    from c4c_site.celery import app

    app.loader.import_default_modules()
    app.finalize()
    entry = app.conf.beat_schedule["c4c-prune"]
    assert entry["task"] == "executions.prune"
    assert entry["schedule"] == 600


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_counters_stay_exact_when_pruning_while_runs_start_and_finish() -> None:
    """Two pruners and two threads starting and finishing old runs at once, on real commits."""
    for _ in range(40):
        factories.execution(started_at=_ago(20), nodes=DONE, spans=2)
    stop = threading.Event()
    errors: list[BaseException] = []
    limits = retention.cutoffs(older_than=timedelta(days=10))

    def guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    def start_runs() -> None:
        for index in range(30):
            status = ("completed", "failed", "running", "cancelled")[index % 4]
            factories.execution(status=status, started_at=_ago(20), nodes={"add": "completed"})

    def prune_until_stopped() -> None:
        while not stop.is_set():
            retention.prune(limits, batch=7)

    starters = [threading.Thread(target=guarded, args=(start_runs,)) for _ in range(2)]
    pruners = [threading.Thread(target=guarded, args=(prune_until_stopped,)) for _ in range(2)]
    for thread in starters + pruners:
        thread.start()
    for thread in starters:
        thread.join(60)
    stop.set()
    for thread in pruners:
        thread.join(60)
    assert errors == []
    retention.prune(limits)
    # Only the running runs are left (7 of each thread's 30), and the counters say so.
    assert Execution.objects.exclude(status="running").count() == 0
    assert Execution.objects.count() == 14
    _counters_match_rows()
    assert ExecutionCounter.objects.stats()["total"] == 14


# Admin --------------------------------------------------------------------------------------------

CHANGELIST = "/admin/executions/execution/"


@pytest.mark.django_db
def test_admin_deletes_a_finished_run_through_the_store(admin_client: Client) -> None:
    run = factories.execution(execution_id="done", nodes=DONE, spans=2)
    factories.execution(execution_id="kept")
    confirm = admin_client.get(f"{CHANGELIST}{run.pk}/delete/")
    assert confirm.status_code == 200
    response = admin_client.post(f"{CHANGELIST}{run.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert _ids() == {"kept"}
    assert not NodeExecution.objects.filter(execution_id=run.pk).exists()
    _counters_match_rows()


@pytest.mark.django_db
def test_admin_refuses_to_delete_a_running_run_and_says_why(admin_client: Client) -> None:
    run = factories.execution(execution_id="going", status="running")
    response = admin_client.post(f"{CHANGELIST}{run.pk}/delete/", {"post": "yes"}, follow=True)
    assert "still running and cannot be deleted" in response.text
    assert _ids() == {"going"}
    _counters_match_rows()


@pytest.mark.django_db
def test_admin_bulk_delete_goes_through_the_store_and_refuses_running_runs(
    admin_client: Client,
) -> None:
    done = [factories.execution(status=s) for s in ("completed", "failed", "cancelled")]
    running = factories.execution(execution_id="going", status="running")
    selected = [run.pk for run in done]
    refused = admin_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [*selected, running.pk], "post": "yes"},
        follow=True,
    )
    assert "1 of the 4 selected executions is still running" in refused.text
    assert len(_ids()) == 4
    confirm = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": selected}
    )
    assert confirm.status_code == 200
    assert "Are you sure" in confirm.text
    admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )
    assert _ids() == {"going"}
    _counters_match_rows()
