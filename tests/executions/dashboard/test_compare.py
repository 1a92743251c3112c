"""Compare two runs: the structural JSON diff, the pairing of two runs' nodes, and the page."""

import copy
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from executions.dashboard.compare import PAGE_LINES, compare_runs, merged_order
from executions.dashboard.jsondiff import (
    ABSENT,
    UNCHANGED_SHOWN,
    WHOLE_SHOWN,
    Budget,
    diff_json,
    preview,
    same_json,
)
from executions.models import Execution, ExecutionRows, NodeExecution
from tests import factories
from tests.workflows.helpers import C4C_SIMPLE_MATH

# --- The JSON diff ------------------------------------------------------------------------------


def _lines(diff):
    return [(line.kind, line.depth, line.key, line.text, line.old) for line in diff.lines]


def test_equal_values_have_no_diff_whatever_their_key_order():
    a = {"x": 1, "y": {"p": [1, 2], "q": None}}
    b = {"y": {"q": None, "p": [1, 2]}, "x": 1.0}
    diff = diff_json(a, b)
    assert diff.same
    assert diff.lines == []


def test_json_types_are_kept_apart():
    assert not same_json(1, True)
    assert not same_json(0, False)
    assert not same_json(None, 0)
    assert not same_json("1", 1)
    assert same_json(1, 1.0)
    assert not same_json([], {})


def test_keys_added_removed_and_changed_are_marked_nested():
    a = {"order": {"id": 4711, "country": "DE", "notes": "rush"}, "total": 10}
    b = {"order": {"id": 4711, "country": "FR", "gift": True}, "total": 10}
    diff = diff_json(a, b)
    assert (diff.added, diff.removed, diff.changed) == (1, 1, 1)
    assert _lines(diff) == [
        ("open", 0, "", "{", ""),
        ("open", 1, '"order": ', "{", ""),
        ("same", 2, '"id": ', "4711", ""),
        ("changed", 2, '"country": ', '"FR"', '"DE"'),
        ("removed", 2, '"notes": ', '"rush"', ""),
        ("added", 2, '"gift": ', "true", ""),
        ("close", 1, "", "}", ""),
        ("same", 1, '"total": ', "10", ""),
        ("close", 0, "", "}", ""),
    ]


def test_an_item_inserted_into_an_array_is_one_item_added_not_every_later_one_changed():
    diff = diff_json({"items": [1, 2, 3, 4]}, {"items": [1, 9, 2, 3, 4]})
    assert (diff.added, diff.removed, diff.changed) == (1, 0, 0)
    kinds = [(line.kind, line.key, line.text) for line in diff.lines if line.depth == 2]
    assert kinds == [
        ("same", "[0] ", "1"),
        ("added", "[1] ", "9"),
        ("same", "[2] ", "2"),
        ("same", "[3] ", "3"),
        ("same", "[4] ", "4"),
    ]


def test_array_items_removed_and_changed_are_marked():
    diff = diff_json([{"id": 1, "qty": 2}, {"id": 2}, {"id": 3}], [{"id": 1, "qty": 5}])
    assert (diff.added, diff.removed, diff.changed) == (0, 2, 1)
    changed = [line for line in diff.lines if line.kind == "changed"]
    assert [(line.key, line.old, line.text) for line in changed] == [('"qty": ', "2", "5")]
    removed_items = [line.key for line in diff.lines if line.kind == "removed" and line.key]
    assert removed_items == ["[1] ", '"id": ', "[2] ", '"id": ']


def test_a_value_that_changes_type_is_removed_and_added_whole():
    diff = diff_json({"v": {"a": 1}}, {"v": "text"})
    assert diff.changed == 1
    assert _lines(diff)[1:-1] == [
        ("removed", 1, '"v": ', "{", ""),
        ("removed", 2, '"a": ', "1", ""),
        ("removed", 1, "", "}", ""),
        ("added", 1, '"v": ', '"text"', ""),
    ]


def test_no_value_on_one_side_shows_the_other_whole():
    added = diff_json(ABSENT, {"a": [1]})
    assert added.added == 1
    assert {line.kind for line in added.lines} == {"added"}
    assert [line.text for line in added.lines] == ["{", "[", "1", "]", "}"]
    removed = diff_json("x", ABSENT)
    assert _lines(removed) == [("removed", 0, "", '"x"', "")]
    assert diff_json(ABSENT, ABSENT).same


