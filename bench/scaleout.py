"""Phase scaleout: PostgreSQL and Celery on Redis, with 1 and 2 worker processes (issue 14).

`python -m bench --only scaleout` (or `python -m bench.scaleout [--quick] [--runs N]`). On a
database of its own and a queue of its own: N simple-math runs are queued the way the API's
async execute queues them (executions.dispatch.start_in_background, in a process with
C4C_DISPATCH=celery), then one Celery node starts with `--concurrency` 1 or 2 (prefork: that
many pool processes) and the finished runs are counted until all have ended. Reported: exec/s
over the whole drain and between 10 % and 90 % done (the steady state), and PostgreSQL's
commits per execution (pg_stat_database.xact_commit of the database, queuing and running
apart; the poll's own commits taken out), and PostgreSQL's commit rate on this box (single-row
INSERT commits from 1 and 8 connections), which together put the database's limit on paper.
"""

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from bench.server import REPO_ROOT

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
BROKER_URL = "redis://127.0.0.1:6379/12"
EVENTS_REDIS_URL = "redis://127.0.0.1:6379/13"
CELERY = Path(sys.executable).with_name("celery")
CONCURRENCY = (1, 2)
FINISHED_SQL = "SELECT count(*) FROM executions_execution WHERE status <> 'running'"


