"""`python -m bench --quick` end to end against a real server: it must produce figures.

No figure is compared with a threshold here; timing belongs in BENCHMARKS.md, not in CI.
"""

import json
import subprocess
import sys
from typing import Any

import pytest

from bench.server import REPO_ROOT

# Also slow, so that `-m "not slow"` (which replaces the default `-m 'not bench'`) leaves it out.
pytestmark = [pytest.mark.bench, pytest.mark.slow]


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-results")
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--results-dir", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "verdict" in completed.stdout
    (results_file,) = out.glob("*.json")
    results: dict[str, Any] = json.loads(results_file.read_text())
    return results


def test_quick_run_measures_execute_throughput_without_errors(quick_results):
    variants = quick_results["phases"]["throughput"]["variants"]
    for name in ("sync_c1", "sync_c8", "sync_c32"):
        assert variants[name]["summary"]["executions_per_s"] > 0
        assert variants[name]["summary"]["errors"] == 0
    assert variants["async_c8"]["summary"]["executions_per_s"] > 0
    assert quick_results["phases"]["throughput"]["db_bytes_per_execution"] > 0


def test_quick_run_measures_per_node_overhead(quick_results):
    nodes = quick_results["phases"]["nodes"]
    assert nodes["errors"] == []
    assert nodes["summary"]["ms_per_node"] > 0


def test_quick_run_delivers_every_event_to_every_client(quick_results):
    levels = quick_results["phases"]["events"]["levels"]
    assert levels
    for clients, level in levels.items():
        summary = level["summary"]
        assert summary["clients_connected_min"] == int(clients)
        assert summary["events_per_execution"] > 0
        assert summary["events_lost"] == 0
        assert level["runs"][0]["delay"]["count"] > 0


def test_quick_run_times_reads_at_each_history_size(quick_results):
    sizes = quick_results["phases"]["history"]["sizes"]
    assert sizes
    for size, data in sizes.items():
        assert data["growth"]["stored"] >= int(size)
        assert data["summary"]["list"]["p50_ms"] > 0
        assert data["summary"]["detail"]["p50_ms"] > 0


def test_quick_run_reports_footprint_and_machine(quick_results):
    rss_after = quick_results["footprint"]["rss_after"]
    assert rss_after
    assert all(m["rss_mib"] > 0 for m in rss_after.values())
    assert quick_results["footprint"]["log"]["main"]["database_locked"] == 0
    assert quick_results["machine"]["cores"] > 0
    assert quick_results["table"]
