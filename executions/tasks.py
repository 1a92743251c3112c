"""Celery tasks: a worker runs an execution the web process already recorded as started."""

from typing import Any

from celery import shared_task

from workflows.definitions import WorkflowDefinition

from . import runtime
from .models import Execution


@shared_task(name="executions.run_execution")
def run_execution(execution_id: str, definition: dict[str, Any], input: dict[str, Any]) -> str:
    execution = Execution.objects.get(execution_id=execution_id)
    result = runtime.run(
        execution=execution,
        definition=WorkflowDefinition.model_validate(definition),
        input=input,
    )
    return str(result["status"])