def test_a_large_value_added_whole_is_shown_two_levels_deep_and_a_dozen_members_wide():
    orders = {"items": [{"id": i, "lines": [{"sku": "x"}]} for i in range(30)], "count": 30}
    diff = diff_json(ABSENT, orders)
    shown = [(line.kind, line.depth, line.key, line.text) for line in diff.lines]
    assert shown[:4] == [
        ("added", 0, "", "{"),
        ("added", 1, '"items": ', "["),
        ("added", 2, "[0] ", "{…} 2 keys"),
        ("added", 2, "[1] ", "{…} 2 keys"),
    ]
    assert ("elided", 2, "", f"{30 - WHOLE_SHOWN} more items") in shown
    assert ("added", 1, '"count": ', "30") in shown
    assert len(shown) == WHOLE_SHOWN + 6


def test_unchanged_members_past_a_few_are_counted_on_one_line():
    a = {f"k{i}": i for i in range(50)}
    b = {**a, "k49": "new"}
    diff = diff_json(a, b)
    same = [line for line in diff.lines if line.kind == "same"]
    assert len(same) == UNCHANGED_SHOWN
    elided = [line for line in diff.lines if line.kind == "elided"]
    assert [line.text for line in elided] == [f"{49 - UNCHANGED_SHOWN} more unchanged keys"]
    assert diff.changed == 1


def test_long_strings_and_unchanged_containers_are_shown_short():
    assert preview("x" * 500) == '"' + "x" * 80 + '…"'
    assert preview({"a": 1, "b": 2}) == "{…} 2 keys"
    assert preview([1]) == "[…] 1 item"
    assert preview([]) == "[]"


def test_a_huge_diff_stops_at_its_line_budget_and_says_so():
    a = {f"k{i}": i for i in range(100_000)}
    b = {f"k{i}": i + 1 for i in range(100_000)}
    budget = Budget(visits=1_000_000, lines=300)
    diff = diff_json(a, b, budget)
    assert len(diff.lines) == 300
    assert diff.cut
    assert diff.changed == 100_000  # counted to the end of the walk budget
    assert budget.lines == 0


def test_the_walk_budget_bounds_the_work_and_later_differences_show_as_one_line():
    a = {"outer": [{"n": i} for i in range(1_000)]}
    b = {"outer": [{"n": i + 1} for i in range(1_000)]}
    budget = Budget(visits=50, lines=10_000)
    diff = diff_json(a, b, budget)
    assert budget.visits <= 0
    assert len(diff.lines) < 4_000
    assert not diff.same


def test_deeply_nested_values_neither_recurse_without_end_nor_draw_past_the_indent_cap():
    deep_a: object = "a"
    deep_b: object = "b"
    for _ in range(1_500):  # deeper than Python recurses
        deep_a, deep_b = [deep_a], [deep_b]
    assert not same_json(deep_a, deep_b)
    diff = diff_json(deep_a, deep_b)
    assert not diff.same
    assert max(line.indent for line in diff.lines) <= 12


# --- Pairing two runs ---------------------------------------------------------------------------


def test_merged_order_places_nodes_of_one_version_after_their_predecessor():
    assert merged_order(["a", "b", "c"], ["a", "x", "b", "c", "y"]) == ["a", "x", "b", "c", "y"]
    assert merged_order(["a", "b"], ["z", "a"]) == ["z", "a", "b"]
    assert merged_order(["a", "b"], ["a", "b"]) == ["a", "b"]
    assert merged_order(["a", "old", "c"], ["a", "new", "c"]) == ["a", "old", "new", "c"]


START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _rows(
    execution_id: str, outputs: Sequence[object], *, status: str = "completed"
) -> ExecutionRows:
    """Rows as read from the database, built in memory: compare_runs reads nothing else."""
    nodes = [{"id": f"n{i}", "type": "procedure"} for i in range(len(outputs))]
    execution = Execution(
        execution_id=execution_id,
        workflow_id="big",
        workflow_name="Big",
        status=status,
        started_at=START,
        ended_at=None if status == "running" else START + timedelta(seconds=10),
        execution_time_ms=None if status == "running" else 10_000,
        input={},
    )
    execution.definition = {"id": "big", "nodes": nodes}
    runs = [
        NodeExecution(
            node_id=f"n{i}",
            status="completed" if status != "running" or i < len(outputs) - 1 else "running",
            sequence=i,
            started_at=START + timedelta(milliseconds=10 * i),
            ended_at=(
                None
                if status == "running" and i == len(outputs) - 1
                else START + timedelta(milliseconds=10 * i + 5)
            ),
            duration_ms=5.0,
            input={"i": i},
            output=output,
        )
        for i, output in enumerate(outputs)
    ]
    return ExecutionRows(execution, runs, [])


