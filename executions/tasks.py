"""Celery tasks: a worker runs an execution the web process already recorded as started.

The worker first claims the row (it becomes the run's owner, so a crash of this node is
recovered when the node restarts), then runs the definition. A library workflow runs as the
library holds it, Python predicates included, whenever the snapshot still matches it; an inline
or since-changed definition runs from its JSON snapshot, which cannot carry predicates.
"""

import logging
from typing import Any

from celery import Task, shared_task

from c4c_site.celery import worker_identity
from workflows.definitions import WorkflowDefinition
from workflows.library import workflow_library

from . import runtime, store
from .models import Execution

logger = logging.getLogger(__name__)


def definition_to_run(snapshot: dict[str, Any]) -> WorkflowDefinition:
    """The library's definition when the snapshot is exactly it, else the snapshot itself."""
    known = workflow_library().get(str(snapshot.get("id", "")))
    if known is not None and known.to_json_dict() == snapshot:
        return known
    return WorkflowDefinition.model_validate(snapshot)


@shared_task(name="executions.run_execution", bind=True)
def run_execution(
    self: Task, execution_id: str, definition: dict[str, Any], input: dict[str, Any]
) -> str:
    """Run a queued execution unless it is no longer waiting (cancelled, failed or taken)."""
    hostname = self.request.hostname
    owner = worker_identity(hostname) if hostname else store.worker_id()
    execution = store.execution_claim(execution_id=execution_id, owner=owner)
    if execution is None:
        current = (
            Execution.objects.filter(execution_id=execution_id)
            .values_list("status", "worker_id")
            .first()
        )
        logger.warning(
            "Not running execution %s: it is no longer waiting for a worker (status, owner: %s)",
            execution_id,
            current or "deleted",
        )
        return current[0] if current else "missing"
    result = runtime.run(execution=execution, definition=definition_to_run(definition), input=input)
    return str(result.body["status"])
