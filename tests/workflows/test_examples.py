"""Every shipped example runs with the right outputs."""

import pytest

from workflows.library import workflow_library

from .helpers import C4C_SIMPLE_MATH


def _example(workflow_id: str):
    definition = workflow_library().get(workflow_id)
    assert definition is not None, workflow_id
    return definition


def test_simple_math_is_exactly_c4cs_definition() -> None:
    assert _example("simple-math-workflow").to_json_dict() == C4C_SIMPLE_MATH


def test_simple_math_gives_15_6_12(run) -> None:
    result = run(_example("simple-math-workflow"))
    assert result.status == "completed"
    assert result.outputs == {
        "add": {"result": 15},
        "multiply": {"result": 6},
        "subtract": {"result": 12},
    }
    assert result.nodes_executed == ["add", "multiply", "subtract"]


@pytest.fixture
def quick_delays(settings) -> None:
    settings.C4C_DELAY_SCALE = 0.001


def _critical_path_ms(definition, node_id=None) -> int:
    """Sum of custom.delay ms along the run, taking the longest parallel branch."""
    nodes = {n.id: n for n in definition.nodes}
    total, node = 0, nodes[node_id or definition.start_node]
    while node is not None:
        if node.type == "parallel":
            total += max(nodes[b].config.get("ms", 0) for b in node.config["branches"])
        elif node.procedure_name == "custom.delay":
            total += node.config["ms"]
        node = nodes.get(node.next) if isinstance(node.next, str) else None
    return total


def test_long_running_workflow_takes_about_a_minute_over_ten_nodes(run, quick_delays) -> None:
    definition = _example("long-running-workflow")
    assert definition.name == "Long Running Workflow (1 minute)"
    assert len(definition.nodes) == 10
    assert 55_000 <= _critical_path_ms(definition) <= 65_000
    assert any(n.type == "parallel" for n in definition.nodes)
    result = run(definition)
    assert result.status == "completed"
    assert sorted(result.nodes_executed) == sorted(n.id for n in definition.nodes)
    assert result.outputs["crunch"] == {"result": 105}
    assert result.outputs["slow-b"] == {"delayed_ms": 15_000}
    assert result.outputs["finish"]["message"] == "Long-running workflow finished: 105"


def test_branching_workflow_analyses_in_parallel_when_there_are_enough(run) -> None:
    result = run(_example("branching-workflow"))
    assert result.status == "completed"
    assert result.nodes_executed[:3] == ["fetch", "enough-orders", "analyse"]
    assert set(result.nodes_executed[3:5]) == {"score", "announce"}
    assert result.nodes_executed[5:] == ["report"]
    assert result.outputs["score"] == {"result": 100}
    assert result.outputs["announce"]["message"] == "Analysing 10 orders"
    assert result.outputs["report"]["message"] == "Checked 10 orders"


def test_branching_workflow_reports_too_few_orders(run) -> None:
    result = run(_example("branching-workflow"), {"minimum": 50})
    assert result.nodes_executed == ["fetch", "enough-orders", "too-few", "report"]
    assert result.outputs["too-few"]["level"] == "warning"


def test_error_recovery_workflow_recovers_through_on_error(run, observer) -> None:
    result = run(_example("error-recovery-workflow"))
    assert result.status == "completed"
    assert result.nodes_executed == ["fetch-legacy", "recover", "fallback", "summary"]
    assert observer.failure("fetch-legacy")["handled_by"] == "recover"
    assert result.outputs["recover"]["message"] == (
        "Recovering: Unknown data source 'legacy-crm'; available: metrics, orders, users"
    )
    assert result.outputs["summary"]["message"] == "Loaded 3 records from the fallback source"


def test_failing_workflow_fails_naming_the_field(run) -> None:
    result = run(_example("failing-workflow"))
    assert result.status == "failed"
    assert result.nodes_executed == ["add"]
    assert (
        result.error.message == "Input to math.add is invalid: a: Input should be a number, not str"
    )


def test_retry_workflow_fails_twice_and_completes_on_the_third_attempt(run, observer) -> None:
    shipped = _example("retry-workflow")
    policy = shipped.node("call-flaky").retry
    assert (policy.max_attempts, policy.initial_interval_ms) == (3, 1000)
    quick = shipped.to_json_dict()
    quick["nodes"][1]["retry"]["initialIntervalMs"] = 5  # the shipped waits are 1 s, then 2 s
    result = run(quick)
    assert result.status == "completed"
    assert result.outputs["call-flaky"] == {"attempt": 3}
    assert result.outputs["report"]["message"] == "The flaky service answered on attempt 3"
    failed = observer.calls_of("node_attempt_failed")
    assert [(kw["attempt"], kw["error"].name) for kw in failed] == [
        (1, "ConnectionError"),
        (2, "ConnectionError"),
    ]
