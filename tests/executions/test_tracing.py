"""Span rows: attributes stored JSON-native and bounded, whichever way they are prepared, and
copies of a node's payloads only when C4C_SPAN_PAYLOAD_CHARS asks for them."""

import json

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.util.types import AttributeValue

from executions import runtime
from executions.models import Span
from executions.payloads import TRUNCATED_KEY, bounded
from executions.tracing import _attributes, span_rows
from tests.test_settings import _refused, _settings
from workflows.definitions import WorkflowDefinition


def _noop_chain() -> WorkflowDefinition:
    node = {"id": "noop", "type": "procedure", "procedureName": "custom.noop"}
    return WorkflowDefinition.model_validate(
        {"id": "noop-one", "name": "One noop", "startNode": "noop", "nodes": [node]}
    )


def test_plain_attributes_are_stored_as_bounded_would_store_them() -> None:
    attributes = {"node.id": "n1", "node.index": 3, "ok": True, "text": 'ünïcødé 😀\n"q"'}
    assert _attributes(attributes) == bounded(dict(attributes))


@pytest.mark.parametrize(
    ("value", "stored"),
    [((1, 2), [1, 2]), (float("nan"), "nan"), (1.5, 1.5)],
)
def test_other_attribute_values_go_through_bounded(value, stored) -> None:
    assert _attributes({"v": value}) == {"v": stored}


def test_attributes_that_might_exceed_the_bound_are_measured(settings) -> None:
    settings.C4C_MAX_PAYLOAD_BYTES = 1_000
    assert _attributes({"v": "a" * 100}) == {"v": "a" * 100}
    assert _attributes({"v": "a" * 2_000})[TRUNCATED_KEY] is True


def test_no_attributes_store_an_empty_object() -> None:
    assert _attributes(None) == {}


def test_span_event_attributes_are_stored_as_bounded_would_store_them(settings) -> None:
    settings.C4C_MAX_PAYLOAD_BYTES = 1_000
    span = TracerProvider().get_tracer("test").start_span("call")
    line: dict[str, AttributeValue] = {
        "log.level": "INFO",
        "log.message": 'ünïcødé 😀\n"q"',
        "log.dropped": 0,
    }
    span.add_event("log", line)
    span.add_event("big", {"v": "a" * 2_000, "ratio": 0.5})
    span.end()
    assert isinstance(span, ReadableSpan)
    [row] = span_rows([span])
    assert [event["attributes"] for event in row.events] == [
        bounded(line),
        bounded({"v": "a" * 2_000, "ratio": 0.5}),
    ]
    assert row.events[1]["attributes"][TRUNCATED_KEY] is True


def _stored_node_span(execution_id: str) -> Span:
    return Span.objects.get(execution__execution_id=execution_id, name="workflow.node.procedure")


@pytest.mark.django_db(transaction=True)
def test_stored_node_spans_hold_no_payload_copies_by_default() -> None:
    runtime.execute(definition=_noop_chain(), input={"note": "x" * 100}, execution_id="plain")
    attributes = _stored_node_span("plain").attributes
    assert attributes["procedure.output_keys"] == ""
    assert not {"procedure.input", "procedure.output"} & set(attributes)


@pytest.mark.django_db(transaction=True)
def test_stored_payload_copies_are_bounded_and_redacted(settings) -> None:
    settings.C4C_SPAN_PAYLOAD_CHARS = 60
    secret = "tok-0123456789abcdef"
    data = {"apiToken": secret, "note": "x" * 500}
    runtime.execute(definition=_noop_chain(), input=data, execution_id="copied")
    attributes = _stored_node_span("copied").attributes
    assert attributes["procedure.input"] == (
        '{"apiToken":"[redacted]","note":"' + "x" * 27 + "...(truncated)"
    )
    assert attributes["procedure.output"] == "{}"
    assert secret not in json.dumps(list(Span.objects.values("attributes", "events")))


def test_span_settings_come_from_the_environment_and_refuse_what_they_cannot_mean() -> None:
    defaults = _settings({})
    assert (defaults.C4C_SPAN_PAYLOAD_CHARS, defaults.C4C_PROCEDURE_SPANS) == (0, "all")
    chosen = _settings({"C4C_SPAN_PAYLOAD_CHARS": "512", "C4C_PROCEDURE_SPANS": "none"})
    assert (chosen.C4C_SPAN_PAYLOAD_CHARS, chosen.C4C_PROCEDURE_SPANS) == (512, "none")
    assert _refused({"C4C_SPAN_PAYLOAD_CHARS": "-1"}).endswith("at least 0, not -1")
    assert "'all' or 'none'" in _refused({"C4C_PROCEDURE_SPANS": "sampled"})


@pytest.mark.django_db(transaction=True)
def test_procedure_spans_none_stores_one_span_per_node_under_the_run(settings) -> None:
    settings.C4C_PROCEDURE_SPANS = "none"
    body = runtime.execute(definition=_noop_chain(), input={}, execution_id="lean").body
    assert [span["name"] for span in body["spans"]] == [
        "workflow.execute",
        "workflow.node.procedure",
    ]
    names = Span.objects.filter(execution__execution_id="lean").values_list("name", flat=True)
    assert sorted(names) == ["workflow.execute", "workflow.node.procedure"]
