"""Builders for executions as the store leaves them, so page tests read as scenarios."""

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from executions.models import Execution, ExecutionCounter, NodeExecution, Span

SIMPLE_MATH = {
    "id": "simple-math-workflow",
    "name": "Simple Math Workflow",
    "version": "1.0.0",
    "startNode": "add",
    "nodes": [
        {"id": "add", "type": "procedure", "procedureName": "math.add", "next": "multiply"},
        {"id": "multiply", "type": "procedure", "procedureName": "math.multiply", "next": "sub"},
        {"id": "sub", "type": "procedure", "procedureName": "math.subtract"},
    ],
}

_ids = itertools.count(1)


def _bump_counter(status: str) -> None:
    counter, _ = ExecutionCounter.objects.get_or_create(status=status)
    counter.count += 1
    counter.save(update_fields=["count"])


@pytest.fixture
def make_execution(db: None) -> Callable[..., Execution]:
    def make(
        *,
        status: str = "completed",
        started_at: datetime | None = None,
        definition: dict[str, Any] | None = None,
        nodes: dict[str, str] | None = None,
        error: dict[str, str] | None = None,
        spans: int = 0,
        **fields: Any,
    ) -> Execution:
        definition = definition or SIMPLE_MATH
        started = started_at or timezone.now() - timedelta(seconds=30)
        finished = status != "running"
        number = next(_ids)
        execution = Execution.objects.create(
            execution_id=fields.pop("execution_id", f"wf_exec_test_{number}"),
            workflow_id=definition["id"],
            workflow_name=definition["name"],
            workflow_version=definition.get("version", ""),
            definition=definition,
            status=status,
            started_at=started,
            ended_at=started + timedelta(milliseconds=1200) if finished else None,
            execution_time_ms=1200 if finished else None,
            nodes_executed=[n for n, s in (nodes or {}).items() if s == "completed"],
            error=error,
            **fields,
        )
        _bump_counter(status)
        for sequence, (node_id, node_status) in enumerate((nodes or {}).items()):
            NodeExecution.objects.create(
                execution=execution,
                node_id=node_id,
                node_type="procedure",
                status=node_status,
                sequence=sequence,
                started_at=started + timedelta(milliseconds=10 * sequence),
                ended_at=started + timedelta(milliseconds=10 * sequence + 5),
                duration_ms=5.0,
                input={"a": sequence},
                output={"result": sequence * 2} if node_status == "completed" else None,
                error={"name": "ValueError", "message": "bad"} if node_status == "failed" else None,
            )
        if spans:
            base_us = int(started.timestamp() * 1_000_000)
            root = Span(
                execution=execution,
                trace_id="t" * 32,
                span_id="root000000000000",
                name="workflow.execute",
                start_time_us=base_us,
                end_time_us=base_us + 1_000_000,
                status_code="OK",
                attributes={"workflow.id": definition["id"]},
            )
            children = [
                Span(
                    execution=execution,
                    trace_id="t" * 32,
                    span_id=f"child{i:011d}",
                    parent_span_id=root.span_id,
                    name="workflow.node.procedure",
                    start_time_us=base_us + i * 1000,
                    end_time_us=base_us + i * 1000 + 500,
                    status_code="ERROR" if i == spans - 2 else "OK",
                    attributes={"node.id": f"n{i}"},
                    events=[{"name": "retry", "attributes": {"attempt": 1}}] if i == 0 else [],
                )
                for i in range(spans - 1)
            ]
            Span.objects.bulk_create([root, *children])
        return execution

    return make
