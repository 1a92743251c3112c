"""bench.http_cost runs end to end with tiny sizes: a real server of each checkout, both modes.

No figure is compared with a threshold; only that each server answered every execution (a
refused request stops the round) and the round reported its cost.
"""

import pytest

from bench import http_cost
from bench.server import REPO_ROOT

pytestmark = [pytest.mark.bench, pytest.mark.slow]


@pytest.mark.parametrize("mode", ["wait", "async"])
def test_each_checkout_serves_every_execution_and_reports_its_cost(mode) -> None:
    # The baseline is this checkout again: the harness must not need an older commit to run.
    result = http_cost.run(REPO_ROOT, runs=20, rounds=1, mode=mode)
    assert set(result["figures"]) == {"this", "baseline"}
    for row in result["figures"].values():
        assert row["cpu_ms_per_run"] > 0
        assert row["runs_per_s"] > 0
