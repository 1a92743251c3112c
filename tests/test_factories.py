"""The test builders write through the store, so what they build is what production stores."""

import pytest

from executions.models import Execution, ExecutionCounter
from tests import factories

pytestmark = pytest.mark.django_db


def test_built_runs_keep_the_counters_in_step_with_their_rows() -> None:
    for status in ("running", "completed", "failed", "cancelled"):
        factories.execution(status=status)
    assert ExecutionCounter.objects.stats() == {
        "total": 4,
        "completed": 1,
        "failed": 1,
        "running": 1,
        "waiting": 0,
    }
    assert sorted(Execution.objects.values_list("status", flat=True)) == [
        "cancelled",
        "completed",
        "failed",
        "running",
    ]


def test_a_built_run_has_its_nodes_in_order_and_its_spans_under_one_root() -> None:
    execution = factories.execution(
        status="failed", nodes={"add": "completed", "multiply": "failed"}, spans=3
    )
    nodes = list(execution.nodes.order_by("sequence"))
    assert [(n.node_id, n.status) for n in nodes] == [("add", "completed"), ("multiply", "failed")]
    assert execution.outputs == {"add": {"result": 0}}
    assert execution.error == factories.NODE_ERROR.to_json_dict()
    assert execution.execution_time_ms == 1200
    spans = list(execution.spans.order_by("start_time_us"))
    assert [s.parent_span_id for s in spans] == ["", spans[0].span_id, spans[0].span_id]
    assert {s.trace_id for s in spans} == {execution.trace_id}


def test_a_node_status_the_engine_never_leaves_is_refused() -> None:
    with pytest.raises(ValueError, match="skipped"):
        factories.execution(nodes={"add": "skipped"})
