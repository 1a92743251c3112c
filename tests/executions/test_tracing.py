"""Span rows: attributes stored JSON-native and bounded, whichever way they are prepared."""

import pytest

from executions.payloads import TRUNCATED_KEY, bounded
from executions.tracing import _attributes


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
