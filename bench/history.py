"""Phase 4: reads with a large stored history (10k, 100k, 1M executions).

The history is filled with clones of a real simple-math execution written by the server itself
(see bench.fill), then the list (first page with stats), one execution by id, and the list page
are timed at each size.
"""

import random
import time
from typing import Any
from urllib.parse import quote

from bench.client import execute_problem, request, session
from bench.fill import fill, load_template
from bench.footprint import bytes_per_execution, db_snapshot
from bench.server import Server
from bench.stats import latency_summary
from bench.throughput import execute_body

READS = {
    "list": "/workflow/executions",
    "detail": "/workflow/executions/{id}",
    "page": "/executions",
}


async def real_execution(base_url: str) -> str:
    async with session(base_url, connections=1) as client:
        reply = await request(client, "POST", "/workflow/execute", execute_body(wait=True))
    problem, execution_id = execute_problem(reply, wait=True)
    if problem or not execution_id:
        raise RuntimeError(f"could not run the template execution: {problem}")
    return execution_id


def grow(server: Server, template_id: str, target: int) -> dict[str, Any]:
    """Fill the database up to `target` stored executions; report the fill rate and bytes."""
    before = db_snapshot(server)
    missing = max(0, target - before.executions)
    connection = server.db_connect()
    try:
        seconds = fill(connection, load_template(connection, template_id), missing)
    finally:
        connection.close()
    after = db_snapshot(server)
    return {
        "stored": after.executions,
        "inserted": missing,
        "fill_s": round(seconds, 1),
        "fill_per_s": round(missing / seconds) if seconds and missing else None,
        "db_bytes": after.bytes_on_disk,
        "db_bytes_per_execution": bytes_per_execution(before, after),
    }


async def time_reads(base_url: str, sample_ids: list[str], requests: int) -> dict[str, Any]:
    """p50/p99 of each read; a read that 404s (page not there yet) is reported as unavailable."""
    results: dict[str, Any] = {}
    async with session(base_url, connections=1) as client:
        for name, template in READS.items():
            latencies: list[float] = []
            statuses: dict[str, int] = {}
            sizes: list[int] = []
            deadline = time.perf_counter() + 60
            for i in range(requests):
                if time.perf_counter() > deadline:
                    break
                path = template.format(id=quote(sample_ids[i % len(sample_ids)], safe=""))
                reply = await request(client, "GET", path)
                key = str(reply.status or reply.error)
                statuses[key] = statuses.get(key, 0) + 1
                if reply.status == 200:
                    latencies.append(reply.elapsed_ms)
                    sizes.append(len(reply.body))
            results[name] = {
                "path": template,
                "statuses": statuses,
                "available": bool(latencies),
                "latency": latency_summary(latencies),
                "response_bytes": sizes[-1] if sizes else None,
            }
    return results


def sample_execution_ids(server: Server, count: int) -> list[str]:
    """Random stored executions (not just the newest, which the database has cached)."""
    connection = server.db_connect()
    try:
        (high,) = connection.execute("SELECT max(id) FROM executions_execution").fetchone()
        picks = [random.randint(1, high) for _ in range(count * 2)]
        marks = ",".join("?" for _ in picks)
        rows = connection.execute(
            f"SELECT execution_id FROM executions_execution WHERE id IN ({marks})", picks
        ).fetchall()
    finally:
        connection.close()
    return [row[0] for row in rows][:count]
