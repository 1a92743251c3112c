"""The issue-14 phases run end to end with tiny sizes: DBOS side by side, and the scale-out.

No figure is compared with a threshold; only that each side measured and persisted its runs.
"""

import socket
from pathlib import Path
from typing import Any

import pytest

from bench import dbos_compare, scaleout

pytestmark = [pytest.mark.bench, pytest.mark.slow]

TINY = dbos_compare.Sizes(rounds=1, seconds=0.3, threads=2, steps=20, repeats=1, warmup=1)


def _require(port: int, name: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        pytest.skip(f"{name} is not reachable on 127.0.0.1:{port}; start it (make services)")


@pytest.fixture(scope="module")
def dbos_venv() -> Path:
    python, why = dbos_compare.dbos_python()
    if python is None:
        pytest.skip(f"DBOS's own venv cannot be made here, so only ours would run: {why}")
    return python


def _measured(data: dict[str, Any], backend: str) -> dict[str, Any]:
    measured: dict[str, Any] = data["backends"][backend]
    assert "skipped" not in measured, measured
    for side in dbos_compare.SIDES:
        (run,) = measured["rounds"][side]
        assert "error" not in run, run["error"]
    return measured


def test_dbos_phase_measures_both_sides_on_sqlite(dbos_venv, tmp_path):
    data = dbos_compare.run(tmp_path, TINY, ("sqlite",))

    measured = _measured(data, "sqlite")
    for side in dbos_compare.SIDES:
        medians = measured["medians"][side]
        assert medians["sequential_runs_per_s"] > 0
        assert medians["threads_runs_per_s"] > 0
        assert medians["ms_per_step"] > 0
    ours = measured["rounds"]["ours"][0]
    runs = ours["sequential"]["runs"] + ours["threads"]["runs"]
    # Warm-up, timed runs and one chain: every run and node is a row.
    assert ours["persisted"]["executions"] == TINY.warmup + runs + TINY.repeats
    assert ours["persisted"]["nodes"] == 3 * (TINY.warmup + runs) + TINY.steps * TINY.repeats
    dbos = measured["rounds"]["dbos"][0]
    dbos_runs = dbos["sequential"]["runs"] + dbos["threads"]["runs"]
    # Its warm-up also runs one 10-step chain.
    assert dbos["persisted"]["workflows"] == TINY.warmup + 1 + dbos_runs + TINY.repeats
    table = dbos_compare.table(data)
    assert "ours/DBOS" in table
    assert "SQLite WAL" in table


@pytest.mark.services
def test_dbos_phase_measures_both_sides_on_postgres(dbos_venv, tmp_path):
    _require(5432, "PostgreSQL")

    data = dbos_compare.run(tmp_path, TINY, ("postgres",))

    measured = _measured(data, "postgres")
    for side in dbos_compare.SIDES:
        assert measured["medians"][side]["sequential_runs_per_s"] > 0
        assert measured["medians"][side]["ms_per_step"] > 0


@pytest.mark.services
def test_scaleout_phase_drains_queued_runs_with_one_and_two_worker_processes(tmp_path):
    _require(5432, "PostgreSQL")
    _require(6379, "Redis")

    data = scaleout.run(tmp_path, runs=6, commit_seconds=0.3)

    assert sorted(data["workers"]) == ["1", "2"]
    for figures in data["workers"].values():
        assert figures["finished"] == 6
        assert figures["not_completed"] == 0
        assert figures["exec_per_s"] > 0
        assert figures["commits_per_execution"] > 0
    assert data["commit_rate"]["connections_1"] > 0
    assert data["on_paper"]["processes_at_the_limit"] > 0


def test_dbos_venv_that_cannot_be_made_is_reported_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr("shutil.which", lambda name: None)

    python, why = dbos_compare.dbos_python()

    assert python is None
    assert "uv is not on PATH" in why
