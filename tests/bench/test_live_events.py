import json

from bench.live_events import analyse, execution_ids_in
from bench.sse import SseEvent


def _event(name: str, recv_ms: float, **payload) -> SseEvent:
    return SseEvent(name, json.dumps(payload), None, recv_ms)


def test_a_client_missing_an_event_the_others_got_counts_as_a_loss():
    started = _event("workflow.started", 1_800_000_000_010.0, executionId="e1", timestamp=1.8e12)
    done = _event("workflow.completed", 1_800_000_000_020.0, executionId="e1", timestamp=1.8e12)
    figures = analyse([[started, done], [started]], {"e1"}, [300, 200], executions=1)
    assert figures["events_lost"] == 1
    assert figures["clients_with_loss"] == 1
    assert figures["events_per_execution"] == 2


def test_delay_is_arrival_minus_the_event_timestamp():
    event = _event("node.started", 1_800_000_000_012.5, executionId="e1", timestamp=1.8e12)
    figures = analyse([[event]], {"e1"}, [100], executions=1)
    assert figures["delay"]["p50_ms"] == 12.5


def test_events_about_other_executions_are_not_expected():
    other = _event("workflow.started", 1.8e12, executionId="older", timestamp=1.8e12)
    figures = analyse([[other], []], {"e1"}, [10, 0], executions=1)
    assert figures["events_lost"] == 0
    assert figures["events_per_execution"] == 0


def test_list_updates_are_about_the_executions_they_carry():
    assert execution_ids_in({"executions": [{"executionId": "a"}, {"executionId": "b"}]}) == {
        "a",
        "b",
    }
    assert execution_ids_in({"execution": {"executionId": "c"}}) == {"c"}


def test_an_event_received_twice_is_a_duplicate_not_a_loss():
    started = _event("workflow.started", 1_800_000_000_010.0, executionId="e1", timestamp=1.8e12)
    figures = analyse([[started, started], [started]], {"e1"}, [20, 10], executions=1)
    assert figures["events_lost"] == 0
    assert figures["duplicate_event_types"] == {"workflow.started": 1}
