"""A recording observer and small builders of c4c JSON definitions for engine tests."""

import threading
from typing import Any


class RecordingObserver:
    """Keeps every hook call as (hook name, kwargs), in order, from any thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.branch_threads_finished = 0
        self._lock = threading.Lock()

    def _record(self, hook: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((hook, kwargs))

    def execution_started(self, **kwargs: Any) -> None:
        self._record("execution_started", kwargs)

    def node_started(self, **kwargs: Any) -> None:
        self._record("node_started", kwargs)

    def node_completed(self, **kwargs: Any) -> None:
        self._record("node_completed", kwargs)

    def node_failed(self, **kwargs: Any) -> None:
        self._record("node_failed", kwargs)

    def execution_finished(self, **kwargs: Any) -> None:
        self._record("execution_finished", kwargs)

    def branch_thread_finished(self) -> None:
        with self._lock:
            self.branch_threads_finished += 1

    @property
    def hooks(self) -> list[str]:
        return [hook for hook, _ in self.calls]

    def node_events(self, node_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(h, kw) for h, kw in self.calls if "node" in kw and kw["node"].id == node_id]

    def completed_output(self, node_id: str) -> Any:
        return next(kw["output"] for h, kw in self.node_events(node_id) if h == "node_completed")

    def failure(self, node_id: str) -> Any:
        return next(kw for h, kw in self.node_events(node_id) if h == "node_failed")


def chain(*nodes: dict[str, Any], workflow_id: str = "wf", **extra: Any) -> dict[str, Any]:
    """A c4c JSON definition whose nodes run in the given order unless they say otherwise."""
    linked = []
    for i, node in enumerate(nodes):
        node = {"type": "procedure", **node}
        if i + 1 < len(nodes) and "next" not in node and node["type"] != "condition":
            node["next"] = nodes[i + 1]["id"]
        linked.append(node)
    return {
        "id": workflow_id,
        "name": workflow_id,
        "startNode": nodes[0]["id"],
        "nodes": linked,
        **extra,
    }
