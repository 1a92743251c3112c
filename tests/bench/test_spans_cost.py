"""bench.spans_cost runs end to end with tiny sizes: every variant measured, each its own spans.

No figure is compared with a threshold; only that each variant ran its chain to the end with the
spans its settings ask for, and the SDK-alone timings came back.
"""

import pytest

from bench import spans_cost

pytestmark = [pytest.mark.bench, pytest.mark.slow]


def test_every_variant_runs_its_chain_with_the_spans_its_settings_ask_for() -> None:
    result = spans_cost.run(spans_cost.Sizes(nodes=20, rounds=1, input_bytes=200))
    figures = result["figures"]
    assert {name: row["spans_per_run"] for name, row in figures.items()} == {
        "noop": 0,
        "spans": 41,
        "spans+payload": 41,
        "node-spans": 21,
    }
    for name, row in figures.items():
        assert row["cpu_ms_per_node"] > 0
        assert row["sdk_ms_per_node"] >= 0
        assert ("spans_cpu_ms_per_node" in row) == (name != "noop")
    assert "noop" in spans_cost.table(result)
