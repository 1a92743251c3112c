"""Phase detail: one execution's page and stream while a 1,000-node run goes on, and after it.

A chain of 1,000 `custom.delay` nodes (5 ms each: ~6 s) is started async under a known id, its
stream opened first, as the detail page does. While it runs, the page (`GET /executions/<id>`)
and its catch-up partials (`GET /executions/<id>/live`, what the page fetches on a reconnect and
at the end) are read twice a second and timed; after it ends, both again with all 1,000 nodes and
their ~2,000 spans. On the stream, every event's delay is its arrival minus its own `timestamp`
(same machine, same clock), node events and span.ended apart; span.ended must carry every span
of the result exactly once.

`python -m bench.detail_live` serves a fresh database and prints the figures.
"""

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.client import request, session
from bench.nodes import linear_workflow
from bench.server import start_server
from bench.sse import open_recorders
from bench.stats import latency_summary

NODES = 1_000
DELAY_MS = 5
READ_EVERY_S = 0.5
NODE_EVENTS = ("node.started", "node.completed")


async def _read(client: Any, path: str, into: list[float], sizes: list[int]) -> None:
    reply = await request(client, "GET", path)
    if reply.status == 200:
        into.append(reply.elapsed_ms)
        sizes.append(len(reply.body))


async def run(
    base_url: str, host: str, port: int, *, nodes: int = NODES, reads: int = 5
) -> dict[str, Any]:
    execution_id = f"wf_exec_{int(time.time() * 1000)}_bench{nodes}"
    page, live = f"/executions/{execution_id}", f"/executions/{execution_id}/live"
    recorders, errors = await open_recorders(
        host, port, f"/workflow/executions/{execution_id}/stream", 1
    )
    if not recorders:
        return {"error": f"stream: {errors}"}
    stream = recorders[0]
    body = {
        "workflow": linear_workflow(nodes, "custom.delay", {"ms": DELAY_MS}),
        "input": {},
        "executionId": execution_id,
        "async": True,
    }
    timings: dict[str, list[float]] = {
        k: [] for k in ("running_page", "running_live", "page", "live")
    }
    sizes: dict[str, list[int]] = {k: [] for k in timings}
    async with session(base_url, connections=2, timeout_s=300) as client:
        started = await request(client, "POST", "/workflow/execute", json.dumps(body).encode())
        if started.status != 202:
            stream.close()
            return {"error": f"execute answered {started.status}: {started.body[:300]!r}"}
        began = time.monotonic()
        scanned = 0
        while not _ended(stream, scanned):
            scanned = max(len(stream.chunks) - 1, 0)
            if time.monotonic() - began > 300:
                stream.close()
                return {"error": "the run did not end within 300 s"}
            await _read(client, page, timings["running_page"], sizes["running_page"])
            await _read(client, live, timings["running_live"], sizes["running_live"])
            await asyncio.sleep(READ_EVERY_S)
        run_s = time.monotonic() - began
        await asyncio.sleep(0.5)  # the rest of the stream (executions.update after the result)
        for _ in range(reads):
            await _read(client, page, timings["page"], sizes["page"])
            await _read(client, live, timings["live"], sizes["live"])
    stream.close()
    _, events = stream.parse()
    figures = {"nodes": nodes, "execution_id": execution_id, "run_s": round(run_s, 2)}
    return (
        figures
        | _figures(events)
        | {
            name: {**latency_summary(values), "bytes": max(sizes[name], default=0)}
            for name, values in timings.items()
        }
    )


def _ended(stream: Any, scanned: int) -> bool:
    """Whether workflow.result has begun to arrive (its name is in the chunk it starts in)."""
    return any(b"event: workflow.result" in data for _, data in stream.chunks[scanned:])


def _figures(events: list[Any]) -> dict[str, Any]:
    delays: dict[str, list[float]] = {"node": [], "span.ended": []}
    ended: Counter[str] = Counter()
    batches = 0
    stored: set[str] = set()
    for event in events:
        document = event.json()
        if not isinstance(document, dict):
            continue
        stamp = document.get("timestamp")
        if event.name in NODE_EVENTS and isinstance(stamp, int):
            delays["node"].append(event.recv_ms - stamp)
        elif event.name == "span.ended" and isinstance(stamp, int):
            delays["span.ended"].append(event.recv_ms - stamp)
            batches += 1
            ended.update(span["spanId"] for span in document["spans"])
        elif event.name == "workflow.result":
            stored = {span["spanId"] for span in document["result"]["spans"]}
    return {
        "node_event_delay": latency_summary(delays["node"]),
        "span_event_delay": latency_summary(delays["span.ended"]),
        "span_batches": batches,
        "spans": len(stored),
        "spans_missing": len(stored - set(ended)),
        "spans_twice": sum(1 for count in ended.values() if count > 1),
    }


def summary_rows(data: dict[str, Any]) -> list[tuple[str, str | int | float | None, str]]:
    """(figure, value, unit) for the report."""
    if "error" in data:
        return [("detail page: run open live", data["error"], "")]
    label = f"{data['nodes']:,}-node run open live ({data['run_s']} s)"
    return [
        (f"{label}: detail page while running p50 / p99", _pair(data["running_page"]), "ms"),
        (f"{label}: catch-up partials while running p50 / p99", _pair(data["running_live"]), "ms"),
        (f"{label}: node event delay p50 / p99", _pair(data["node_event_delay"]), "ms"),
        (f"{label}: span.ended delay p50 / p99", _pair(data["span_event_delay"]), "ms"),
        (f"{label}: span.ended batches / spans", f"{data['span_batches']} / {data['spans']}", ""),
        (
            f"{label}: spans missing / twice on the stream",
            f"{data['spans_missing']} / {data['spans_twice']}",
            "",
        ),
        (f"{label}: detail page once ended p50", data["page"].get("p50_ms"), "ms"),
        (f"{label}: detail page once ended: bytes", data["page"]["bytes"], "B"),
        (f"{label}: catch-up partials once ended p50", data["live"].get("p50_ms"), "ms"),
    ]


def _pair(latency: dict[str, Any]) -> str:
    return f"{latency.get('p50_ms')} / {latency.get('p99_ms')}"


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="c4c-bench-detail-"))
    server = start_server(workdir)
    try:
        data = asyncio.run(run(server.base_url, "127.0.0.1", server.port))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    for metric, value, unit in summary_rows(data):
        print(f"{metric}: {value} {unit}".rstrip())
    return 0 if "error" not in data else 1


if __name__ == "__main__":
    sys.exit(main())
