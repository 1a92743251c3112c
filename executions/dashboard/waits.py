"""What a waiting run waits for, as the detail page says it (workflows.waits, issue 13).

A parked node run records its status (sleeping or waiting), its due time and what it waits for
("signal:<name>", "execution:<child id>", "branches:<ids>", "workflow:<id>"); whether a wait is a
person's approval is in the node's config, which only the definition snapshot holds. This module
joins the two for the header, the actions and the node panel, from rows already read (no
queries), and names each wait node's config for the page script (`wait_nodes`).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflows.waits import WAIT_NODE_TYPES

from ..models import NodeExecution, NodeStatus

PARKED = (NodeStatus.SLEEPING, NodeStatus.WAITING)


@dataclass(frozen=True, slots=True)
class Wait:
    """One parked node run: `kind` is what it waits for (signal, execution, branches, workflow;
    "" for a sleep), `target` the signal's name, the child's id, ...; `wake_at` its due time (a
    sleep's end, a wait's timeout), None when only its event wakes it."""

    node_id: str
    status: str
    wake_at: datetime | None
    kind: str
    target: str
    approval: bool

    @property
    def signal(self) -> str:
        return self.target if self.kind == "signal" else ""

    @property
    def child(self) -> str:
        return self.target if self.kind == "execution" else ""


def _configs(definition: Any) -> dict[str, Mapping[str, Any]]:
    """Each defined node's config by id (a stored snapshot may hold any JSON)."""
    nodes = definition.get("nodes") if isinstance(definition, Mapping) else None
    configs: dict[str, Mapping[str, Any]] = {}
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, Mapping) and isinstance(node.get("id"), str):
            config = node.get("config")
            configs[node["id"]] = config if isinstance(config, Mapping) else {}
    return configs


def parked_waits(definition: Any, nodes: Iterable[NodeExecution]) -> list[Wait]:
    """The node runs parked now, in the order they ran."""
    configs = _configs(definition)
    waits = []
    for node in nodes:
        if node.status not in PARKED:
            continue
        kind, _, target = node.waiting_for.partition(":")
        waits.append(
            Wait(
                node_id=node.node_id,
                status=node.status,
                wake_at=node.wake_at,
                kind=kind,
                target=target,
                approval=kind == "signal" and configs.get(node.node_id, {}).get("approval") is True,
            )
        )
    return waits


def approval(waits: Iterable[Wait]) -> Wait | None:
    """The first wait for a person's approval, whose Approve / Reject the page offers."""
    return next((wait for wait in waits if wait.approval), None)


def wait_nodes(definition: Any) -> dict[str, dict[str, Any]]:
    """The sleep, wait and subworkflow nodes of a definition by id, with what the node panel
    says of them: a wait's signal and whether it is an approval, a subworkflow's workflow."""
    defined = definition.get("nodes") if isinstance(definition, Mapping) else None
    found: dict[str, dict[str, Any]] = {}
    for node in defined if isinstance(defined, list) else []:
        if not isinstance(node, Mapping) or node.get("type") not in WAIT_NODE_TYPES:
            continue
        node_id, config = node.get("id"), node.get("config")
        if not isinstance(node_id, str):
            continue
        config = config if isinstance(config, Mapping) else {}
        shown: dict[str, Any] = {"type": node["type"]}
        if node["type"] == "wait":
            shown["signal"] = str(config.get("signal", ""))
            shown["approval"] = config.get("approval") is True
        elif node["type"] == "subworkflow":
            shown["workflowId"] = str(config.get("workflowId", ""))
        found[node_id] = shown
    return found
