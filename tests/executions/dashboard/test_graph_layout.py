from typing import Any

from executions.dashboard.graph import NODE_HEIGHT, layout_workflow, workflow_edges


def _definition(*nodes: dict[str, Any], start: str = "a") -> dict[str, Any]:
    return {"id": "wf", "name": "WF", "startNode": start, "nodes": list(nodes)}


def _boxes_overlap(a, b) -> bool:
    apart_x = a.x + a.width <= b.x or b.x + b.width <= a.x
    apart_y = a.y + a.height <= b.y or b.y + b.height <= a.y
    return not (apart_x or apart_y)


def test_a_chain_is_laid_out_top_to_bottom():
    layout = layout_workflow(
        _definition(
            {"id": "a", "type": "procedure", "next": "b"},
            {"id": "b", "type": "procedure", "next": "c"},
            {"id": "c", "type": "procedure"},
        )
    )
    ys = [node.y for node in layout.nodes]
    assert ys == sorted(ys)
    assert len(set(ys)) == 3
    assert len({node.x for node in layout.nodes}) == 1


def test_condition_branches_sit_side_by_side_below_it():
    layout = layout_workflow(
        _definition(
            {"id": "a", "type": "condition", "config": {"trueBranch": "t", "falseBranch": "f"}},
            {"id": "t", "type": "procedure"},
            {"id": "f", "type": "procedure"},
        )
    )
    nodes = {node.id: node for node in layout.nodes}
    assert nodes["t"].y == nodes["f"].y > nodes["a"].y
    assert nodes["t"].x != nodes["f"].x
    assert {(e.source, e.target, e.label) for e in layout.edges} == {
        ("a", "t", "true"),
        ("a", "f", "false"),
    }


def test_parallel_fans_out_to_branches_and_joins_after_each_branch_chain():
    edges = workflow_edges(
        _definition(
            {"id": "a", "type": "parallel", "config": {"branches": ["l", "r"]}, "next": "j"},
            {"id": "l", "type": "procedure", "next": "l2"},
            {"id": "l2", "type": "procedure"},
            {"id": "r", "type": "procedure"},
            {"id": "j", "type": "procedure"},
        )
    )
    assert {(e.source, e.target, e.kind) for e in edges} == {
        ("a", "l", "branch"),
        ("a", "r", "branch"),
        ("l", "l2", "next"),
        ("l2", "j", "join"),
        ("r", "j", "join"),
    }


def test_no_two_nodes_overlap_in_a_wide_graph():
    branches = [f"b{i}" for i in range(6)]
    layout = layout_workflow(
        _definition(
            {"id": "a", "type": "parallel", "config": {"branches": branches}, "next": "z"},
            *({"id": b, "type": "procedure", "onError": "z"} for b in branches),
            {"id": "z", "type": "procedure"},
        )
    )
    assert len(layout.nodes) == len(branches) + 2
    for i, first in enumerate(layout.nodes):
        for second in layout.nodes[i + 1 :]:
            assert not _boxes_overlap(first, second), (first.id, second.id)
    assert all(node.x + node.width <= layout.width for node in layout.nodes)
    assert all(node.y + node.height <= layout.height for node in layout.nodes)


def test_a_loop_is_drawn_as_a_back_edge_without_breaking_the_layering():
    layout = layout_workflow(
        _definition(
            {"id": "a", "type": "procedure", "next": "check"},
            {
                "id": "check",
                "type": "condition",
                "config": {"trueBranch": "a", "falseBranch": "done"},
            },
            {"id": "done", "type": "procedure"},
        )
    )
    nodes = {node.id: node for node in layout.nodes}
    assert nodes["a"].y < nodes["check"].y < nodes["done"].y
    back = [edge for edge in layout.edges if edge.back]
    assert [(e.source, e.target) for e in back] == [("check", "a")]


def test_a_long_edge_bends_around_the_layers_it_crosses():
    layout = layout_workflow(
        _definition(
            {"id": "a", "type": "procedure", "next": "b", "onError": "d"},
            {"id": "b", "type": "procedure", "next": "c"},
            {"id": "c", "type": "procedure", "next": "d"},
            {"id": "d", "type": "procedure"},
        )
    )
    long_edge = next(edge for edge in layout.edges if edge.kind == "error")
    # Into and through the virtual point of each of the two crossed layers, then to the target.
    assert long_edge.path.count("C") == 5
    nodes = {node.id: node for node in layout.nodes}
    assert nodes["d"].y - nodes["a"].y >= 3 * NODE_HEIGHT


def test_edges_to_unknown_nodes_and_junk_nodes_are_ignored():
    layout = layout_workflow(
        {"startNode": "a", "nodes": [{"id": "a", "type": "procedure", "next": "ghost"}, "junk", {}]}
    )
    assert [node.id for node in layout.nodes] == ["a"]
    assert layout.edges == []


def test_empty_definition_gives_an_empty_drawing():
    layout = layout_workflow({})
    assert layout.nodes == []
    assert layout.width > 0
