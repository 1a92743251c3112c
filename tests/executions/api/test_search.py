"""GET /workflow/executions with filters on values, durations and times: the documented syntax,
its 400s, and the bounded search's answer when no index serves the filter."""

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from tests import factories

# The list reads on threads of its own (api.views._list_reader): rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

NODES_DONE = {"add": "completed", "multiply": "completed", "subtract": "completed"}


def _listed(client: Client, params: list[tuple[str, str]]) -> dict[str, Any]:
    response = client.get(f"/workflow/executions?{urlencode(params)}")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _ids(body: dict[str, Any]) -> list[str]:
    return [e["executionId"] for e in body["executions"]]


@pytest.fixture
def orders() -> None:
    base = timezone.now() - timedelta(minutes=10)
    for i, (order, country) in enumerate([(4711, "DE"), (4712, "FR"), (4711, "FR"), (99, "DE")]):
        factories.execution(
            execution_id=f"order-{i}",
            started_at=base + timedelta(seconds=i),
            input={"orderId": order},
            nodes=NODES_DONE,
            node_outputs={"multiply": {"customer": {"country": country}}},
        )


def test_a_search_by_an_input_value_finds_exactly_the_matching_runs(client, orders) -> None:
    assert _ids(_listed(client, [("where", "input.orderId = 4711")])) == ["order-2", "order-0"]
    assert _ids(_listed(client, [("where", "input.orderId = 4712")])) == ["order-1"]
    assert _ids(_listed(client, [("where", "input.orderId = 1")])) == []


def test_an_output_value_of_any_node_or_of_one_node(client, orders) -> None:
    anywhere = [("where", 'output.customer.country = "DE"')]
    assert _ids(_listed(client, anywhere)) == ["order-3", "order-0"]
    one_node = [("where", 'outputs.multiply.customer.country = "DE"')]
    assert _ids(_listed(client, one_node)) == ["order-3", "order-0"]
    other_node = [("where", 'outputs.add.customer.country = "DE"')]
    assert _ids(_listed(client, other_node)) == []


def test_repeated_and_joined_conditions_are_and_ed_with_the_other_filters(client, orders) -> None:
    both = [("where", "input.orderId = 4711"), ("where", 'output.customer.country = "FR"')]
    assert _ids(_listed(client, both)) == ["order-2"]
    joined = [("where", 'input.orderId >= 4711 and output.customer.country != "DE"')]
    assert _ids(_listed(client, joined)) == ["order-2", "order-1"]
    with_status = [("where", "input.orderId = 4711"), ("status", "failed")]
    assert _ids(_listed(client, with_status)) == []


def test_duration_range_leaves_out_runs_still_going(client) -> None:
    factories.execution(execution_id="done")  # ran factories.RUN_TIME: 1200 ms
    factories.execution(execution_id="going", status="running")
    assert _ids(_listed(client, [("minDuration", "1200")])) == ["done"]
    assert _ids(_listed(client, [("minDuration", "0"), ("maxDuration", "1199")])) == []
    assert _ids(_listed(client, [("maxDuration", "5000")])) == ["done"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("where", "input.orderId == ")], "where: expected a JSON value"),
        ([("where", "order = 1")], "where: expected input, output or outputs at character 1"),
        ([("where", 'input.a < "x"')], "where: '<' compares numbers"),
        ([("minDuration", "-5")], "minDuration: Input should be greater than or equal to 0"),
        ([("maxDuration", "soon")], "maxDuration: Input should be a valid integer"),
        ([("minDuration", "9"), ("maxDuration", "1")], "minDuration: 9 ms is more than"),
        ([("startedAfter", "monday")], "startedAfter: Input should be a valid datetime"),
        ([("sort", "name")], "sort: Extra inputs are not permitted"),
    ],
)
def test_a_malformed_filter_is_a_400_naming_it(client, params, message) -> None:
    response = client.get(f"/workflow/executions?{urlencode(params)}")
    assert response.status_code == 400
    assert response.json()["error"].startswith(message), response.json()


@override_settings(C4C_SEARCH_SCAN_ROWS=3)
def test_a_search_that_checks_its_budget_says_so_and_goes_on_from_its_cursor(client) -> None:
    base = timezone.now() - timedelta(minutes=10)
    for i in range(7):
        factories.execution(
            execution_id=f"run-{i}",
            started_at=base + timedelta(seconds=i),
            input={"orderId": 4711 if i in (1, 5) else i},
        )
    where = ("where", "input.orderId = 4711")
    first = _listed(client, [where, ("limit", "5")])
    if "searchStopped" not in first:  # PostgreSQL: `=` is served by its GIN index, unbounded
        assert _ids(first) == ["run-5", "run-1"]
        return
    assert _ids(first) == ["run-5"]  # rows 6, 5, 4 checked
    assert first["searchStopped"]["checkedRuns"] == 3
    assert "narrow it by time" in first["searchStopped"]["message"]
    second = _listed(client, [where, ("limit", "5"), ("cursor", first["nextCursor"])])
    assert _ids(second) == ["run-1"]  # rows 3, 2, 1 checked
    third = _listed(client, [where, ("limit", "5"), ("cursor", second["nextCursor"])])
    assert _ids(third) == []
    assert "searchStopped" not in third
    assert "nextCursor" not in third


def test_the_syntax_is_in_the_openapi_document(client) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/workflow/executions"]["get"]
    assert "searchStopped" in operation["description"]
    where = next(p for p in operation["parameters"] if p["name"] == "where")
    assert where["explode"] is True
    assert 'output.customer.country = "DE"' in where["description"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"minDuration", "maxDuration", "startedAfter", "startedBefore", "status"} <= names
