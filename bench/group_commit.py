"""Group commit on and off, side by side: in-process simple-math runs from 1 and 8 threads.

`python -m bench.group_commit [--database-url URL] [--rounds 4] [--runs 400]` runs
`executions.runtime.execute` on a fresh database (a scratch SQLite WAL file by default; an empty
PostgreSQL database with --database-url), switching C4C_GROUP_COMMIT between rounds so both see
the same box, and prints the medians: runs/s, process CPU ms per run and, on PostgreSQL, commits
per run (pg_stat_database.xact_commit).
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


def _setup(database_url: str | None) -> Callable[[], None]:
    scratch = tempfile.mkdtemp(prefix="c4c-bench-gc-")
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{scratch}/db.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from executions import runtime
    from executions.startup import instrument
    from workflows.library import workflow_library

    instrument()
    definition = workflow_library().get("simple-math-workflow")
    assert definition is not None

    def one() -> None:
        runtime.execute(definition=definition, input={})

    return one


def _commits() -> int | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(cursor.fetchone()[0])


def _round(one: Callable[[], None], runs: int, threads: int) -> dict[str, float]:
    from django.db import connections

    per = runs // threads

    def work() -> None:
        for _ in range(per):
            one()
        connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    before = _commits()
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures = {"runs_per_s": per * threads / wall, "cpu_ms_per_run": cpu / (per * threads) * 1e3}
    if before is not None:
        time.sleep(0.6)  # the statistics collector reports commits with a delay
        after = _commits()
        assert after is not None
        figures["commits_per_run"] = (after - before) / (per * threads)
    return figures


def measure(database_url: str | None, rounds: int, runs: int) -> dict[str, Any]:
    one = _setup(database_url)
    from django.conf import settings

    for _ in range(30):
        one()
    results: dict[str, Any] = {}
    for threads in (1, 8):
        taken: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for number in range(rounds):
            for grouped in (False, True) if number % 2 == 0 else (True, False):
                settings.C4C_GROUP_COMMIT = grouped
                taken[grouped].append(_round(one, runs // (3 if threads == 1 else 1), threads))
        for grouped, figures in taken.items():
            results[f"{threads} thread(s), group commit {'on' if grouped else 'off'}"] = {
                name: statistics.median(f[name] for f in figures) for name in figures[0]
            }
    results["load_average"] = os.getloadavg()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.group_commit", description=__doc__)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args(argv)
    results = measure(args.database_url, args.rounds, args.runs)
    load = results.pop("load_average")
    for variant, figures in results.items():
        shown = ", ".join(f"{name} {value:.1f}" for name, value in figures.items())
        sys.stdout.write(f"{variant}: {shown}\n")
    sys.stdout.write(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
