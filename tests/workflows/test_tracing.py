"""Each run is its own trace: workflow.execute -> workflow.node.<type> -> procedure spans."""

import json

from opentelemetry import trace
from opentelemetry.trace import StatusCode

from workflows.builder import Workflow, step
from workflows.library import workflow_library
from workflows.secrets import REDACTED

from .helpers import chain, run_concurrently


def _by_name(spans):
    return {s.name: s for s in spans}


def test_simple_math_spans_carry_c4c_attributes(run, spans, settings) -> None:
    settings.C4C_SPAN_PAYLOAD_CHARS = 4096  # c4c's payload copies, asked for
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


def test_procedure_spans_copy_no_payloads_by_default(run, spans) -> None:
    result = run(workflow_library().get("simple-math-workflow"))
    nodes = [s for s in spans(result.trace_id) if s.name == "workflow.node.procedure"]
    assert len(nodes) == 3
    for node in nodes:
        assert node.attributes["procedure.output_keys"] == "result"
        assert "procedure.input" not in node.attributes
        assert "procedure.output" not in node.attributes


def test_payload_copies_are_cut_at_the_setting(run, spans, settings) -> None:
    settings.C4C_SPAN_PAYLOAD_CHARS = 40
    result = run(chain({"id": "inc", "procedureName": "test.increment"}), {"note": "x" * 500})
    [node] = [s for s in spans(result.trace_id) if s.name == "workflow.node.procedure"]
    assert node.attributes["procedure.input"] == '{"note":"' + "x" * 31 + "...(truncated)"
    assert node.attributes["procedure.output"] == '{"value":1}'


def test_payload_copies_are_redacted_on_success_and_failure(run, spans, settings) -> None:
    settings.C4C_SPAN_PAYLOAD_CHARS = 4096
    secret = "tok-0123456789abcdef"
    definition = chain(
        {"id": "inc", "procedureName": "test.increment"},
        {"id": "explode", "procedureName": "test.boom", "config": {"value": 2}},
    )
    result = run(definition, {"apiToken": secret})
    recorded = {
        s.attributes["node.id"]: s
        for s in spans(result.trace_id)
        if s.name == "workflow.node.procedure"
    }
    assert json.loads(recorded["inc"].attributes["procedure.input"]) == {"apiToken": REDACTED}
    assert json.loads(recorded["explode"].attributes["procedure.input"]) == {
        "apiToken": REDACTED,
        "value": 2,
    }
    assert "procedure.output" not in recorded["explode"].attributes


def test_a_failed_node_copies_no_input_by_default(run, spans) -> None:
    result = run(chain({"id": "explode", "procedureName": "test.boom", "config": {"value": 2}}))
    [node] = [s for s in spans(result.trace_id) if s.name == "workflow.node.procedure"]
    assert node.attributes["node.status"] == "failed"
    assert "procedure.input" not in node.attributes


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


def test_procedure_spans_none_leaves_the_node_spans_alone(run, spans, settings) -> None:
    settings.C4C_PROCEDURE_SPANS = "none"
    result = run(workflow_library().get("simple-math-workflow"))
    recorded = spans(result.trace_id)
    assert (
        sorted(s.name for s in recorded) == ["workflow.execute"] + ["workflow.node.procedure"] * 3
    )
    root = _by_name(recorded)["workflow.execute"]
    nodes = [s for s in recorded if s.name == "workflow.node.procedure"]
    assert all(s.parent.span_id == root.context.span_id for s in nodes)
    assert all(s.status.status_code == StatusCode.OK for s in nodes)
    assert [s.attributes["node.status"] for s in nodes] == ["completed"] * 3


def test_procedure_spans_none_records_a_failure_once_on_the_node_span(run, spans, settings) -> None:
    settings.C4C_PROCEDURE_SPANS = "none"
    result = run(chain({"id": "explode", "procedureName": "test.boom", "config": {"value": 2}}))
    [node] = [s for s in spans(result.trace_id) if s.name == "workflow.node.procedure"]
    assert node.status.status_code == StatusCode.ERROR
    assert node.attributes["node.error"] == "boom at 2"
    assert [e.name for e in node.events] == ["exception"]


def test_procedure_spans_none_still_says_which_attempt_succeeded(run, spans, settings) -> None:
    settings.C4C_PROCEDURE_SPANS = "none"
    retry = {"maxAttempts": 3, "initialIntervalMs": 0}
    definition = chain(
        {"id": "f", "procedureName": "custom.flaky", "config": {"failTimes": 1}, "retry": retry}
    )
    result = run(definition)
    assert sorted(s.name for s in spans(result.trace_id)) == [
        "workflow.execute",
        "workflow.node.procedure",
    ]
    [node] = [s for s in spans(result.trace_id) if s.name == "workflow.node.procedure"]
    assert node.status.status_code == StatusCode.OK
    assert node.attributes["node.attempt"] == 2
