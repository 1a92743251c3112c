"""Phase list_load: run latency while eight clients page through a large history.

Issue 11 measured `GET /workflow/executions?limit=200` at 17 MB, and eight clients looping on it
took simple runs from 9 ms to 442 ms. Here a history is filled (bench.fill) and simple-math runs
are sent one after another, timed, first alone and then while eight clients page through the
whole history 200 at a time with its cursors (starting over at the end), in two shapes side by
side: `rows`, the default page now (fields=list), and `full` (fields=full), the shape every page
had before. Both are read the way the server reads lists now: C4C_LIST_READS threads (1) that
rest as long as they computed, pages cut at C4C_MAX_RESPONSE_BYTES.

For each: the runs' p50/p99 and the list's p50/p99, bytes per page and pages read.
"""

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.client import execute_problem, request, session
from bench.history import grow, real_execution
from bench.server import Server, start_server
from bench.stats import latency_summary
from bench.throughput import execute_body

CLIENTS = 8
PAGE = 200
NEXT_CURSOR = b'"nextCursor":"'


def _next_cursor(body: bytes) -> str | None:
    """The page's nextCursor, found without decoding megabytes of JSON on the load's side."""
    at = body.rfind(NEXT_CURSOR)
    if at < 0:
        return None
    start = at + len(NEXT_CURSOR)
    return body[start : body.index(b'"', start)].decode()


async def _runs(base_url: str, seconds: float, most: int) -> dict[str, Any]:
    """Simple-math runs one after another for `seconds` (at most `most`): their latencies."""
    latencies: list[float] = []
    failed = 0
    payload = execute_body(wait=True)
    async with session(base_url, connections=1) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and len(latencies) < most:
            reply = await request(client, "POST", "/workflow/execute", payload)
            problem, _ = execute_problem(reply, wait=True)
            if problem:
                failed += 1
            else:
                latencies.append(reply.elapsed_ms)
    return {"latency": latency_summary(latencies), "failed": failed}


async def _page_through(
    client: Any, query: str, stop: asyncio.Event, latencies: list[float], sizes: list[int]
) -> None:
    cursor: str | None = None
    while not stop.is_set():
        path = f"/workflow/executions?limit={PAGE}{query}"
        if cursor:
            path += f"&cursor={cursor}"
        reply = await request(client, "GET", path)
        if reply.status != 200:
            raise RuntimeError(f"GET {path} answered {reply.status or reply.error}")
        latencies.append(reply.elapsed_ms)
        sizes.append(len(reply.body))
        cursor = _next_cursor(reply.body)


async def _under_load(base_url: str, query: str, seconds: float, most: int) -> dict[str, Any]:
    stop = asyncio.Event()
    latencies: list[float] = []
    sizes: list[int] = []
    async with session(base_url, connections=CLIENTS, timeout_s=300) as readers:
        tasks = [
            asyncio.create_task(_page_through(readers, query, stop, latencies, sizes))
            for _ in range(CLIENTS)
        ]
        await asyncio.sleep(1.0)  # every reader has a page in flight
        runs = await _runs(base_url, seconds, most)
        stop.set()
        await asyncio.gather(*tasks)
    return {
        "runs": runs,
        "list": latency_summary(latencies),
        "pages_read": len(sizes),
        "page_bytes_median": sorted(sizes)[len(sizes) // 2] if sizes else None,
    }


def _measure(server: Server, shapes: dict[str, str], seconds: float, most: int) -> dict[str, Any]:
    return {
        name: asyncio.run(_under_load(server.base_url, query, seconds, most))
        for name, query in shapes.items()
    }


def run(workdir: Path, *, history: int, seconds: float, most: int = 5_000) -> dict[str, Any]:
    """The phase: fill `history` executions, then time runs alone and under each shape."""
    results: dict[str, Any] = {"history": history, "clients": CLIENTS, "page_limit": PAGE}
    workdir.mkdir(parents=True, exist_ok=True)
    server = start_server(workdir)
    try:
        template = asyncio.run(real_execution(server.base_url))
        results["growth"] = grow(server, template, history)
        results["alone"] = asyncio.run(_runs(server.base_url, seconds, most))
        results["shapes"] = _measure(server, {"rows": "", "full": "&fields=full"}, seconds, most)
    finally:
        server.stop()
    return results


def summary_rows(data: dict[str, Any]) -> list[tuple[str, str | int | None, str]]:
    """(figure, value, unit) for the report: runs alone and under each shape, and the list."""
    rows: list[tuple[str, str | int | None, str]] = [
        ("runs alone: p50 / p99", _pair(data["alone"]["latency"]), "ms"),
    ]
    for name, shape in data["shapes"].items():
        label = f"{CLIENTS} clients paging ({name})"
        rows.append((f"runs while {label}: p50 / p99", _pair(shape["runs"]["latency"]), "ms"))
        rows.append((f"list page while {label}: p50 / p99", _pair(shape["list"]), "ms"))
        rows.append((f"list page ({name}): bytes", shape["page_bytes_median"], "B"))
    return rows


def _pair(latency: dict[str, Any]) -> str:
    return f"{latency.get('p50_ms')} / {latency.get('p99_ms')}"
