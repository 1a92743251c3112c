"""The retry policy and timeoutMs as definition JSON: parsing, bounds, backoff, validation."""

import pytest
from pydantic import ValidationError

from workflows.definitions import WorkflowDefinition
from workflows.retry import RetryPolicy
from workflows.validation import validate_definition

from .helpers import chain


def test_backoff_grows_by_the_coefficient_up_to_the_maximum() -> None:
    policy = RetryPolicy(initial_interval_ms=100, backoff_coefficient=3.0, max_interval_ms=500)
    assert [policy.delay_ms(n) for n in (1, 2, 3, 4)] == [100, 300, 500, 500]
    default_cap = RetryPolicy(initial_interval_ms=10, backoff_coefficient=10.0)
    assert [default_cap.delay_ms(n) for n in (1, 2, 3, 4)] == [10, 100, 1000, 1000]


def test_retry_and_timeouts_are_camel_case_json_that_round_trips() -> None:
    data = chain(
        {
            "id": "call",
            "procedureName": "custom.flaky",
            "timeoutMs": 500,
            "retry": {
                "maxAttempts": 4,
                "initialIntervalMs": 200,
                "backoffCoefficient": 1.5,
                "maxIntervalMs": 1000,
                "nonRetryableErrors": ["ValueError"],
            },
        },
        retry={"maxAttempts": 2},
        timeoutMs=60_000,
    )
    definition = WorkflowDefinition.model_validate(data)
    assert definition.nodes[0].retry == RetryPolicy(
        max_attempts=4,
        initial_interval_ms=200,
        backoff_coefficient=1.5,
        max_interval_ms=1000,
        non_retryable_errors=("ValueError",),
    )
    assert (definition.nodes[0].timeout_ms, definition.timeout_ms) == (500, 60_000)
    again = definition.to_json_dict()
    assert again["nodes"][0]["retry"]["nonRetryableErrors"] == ["ValueError"]
    assert again["nodes"][0]["timeoutMs"] == 500
    assert again["retry"] == {
        "maxAttempts": 2,
        "initialIntervalMs": 1000,
        "backoffCoefficient": 2.0,
        "nonRetryableErrors": [],
    }
    assert WorkflowDefinition.model_validate(again) == definition


@pytest.mark.parametrize(
    "retry",
    [
        {"maxAttempts": 0},
        {"maxAttempts": 101},
        {"initialIntervalMs": -1},
        {"backoffCoefficient": 0.5},
        {"initialIntervalMs": 500, "maxIntervalMs": 100},
        {"maxAttempts": 2, "jitter": True},
        {"nonRetryableErrors": [""]},
    ],
)
def test_impossible_retry_policies_are_refused(retry) -> None:
    with pytest.raises(ValidationError):
        WorkflowDefinition.model_validate(chain({"id": "a", "procedureName": "x", "retry": retry}))


@pytest.mark.parametrize("timeout_ms", [0, -5, 8 * 24 * 3600 * 1000])
def test_timeouts_outside_one_ms_to_a_week_are_refused(timeout_ms) -> None:
    with pytest.raises(ValidationError):
        WorkflowDefinition.model_validate(
            chain({"id": "a", "procedureName": "x", "timeoutMs": timeout_ms})
        )


def test_retry_or_timeout_on_a_node_that_calls_no_procedure_is_a_problem() -> None:
    definition = WorkflowDefinition.model_validate(
        chain(
            {"id": "pass", "type": "sequential", "timeoutMs": 100},
            {"id": "add", "procedureName": "math.add", "config": {"a": 1, "b": 2}},
        )
    )
    assert validate_definition(definition) == [
        "Node pass: retry and timeoutMs apply to procedure nodes only"
    ]