def test_the_diffs_of_a_page_share_one_budget():
    big = [{f"k{j}": j for j in range(300)} for _ in range(200)]
    changed = [{f"k{j}": j + 1 for j in range(300)} for _ in range(200)]
    comparison = compare_runs(_rows("a", big), _rows("b", changed), now=START)
    lines = sum(len(pair.output.lines) for pair in comparison.nodes)
    assert lines <= PAGE_LINES
    assert comparison.cut
    assert len(comparison.differing) == 200  # every node is still marked, only detail is cut


def test_a_running_node_is_drawn_open_to_now_on_the_shared_axis():
    now = START + timedelta(seconds=20)
    comparison = compare_runs(_rows("a", [1, 2]), _rows("b", [1, 2], status="running"), now=now)
    assert comparison.b.ms == 20_000
    assert comparison.total_ms == 20_000
    running = comparison.nodes[1].b
    assert running.state == "running"
    assert running.bar is not None
    assert running.bar.open
    assert running.bar.width_pct > 99
    assert comparison.a.bar.width_pct == 50


# --- The page -----------------------------------------------------------------------------------

VERSION_2 = copy.deepcopy(C4C_SIMPLE_MATH)
VERSION_2["version"] = "2.0.0"
VERSION_2["nodes"][1] = {
    "id": "divide",
    "type": "procedure",
    "procedureName": "math.divide",
    "config": {"a": 3, "b": 2},
    "next": "subtract",
}
VERSION_2["nodes"][0]["next"] = "divide"


def _compare(client, a: Execution, b: Execution):
    return client.get(f"/executions/compare?a={a.execution_id}&b={b.execution_id}")


def _row(html: str, node_id: str) -> str:
    match = re.search(rf'<tr class="cmp-node[^"]*" data-node-id="{node_id}".*?</tr>', html, re.S)
    assert match, f"no row for {node_id}"
    return match.group(0)


def test_compare_marks_the_node_whose_output_changed_and_the_nodes_that_ran_in_one_run(client, db):
    a = factories.execution(
        nodes={"add": "completed", "multiply": "completed"},
        node_outputs={"multiply": {"result": 6, "branch": "analyse"}},
        input={"minimum": 5},
    )
    b = factories.execution(
        nodes={"add": "completed", "multiply": "completed", "subtract": "completed"},
        node_outputs={"multiply": {"result": 6, "branch": "too-few"}},
        input={"minimum": 50},
    )
    response = _compare(client, a, b)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-differs="false"' in _row(html, "add")
    multiply = _row(html, "multiply")
    assert 'class="cmp-node differs"' in multiply
    assert "output" in multiply
    assert "ran only in B" in _row(html, "subtract")
    assert '<p class="cmp-summary" data-differing="2">' in html
    # The changed key, old and new, and the run input's change.
    assert "<del>&quot;analyse&quot;</del>" in html
    assert "<ins>&quot;too-few&quot;</ins>" in html
    assert "<del>5</del>" in html
    assert "<ins>50</ins>" in html
    # Differing nodes' details are open, the others closed.
    assert re.search(r'<details class="cmp-detail cmp-node differs" [^>]*open>', html)
    assert re.search(r'<details class="cmp-detail cmp-node" [^>]*data-node-id="add">', html)


def test_runs_of_different_versions_match_nodes_by_id(client, db):
    a = factories.execution(nodes={"add": "completed", "multiply": "completed"})
    b = factories.execution(workflow=VERSION_2, nodes={"add": "completed", "divide": "completed"})
    html = _compare(client, a, b).content.decode()

    assert "ran different versions of the workflow" in html
    assert "only in A&#x27;s definition" in _row(html, "multiply")
    assert "only in B&#x27;s definition" in _row(html, "divide")
    assert 'data-state="absent"' in _row(html, "divide")
    assert "not in this version" in _row(html, "multiply")
    # In the order the versions run: add, multiply (A), divide (B), subtract.
    order = re.findall(r'<tr class="cmp-node[^"]*" data-node-id="([^"]+)"', html)
    assert order == ["add", "multiply", "divide", "subtract"]


def test_a_run_compared_with_itself_shows_no_differences(client, db, django_assert_num_queries):
    run = factories.execution(nodes={"add": "completed", "multiply": "failed"}, status="failed")
    # The execution (with its previous run), its nodes, its spans: read once for both sides.
    with django_assert_num_queries(3):
        response = _compare(client, run, run)
    html = response.content.decode()
    assert response.status_code == 200
    assert "A and B are the same run." in html
    assert 'data-differs="true"' not in html
    assert "Every node ran the same in both runs." in html
    assert "Both runs had the same input." in html


