"""bench.request_cost runs end to end with tiny sizes: both modes measured for both checkouts.

No figure is compared with a threshold; only that each worker ran its executions to the end in
each mode (a refused request or a run that never ends stops the worker) and reported its rate.
"""

import pytest

from bench import request_cost

pytestmark = [pytest.mark.bench, pytest.mark.slow]


def test_each_checkout_runs_every_mode_and_reports_its_cost() -> None:
    # The baseline is this checkout again: the harness must not need an older commit to run.
    result = request_cost.run(request_cost.Sizes(runs=20, rounds=1), request_cost.REPO_ROOT)
    assert set(result["figures"]) == {"this", "baseline"}
    for row in result["figures"].values():
        assert set(row) == {
            f"{mode} {figure}" for mode in ("wait", "async") for figure in request_cost.FIGURES
        }
        assert all(value > 0 for value in row.values())
    assert "baseline" in request_cost.table(result)
