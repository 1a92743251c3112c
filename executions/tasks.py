"""Celery tasks: a worker runs an execution the web process (or a sweep) recorded and queued.

The worker first claims the row (a compare-and-set: it becomes the owner of the run's lease, so
a message delivered twice runs once, and a run cancelled while queued is not run), then resumes
it from what it recorded: nothing for a new run, the done node runs of one taken over after its
process died, the reused node runs of a re-run. The message carries the execution id and a new
run's input, sealed (executions.secrets); the row holds the definition snapshot (and the input
of a run queued again). Tasks are `shared_task`s: they bind to whatever Celery app the project
runs (`current_app`), never to this project's own. `prune` deletes what retention says has
expired; beat runs it (c4c_site.celery).
"""

import logging
from typing import Any

from celery import shared_task

from . import dispatch, retention, runtime, secrets, store
from .models import Execution

logger = logging.getLogger(__name__)


@shared_task(name="executions.run_execution")
def run_execution(
    execution_id: str,
    definition: Any = None,
    input: dict[str, Any] | None = None,
    sealed_input: str | None = None,
) -> str:
    """Run a queued execution unless it is no longer waiting (cancelled, finished or taken).

    `input` is a new run's input as it was sent (the row keeps it cut past
    C4C_MAX_PAYLOAD_BYTES); a run queued again after its worker died has none and runs on the
    stored one. It comes sealed (`sealed_input`); messages of an earlier version carried it in
    clear. `definition` is ignored (messages of an earlier version carried it): the row's
    snapshot is the one that runs.
    """
    if sealed_input is not None:
        input = secrets.unseal(sealed_input, what=f"the message of execution '{execution_id}'")
    execution = store.execution_claim(execution_id=execution_id, owner=store.process_owner())
    if execution is None:
        current = Execution.objects.row(execution_id)
        logger.warning(
            "Not running execution %s: it is no longer waiting for a worker (status, owner: %s)",
            execution_id,
            (current.status, current.lease_owner) if current else "deleted",
        )
        return current.status if current else "missing"
    # Walked off the task's thread: a cancel frees this worker process for its next task at once.
    result: runtime.RunOutput = dispatch.walk_off(
        execution, runtime.resume, execution=execution, input=input
    )
    return str(result.body["status"])


@shared_task(name="executions.prune")
def prune() -> dict[str, Any]:
    """Delete the finished runs past their retention (executions.retention), run by Celery beat
    when scaled out; with no retention set it deletes nothing. Safe beside any other pruner."""
    limits = retention.cutoffs()
    if not limits:
        return {"executions": {}, "snapshots": 0}
    report = retention.prune(limits)
    logger.info(
        "Pruned %d executions (%s) and %d definition snapshots",
        sum(report.executions.values()),
        dict(report.executions),
        report.snapshots,
    )
    return {"executions": dict(report.executions), "snapshots": report.snapshots}
