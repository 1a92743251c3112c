"""A layered (Sugiyama-style) layout of a workflow definition, drawn as SVG by a template.

Workflows are small (tens of nodes), so a longest-path layering, a few barycentre sweeps and
straight-through routing with virtual points for long edges read well without a JS library.
The input is the definition snapshot in c4c's camelCase JSON, so the graph still renders after
the code that defined the workflow has changed.
"""

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

EdgeKind = Literal["next", "true", "false", "branch", "join", "error"]

NODE_WIDTH = 176
NODE_HEIGHT = 70
LAYER_GAP = 56
NODE_GAP = 32
MARGIN = 24
BACK_EDGE_GAP = 28
_SWEEPS = 4
_MAX_BRANCH_CHAIN = 200

_EDGE_LABELS: dict[str, str] = {
    "true": "true",
    "false": "false",
    "join": "join",
    "error": "on error",
}


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    kind: EdgeKind


@dataclass(slots=True)
class PlacedNode:
    id: str
    type: str
    detail: str
    x: float = 0.0
    y: float = 0.0
    width: float = NODE_WIDTH
    height: float = NODE_HEIGHT

    @property
    def cx(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True, slots=True)
class PlacedEdge:
    source: str
    target: str
    kind: EdgeKind
    path: str
    label: str
    label_x: float
    label_y: float
    back: bool


@dataclass(slots=True)
class GraphLayout:
    width: float
    height: float
    nodes: list[PlacedNode] = field(default_factory=list)
    edges: list[PlacedEdge] = field(default_factory=list)


def drawing_problem(definition: Any) -> str | None:
    """Why a stored definition cannot be drawn (None if it can): an older version's row, or one
    written outside the store, may hold any JSON."""
    if not isinstance(definition, Mapping):
        return f"the stored definition is {type(definition).__name__}, not an object"
    nodes = definition.get("nodes", [])
    if not isinstance(nodes, list):
        return f"the stored definition's nodes are {type(nodes).__name__}, not a list"
    return None


