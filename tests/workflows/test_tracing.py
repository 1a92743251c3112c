"""Each run is its own trace: workflow.execute -> workflow.node.<type> -> procedure spans."""

from opentelemetry import trace
from opentelemetry.trace import StatusCode

from workflows.builder import Workflow, step
from workflows.library import workflow_library

from .helpers import chain, run_concurrently


def _by_name(spans):
    return {s.name: s for s in spans}


def test_simple_math_spans_carry_c4c_attributes(run, spans) -> None:
    result = run(workflow_library().get("simple-math-workflow"))
    assert len(result.trace_id) == 32
    recorded = spans(result.trace_id)
    assert len(recorded) == 7
    root = _by_name(recorded)["workflow.execute"]
    assert root.parent is None
    assert root.status.status_code == StatusCode.OK
    assert dict(root.attributes) == {
        "workflow.id": "simple-math-workflow",
        "workflow.name": "Simple Math Workflow",
        "workflow.version": "1.0.0",
        "workflow.execution_id": "test-simple-math-workflow",
        "workflow.start_node": "add",
        "workflow.node_count": 3,
        "workflow.current_node": "subtract",
        "workflow.current_node_index": 2,
        "workflow.nodes_executed": 3,
        "workflow.status": "completed",
        "workflow.nodes_executed_total": 3,
        "workflow.execution_time_ms": result.execution_time_ms,
    }
    nodes = sorted(
        (s for s in recorded if s.name == "workflow.node.procedure"), key=lambda s: s.start_time
    )
    assert all(s.parent.span_id == root.context.span_id for s in nodes)
    assert [dict(s.attributes) for s in nodes][1] == {
        "workflow.id": "simple-math-workflow",
        "workflow.execution_id": "test-simple-math-workflow",
        "node.id": "multiply",
        "node.type": "procedure",
        "node.procedure": "math.multiply",
        "procedure.input": '{"a":3,"b":2,"result":15}',
        "procedure.output": '{"result":6}',
        "procedure.output_keys": "result",
        "node.status": "completed",
        "node.next": "subtract",
    }
    assert [s.attributes["procedure.input"] for s in nodes] == [
        '{"a":10,"b":5}',
        '{"a":3,"b":2,"result":15}',
        '{"a":20,"b":8,"result":6}',
    ]
    for name, node in zip(["math.add", "math.multiply", "math.subtract"], nodes, strict=True):
        proc = _by_name(recorded)[name]
        assert proc.parent.span_id == node.context.span_id
        assert proc.attributes["procedure.name"] == name


def test_run_is_a_new_root_trace_linked_to_the_active_request_span(run, spans) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("HTTP POST /workflow/execute") as request:
        result = run(workflow_library().get("simple-math-workflow"))
    root = _by_name(spans(result.trace_id))["workflow.execute"]
    assert root.parent is None
    assert root.context.trace_id != request.get_span_context().trace_id
    assert [link.context.span_id for link in root.links] == [request.get_span_context().span_id]


def test_parallel_branch_spans_are_children_of_the_parallel_span(run, spans) -> None:
    definition = (
        Workflow("wf")
        .parallel("fan", [step("a", "test.increment"), step("b", "test.increment")])
        .build()
    )
    result = run(definition)
    recorded = spans(result.trace_id)
    fan = _by_name(recorded)["workflow.node.parallel"]
    branches = [s for s in recorded if s.name == "workflow.node.procedure"]
    assert sorted(s.attributes["node.id"] for s in branches) == ["a", "b"]
    assert all(s.parent.span_id == fan.context.span_id for s in branches)


def test_failures_are_recorded_as_exceptions_with_error_status(run, spans) -> None:
    result = run(chain({"id": "explode", "procedureName": "test.boom", "config": {"value": 2}}))
    recorded = _by_name(spans(result.trace_id))
    node = recorded["workflow.node.procedure"]
    assert node.status.status_code == StatusCode.ERROR
    assert node.attributes["node.status"] == "failed"
    assert node.attributes["node.error"] == "boom at 2"
    assert [e.name for e in node.events] == ["exception"]
    assert recorded["test.boom"].status.status_code == StatusCode.ERROR
    root = recorded["workflow.execute"]
    assert root.status.status_code == StatusCode.ERROR
    assert root.attributes["workflow.status"] == "failed"
    assert root.attributes["workflow.error"] == "boom at 2"


def test_concurrent_runs_keep_their_spans_apart(spans, test_registry) -> None:
    definition = workflow_library().get("simple-math-workflow")
    assert definition is not None
    results = run_concurrently(definition, test_registry)
    assert len({r.trace_id for r in results.values()}) == 16
    for n, result in results.items():
        recorded = spans(result.trace_id)
        assert len(recorded) == 7
        tagged = [s for s in recorded if "workflow.execution_id" in s.attributes]
        assert len(tagged) == 4
        assert {s.attributes["workflow.execution_id"] for s in tagged} == {f"exec-{n}"}
