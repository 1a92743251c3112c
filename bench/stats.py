"""Percentiles and medians, computed the way the c4c load script did so figures compare."""

from collections.abc import Iterable, Sequence
from statistics import median
from typing import Any


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default 'linear')."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * (p / 100.0)
    low = int(k)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (k - low)


def latency_summary(values_ms: Iterable[float]) -> dict[str, float | int | None]:
    values = sorted(values_ms)
    if not values:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(values),
        "p50_ms": _round(percentile(values, 50)),
        "p90_ms": _round(percentile(values, 90)),
        "p99_ms": _round(percentile(values, 99)),
        "max_ms": _round(values[-1]),
        "mean_ms": _round(sum(values) / len(values)),
    }


def median_of(values: Iterable[float | int | None]) -> float | None:
    """Median over runs; a run that produced no figure is left out rather than counted as 0."""
    present = [v for v in values if v is not None]
    return _round(median(present)) if present else None


def median_field(runs: Sequence[dict[str, Any]], *path: str) -> float | None:
    """Median of runs[i][path[0]][path[1]]..., skipping runs where the figure is missing."""
    values = []
    for run in runs:
        value: object = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(value if isinstance(value, int | float) else None)
    return median_of(values)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
