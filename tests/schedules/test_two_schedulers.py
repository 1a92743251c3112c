"""Two scheduler processes on one database fire each slot of a per-two-seconds schedule exactly
once: real `manage.py schedules run` subprocesses racing for the same slots for several seconds.

Runs on the database the suite runs on: SQLite in the main pass, PostgreSQL in the PostgreSQL
pass (scripts/test-postgres.sh runs tests/schedules there, slow tests included), where two
connections really claim at the same moment and only the row lock decides.
"""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from executions.models import Execution, ExecutionStatus
from schedules.models import FireStatus, ScheduleFire
from tests.conftest import ROOT
from tests.schedules.conftest import schedule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RUN_SECONDS = 9


def _database_url() -> str:
    """The test database as a DATABASE_URL, for the subprocesses to share it."""
    db: Any = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip(f"no DATABASE_URL for {db['ENGINE']}")
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def _scheduler(log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "C4C_SCHEDULE_TICK_SECONDS": "0.2",
        # A slot whose start failed (a busy box) is retaken within the run, by either process.
        "C4C_SCHEDULE_RETRY_SECONDS": "2",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "schedules", "run", "--seconds", str(RUN_SECONDS)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def test_two_schedulers_fire_each_slot_of_a_seconds_schedule_exactly_once(tmp_path: Path) -> None:
    made = schedule(
        "every-two-seconds",
        cron="* * * * * */2",
        overlap="allow",
        catch_up="all",  # slots due while the processes start (slowly, on a busy box) fire too
        now=timezone.now(),
    )
    first_slot = made.next_slot
    assert first_slot is not None
    logs = [tmp_path / "a.log", tmp_path / "b.log"]

    processes = [_scheduler(log) for log in logs]
    for process in processes:
        process.wait(timeout=RUN_SECONDS + 60)
    outputs = [log.read_text() for log in logs]

    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "Scheduler running" in output
        assert "Scheduler stopped" in output
    fires = list(ScheduleFire.objects.filter(schedule=made).order_by("slot"))
    slots = [fire.slot for fire in fires]
    assert len(slots) >= 3, outputs
    # Every slot from the first on, two seconds apart: none lost, none twice.
    assert slots == [first_slot + timedelta(seconds=2 * i) for i in range(len(slots))]
    assert {fire.status for fire in fires} == {FireStatus.STARTED}, outputs
    runs = Execution.objects.filter(idempotency_key__startswith="schedule:every-two-seconds:")
    assert sorted(run.execution_id for run in runs) == sorted(f.execution_id for f in fires)
    assert {run.status for run in runs} == {ExecutionStatus.COMPLETED}
    assert all(run.input["startedBy"]["schedule"] == "every-two-seconds" for run in runs)
