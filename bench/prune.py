"""How long one prune batch holds SQLite's write lock, by batch size: what C4C_PRUNE_BATCH is.

`python -m bench.prune [--rows 100000] [--sizes 50,100,200,500,1000]` migrates a scratch SQLite
database, records one real simple-math run through the runtime, clones it `--rows` times
(bench.fill: its node and span rows too), then deletes batches of each size through
executions.store.executions_delete (one transaction each, as pruning does) and prints the median
and worst time per batch. A writer (a run recording a node) waits at most one batch, so the
chosen size keeps the worst well under 100 ms on the slowest box it runs on.
"""

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path


def measure(rows: int, sizes: Sequence[int], batches: int) -> list[dict[str, float]]:
    from django.core.management import call_command

    from bench.fill import fill, load_template
    from executions import runtime, store
    from executions.models import Execution
    from workflows.library import workflow_library

    call_command("migrate", interactive=False, verbosity=0)
    definition = workflow_library().get("simple-math-workflow")
    assert definition is not None
    template_id = str(runtime.execute(definition=definition, input={}).body["executionId"])
    database = Path(os.environ["DATABASE_URL"].removeprefix("sqlite:///"))
    with sqlite3.connect(database) as connection:
        fill(connection, load_template(connection, template_id), rows)
    # The fill's pages out of the WAL first, or the first batches pay for checkpointing them.
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    results = []
    for size in sizes:
        timings = []
        for _ in range(batches):
            pks = list(
                Execution.objects.order_by("started_at", "id").values_list("pk", flat=True)[:size]
            )
            started = time.perf_counter()
            store.executions_delete(pks=pks)
            timings.append((time.perf_counter() - started) * 1000)
        results.append(
            {
                "batch": size,
                "median_ms": round(statistics.median(timings), 1),
                "worst_ms": round(max(timings), 1),
                "per_row_ms": round(statistics.median(timings) / size, 3),
            }
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prune", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="executions in the history")
    parser.add_argument("--sizes", default="50,100,200,500,1000", help="batch sizes to time")
    parser.add_argument("--batches", type=int, default=10, help="batches timed per size")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch}/prune.sqlite3"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")
        import django

        django.setup()
        for row in measure(args.rows, sizes, args.batches):
            print("  ".join(f"{name}={value}" for name, value in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
