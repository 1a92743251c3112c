from typing import Any

from bench.stats import latency_summary, median_field, percentile


def test_percentile_interpolates_between_ranks():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) is None


def test_summary_of_no_samples_has_no_figures():
    assert latency_summary([])["p50_ms"] is None


def test_median_over_runs_skips_runs_without_the_figure():
    runs: list[dict[str, Any]] = [
        {"latency": {"p50_ms": 1.0}},
        {"latency": {"p50_ms": None}},
        {"latency": {"p50_ms": 3}},
    ]
    assert median_field(runs, "latency", "p50_ms") == 2.0
