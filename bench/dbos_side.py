# mypy: disable-error-code="untyped-decorator"
# (dbos lives only in its own venv, so mypy sees its decorators as Any.)
"""DBOS Transact's side of bench.dbos_compare: the same three figures, from DBOS's own venv.

Run by the Python of the venv bench.dbos_compare makes (dbos pinned there, never a project
dependency), so this file imports only the standard library and dbos. It takes the system
database URL and the loop sizes, runs simple-math (three steps: add, multiply, subtract)
sequentially and from N threads, and a 1,000-step workflow, and prints one JSON document.

On SQLite every connection gets the PRAGMAs our settings give theirs (WAL, synchronous=NORMAL):
DBOS sets neither by itself, and the comparison is of the runtimes, not of fsync settings.
"""

import argparse
import json
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa  # type: ignore[import-not-found, unused-ignore]
from dbos import DBOS, DBOSConfig  # type: ignore[import-not-found, unused-ignore]


def _wal_everywhere() -> None:
    @sa.event.listens_for(sa.engine.Engine, "connect")
    def _pragmas(dbapi_conn: Any, record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")


@DBOS.step()
def add(a: int, b: int) -> dict[str, int]:
    return {"result": a + b}


@DBOS.step()
def multiply(a: int, b: int) -> dict[str, int]:
    return {"result": a * b}


@DBOS.step()
def subtract(a: int, b: int) -> dict[str, int]:
    return {"result": a - b}


@DBOS.workflow()
def simple_math() -> dict[str, Any]:
    return {"add": add(10, 5), "multiply": multiply(3, 2), "subtract": subtract(20, 8)}


@DBOS.step()
def noop() -> dict[str, Any]:
    return {}


@DBOS.workflow()
def chain(steps: int) -> int:
    for _ in range(steps):
        noop()
    return steps


def _timed_loop(fn: Callable[[], Any], seconds: float, most: int) -> int:
    done = 0
    deadline = time.perf_counter() + seconds
    while done < most and time.perf_counter() < deadline:
        fn()
        done += 1
    return done


def sequential(seconds: float, most: int) -> dict[str, Any]:
    started = time.perf_counter()
    done = _timed_loop(simple_math, seconds, most)
    elapsed = time.perf_counter() - started
    return {"runs": done, "elapsed_s": round(elapsed, 3), "runs_per_s": round(done / elapsed, 1)}


def threaded(threads: int, seconds: float) -> dict[str, Any]:
    counts = [0] * threads
    gate = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        gate.wait()
        counts[index] = _timed_loop(simple_math, seconds, 1_000_000)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    done = sum(counts)
    return {
        "threads": threads,
        "runs": done,
        "elapsed_s": round(elapsed, 3),
        "runs_per_s": round(done / elapsed, 1),
    }


def per_step(steps: int, repeats: int) -> dict[str, Any]:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        chain(steps)
        timings.append((time.perf_counter() - started) * 1000 / steps)
    return {
        "steps": steps,
        "ms_per_step_runs": [round(t, 4) for t in timings],
        "ms_per_step": round(statistics.median(timings), 4),
    }


def _persisted() -> dict[str, int]:
    """Rows DBOS wrote, so a figure is known to be of persisted runs."""
    workflows = DBOS.list_workflows()
    return {"workflows": len(workflows)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--figures", default="sequential,threads,steps")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--most", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    _wal_everywhere()
    config: DBOSConfig = {
        "name": "c4c-bench",
        "system_database_url": args.database_url,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        figures = args.figures.split(",")
        for _ in range(args.warmup):
            simple_math()
        chain(10)
        result: dict[str, Any] = {"side": "dbos", "version": _version()}
        if "sequential" in figures:
            result["sequential"] = sequential(args.seconds, args.most)
        if "threads" in figures:
            result["threads"] = threaded(args.threads, args.seconds)
        if "steps" in figures:
            result["steps"] = per_step(args.steps, args.repeats)
        result["persisted"] = _persisted()
    finally:
        DBOS.destroy()
    print(json.dumps(result))
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("dbos")


if __name__ == "__main__":
    sys.exit(main())
