from executions.dashboard.timeline import span_rows, time_axis
from executions.models import Span


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


def test_bars_are_to_scale_on_a_shared_axis():
    rows = span_rows([_span("root", "", 0, 200), _span("half", "root", 100, 200)])
    by_id = {row.span.span_id: row for row in rows}
    assert by_id["root"].offset_pct == 0
    assert by_id["root"].width_pct == 100
    assert by_id["half"].offset_pct == 50
    assert by_id["half"].width_pct == 50


def test_zero_length_spans_still_get_a_visible_bar_inside_the_track():
    rows = span_rows([_span("root", "", 0, 100), _span("instant", "root", 100, 100)])
    instant = rows[1]
    assert instant.width_pct > 0
    assert instant.offset_pct + instant.width_pct <= 100


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