def test_compare_reads_two_runs_in_bounded_queries(client, db, django_assert_num_queries):
    a = factories.execution(nodes={"add": "completed"}, spans=10)
    b = factories.execution(nodes={"add": "completed", "multiply": "completed"}, spans=20)
    with django_assert_num_queries(6):
        response = _compare(client, a, b)
    assert response.status_code == 200


def test_timeline_draws_both_runs_on_one_axis_without_style_attributes(client, db):
    a = factories.execution(nodes={"add": "completed", "multiply": "completed"})
    b = factories.execution(nodes={"add": "completed"})
    html = _compare(client, a, b).content.decode()
    assert html.count('class="cmp-bar cmp-bar-a') == 3  # the run and its two nodes
    assert html.count('class="cmp-bar cmp-bar-b') == 2
    assert 'aria-label="A: completed, 5 ms; B: did not run"' in html
    main = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert " style=" not in main
    assert "<script" not in main


@pytest.mark.parametrize(
    ("query", "missing"),
    [("", "a and b are missing"), ("?a=x", "b is missing"), ("?b=x&a=", "a is missing")],
)
def test_a_missing_id_is_a_400_page_naming_it(client, db, query, missing):
    response = client.get(f"/executions/compare{query}")
    assert response.status_code == 400
    assert response.templates[0].name == "executions/bad_request.html"
    assert missing in response.content.decode()


def test_an_unknown_id_is_a_404_page_naming_it(client, db):
    run = factories.execution()
    response = client.get(f"/executions/compare?a={run.execution_id}&b=wf_exec_nope")
    assert response.status_code == 404
    assert response.templates[0].name == "executions/not_found.html"
    assert "wf_exec_nope" in response.content.decode()
    assert client.get("/executions/compare?a=wf_exec_gone&b=x").status_code == 404


def test_a_stored_row_that_cannot_be_shown_is_named_instead_of_a_500(client, db):
    a, b = factories.execution(), factories.execution()
    # A row the store never writes (outputs must be an object), as an old bug might have left.
    Execution.objects.filter(pk=b.pk).update(outputs=[1, 2])
    response = _compare(client, a, b)
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-cannot-show" in html
    assert f"run B ({b.execution_id}) cannot be shown" in html
    assert f'href="/executions/{a.execution_id}"' in html


def test_detail_links_to_a_comparison_with_the_previous_run_of_the_same_workflow(client, db):
    earlier = datetime.now(UTC) - timedelta(minutes=10)
    first = factories.execution(started_at=earlier)
    factories.execution(workflow=factories.definition().model_copy(update={"id": "other"}))
    second = factories.execution(started_at=earlier + timedelta(minutes=1))
    later = factories.execution(started_at=earlier + timedelta(minutes=2), status="running")

    first_html = client.get(f"/executions/{first.execution_id}").content.decode()
    assert "Compare with previous run" not in first_html
    second_html = client.get(f"/executions/{second.execution_id}").content.decode()
    assert (
        f'href="/executions/compare?a={first.execution_id}&amp;b={second.execution_id}"'
        in second_html
    )
    # The live partials keep the link as the run goes on.
    actions = client.get(f"/executions/{later.execution_id}/live").json()["actions"]
    assert f"?a={second.execution_id}&amp;b={later.execution_id}" in actions


def test_runs_started_at_the_same_moment_are_ordered_by_id(db):
    at = datetime.now(UTC) - timedelta(minutes=5)
    one, two = factories.execution(started_at=at), factories.execution(started_at=at)
    annotated = {
        row.execution_id: getattr(row, "previous_run_id", "not annotated")
        for row in Execution.objects.with_previous_run().filter(pk__in=[one.pk, two.pk])
    }
    assert annotated == {one.execution_id: None, two.execution_id: one.execution_id}


def test_compare_page_offers_swap_and_the_previous_pair(client, db):
    earlier = datetime.now(UTC) - timedelta(minutes=10)
    first = factories.execution(started_at=earlier)
    second = factories.execution(started_at=earlier + timedelta(minutes=1))
    third = factories.execution(started_at=earlier + timedelta(minutes=2))
    html = _compare(client, second, third).content.decode()
    assert f"?a={third.execution_id}&amp;b={second.execution_id}" in html
    assert f"?a={first.execution_id}&amp;b={second.execution_id}" in html
