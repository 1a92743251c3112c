import json

import pytest

from executions.dashboard.timeline import span_rows, time_axis
from executions.models import Span
from tests import factories


def _span(span_id: str, parent: str, start_ms: int, end_ms: int) -> Span:
    return Span(
        span_id=span_id,
        parent_span_id=parent,
        name=span_id,
        start_time_us=start_ms * 1000,
        end_time_us=end_ms * 1000,
    )


def test_spans_are_nested_depth_first_under_their_parents():
    spans = [
        _span("child2", "root", 50, 100),
        _span("root", "", 0, 100),
        _span("grandchild", "child1", 10, 20),
        _span("child1", "root", 5, 40),
    ]
    rows = span_rows(spans)
    assert [(row.span.span_id, row.depth) for row in rows] == [
        ("root", 0),
        ("child1", 1),
        ("grandchild", 2),
        ("child2", 1),
    ]
    assert rows[0].has_children
    assert not rows[2].has_children


def test_siblings_follow_their_start_the_longer_first_when_they_start_together():
    rows = span_rows(
        [_span("late", "", 50, 60), _span("short", "", 0, 10), _span("long", "", 0, 40)]
    )
    assert [row.span.span_id for row in rows] == ["long", "short", "late"]


def test_orphans_and_self_parents_become_roots_instead_of_disappearing():
    rows = span_rows([_span("a", "missing", 0, 10), _span("b", "b", 2, 4)])
    assert [(row.span.span_id, row.depth) for row in rows] == [("a", 0), ("b", 0)]


def test_five_hundred_spans_all_get_a_row():
    spans = [_span("root", "", 0, 5000)] + [
        _span(f"s{i}", "root", i * 10, i * 10 + 5) for i in range(499)
    ]
    assert len(span_rows(spans)) == 500


def test_axis_ticks_use_round_steps():
    assert [tick.label for tick in time_axis(1000)] == [
        "0 ms",
        "200 ms",
        "400 ms",
        "600 ms",
        "800 ms",
        "1000 ms",
    ]
    assert [tick.label for tick in time_axis(60_000)][:3] == ["0 s", "10 s", "20 s"]
    assert time_axis(0)[0].pct == 0
    odd = time_axis(37.3)
    assert odd
    assert all(0 <= tick.pct <= 100 for tick in odd)


def _attempt(span_id: str, parent: str, start_ms: int, number: int) -> Span:
    span = _span(span_id, parent, start_ms, start_ms + 5)
    span.attributes = {"procedure.name": "custom.flaky", "procedure.attempt": number}
    return span


def test_a_retried_node_has_one_row_per_attempt_each_naming_its_attempt():
    rows = span_rows(
        [
            _span("node", "", 0, 100),
            _attempt("a1", "node", 0, 1),
            _attempt("a2", "node", 30, 2),
            _attempt("a3", "node", 90, 3),
            _span("once", "", 100, 110),
            _attempt("b1", "once", 100, 1),
        ]
    )
    assert [(row.span.span_id, row.attempt) for row in rows] == [
        ("node", None),
        ("a1", 1),
        ("a2", 2),
        ("a3", 3),
        ("once", None),
        ("b1", None),
    ]


def test_a_later_attempt_alone_still_says_its_number():
    """A resumed run records only the attempts it ran: attempt 2 alone is still attempt 2."""
    rows = span_rows([_span("node", "", 0, 10), _attempt("a2", "node", 0, 2)])
    assert rows[1].attempt == 2


def _part(client, execution, name: str) -> str:
    return str(client.get(f"/executions/{execution.execution_id}/live").json()[name])


@pytest.mark.django_db
def test_the_page_script_gets_every_span_in_tree_order_with_its_times(client):
    execution = factories.execution(nodes={"add": "completed"}, spans=3)
    timeline = _part(client, execution, "timeline")
    island = timeline.split('<script id="span-rows" type="application/json">', 1)[1]
    rows = json.loads(island.split("</script>", 1)[0])
    stored = {span.span_id: span for span in Span.objects.filter(execution=execution)}
    assert [row["id"] for row in rows] == [
        row.span.span_id for row in span_rows(list(stored.values()))
    ]
    for row in rows:
        span = stored[row["id"]]
        assert (row["startUs"], row["endUs"]) == (span.start_time_us, span.end_time_us)
        assert row["parent"] == span.parent_span_id
        assert row["attributes"] == span.attributes
    assert [row["depth"] for row in rows] == [0, 1, 1]
    # Placed by timeline.js (the CSP allows no style attribute): zoom and pan buttons are named.
    assert "style=" not in timeline + _part(client, execution, "trace")
    for label in ("Zoom in", "Zoom out", "Pan left", "Pan right"):
        assert f'aria-label="{label}"' in timeline
    assert 'role="group" aria-label="Span timeline"' in timeline


@pytest.mark.django_db
def test_a_running_run_without_spans_has_the_rows_to_fill_in_live(client):
    execution = factories.execution(status="running", nodes={"add": "running"})
    timeline, trace = _part(client, execution, "timeline"), _part(client, execution, "trace")
    assert "data-tl-rows" in timeline
    assert "data-trace" in trace
    assert "a bar appears for each node as it starts" in timeline
    assert "the tree grows as nodes start and end" in trace
    header = _part(client, execution, "header")
    assert "data-progress" in header
