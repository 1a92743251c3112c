"""The list page's search: filters kept in the URL (so a view can be shared), the form filled
again from it, live rows checked with the same filters, bulk actions handed the same filter."""

import html
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test.utils import override_settings
from django.utils import timezone

from executions.dashboard.views import ListFilters
from tests import factories

NODES_DONE = {"add": "completed", "multiply": "completed", "subtract": "completed"}


@pytest.fixture
def orders(db):
    base = timezone.now() - timedelta(minutes=10)
    return [
        factories.execution(
            execution_id=f"order-{order}-{i}",
            started_at=base + timedelta(seconds=i),
            input={"orderId": order},
            nodes=NODES_DONE,
            node_outputs={"multiply": {"customer": {"country": country}}},
        )
        for i, (order, country) in enumerate([(4711, "DE"), (4712, "FR"), (4711, "FR")])
    ]


def test_a_search_in_the_url_shows_exactly_the_matching_runs(client, orders) -> None:
    page = client.get("/executions", {"where": "input.orderId = 4711"}).content.decode()
    assert "order-4711-0" in page
    assert "order-4711-2" in page
    assert "order-4712-1" not in page
    both = client.get(
        "/executions", {"where": 'input.orderId = 4711 and output.customer.country = "DE"'}
    ).content.decode()
    assert "order-4711-0" in both
    assert "order-4711-2" not in both


def test_the_form_is_filled_again_from_the_url(client, orders) -> None:
    page = client.get(
        "/executions",
        {
            "where": "input.orderId = 4711",
            "startedAfter": "2025-01-31T12:00",
            "startedBefore": "2099-01-01T00:00:00+01:00",
            "minDuration": "5",
            "maxDuration": "90000",
        },
    ).content.decode()
    assert 'value="input.orderId = 4711"' in page
    assert 'name="startedAfter" type="datetime-local" step="1" value="2025-01-31T12:00:00"' in page
    assert 'value="2098-12-31T23:00:00"' in page  # shown in UTC, as the label says
    assert 'class="filter-ms" value="90000"' in page
    assert '<details class="filters-more" open>' in page
    live = (
        "/executions/live?startedAfter=2025-01-31T12%3A00&amp;startedBefore=2099-01-01T00%3A00"
        "%3A00%2B01%3A00&amp;minDuration=5&amp;maxDuration=90000&amp;where=input.orderId+%3D+4711"
    )
    assert live in page


def test_bulk_actions_get_the_same_filter_as_words_a_query_and_a_body(client, orders) -> None:
    page = client.get(
        "/executions", {"status": "completed", "where": 'output.customer.country = "DE"'}
    ).content.decode()
    bar = page[page.index('id="bulk-bar"') : page.index("</div>", page.index('id="bulk-bar"'))]
    attributes = {
        name: html.unescape(bar.split(f'{name}="', 1)[1].split('"', 1)[0])
        for name in ("data-filter-query", "data-filter", "data-filter-words")
    }
    assert attributes["data-filter-query"] == (
        "status=completed&where=output.customer.country+%3D+%22DE%22"
    )
    assert json.loads(attributes["data-filter"]) == {
        "status": ["completed"],
        "where": ['output.customer.country = "DE"'],
    }
    assert (
        attributes["data-filter-words"] == 'status = completed and output.customer.country = "DE"'
    )
    assert 'data-count-url="/workflow/executions/bulk/count"' in bar
    assert 'data-compare-url="/executions/compare"' in bar


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"where": "input.orderId =="}, "where: expected a JSON value"),
        ({"minDuration": "soon"}, "minDuration: not a whole number of milliseconds"),
        ({"startedAfter": "last week"}, "startedAfter: not a time"),
        ({"status": "exploded"}, "status must be one of"),
    ],
)
def test_a_malformed_filter_is_a_400_page_naming_it(client, db, params, message) -> None:
    response = client.get("/executions", params)
    assert response.status_code == 400
    assert html.escape(message, quote=False) in response.content.decode()
    live = client.get("/executions/live", params)
    assert live.status_code == 400
    assert message in live.json()["error"]


def test_live_rows_match_value_conditions_in_two_queries(
    client, orders, django_assert_num_queries
) -> None:
    ids = ",".join(run.execution_id for run in orders)
    with django_assert_num_queries(3):  # stats, the rows, their input and outputs
        data = client.get(
            "/executions/live", {"ids": ids, "where": 'output.customer.country = "FR"'}
        ).json()
    matches = {row["id"]: row["matches"] for row in data["rows"]}
    assert matches == {"order-4711-0": False, "order-4712-1": True, "order-4711-2": True}


def test_a_where_filter_that_matches_nothing_says_so(client, orders) -> None:
    page = client.get("/executions", {"where": "input.orderId = 1"}).content.decode()
    assert "No executions match these filters." in page
    assert 'class="btn ghost" href="/executions">Clear</a>' in page


@override_settings(C4C_SEARCH_SCAN_ROWS=2)
def test_a_search_that_stopped_says_so_and_links_to_the_older_runs(client, orders) -> None:
    response = client.get("/executions", {"where": "input.orderId = 4711"})
    search = response.context["search"]
    if search.stopped is None:  # PostgreSQL: its GIN index serves `=`
        pytest.skip("an indexed search does not stop")
    page = response.content.decode()
    assert "The search stopped after checking 2 runs without filling this page" in page
    older = f"?where=input.orderId+%3D+4711&amp;after={search.stopped_cursor}"
    assert older in page
    rest = client.get(f"/executions{html.unescape(older)}").content.decode()
    assert "order-4711-0" in rest
    assert "order-4711-2" not in rest


def test_list_filters_read_back_from_their_query_string() -> None:
    filters = ListFilters(
        status="failed",
        workflow="wf",
        started_after="2025-01-31T12:00",
        where="input.a = 1",
        min_duration="3",
    )
    assert filters.query() == (
        "status=failed&workflow=wf&startedAfter=2025-01-31T12%3A00&minDuration=3"
        "&where=input.a+%3D+1"
    )
    selected = filters.selection()
    assert selected.started_after == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert selected.workflow_id == "wf"
    assert selected.min_duration_ms == 3
    assert filters.advanced
    assert not ListFilters(status="failed", workflow="", where="input.a = 1").advanced