def _nodes(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The definition's nodes that can be drawn: objects with a text id."""
    nodes = definition.get("nodes")
    if not isinstance(nodes, list):
        return []
    return [n for n in nodes if isinstance(n, Mapping) and isinstance(n.get("id"), str) and n["id"]]


def _config(node: Mapping[str, Any]) -> Mapping[str, Any]:
    config = node.get("config")
    return config if isinstance(config, Mapping) else {}


def _branches(config: Mapping[str, Any]) -> list[Any]:
    branches = config.get("branches")
    return branches if isinstance(branches, list) else []


def _node_detail(node: Mapping[str, Any]) -> str:
    """The second line of a node box: what the node does, in the fewest words."""
    config = _config(node)
    node_type = node.get("type", "")
    if node.get("procedureName"):
        return str(node["procedureName"])
    if node_type == "condition" and config.get("expression"):
        return str(config["expression"])
    if node_type == "parallel":
        return f"{len(_branches(config))} branches"
    return str(node_type)


def _next_ids(node: Mapping[str, Any]) -> list[str]:
    value = node.get("next")
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _branch_end(start: str, by_id: Mapping[str, Mapping[str, Any]], join: str) -> str:
    """Follow a parallel branch's `next` chain to its last node, which is where the join starts."""
    current = start
    seen = {start}
    for _ in range(_MAX_BRANCH_CHAIN):
        following = [n for n in _next_ids(by_id.get(current, {})) if n in by_id]
        if not following or following[0] == join or following[0] in seen:
            return current
        current = following[0]
        seen.add(current)
    return current


def workflow_edges(definition: Mapping[str, Any]) -> list[GraphEdge]:
    """Every edge the engine can take, labelled by why it would take it."""
    nodes = _nodes(definition)
    by_id = {n["id"]: n for n in nodes}
    edges: list[GraphEdge] = []
    seen: set[tuple[str, str, str]] = set()

    def add(source: str, target: Any, kind: EdgeKind) -> None:
        if isinstance(target, str) and target in by_id and (source, target, kind) not in seen:
            seen.add((source, target, kind))
            edges.append(GraphEdge(source, target, kind))

    for node in nodes:
        node_id = node["id"]
        config = _config(node)
        node_type = node.get("type")
        if node_type == "condition":
            add(node_id, config.get("trueBranch"), "true")
            add(node_id, config.get("falseBranch"), "false")
        if node_type == "parallel" and _branches(config):
            branches = [b for b in _branches(config) if isinstance(b, str) and b in by_id]
            joins = _next_ids(node)
            for branch in branches:
                add(node_id, branch, "branch")
                for join in joins:
                    add(_branch_end(branch, by_id, join), join, "join")
            if not branches:
                for target in joins:
                    add(node_id, target, "next")
        else:
            for target in _next_ids(node):
                add(node_id, target, "next")
        add(node_id, node.get("onError"), "error")
    return edges


def _order_depth_first(
    order: list[str], start: str | None, out: Mapping[str, list[str]]
) -> list[str]:
    """Nodes in depth-first discovery order from the start node, then any unreachable ones."""
    visited: list[str] = []
    seen: set[str] = set()
    roots = ([start] if start is not None and start in out else []) + order
    for root in roots:
        stack = [root]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            visited.append(node)
            stack.extend(reversed([t for t in out[node] if t not in seen]))
    return visited


def _back_edges(
    discovery: list[str], out: Mapping[str, list[str]], edges: Iterable[GraphEdge]
) -> set[tuple[str, str]]:
    """Edges that close a cycle (a loop through a condition), found by an iterative DFS."""
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in discovery:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack[-1]
            targets = out[node]
            if index < len(targets):
                stack[-1] = (node, index + 1)
                target = targets[index]
                if state.get(target) == 1:
                    back.add((node, target))
                elif target not in state:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[node] = 2
                stack.pop()
    return back & {(e.source, e.target) for e in edges}


def _layers(discovery: list[str], forward: Mapping[str, list[str]]) -> dict[str, int]:
    """Longest-path layering over the acyclic forward edges (Kahn's order)."""
    indegree = dict.fromkeys(discovery, 0)
    for targets in forward.values():
        for target in targets:
            indegree[target] += 1
    layer = dict.fromkeys(discovery, 0)
    ready = [n for n in discovery if indegree[n] == 0]
    while ready:
        node = ready.pop(0)
        for target in forward[node]:
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return layer


def _sweep(rows: list[list[str]], neighbours: Mapping[str, list[str]]) -> None:
    position: dict[str, float] = {}
    for row in rows:
        for index, node in enumerate(row):
            position[node] = index
    for row in rows[1:]:
        current = {node: i for i, node in enumerate(row)}

        def weight(node: str, current: dict[str, int] = current) -> float:
            linked = [position[n] for n in neighbours[node] if n in position]
            return sum(linked) / len(linked) if linked else current[node]

        row.sort(key=weight)
        for index, node in enumerate(row):
            position[node] = index


def _curve(points: list[tuple[float, float]]) -> str:
    """A smooth vertical path through the points (cubic segments with vertical tangents)."""
    (x0, y0), rest = points[0], points[1:]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for x1, y1 in rest:
        mid = (y0 + y1) / 2
        parts.append(f"C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(parts)


def layout_workflow(definition: Mapping[str, Any]) -> GraphLayout:
    """Place every node of a c4c definition and route every edge; pure geometry, no markup."""
    raw_nodes = _nodes(definition)
    if not raw_nodes:
        return GraphLayout(width=2 * MARGIN, height=2 * MARGIN)
    order = [n["id"] for n in raw_nodes]
    edges = workflow_edges(definition)
    out: dict[str, list[str]] = {node_id: [] for node_id in order}
    for edge in edges:
        if edge.target not in out[edge.source]:
            out[edge.source].append(edge.target)

    start = definition.get("startNode")
    discovery = _order_depth_first(order, start if isinstance(start, str) else None, out)
    back = _back_edges(discovery, out, edges)
    forward: dict[str, list[str]] = {
        node_id: [t for t in targets if (node_id, t) not in back and t != node_id]
        for node_id, targets in out.items()
    }
    layer = _layers(discovery, forward)

    # Long edges get one virtual point per layer they cross, so they bend around nodes.
    rows: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for node_id in discovery:
        rows[layer[node_id]].append(node_id)
    up: dict[str, list[str]] = {node_id: [] for node_id in order}
    down: dict[str, list[str]] = {node_id: [] for node_id in order}
    chains: dict[tuple[str, str], list[str]] = {}
    for source, targets in forward.items():
        for target in targets:
            chain = [source]
            for depth in range(layer[source] + 1, layer[target]):
                virtual = f"\0{source}\0{target}\0{depth}"
                rows[depth].append(virtual)
                up[virtual], down[virtual] = [], []
                chain.append(virtual)
            chain.append(target)
            chains[(source, target)] = chain
            for a, b in itertools.pairwise(chain):
                down[a].append(b)
                up[b].append(a)

    for _ in range(_SWEEPS):
        _sweep(rows, up)
        _sweep(list(reversed(rows)), down)

    widths = [len(row) * NODE_WIDTH + (len(row) - 1) * NODE_GAP for row in rows]
    inner_width = max(widths)
    points: dict[str, tuple[float, float]] = {}
    by_id = {n["id"]: n for n in raw_nodes}
    placed: dict[str, PlacedNode] = {}
    for depth, row in enumerate(rows):
        x = MARGIN + (inner_width - widths[depth]) / 2
        y = MARGIN + depth * (NODE_HEIGHT + LAYER_GAP)
        for node_id in row:
            points[node_id] = (x + NODE_WIDTH / 2, y)
            if node_id in by_id:
                node = by_id[node_id]
                placed[node_id] = PlacedNode(
                    id=node_id,
                    type=str(node.get("type", "")),
                    detail=_node_detail(node),
                    x=x,
                    y=y,
                )
            x += NODE_WIDTH + NODE_GAP

    has_back = bool(back) or any(e.source == e.target for e in edges)
    width = inner_width + 2 * MARGIN + (BACK_EDGE_GAP * 2 if has_back else 0)
    height = len(rows) * NODE_HEIGHT + (len(rows) - 1) * LAYER_GAP + 2 * MARGIN
    placed_edges = [
        _route(edge, placed, chains, points, inner_width + MARGIN, back) for edge in edges
    ]
    return GraphLayout(
        width=width, height=height, nodes=[placed[i] for i in order], edges=placed_edges
    )


def _route(
    edge: GraphEdge,
    placed: Mapping[str, PlacedNode],
    chains: Mapping[tuple[str, str], list[str]],
    points: Mapping[str, tuple[float, float]],
    right: float,
    back: set[tuple[str, str]],
) -> PlacedEdge:
    source, target = placed[edge.source], placed[edge.target]
    label = _EDGE_LABELS.get(edge.kind, "")
    if (edge.source, edge.target) in back or edge.source == edge.target:
        # A loop goes out of the right side, up the margin and back into the target's side.
        sx, sy = source.x + source.width, source.y + source.height / 2
        tx, ty = target.x + target.width, target.y + target.height / 2
        lane = right + BACK_EDGE_GAP
        path = (
            f"M{sx:.1f},{sy:.1f} C{lane:.1f},{sy:.1f} {lane:.1f},{sy:.1f} {lane:.1f},"
            f"{(sy + ty) / 2:.1f} C{lane:.1f},{ty:.1f} {lane:.1f},{ty:.1f} {tx:.1f},{ty:.1f}"
        )
        return PlacedEdge(
            edge.source, edge.target, edge.kind, path, label, lane, (sy + ty) / 2, back=True
        )
    chain = chains[(edge.source, edge.target)]
    route = [(source.cx, source.y + source.height)]
    for virtual in chain[1:-1]:
        x, y = points[virtual]
        route.extend([(x, y), (x, y + NODE_HEIGHT)])
    route.append((target.cx, target.y))
    (x0, y0), (x1, y1) = route[0], route[1]
    return PlacedEdge(
        edge.source,
        edge.target,
        edge.kind,
        _curve(route),
        label,
        (x0 + x1) / 2,
        (y0 + y1) / 2,
        back=False,
    )
