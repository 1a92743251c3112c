"""Filters: conditions on values read once, answered the same in SQL and in Python, and a
search that reads a bounded number of rows when no index serves it.

Runs on SQLite and, with DATABASE_URL, on PostgreSQL (scripts/test-postgres.sh): every agreement
test compares `apply()` (the database's answer) with `matches()` on the same rows.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from executions.conditions import ValueCondition, parse_conditions
from executions.filters import (
    FilterError,
    as_json,
    as_params,
    describe,
    from_params,
    search,
)
from executions.models import Execution, ExecutionFilters
from tests import factories

NODES_DONE = {"add": "completed", "multiply": "completed", "subtract": "completed"}


def _run(input: dict[str, Any], outputs: dict[str, Any] | None = None, **kw: Any) -> Execution:
    """A completed simple-math run with this input, its nodes returning `outputs` by node id."""
    return factories.execution(input=input, nodes=NODES_DONE, node_outputs=outputs or {}, **kw)


@pytest.fixture
def runs(db) -> dict[str, Execution]:
    """Runs whose inputs and outputs differ in type, nesting and presence of keys."""
    return {
        "order-4711": _run(
            {"orderId": 4711, "customer": {"country": "DE", "vip": True}},
            {"multiply": {"customer": {"country": "DE"}, "total": 12.5}},
        ),
        "order-4711-float": _run({"orderId": 4711.0, "customer": {"country": "FR"}}),
        "order-text": _run(
            {"orderId": "4711", "customer": {"country": "DE", "vip": False}},
            {"add": {"customer": {"country": ["DE"]}, "total": 99}},
        ),
        "order-null": _run(
            {"orderId": None, "tags": ["DE"]}, {"subtract": {"customer": {"country": "FR"}}}
        ),
        "no-order": _run({"other": 1}, {"add": {"total": 5}}),
        "bool": _run({"orderId": True, "customer": "DE"}),
        "dotted": _run({"order.id": 7, "nested": {"a": {"b": {"c": -3}}}}),
    }


def _names(runs: dict[str, Execution], executions: list[Execution]) -> set[str]:
    by_pk = {run.pk: name for name, run in runs.items()}
    return {by_pk[e.pk] for e in executions}


def _both(runs: dict[str, Execution], filters: ExecutionFilters) -> set[str]:
    """The runs the database selects, after checking matches() selects exactly the same."""
    selected = _names(runs, list(filters.apply(Execution.objects.all())))
    every = list(Execution.objects.all())
    by_python = _names(runs, [e for e in every if filters.matches(e)])
    assert selected == by_python, f"SQL {sorted(selected)} != Python {sorted(by_python)}"
    return selected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("input.orderId = 4711", {"order-4711", "order-4711-float"}),
        ("input.orderId == 4711.0", {"order-4711", "order-4711-float"}),
        ('input.orderId = "4711"', {"order-text"}),
        ("input.orderId = null", {"order-null"}),
        ("input.orderId = true", {"bool"}),
        ("input.orderId = 1", set()),
        ("input.orderId != 4711", {"order-text", "order-null", "no-order", "bool", "dotted"}),
        ("input.orderId > 4000", {"order-4711", "order-4711-float"}),
        ('input.orderId <= 4711 and input.customer.country = "DE"', {"order-4711"}),
        ('input.customer.country = "DE"', {"order-4711", "order-text"}),
        ("input.customer.vip = false", {"order-text"}),
        ('input.customer = "DE"', {"bool"}),
        ('input.tags = "DE"', set()),
        ('input["order.id"] = 7', {"dotted"}),
        ("input.nested.a.b.c < -2", {"dotted"}),
        ("input.nested.a.b.c >= -3 && input.nested.a.b.c <= -3", {"dotted"}),
        ('output.customer.country = "DE"', {"order-4711"}),
        ('output.customer.country != "DE"', None),
        ("output.total > 10", {"order-4711", "order-text"}),
        ("output.total < 10", {"no-order"}),
        ('outputs.multiply.customer.country = "DE"', {"order-4711"}),
        ('outputs.add.customer.country = "DE"', set()),
        ("outputs.add.total = 99", {"order-text"}),
        (
            "outputs.add.result = 0",
            {"order-4711", "order-4711-float", "order-null", "bool", "dotted"},
        ),
    ],
)
def test_sql_and_python_select_the_same_runs(runs, where, expected) -> None:
    if expected is None:  # `!=` is the exact negation of `=`: every run without "DE" there
        expected = set(runs) - {"order-4711"}
    filters = ExecutionFilters(values=parse_conditions(where))
    assert _both(runs, filters) == expected


def test_durations_statuses_and_windows_agree(runs) -> None:
    running = factories.execution(status="running", input={"orderId": 4711})
    everything = {**runs, "running": running}
    assert "running" not in _both(everything, ExecutionFilters(min_duration_ms=0))
    assert _both(everything, ExecutionFilters(max_duration_ms=1199)) == set()
    assert _both(everything, ExecutionFilters(min_duration_ms=1200, max_duration_ms=1200)) == set(
        runs
    )
    order = ExecutionFilters(values=parse_conditions("input.orderId = 4711"))
    assert _both(everything, order) == {"order-4711", "order-4711-float", "running"}
    from executions.cursors import Position

    newest_two = sorted(everything.values(), key=lambda e: (e.started_at, e.pk))[-2:]
    window = ExecutionFilters(oldest=Position(newest_two[0].started_at, newest_two[0].pk))
    assert _both(everything, window) == _names(everything, newest_two)


def test_a_condition_reads_back_from_its_canonical_text() -> None:
    text = 'input.orderId = 4711 and output["a b"].c != "DE" and outputs.n-1.x >= 2.5'
    conditions = parse_conditions(text)
    assert [c.text() for c in conditions] == [
        "input.orderId = 4711",
        'output["a b"].c != "DE"',
        "outputs.n-1.x >= 2.5",
    ]
    assert parse_conditions(" and ".join(c.text() for c in conditions)) == conditions
    assert conditions[0] == ValueCondition("input", ("orderId",), "=", 4711)


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("orderId = 4711", "expected input, output or outputs at character 1"),
        ("input = 4711", "expected a path after input, like input.orderId"),
        ("input.orderId 4711", "expected an operator (=, !=, <, <=, >, >=) at character 15"),
        ("input.orderId =", 'expected a JSON value (4711, "DE", true, false or null)'),
        ("input.orderId = DE", "expected a JSON value"),
        ('input.a = {"b": 1}', "must be a JSON number, string, true, false or null, not an object"),
        ('input.a > "DE"', "'>' compares numbers: give a number, not \"DE\""),
        ("input.a = 1 or input.b = 2", "expected 'and' between two conditions, or the end"),
        ("input.a = NaN", "expected a JSON value"),
        ("input.a = 99999999999999999999", "larger than a 64-bit integer"),
        ('input.a = "x\\u0000"', "contains a NUL character"),
        ('input["a\\"b"] = 1', "contains a quote or a backslash"),
        ("input.a = 1 and " * 10 + "input.a = 1", "at most 10"),
    ],
)
def test_a_malformed_condition_is_refused_naming_where_and_what(where, problem) -> None:
    with pytest.raises(FilterError) as refused:
        from_params({"where": [where]})
    assert str(refused.value).startswith("where: ")
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": ["exploded"]}, "status must be one of running, completed, failed, cancelled"),
        ({"minDuration": ["-1"]}, "minDuration: must be between 0 and"),
        ({"maxDuration": ["fast"]}, "maxDuration: not a whole number of milliseconds"),
        ({"minDuration": ["9"], "maxDuration": ["3"]}, "minDuration: 9 ms is more than"),
        ({"startedAfter": ["yesterday"]}, "startedAfter: not a time: 'yesterday'"),
        ({"startedBefore": ["9999-12-31T23:59:59-01:00"]}, "startedBefore: 9999-12-31T23:59"),
    ],
)
def test_bad_parameters_are_refused_naming_them(params, message) -> None:
    with pytest.raises(FilterError) as refused:
        from_params(params)
    assert str(refused.value).startswith(message)


def test_parameters_read_back_from_their_encoding() -> None:
    filters = from_params(
        {
            "status": ["running,failed"],
            "workflowId": ["wf"],
            "startedAfter": ["2025-01-31T12:00"],  # a date picker's value: UTC
            "startedBefore": ["2025-02-01T00:00:00+01:00"],
            "minDuration": ["10"],
            "maxDuration": ["2000"],
            "where": ["input.orderId = 4711", 'output.customer.country = "DE"'],
        }
    )
    assert filters.started_after == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert filters.started_before == datetime(2025, 1, 31, 23, tzinfo=UTC)
    params = as_params(filters)
    assert params["where"] == 'input.orderId = 4711 and output.customer.country = "DE"'
    assert from_params({k: [v] for k, v in params.items()}) == filters
    assert as_json(filters)["where"] == ["input.orderId = 4711", 'output.customer.country = "DE"']
    assert describe(filters) == (
        'status in (running, failed) and workflowId = "wf" and started after '
        "2025-01-31T12:00:00Z and started before 2025-01-31T23:00:00Z and duration >= 10 ms and "
        'duration <= 2000 ms and input.orderId = 4711 and output.customer.country = "DE"'
    )
    assert describe(ExecutionFilters()) == "all runs"


def _history(count: int, **kw: Any) -> list[Execution]:
    """`count` completed runs a second apart, oldest first; every third has orderId 4711."""
    base = timezone.now() - timedelta(hours=1)
    return [
        factories.execution(
            started_at=base + timedelta(seconds=i),
            input={"orderId": 4711 if i % 3 == 0 else i},
            **kw,
        )
        for i in range(count)
    ]


@override_settings(C4C_SEARCH_SCAN_ROWS=4)
def test_a_search_no_index_serves_stops_after_its_row_budget_and_goes_on(db) -> None:
    made = _history(10)  # 4711 at 0, 3, 6, 9 (9 is the newest)
    filters = ExecutionFilters(values=parse_conditions("input.orderId > 4710"))
    if connection.vendor == "postgresql":
        assert search(filters, limit=3).stopped is not None  # `>` has no index there either
    first = search(filters, limit=3)
    assert [e.pk for e in first.page.executions] == [made[9].pk, made[6].pk]
    assert first.stopped is not None
    assert first.page.older is None
    assert "stopped after checking 4 runs" in (first.message or "")
    cursor_row = Execution.objects.get(pk=made[6].pk)
    assert (first.stopped.started_at, first.stopped.pk) == (
        Execution.objects.get(pk=made[6].pk).started_at,
        cursor_row.pk,
    )
    from executions.cursors import decode_cursor

    second = search(filters, limit=3, after=decode_cursor(first.stopped_cursor or "", "cursor"))
    assert [e.pk for e in second.page.executions] == [made[3].pk]
    third = search(filters, limit=3, after=decode_cursor(second.stopped_cursor or "", "cursor"))
    assert [e.pk for e in third.page.executions] == [made[0].pk]
    assert third.stopped is None


@override_settings(C4C_SEARCH_SCAN_ROWS=4)
def test_a_search_that_fills_its_page_within_the_budget_pages_as_usual(db) -> None:
    made = _history(10)
    found = search(ExecutionFilters(values=parse_conditions("input.orderId != 4711")), limit=1)
    assert [e.pk for e in found.page.executions] == [made[8].pk]
    assert found.stopped is None
    assert found.page.older is not None


@override_settings(C4C_SEARCH_SCAN_ROWS=4)
def test_a_search_without_scanned_conditions_reads_no_bound(db, django_assert_num_queries) -> None:
    _history(6)
    with django_assert_num_queries(2):  # the page and its nodes: no scan bound read
        found = search(ExecutionFilters(statuses=("completed",)), limit=2)
    assert found.stopped is None


def test_equality_on_postgresql_uses_the_gin_indexes_at_100k_rows(db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the GIN indexes are PostgreSQL's (migration 0008_json_search)")
    template = factories.execution(input={"orderId": 0}, nodes=NODES_DONE)
    columns = [str(f.column) for f in Execution._meta.concrete_fields if f.column != "id"]
    made = {
        "execution_id": "'bulk-' || i",
        "input": "jsonb_build_object('orderId', i)",
        "outputs": "jsonb_build_object('lookup', jsonb_build_object('customer', "
        "jsonb_build_object('country', CASE WHEN mod(i, 1000) = 0 THEN 'DE' ELSE 'FR' END)))",
        "started_at": "started_at - i * interval '1 second'",
        "idempotency_key": "NULL",
    }
    select = ", ".join(made.get(column, column) for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO executions_execution ({', '.join(columns)}) SELECT {select} "
            "FROM executions_execution, generate_series(1, 100000) AS i WHERE id = %s",
            [template.pk],
        )
        cursor.execute("ANALYZE executions_execution")

    def plan(where: str) -> str:
        filters = ExecutionFilters(values=parse_conditions(where))
        with CaptureQueriesContext(connection) as queries:
            found = search(filters, limit=50, shape="row")
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {queries[0]['sql']}")
            text = "\n".join(row[0] for row in cursor.fetchall())
        assert found.page.executions, where
        return text

    assert "Bitmap Index Scan on exec_input_gin" in plan("input.orderId = 4711")
    assert "Bitmap Index Scan on exec_outputs_gin" in plan('output.customer.country = "DE"')
    assert "Bitmap Index Scan on exec_outputs_gin" in plan('outputs.lookup.customer.country = "DE"')
