"""The Schedules pages and admin: the list with next and last runs, one schedule with its next
five slots and last runs, the form (a mistake comes back 400 naming it), the on/off switch; and
who may do what when sign-in is required (viewing: view_execution, changing: manage_c4c)."""

from typing import Any

import pytest
from django.test import Client

from schedules.models import FireStatus, Schedule, ScheduleFire
from tests import factories
from tests.schedules.conftest import next_slot, schedule, started_fire

pytestmark = pytest.mark.django_db

VALID = {
    "schedule_id": "morning-math",
    "workflow_id": "simple-math-workflow",
    "cron": "0 9 * * 1-5",
    "timezone": "Europe/Berlin",
    "input": '{"a": 1}',
    "enabled": "on",
    "overlap": "skip",
    "catch_up": "last",
}


def _text(response: Any) -> str:
    return str(response.content.decode())


def test_the_list_shows_each_schedule_with_its_next_and_last_run(client: Client) -> None:
    made = schedule("every-five", cron="*/5 * * * *")
    fire = started_fire(made, next_slot(made), status="completed")
    Schedule.objects.filter(pk=made.pk).update(last_slot=fire.slot)

    response = client.get("/schedules")

    assert response.status_code == 200
    page = _text(response)
    assert "every-five" in page
    assert "*/5 * * * *" in page
    assert f'href="/executions/{fire.execution_id}"' in page
    assert "Completed" in page
    assert 'aria-current="page">Schedules</a>' in page  # the nav marks the page


def test_the_list_says_when_there_is_no_schedule(client: Client) -> None:
    assert "No schedules yet." in _text(client.get("/schedules"))


def test_a_schedule_page_shows_its_next_five_slots_and_its_last_runs(client: Client) -> None:
    made = schedule("every-five", cron="*/5 * * * *", timezone="Europe/Berlin")
    run = started_fire(made, next_slot(made))
    ScheduleFire.objects.create(
        schedule=made,
        slot=next_slot(made).replace(minute=10),
        status=FireStatus.SKIPPED,
        note="The previous run had not ended",
    )

    response = client.get("/schedules/every-five")

    assert response.status_code == 200
    assert len(response.context["upcoming"]) == 5
    assert response.context["upcoming"][0].endswith(("CET", "CEST"))  # in its zone
    page = _text(response)
    assert f'href="/executions/{run.execution_id}"' in page
    assert "Running" in page
    assert "Skipped" in page
    assert "The previous run had not ended" in page


def test_an_unknown_schedule_is_404(client: Client) -> None:
    assert client.get("/schedules/nope").status_code == 404


def test_the_form_creates_a_schedule_and_shows_it(client: Client) -> None:
    response = client.post("/schedules/new", VALID)

    assert response.status_code == 302
    assert response["Location"] == "/schedules/morning-math"
    made = Schedule.objects.get(schedule_id="morning-math")
    assert (made.cron, made.timezone, made.input, made.catch_up) == (
        "0 9 * * 1-5",
        "Europe/Berlin",
        {"a": 1},
        "last",
    )
    assert made.next_slot is not None
    assert made.source == "admin"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cron", "61 * * * *", "is not a valid cron expression"),
        ("cron", "every day", "has 2 fields"),
        ("timezone", "Mars/Base", "is not a known time zone"),
        ("workflow_id", "no-such-workflow", "Select a valid choice"),
        ("input", "[1, 2]", "The input must be a JSON object"),
        ("input", '{"startedBy": 1}', "set by the scheduler"),
        ("input", "{not json", "Enter a valid JSON"),
        ("schedule_id", "new", "is reserved"),
        ("schedule_id", "bad id!", "Enter a valid"),
    ],
)
def test_a_form_with_a_mistake_comes_back_400_naming_it(
    client: Client, field: str, value: str, message: str
) -> None:
    response = client.post("/schedules/new", {**VALID, field: value})

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert message.split("'")[0] in _text(response)
    assert 'aria-invalid="true"' in _text(response)
    assert not Schedule.objects.exists()


