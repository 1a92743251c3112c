"""Phase 1: POST /workflow/execute for simple-math-workflow, one client after another and with
many concurrent keep-alive clients for a fixed time, waiting for the result or with "async"."""

import asyncio
import json
import time
from typing import Any

from bench.client import Tally, execute_problem, request, session
from bench.stats import latency_summary

WORKFLOW_ID = "simple-math-workflow"


def execute_body(*, wait: bool) -> bytes:
    body: dict[str, Any] = {"workflowId": WORKFLOW_ID, "input": {}}
    if not wait:
        body["async"] = True
    return json.dumps(body).encode()


async def load(
    base_url: str, *, clients: int, duration_s: float, max_requests: int, wait: bool
) -> dict[str, Any]:
    """`clients` workers each send one request after another until the time or count is up."""
    payload = execute_body(wait=wait)
    tally = Tally()
    issued = 0
    async with session(base_url, connections=clients) as client:
        baseline = await stats(client) if not wait else None
        deadline = time.perf_counter() + duration_s

        async def worker() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and issued < max_requests:
                issued += 1
                reply = await request(client, "POST", "/workflow/execute", payload)
                problem, execution_id = execute_problem(reply, wait=wait)
                tally.add(reply, problem, execution_id)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        result: dict[str, Any] = {
            "clients": clients,
            "wait": wait,
            "requests": len(tally.latencies_ms),
            "ok": tally.ok,
            "errors": sum(tally.errors.values()),
            "error_kinds": dict(tally.errors),
            "elapsed_s": round(elapsed, 3),
            "requests_per_s": round(tally.ok / elapsed, 1) if elapsed else None,
            "latency": latency_summary(tally.latencies_ms),
        }
        if wait:
            result["executions_per_s"] = result["requests_per_s"]
        else:
            drain_s = await drained(client, baseline, tally.ok, started + elapsed)
            result["drain_s"] = drain_s
            result["executions_per_s"] = (
                round(tally.ok / (elapsed + drain_s), 1) if drain_s is not None else None
            )
    result["last_execution_id"] = tally.execution_ids[-1] if tally.execution_ids else None
    return result


async def stats(client) -> dict[str, int]:
    reply = await request(client, "GET", "/workflow/executions")
    document = reply.json()
    if reply.status != 200 or not isinstance(document, dict):
        raise RuntimeError(f"GET /workflow/executions answered {reply.status}")
    counts: dict[str, int] = document["stats"]
    return counts


async def drained(
    client, baseline: dict[str, int] | None, accepted: int, load_end: float, *, limit_s: float = 120
) -> float | None:
    """Seconds after the load ended until every accepted execution finished (None: not in time).

    Async requests only queue work; the rate that counts is the rate at which runs are recorded
    as finished, so poll the stats until nothing is running and the total has caught up.
    """
    assert baseline is not None
    target_total = baseline["total"] + accepted
    while time.perf_counter() - load_end < limit_s:
        current = await stats(client)
        if current["running"] == 0 and current["total"] >= target_total:
            return round(time.perf_counter() - load_end, 3)
        await asyncio.sleep(0.05)
    return None


async def warm_up(base_url: str, count: int) -> None:
    async with session(base_url, connections=1) as client:
        payload = execute_body(wait=True)
        for _ in range(count):
            await request(client, "POST", "/workflow/execute", payload)
