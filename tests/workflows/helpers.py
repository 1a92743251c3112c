"""A recording observer and small builders of c4c JSON definitions for engine tests."""

import threading
from collections.abc import Callable
from typing import Any

from workflows.definitions import WorkflowDefinition
from workflows.engine import run_workflow
from workflows.observer import RunResult
from workflows.registry import ProcedureRegistry

# As c4c answers GET /workflow/definitions/simple-math-workflow (shared/contract).
C4C_SIMPLE_MATH: dict[str, Any] = {
    "id": "simple-math-workflow",
    "name": "Simple Math Workflow",
    "description": "Basic math operations workflow for testing",
    "version": "1.0.0",
    "startNode": "add",
    "nodes": [
        {
            "id": "add",
            "type": "procedure",
            "procedureName": "math.add",
            "config": {"a": 10, "b": 5},
            "next": "multiply",
        },
        {
            "id": "multiply",
            "type": "procedure",
            "procedureName": "math.multiply",
            "config": {"a": 3, "b": 2},
            "next": "subtract",
        },
        {
            "id": "subtract",
            "type": "procedure",
            "procedureName": "math.subtract",
            "config": {"a": 20, "b": 8},
        },
    ],
}


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

    def node_attempt_failed(self, **kwargs: Any) -> None:
        self._record("node_attempt_failed", kwargs)

    def node_attempt_started(self, **kwargs: Any) -> None:
        self._record("node_attempt_started", kwargs)

    def node_reused(self, **kwargs: Any) -> None:
        self._record("node_reused", kwargs)

    def node_parked(self, **kwargs: Any) -> None:
        self._record("node_parked", kwargs)

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

    def node_hooks(self, node_id: str) -> list[str]:
        return [hook for hook, _ in self.node_events(node_id)]

    def calls_of(self, hook: str) -> list[dict[str, Any]]:
        return [kw for h, kw in self.calls if h == hook]


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


class Background:
    """A run on a thread of its own, so that a test can stop it and time how fast it returns."""

    def __init__(self, target: Callable[[], RunResult]) -> None:
        self.result: RunResult | None = None
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True)
        self.thread.start()

    def _run(self, target: Callable[[], RunResult]) -> None:
        self.result = target()

    def join(self, timeout: float) -> RunResult | None:
        """The result, or None when the run has not returned within `timeout` seconds."""
        self.thread.join(timeout)
        return self.result


def run_concurrently(
    definition: WorkflowDefinition,
    registry: ProcedureRegistry,
    *,
    runs: int = 16,
    input_for: Callable[[int], Any] = lambda n: None,
) -> dict[int, RunResult]:
    """Start `runs` runs of one definition on as many threads at once; their results by number."""
    results: dict[int, RunResult] = {}

    def worker(n: int) -> None:
        results[n] = run_workflow(
            definition,
            input_for(n),
            execution_id=f"exec-{n}",
            observer=RecordingObserver(),
            registry=registry,
        )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
