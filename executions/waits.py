"""What the runtime lends the engine so that sleep, wait and subworkflow nodes wait in the
database, not on a thread (workflows.waits): signals taken from the execution's Signal rows,
and child executions started once per node run and read back when they end.

A child is started under the idempotency key `child:<hash of parent, node, visit>`, so a parent
that resumes after a crash (or asks again after a full pool) finds the child it started instead
of starting a second one.
"""

import hashlib
from collections.abc import Callable
from typing import Any

from workflows.definitions import WorkflowDefinition
from workflows.errors import WorkflowError
from workflows.library import workflow_library
from workflows.waits import ChildOutcome

from . import store
from .models import EXECUTION_TRANSITIONS, Execution

# runtime.start_child: records and dispatches a child run, returns it (None: no room yet).
StartChild = Callable[[WorkflowDefinition, dict[str, Any], str, str], Execution | None]


def child_key(parent_id: str, node_id: str, visit: int) -> str:
    digest = hashlib.sha256(f"{parent_id}\0{node_id}\0{visit}".encode()).hexdigest()
    return f"child:{digest}"


class RunWaits:
    """workflows.waits.Waits for one execution."""

    def __init__(self, execution: Execution, start: StartChild) -> None:
        self.execution = execution
        self._start = start

    def take_signal(self, *, node_id: str, visit: int, name: str) -> tuple[bool, Any]:
        signal = store.signal_take(
            execution=self.execution, name=name, taken_by=f"{node_id}#{visit}"
        )
        return (False, None) if signal is None else (True, signal.payload)

    def start_child(
        self, *, node_id: str, visit: int, workflow_id: str, input: dict[str, Any]
    ) -> str | None:
        key = child_key(self.execution.execution_id, node_id, visit)
        started = Execution.objects.by_idempotency_key(key)
        if started is not None:
            return started.execution_id
        definition = workflow_library().get(workflow_id)
        if definition is None:
            raise WorkflowError(f"Node {node_id}: sub-workflow '{workflow_id}' not found")
        child = self._start(definition, input, key, node_id)
        return None if child is None else child.execution_id

    def child_outcome(self, execution_id: str) -> ChildOutcome | None:
        row = Execution.objects.outcome(execution_id)
        if row is None:
            return ChildOutcome(execution_id, "deleted", {}, "NotFound", "it was deleted")
        status, outputs, error = row
        if EXECUTION_TRANSITIONS.get(status):
            return None  # it still runs or waits
        error = error if isinstance(error, dict) else {}
        return ChildOutcome(
            execution_id,
            status,
            outputs if isinstance(outputs, dict) else {},
            str(error.get("name") or ""),
            str(error.get("message") or ""),
        )
