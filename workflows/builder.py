"""A small fluent builder that produces the same WorkflowDefinition as c4c's JSON.

Pieces of a graph are Fragments: an entry node and the exit nodes that continue to whatever comes
next (as c4c's builder components). `Workflow.then(...)` appends a fragment and points the pending
exits at its entry, so a straight line reads top to bottom:

    simple_math = (
        Workflow("simple-math-workflow", name="Simple Math Workflow", version="1.0.0")
        .procedure("add", "math.add", config={"a": 10, "b": 5})
        .procedure("multiply", "math.multiply", config={"a": 3, "b": 2})
        .procedure("subtract", "math.subtract", config={"a": 20, "b": 8})
        .build()
    )

Branching uses fragment factories (`step`, `condition`, `parallel`, `sequential`, `trigger`):

    (
        Workflow("check", name="Check")
        .procedure("fetch", "data.fetch", config={"source": "orders"})
        .condition(
            "enough",
            expression="count >= 3",  # or predicate=lambda ctx: ctx.variables["count"] >= 3
            when_true=parallel("fan-out", [step("a", "math.add"), step("b", "math.multiply")]),
            when_false=step("report", "custom.log", config={"message": "too few"}),
        )
        .procedure("done", "custom.log", config={"message": "finished"})  # after both branches
        .build()
    )

A branch or `then` target given as a string refers to a node defined elsewhere (a loop back, a
shared handler); it is not an exit. `Workflow.add(fragment)` adds nodes without linking them (for
onError handlers). `predicate=` takes a Python callable (gets engine.PredicateContext); it exists
only in code-defined workflows - it is not part of the JSON and cannot be posted by a client.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .definitions import WorkflowDefinition, WorkflowNode

Predicate = Callable[[Any], Any]


@dataclass(slots=True)
class _Node:
    id: str
    type: str
    procedure_name: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    next: str | None = None
    on_error: str | None = None
    predicate: Predicate | None = None


@dataclass(slots=True)
class Fragment:
    """Nodes with one entry and the exits that continue to the next fragment."""

    nodes: list[_Node]
    entry: str
    exits: list[str]

    def then(self, target: "Fragment | str") -> "Fragment":
        """This fragment, then `target` (a fragment, or the id of a node defined elsewhere)."""
        nodes = {node.id: node for node in self.nodes}
        entry = target if isinstance(target, str) else target.entry
        for exit_id in self.exits:
            _link(nodes[exit_id], entry)
        if isinstance(target, str):
            return Fragment(self.nodes, self.entry, [])
        return Fragment([*self.nodes, *target.nodes], self.entry, list(target.exits))


def _link(node: _Node, target: str) -> None:
    if node.next is not None and node.next != target:
        raise ValueError(
            f"Node {node.id} already continues to {node.next}; cannot also go to {target}"
        )
    node.next = target


def _single(node: _Node) -> Fragment:
    return Fragment([node], node.id, [node.id])


def step(
    id: str,
    procedure_name: str,
    *,
    config: dict[str, Any] | None = None,
    on_error: str | None = None,
) -> Fragment:
    return _single(_Node(id, "procedure", procedure_name, dict(config or {}), on_error=on_error))


def sequential(id: str) -> Fragment:
    return _single(_Node(id, "sequential"))


def trigger(id: str, *, config: dict[str, Any] | None = None) -> Fragment:
    return _single(_Node(id, "trigger", config=dict(config or {})))


def condition(
    id: str,
    *,
    expression: str | None = None,
    predicate: Predicate | None = None,
    when_true: Fragment | str | None = None,
    when_false: Fragment | str | None = None,
) -> Fragment:
    if (expression is None) == (predicate is None):
        raise ValueError(f"Condition {id} needs exactly one of expression= or predicate=")
    config: dict[str, Any] = (
        {"expression": expression}
        if expression is not None
        else {"predicate": getattr(predicate, "__name__", "predicate")}
    )
    nodes: list[_Node] = []
    exits: list[str] = []
    for key, branch in (("trueBranch", when_true), ("falseBranch", when_false)):
        if isinstance(branch, Fragment):
            config[key] = branch.entry
            nodes.extend(branch.nodes)
            exits.extend(branch.exits)
        elif branch is not None:
            config[key] = branch
    head = _Node(id, "condition", config=config, predicate=predicate)
    return Fragment([head, *nodes], id, exits)


def parallel(id: str, branches: Sequence[Fragment | str], *, wait_for_all: bool = True) -> Fragment:
    """A parallel node; each branch is one node (c4c runs a branch's node, not its successors)."""
    nodes: list[_Node] = []
    branch_ids: list[str] = []
    for branch in branches:
        if isinstance(branch, str):
            branch_ids.append(branch)
            continue
        if len(branch.nodes) != 1:
            raise ValueError(f"Parallel {id}: branch {branch.entry} must be a single node")
        nodes.extend(branch.nodes)
        branch_ids.append(branch.entry)
    head = _Node(id, "parallel", config={"branches": branch_ids, "waitForAll": wait_for_all})
    return Fragment([head, *nodes], id, [id])


class Workflow:
    """Collects fragments in order and builds the definition; see the module docstring."""

    def __init__(
        self,
        id: str,
        *,
        name: str = "",
        description: str = "",
        version: str = "1.0.0",
        variables: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        start: str | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.description = description
        self.version = version
        self.variables = dict(variables or {})
        self.metadata = dict(metadata or {})
        self.start = start
        self._nodes: dict[str, _Node] = {}
        self._exits: list[str] = []

    def then(self, target: Fragment | str) -> "Workflow":
        """Continue the pending exits to `target`; a fragment's exits become the pending ones."""
        entry = target if isinstance(target, str) else target.entry
        for exit_id in self._exits:
            _link(self._nodes[exit_id], entry)
        if isinstance(target, str):
            self._exits = []
            return self
        self._add_nodes(target.nodes)
        if self.start is None:
            self.start = target.entry
        self._exits = list(target.exits)
        return self

    def add(self, fragment: Fragment) -> "Workflow":
        """Add nodes reached only by reference (an onError handler, a loop target): no linking."""
        self._add_nodes(fragment.nodes)
        return self

    def procedure(
        self,
        id: str,
        procedure_name: str,
        *,
        config: dict[str, Any] | None = None,
        on_error: str | None = None,
    ) -> "Workflow":
        return self.then(step(id, procedure_name, config=config, on_error=on_error))

    def condition(
        self,
        id: str,
        *,
        expression: str | None = None,
        predicate: Predicate | None = None,
        when_true: Fragment | str | None = None,
        when_false: Fragment | str | None = None,
    ) -> "Workflow":
        return self.then(
            condition(
                id,
                expression=expression,
                predicate=predicate,
                when_true=when_true,
                when_false=when_false,
            )
        )

    def parallel(
        self, id: str, branches: Sequence[Fragment | str], *, wait_for_all: bool = True
    ) -> "Workflow":
        return self.then(parallel(id, branches, wait_for_all=wait_for_all))

    def sequential(self, id: str) -> "Workflow":
        return self.then(sequential(id))

    def trigger(self, id: str, *, config: dict[str, Any] | None = None) -> "Workflow":
        return self.then(trigger(id, config=config))

    def build(self) -> WorkflowDefinition:
        if self.start is None:
            raise ValueError(f"Workflow {self.id} has no nodes")
        nodes = []
        for spec in self._nodes.values():
            node = WorkflowNode(
                id=spec.id,
                type=spec.type,
                procedure_name=spec.procedure_name,
                config=spec.config,
                next=spec.next,
                on_error=spec.on_error,
            )
            node._predicate = spec.predicate
            nodes.append(node)
        return WorkflowDefinition(
            id=self.id,
            name=self.name or self.id,
            description=self.description,
            version=self.version,
            start_node=self.start,
            nodes=nodes,
            variables=self.variables,
            metadata=self.metadata,
        )

    def _add_nodes(self, nodes: list[_Node]) -> None:
        for node in nodes:
            existing = self._nodes.get(node.id)
            if existing is not None and existing is not node:
                raise ValueError(f"Workflow {self.id}: node id {node.id} is used twice")
            self._nodes[node.id] = node
