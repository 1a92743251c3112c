import sqlite3
from datetime import UTC, datetime

import pytest
from django.db import connection

from bench.fill import fill, load_template
from executions.models import Execution, ExecutionCounter, NodeExecution, Span
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def template() -> Execution:
    return factories.execution(
        execution_id="wf_exec_1_template",
        started_at=datetime(2026, 11, 29, 6, 0, tzinfo=UTC),
        nodes={"add": "completed"},
        spans=1,
    )


def _raw() -> sqlite3.Connection:
    return sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, timeout=30)


def test_fill_clones_execution_nodes_spans_and_counts_them(template):
    raw = _raw()
    try:
        fill(raw, load_template(raw, template.execution_id), 25, batch=10)
    finally:
        raw.close()
    assert Execution.objects.count() == 26
    assert NodeExecution.objects.count() == 26
    assert Span.objects.count() == 26
    assert ExecutionCounter.objects.get(status="completed").count == 1 + 25
    clone = Execution.objects.exclude(pk=template.pk).order_by("started_at").first()
    assert clone is not None
    span = clone.spans.get()
    assert span.attributes["workflow.execution_id"] == clone.execution_id
    assert span.trace_id == clone.trace_id != template.trace_id
    assert clone.started_at < template.started_at
    assert clone.nodes.get().started_at == clone.started_at


def test_fill_twice_keeps_execution_ids_unique(template):
    raw = _raw()
    try:
        loaded = load_template(raw, template.execution_id)
        fill(raw, loaded, 5)
        fill(raw, loaded, 5)
    finally:
        raw.close()
    assert Execution.objects.values("execution_id").distinct().count() == 11
