"""Span rows: attributes stored JSON-native and bounded, whichever way they are prepared, and
copies of a node's payloads only when C4C_SPAN_PAYLOAD_CHARS asks for them."""

import json

import pytest

from executions import runtime
from executions.models import Span
from executions.payloads import TRUNCATED_KEY, bounded
from executions.tracing import _attributes
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
