"""Check a workflow definition before it runs and report every problem at once, in c4c's words.

c4c's messages are kept verbatim where it had them ("Start node nope not found", "Node add:
procedure no.such.proc not found in registry", "Node add: next node missing not found"); the
checks c4c lacked (unknown node types, branch and onError targets, conditions and parallels without
their config, template references, expressions that cannot be parsed, cycles that no condition can
leave) use the same "Node <id>: ..." form.

Inline definitions come from clients, so their data is checked before it is parsed: no string
that a database cannot store (NUL, lone surrogates), no nesting deeper than
limits.MAX_JSON_DEPTH, and no snapshot larger than settings.C4C_MAX_DEFINITION_BYTES, since each
run stores one. Ids, names and versions are bounded by their columns in the models.
"""

import json
from typing import Any

from pydantic import ValidationError

from .definitions import NODE_TYPES, WorkflowDefinition, WorkflowNode
from .errors import ExpressionError, validation_messages
from .expressions import check_expression
from .limits import json_problems, max_definition_bytes
from .registry import ProcedureRegistry, procedure_registry
from .templates import references
from .waits import WAIT_NODE_TYPES, config_problems


def parse_definition(data: Any) -> tuple[WorkflowDefinition | None, list[str]]:
    """Parse c4c JSON into a definition and validate it.

    Returns (None, errors) when the data does not have the definition's shape, else
    (definition, errors) where errors lists every semantic problem (empty when it can run).
    """
    if not isinstance(data, dict):
        return None, [f"Workflow definition must be a JSON object, not {_json_type(data)}"]
    problems = json_problems(data, label="workflow")
    if problems:
        return None, problems
    try:
        definition = WorkflowDefinition.model_validate(data)
    except ValidationError as exc:
        return None, validation_messages(exc)
    return definition, validate_definition(definition)


def validate_definition(
    definition: WorkflowDefinition, registry: ProcedureRegistry | None = None
) -> list[str]:
    """Every problem that would stop `definition` from running as written; [] when it is sound."""
    registry = registry if registry is not None else procedure_registry()
    errors: list[str] = []
    ids = {node.id for node in definition.nodes}
    if definition.start_node not in ids:
        errors.append(f"Start node {definition.start_node} not found")
    seen: set[str] = set()
    for node in definition.nodes:
        if node.id in seen:
            errors.append(f"Node {node.id}: defined more than once")
        seen.add(node.id)
        errors.extend(_node_problems(node, ids, definition, registry))
    errors.extend(_unconditional_cycles(definition))
    errors.extend(_size_problems(definition))
    return errors


def _size_problems(definition: WorkflowDefinition) -> list[str]:
    """Every run stores the definition it ran, so its size is what each run costs at least."""
    limit = max_definition_bytes()
    size = len(json.dumps(definition.to_json_dict(), separators=(",", ":")))
    if size <= limit:
        return []
    return [f"Workflow definition is {size} bytes; C4C_MAX_DEFINITION_BYTES allows {limit}"]


def _node_problems(
    node: WorkflowNode,
    ids: set[str],
    definition: WorkflowDefinition,
    registry: ProcedureRegistry,
) -> list[str]:
    problems: list[str] = []
    prefix = f"Node {node.id}:"
    if node.type not in NODE_TYPES:
        problems.append(
            f"{prefix} unknown node type {node.type} (expected one of {', '.join(NODE_TYPES)})"
        )
    if node.type == "procedure":
        if not node.procedure_name:
            problems.append(f"{prefix} procedure node needs a procedureName")
        elif node.procedure_name not in registry:
            problems.append(f"{prefix} procedure {node.procedure_name} not found in registry")
        problems.extend(_template_problems(node, ids, definition))
    elif node.retry is not None or node.timeout_ms is not None:
        problems.append(f"{prefix} retry and timeoutMs apply to procedure nodes only")
    problems.extend(
        f"{prefix} next node {target} not found" for target in node.next_ids if target not in ids
    )
    if node.on_error is not None and node.on_error not in ids:
        problems.append(f"{prefix} onError node {node.on_error} not found")
    if node.type == "condition":
        problems.extend(_condition_problems(node, ids))
    if node.type == "parallel":
        problems.extend(_parallel_problems(node, ids))
    if node.type in WAIT_NODE_TYPES:
        problems.extend(config_problems(node.type, node.config, node.id))
        problems.extend(_template_problems(node, ids, definition))
    return problems


def _condition_problems(node: WorkflowNode, ids: set[str]) -> list[str]:
    prefix = f"Node {node.id}:"
    problems: list[str] = []
    expression = node.config.get("expression")
    if node.predicate is None:
        if expression is None:
            problems.append(f"{prefix} condition needs an expression")
        else:
            try:
                check_expression(expression)
            except ExpressionError as exc:
                problems.append(f"{prefix} invalid expression: {exc}")
    for key in ("trueBranch", "falseBranch"):
        target = node.config.get(key)
        if target is not None and (not isinstance(target, str) or target not in ids):
            problems.append(f"{prefix} {key} node {target} not found")
    return problems


def _parallel_problems(node: WorkflowNode, ids: set[str]) -> list[str]:
    prefix = f"Node {node.id}:"
    branches = node.config.get("branches")
    problems: list[str] = []
    if not isinstance(branches, list) or not branches:
        problems.append(f"{prefix} parallel node needs a non-empty list of branches")
    else:
        problems.extend(
            f"{prefix} branch node {branch} not found"
            for branch in branches
            if not isinstance(branch, str) or branch not in ids
        )
    if not isinstance(node.config.get("waitForAll", True), bool):
        problems.append(f"{prefix} waitForAll must be true or false")
    return problems


def _template_problems(
    node: WorkflowNode, ids: set[str], definition: WorkflowDefinition
) -> list[str]:
    known = ids | set(definition.variables) | {"input", "error"}
    return [
        f"Node {node.id}: template {{{{{ref}}}}} refers to unknown node {ref.split('.')[0]}"
        for ref in references(node.config)
        if ref.split(".")[0] not in known
    ]


def _edges(node: WorkflowNode) -> list[str]:
    targets = list(node.next_ids)
    if node.on_error:
        targets.append(node.on_error)
    if node.type == "parallel" and isinstance(node.config.get("branches"), list):
        targets.extend(b for b in node.config["branches"] if isinstance(b, str))
    return targets


def _unconditional_cycles(definition: WorkflowDefinition) -> list[str]:
    """Cycles with no condition on them can never end; a cycle through a condition is a loop.

    A cycle avoids every condition exactly when it is a cycle of the graph with the condition
    nodes removed, so a depth-first search over that graph finds them.
    """
    graph = {node.id: _edges(node) for node in definition.nodes if node.type != "condition"}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    problems: list[str] = []
    for root in graph:
        if root in state:
            continue
        path: list[str] = [root]
        state[root] = 1
        stack = [iter(graph[root])]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif target in graph and state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                problems.append(f"Node {target}: cycle without a condition: {' -> '.join(cycle)}")
            elif target in graph and target not in state:
                state[target] = 1
                path.append(target)
                stack.append(iter(graph[target]))
    return problems


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
