"""Schedules declared in code: copied into the table at start (source "code"), their enabled
state left as an operator set it, disabled when no longer declared; a declaration naming no
workflow stops `check`; the shipped example is declared disabled."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from c4c_site import cli
from schedules import declared, store
from schedules.models import Schedule, ScheduleSource
from tests.schedules.conftest import NOW, schedule
from workflows.errors import DuplicateDefinition
from workflows.schedules import (
    ScheduleDeclaration,
    ScheduleDeclarations,
    schedule_declarations,
)

pytestmark = pytest.mark.django_db

REPORT = ScheduleDeclaration(
    "daily-report", workflow_id="simple-math-workflow", cron="0 6 * * *", timezone="Europe/Berlin"
)
REPORT_FIELDS = ("simple-math-workflow", "0 6 * * *", "Europe/Berlin")


def test_a_declared_schedule_is_created_from_code_as_declared() -> None:
    declared.sync([REPORT], now=NOW)

    made = Schedule.objects.get(schedule_id="daily-report")
    assert made.source == ScheduleSource.CODE
    assert (made.workflow_id, made.cron, made.timezone) == REPORT_FIELDS
    assert not made.enabled  # declarations start disabled unless they say otherwise
    assert made.next_slot is not None


def test_the_enabled_state_set_by_an_operator_survives_the_next_sync() -> None:
    declared.sync([REPORT], now=NOW)
    store.schedule_set_enabled(
        schedule=Schedule.objects.get(schedule_id="daily-report"), enabled=True, now=NOW
    )

    changed = declared.sync([REPORT], now=NOW + timedelta(hours=1))

    assert changed == []
    assert Schedule.objects.get(schedule_id="daily-report").enabled


def test_a_changed_declaration_updates_the_row_and_its_next_slot() -> None:
    declared.sync([REPORT], now=NOW)
    moved = ScheduleDeclaration(
        "daily-report", workflow_id="simple-math-workflow", cron="0 7 * * *", input={"a": 1}
    )

    declared.sync([moved], now=NOW)

    made = Schedule.objects.get(schedule_id="daily-report")
    assert (made.cron, made.timezone, made.input) == ("0 7 * * *", "UTC", {"a": 1})
    assert made.next_slot == NOW.replace(day=3, hour=7)


def test_a_schedule_no_longer_declared_is_disabled_and_kept() -> None:
    declared.sync([REPORT], now=NOW)
    store.schedule_set_enabled(
        schedule=Schedule.objects.get(schedule_id="daily-report"), enabled=True, now=NOW
    )

    declared.sync([], now=NOW)

    assert not Schedule.objects.get(schedule_id="daily-report").enabled


def test_a_schedule_made_in_the_admin_under_a_declared_id_is_left_alone(caplog) -> None:
    schedule("daily-report", cron="*/5 * * * *")

    declared.sync([REPORT], now=NOW)

    made = Schedule.objects.get(schedule_id="daily-report")
    assert (made.source, made.cron) == (ScheduleSource.ADMIN, "*/5 * * * *")
    assert "declared in code but was made in the admin" in caplog.text


def test_the_example_schedule_is_declared_and_disabled() -> None:
    (example,) = [
        d for d in schedule_declarations().all() if d.schedule_id == "simple-math-every-minute"
    ]

    assert example.workflow_id == "simple-math-workflow"
    assert not example.enabled


def test_the_same_schedule_id_from_two_modules_is_refused_naming_both() -> None:
    declarations = ScheduleDeclarations()
    declarations.declare(REPORT, source="module a.workflows")

    with pytest.raises(DuplicateDefinition, match=r"in module a\.workflows and in module b"):
        declarations.declare(REPORT, source="module b.workflows")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "* * *"}, "has 3 fields"),
        ({"timezone": "Nowhere/City"}, "not a known time zone"),
        ({"schedule_id": "has space"}, "letters, digits"),
        ({"input": {"startedBy": 1}}, "set by the scheduler"),
        ({"overlap": "sometimes"}, "overlap must be one of skip, queue, allow"),
    ],
)
def test_a_bad_declaration_fails_at_import_saying_what_is_wrong(fields, message) -> None:
    arguments = {"schedule_id": "x", "workflow_id": "w", "cron": "* * * * *", **fields}

    with pytest.raises(ValueError, match=message):
        ScheduleDeclaration(**arguments)


def test_a_declaration_naming_an_unknown_workflow_stops_check(monkeypatch) -> None:
    declarations = ScheduleDeclarations()
    declarations.declare(
        ScheduleDeclaration("orphan", workflow_id="no-such-workflow", cron="* * * * *"),
        source="module tests",
    )
    monkeypatch.setattr(declared, "schedule_declarations", lambda: declarations)

    (error,) = declared.check_declarations()

    assert error.id == "schedules.E001"
    assert "starts workflow 'no-such-workflow', which is not defined" in error.msg


def test_the_command_lists_schedules_with_their_next_slot(capsys) -> None:
    schedule("every-five", cron="*/5 * * * *", timezone="Europe/Berlin")

    call_command("schedules")

    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["ID", "WORKFLOW", "CRON", "ENABLED", "SOURCE", "NEXT"]
    assert "every-five" in out
    assert "2025-06-02 11:05:00 CEST" in out  # 09:05 UTC, in the schedule's zone


@pytest.mark.django_db
def test_c4c_schedules_syncs_the_declared_ones_and_lists_them(capsys) -> None:
    assert cli.main(["schedules", "sync"]) == 0
    assert cli.main(["schedules"]) == 0

    listed = capsys.readouterr().out
    assert "simple-math-every-minute" in listed
    assert "simple-math-workflow" in listed