def test_editing_a_schedules_cron_moves_its_next_slot(client: Client) -> None:
    schedule("morning-math", cron="0 9 * * *")

    response = client.post(
        "/schedules/morning-math/edit", {**VALID, "cron": "30 10 * * *", "timezone": "UTC"}
    )

    assert response.status_code == 302
    made = Schedule.objects.get(schedule_id="morning-math")
    assert made.cron == "30 10 * * *"
    assert (next_slot(made).hour, next_slot(made).minute) == (10, 30)


def test_a_code_schedule_can_only_be_switched_on_or_off_on_the_form(client: Client) -> None:
    made = schedule("from-code", cron="0 6 * * *", source="code", enabled=False)

    client.post("/schedules/from-code/edit", {**VALID, "cron": "* * * * *", "enabled": "on"})

    made.refresh_from_db()
    assert (made.cron, made.enabled) == ("0 6 * * *", True)


def test_the_switch_turns_a_schedule_off_and_on_again(client: Client) -> None:
    schedule("switched")

    off = client.post("/schedules/switched/toggle", {"next": "/schedules"})
    assert off.status_code == 302
    assert off["Location"] == "/schedules"
    assert not Schedule.objects.get(schedule_id="switched").enabled

    client.post("/schedules/switched/toggle")
    assert Schedule.objects.get(schedule_id="switched").enabled


def test_the_switch_answers_only_post(client: Client) -> None:
    schedule("switched")

    assert client.get("/schedules/switched/toggle").status_code == 405


# Admin ------------------------------------------------------------------------------------------


def test_the_admin_creates_a_schedule_through_the_store(admin_client: Client) -> None:
    response = admin_client.post("/admin/schedules/schedule/add/", VALID)

    assert response.status_code == 302
    assert Schedule.objects.get(schedule_id="morning-math").next_slot is not None


def test_the_admin_refuses_a_bad_cron_naming_it(admin_client: Client) -> None:
    response = admin_client.post("/admin/schedules/schedule/add/", {**VALID, "cron": "* *"})

    assert response.status_code == 200
    assert "has 2 fields" in _text(response)
    assert not Schedule.objects.exists()


def test_the_admin_shows_a_schedules_newest_fires(admin_client: Client) -> None:
    made = schedule("every-five", cron="*/5 * * * *")
    fire = started_fire(made, next_slot(made))

    response = admin_client.get(f"/admin/schedules/schedule/{made.pk}/change/")

    assert response.status_code == 200
    assert fire.execution_id in _text(response)


# Permissions (sign-in required) -----------------------------------------------------------------


@pytest.fixture
def signed_in(settings: Any, client: Client) -> Any:
    settings.C4C_REQUIRE_AUTH = True

    def sign_in(*groups: str) -> Client:
        client.force_login(factories.user(groups=groups))
        return client

    return sign_in


def test_a_viewer_sees_the_schedules_without_the_buttons_that_change_them(signed_in) -> None:
    schedule("switched")
    client = signed_in("viewer")

    page = _text(client.get("/schedules"))
    detail = _text(client.get("/schedules/switched"))

    assert "switched" in page
    assert "New schedule" not in page
    assert "/schedules/switched/toggle" not in page + detail
    assert "/schedules/switched/edit" not in detail


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/schedules/new"),
        ("post", "/schedules/new"),
        ("get", "/schedules/switched/edit"),
        ("post", "/schedules/switched/edit"),
        ("post", "/schedules/switched/toggle"),
    ],
)
def test_a_viewer_may_not_change_a_schedule(signed_in, method: str, path: str) -> None:
    schedule("switched")
    client = signed_in("viewer")

    response = getattr(client, method)(path, VALID if method == "post" else None)

    assert response.status_code == 403
    assert Schedule.objects.get(schedule_id="switched").enabled


def test_an_admin_group_member_may_change_a_schedule(signed_in) -> None:
    schedule("switched")
    client = signed_in("admin")

    assert client.get("/schedules/new").status_code == 200
    assert client.post("/schedules/switched/toggle").status_code == 302
    assert not Schedule.objects.get(schedule_id="switched").enabled


def test_signing_in_comes_before_the_schedules(signed_in, client: Client) -> None:
    response = client.get("/schedules")

    assert response.status_code == 302
    assert response["Location"] == "/login?next=/schedules"
