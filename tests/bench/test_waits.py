"""bench.waits at small numbers against a real server: every run parks, wakes and is measured.

No delay is compared with a threshold here; timing belongs in BENCHMARKS.md, not in CI. That
parked runs hold no thread is behaviour, so it is checked: with a hundred parked runs the
server has no more threads than a few (daphne's executor may grow by one or two meanwhile).
"""

from typing import Any

import pytest

from bench import waits

SLACK_THREADS = 4


@pytest.fixture(scope="module")
def quick_waits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return waits.run(tmp_path_factory.mktemp("bench-waits") / "waits", waits.QUICK)


@pytest.mark.bench
@pytest.mark.slow
@pytest.mark.parametrize("case", ["spread", "burst"])
def test_sleeping_runs_park_without_threads_and_each_wake_is_measured(quick_waits, case):
    figures = quick_waits[case]
    assert figures["start"]["statuses"] == {"202": figures["runs"]}
    assert figures["all_parked_before_first_due"]
    assert figures["wake_delay"]["count"] == figures["runs"]
    assert figures["wake_delay"]["p50_ms"] >= 0
    before, holding = (
        figures["footprint_before"]["threads"],
        figures["footprint_holding"]["threads"],
    )
    assert holding <= before + SLACK_THREADS


@pytest.mark.bench
@pytest.mark.slow
def test_every_signal_is_delivered_and_its_delay_measured(quick_waits):
    figures = quick_waits["signals"]
    assert figures["statuses"] == {"202": figures["runs"]}
    assert figures["delay"]["count"] == figures["runs"]
    assert quick_waits["log"] == {"database_locked": 0, "tracebacks": 0}


@pytest.mark.bench
@pytest.mark.slow
def test_report_rows_name_each_case(quick_waits):
    metrics = [metric for metric, _, _ in waits.summary_rows(quick_waits)]
    assert any("wake delay" in m and "due over 0 s" in m for m in metrics)
    assert any("signal -> node completed" in m for m in metrics)


def test_delay_summary_counts_wakes_later_than_a_second():
    summary = waits.delay_summary([float(ms) for ms in range(1, 1201)])
    assert summary["over_1s"] == 200
    assert summary["p95_ms"] == 1140.0
    assert summary["max_ms"] == 1200.0