def _reachable(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _admin(sql: str) -> None:
    import psycopg

    with closing(psycopg.connect(f"{POSTGRES}/postgres", autocommit=True)) as conn:
        conn.execute(sql)


def _commits(database: str) -> int:
    """The database's committed transactions so far, as the statistics collector has them."""
    import psycopg

    with closing(psycopg.connect(f"{POSTGRES}/postgres", autocommit=True)) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def _settled_commits(database: str) -> int:
    # Backends report their counts at most once a second while busy (and when they exit).
    time.sleep(1.5)
    return _commits(database)


def _env(database: str, queue: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"{POSTGRES}/{database}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_SETTINGS_MODULE": "c4c_site.settings",
        "C4C_DISPATCH": "celery",
        "CELERY_BROKER_URL": BROKER_URL,
        "C4C_CELERY_QUEUE": queue,
        "C4C_EVENTS_REDIS_URL": EVENTS_REDIS_URL,
        "C4C_SERVER_ID": "bench-scaleout",
        "LOG_LEVEL": "WARNING",
    }


def commit_rate(database: str, seconds: float, connections: int) -> float:
    """Single-row INSERT commits per second from `connections` connections at once."""
    import psycopg

    url = f"{POSTGRES}/{database}"
    with closing(psycopg.connect(url, autocommit=True)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_loop (x integer)")
    counts = [0] * connections
    gate = threading.Barrier(connections + 1)

    def loop(index: int) -> None:
        with closing(psycopg.connect(url, autocommit=True)) as conn:
            gate.wait()
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                conn.execute("INSERT INTO bench_commit_loop VALUES (1)")
                counts[index] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return round(sum(counts) / (time.perf_counter() - started), 1)


def _enqueue(env: dict[str, str], runs: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.scaleout", "--enqueue", str(runs)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"queuing runs failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _drain(
    database: str, env: dict[str, str], runs: int, concurrency: int, log: Path
) -> dict[str, Any]:
    """Start a node with `concurrency` pool processes; time until every queued run ended."""
    import psycopg

    queue = env["C4C_CELERY_QUEUE"]
    node = f"{queue}-{concurrency}@bench"
    command = [str(CELERY), "-A", "c4c_site", "worker", "--hostname", node, "--concurrency"]
    command += [str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    command += ["--without-heartbeat"]
    before = _commits(database)
    polls = 0
    marks: dict[str, float] = {}
    with log.open("wb") as out:
        worker = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        with closing(psycopg.connect(f"{POSTGRES}/{database}", autocommit=True)) as conn:
            deadline = time.monotonic() + 60 + runs
            finished = 0
            started = time.perf_counter()
            while finished < runs and time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
                row = conn.execute(FINISHED_SQL).fetchone()
                polls += 1
                finished = int(row[0]) if row else 0
                now = time.perf_counter()
                if finished and "first" not in marks:
                    marks["first"] = now
                for share in (0.1, 0.9):
                    if finished >= runs * share and str(share) not in marks:
                        marks[str(share)] = now
                time.sleep(0.02)
            marks["last"] = time.perf_counter()
            failed = conn.execute(
                "SELECT count(*) FROM executions_execution WHERE status <> 'completed'"
            ).fetchone()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    ran = _settled_commits(database) - before - polls - 1  # the failed-count read
    steady = marks.get("0.9", 0) - marks.get("0.1", 0)
    whole = marks["last"] - marks.get("first", started)
    return {
        "concurrency": concurrency,
        "finished": finished,
        "not_completed": int(failed[0]) if failed else None,
        "exec_per_s": round(finished / whole, 1) if whole > 0 else None,
        "exec_per_s_10_90": round(0.8 * runs / steady, 1) if steady > 0 else None,
        "first_finished_after_s": round(marks.get("first", started) - started, 2),
        "commits_running_per_execution": round(ran / runs, 2),
    }


def run(workdir: Path, *, runs: int, commit_seconds: float = 3.0) -> dict[str, Any]:
    """The phase: for each concurrency, a fresh database of queued runs drained by one node."""
    for port, name in ((5432, "PostgreSQL"), (6379, "Redis")):
        if not _reachable(port):
            return {"skipped": f"{name} is not reachable on 127.0.0.1:{port}"}
    workdir.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    result: dict[str, Any] = {"runs": runs, "broker": BROKER_URL, "workers": {}}
    for concurrency in CONCURRENCY:
        database = f"c4c_bench_scale_{tag}_{concurrency}"
        queue = f"c4c-bench-{tag}-{concurrency}"
        env = _env(database, queue)
        _admin(f'CREATE DATABASE "{database}"')
        try:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                cwd=REPO_ROOT,
                env=env,
                check=True,
                timeout=600,
            )
            before = _settled_commits(database)
            queued = _enqueue(env, runs)
            queuing = _settled_commits(database) - before
            drained = _drain(
                database, env, runs, concurrency, workdir / f"worker-{concurrency}.log"
            )
            drained["queued_per_s"] = queued["queued_per_s"]
            drained["commits_queuing_per_execution"] = round(queuing / runs, 2)
            drained["commits_per_execution"] = round(
                drained["commits_running_per_execution"] + queuing / runs, 2
            )
            if concurrency == CONCURRENCY[-1]:
                result["commit_rate"] = {
                    "connections_1": commit_rate(database, commit_seconds, 1),
                    "connections_8": commit_rate(database, commit_seconds, 8),
                }
            result["workers"][str(concurrency)] = drained
        finally:
            _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            _delete_queue(queue)
    result["on_paper"] = on_paper(result)
    return result


def _delete_queue(queue: str) -> None:
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)


def on_paper(result: dict[str, Any]) -> dict[str, Any]:
    """Commits/s the database would need for 10, 100 and 1,000 worker processes at the measured
    per-process rate, against the commit rate measured: where PostgreSQL becomes the limit.

    Every committed transaction counts here, read-only ones too (they write no commit record
    and wait for no fsync), so this limit is pessimistic: BENCHMARKS.md counts the writes."""
    one = result["workers"].get("1", {})
    rate = result.get("commit_rate", {}).get("connections_8")
    per_process, commits = one.get("exec_per_s_10_90"), one.get("commits_per_execution")
    if not (rate and per_process and commits):
        return {}
    return {
        "exec_per_s_per_process": per_process,
        "commits_per_execution": commits,
        "commit_rate_per_s": rate,
        "processes_at_the_limit": round(rate / (per_process * commits), 1),
        "needed_commits_per_s": {
            str(n): round(n * per_process * commits) for n in (10, 100, 1_000)
        },
    }


def summary_rows(data: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(figure, value, unit) for the suite's report."""
    if "skipped" in data:
        return [("scale-out (PostgreSQL + Celery on Redis)", f"skipped: {data['skipped']}", "")]
    rows: list[tuple[str, Any, str]] = []
    for concurrency, figures in data["workers"].items():
        label = f"scale-out, {concurrency} Celery worker process(es)"
        rows.append((f"{label}: exec/s (10-90 %)", figures["exec_per_s_10_90"], "exec/s"))
        rows.append((f"{label}: commits per execution", figures["commits_per_execution"], ""))
    rates = data.get("commit_rate", {})
    rows.append(("PostgreSQL commits/s, 1 connection", rates.get("connections_1"), "/s"))
    rows.append(("PostgreSQL commits/s, 8 connections", rates.get("connections_8"), "/s"))
    paper = data.get("on_paper") or {}
    rows.append(
        (
            "worker processes at PostgreSQL's commit rate (every transaction counted)",
            paper.get("processes_at_the_limit"),
            "",
        )
    )
    return rows


def _enqueue_here(runs: int) -> dict[str, Any]:
    """In a process with the scale-out environment: queue `runs` simple-math runs."""
    import django

    django.setup()
    from executions import dispatch
    from workflows.library import workflow_library

    definition = workflow_library().get("simple-math-workflow")
    assert definition is not None

    async def queue_all() -> None:
        for _ in range(runs):
            await dispatch.start_in_background(definition=definition, input={}, execution_id=None)

    started = time.perf_counter()
    asyncio.run(queue_all())
    return {"queued": runs, "queued_per_s": round(runs / (time.perf_counter() - started), 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="40 runs, short commit loops")
    parser.add_argument("--runs", type=int, help="runs queued per worker count (default 600)")
    parser.add_argument("--enqueue", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.enqueue:
        print(json.dumps(_enqueue_here(args.enqueue)))
        return 0
    import tempfile

    runs = args.runs or (40 if args.quick else 600)
    with tempfile.TemporaryDirectory(prefix="c4c-bench-scaleout-") as scratch:
        load = [round(x, 2) for x in os.getloadavg()]
        data = run(Path(scratch), runs=runs, commit_seconds=1.0 if args.quick else 3.0)
    data["load_average"] = {"start": load, "end": [round(x, 2) for x in os.getloadavg()]}
    for figure, value, unit in summary_rows(data):
        print(f"{figure:<55} {value} {unit}")
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
