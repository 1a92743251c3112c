"""Phase 3: how late and how complete the list stream is with 1, 100 and 1,000 clients.

All clients connect to /workflow/executions-stream first; then executions are triggered at a
steady rate. For every event about a triggered execution, delay = arrival time at the client minus
the event's own `timestamp` (same machine, same clock). Every client should receive the same
events, so the union over clients is the expected set and anything a client lacks is a loss.
The phase reads the delta view (our dashboard's); `bytes_by_view` sets it beside c4c's view.

`python -m bench.live_events [--stored 1000]` serves a fresh database holding that many
executions and prints the list stream's bytes per execution in both views.
"""

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import history
from bench.client import execute_problem, request, session
from bench.server import start_server
from bench.sse import SseEvent, StreamRecorder, now_ms, open_recorders
from bench.stats import latency_summary
from bench.throughput import execute_body

LIST_STREAM = "/workflow/executions-stream"
# c4c's view (the default: every executions.update carries the newest page) and ours.
VIEWS = ("c4c", "delta")
TIMESTAMP_FIELDS = ("timestamp", "startTime")


def event_timestamp_ms(document: Any) -> float | None:
    if not isinstance(document, dict):
        return None
    for name in TIMESTAMP_FIELDS:
        value = document.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 1e12:
            return float(value)
    return None


def execution_ids_in(document: Any) -> set[str]:
    """The executions an event is about: its own executionId, or those of a list update."""
    if not isinstance(document, dict):
        return set()
    found = set()
    if isinstance(document.get("executionId"), str):
        found.add(document["executionId"])
    for key in ("executions", "execution"):
        items = document.get(key)
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, dict) and isinstance(item.get("executionId"), str):
                found.add(item["executionId"])
    return found


def analyse(
    streams: list[list[SseEvent]], triggered: set[str], wire_bytes: list[int], executions: int
) -> dict[str, Any]:
    """Delay, loss and volume figures from what every client received."""
    related_per_client: list[list[tuple[SseEvent, Any]]] = []
    for events in streams:
        related = []
        for event in events:
            document = event.json()
            if execution_ids_in(document) & triggered:
                related.append((event, document))
        related_per_client.append(related)
    expected = {(e.name, e.data) for related in related_per_client for e, _ in related}
    losses, delays = [], []
    duplicates: Counter[str] = Counter()
    types: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for related in related_per_client:
        keys = [(e.name, e.data) for e, _ in related]
        unique = set(keys)
        for (name, _), seen in Counter(keys).items():
            if seen > 1:
                duplicates[name] += seen - 1
        losses.append(len(expected - unique))
        for event, document in related:
            stamp = event_timestamp_ms(document)
            if stamp is not None:
                delays.append(event.recv_ms - stamp)
    for name, data in expected:
        types[name] += 1
        sizes[name] += len(data)
    bytes_per_execution = sorted(b / executions for b in wire_bytes) if executions else []
    return {
        "events_per_execution": round(len(expected) / executions, 2) if executions else None,
        "event_types": dict(types),
        "delay": latency_summary(delays),
        "events_lost": sum(losses),
        "clients_with_loss": sum(1 for lost in losses if lost),
        "duplicate_events": sum(duplicates.values()),
        "duplicate_event_types": dict(duplicates),
        "data_bytes_per_execution_by_type": {
            name: round(size / executions, 1) for name, size in sizes.items()
        }
        if executions
        else {},
        "bytes_per_execution": (
            round(bytes_per_execution[len(bytes_per_execution) // 2], 1)
            if bytes_per_execution
            else None
        ),
    }


async def run(
    base_url: str,
    port: int,
    *,
    clients: int,
    executions: int,
    rate_per_s: float,
    quiet_s: float = 1.0,
    tail_max_s: float = 30.0,
    view: str = "delta",
) -> dict[str, Any]:
    connect_started = time.perf_counter()
    path = f"{LIST_STREAM}?view={view}"
    recorders, connect_errors = await open_recorders("127.0.0.1", port, path, clients)
    connect_s = time.perf_counter() - connect_started
    try:
        await asyncio.sleep(0.5)
        first_trigger_ms = now_ms()
        triggered, post_ms, post_errors = await trigger(base_url, executions, rate_per_s)
        tail_s = await wait_quiet(recorders, quiet_s, tail_max_s)
    finally:
        for recorder in recorders:
            recorder.close()
    streams: list[list[SseEvent]] = []
    statuses: Counter[str] = Counter()
    for recorder in recorders:
        status, events = recorder.parse()
        statuses[str(status)] += 1
        streams.append(events)
    result = {
        "view": view,
        "clients": clients,
        "clients_connected": len(recorders),
        "connect_errors": len(connect_errors),
        "connect_error_kinds": dict(Counter(connect_errors).most_common(5)),
        "connect_s": round(connect_s, 3),
        "http_statuses": dict(statuses),
        "executions": len(triggered),
        "execute_errors": post_errors,
        "rate_per_s": rate_per_s,
        "post_latency": latency_summary(post_ms),
        "tail_s": tail_s,
        "streams_closed_by_server": sum(1 for r in recorders if r.lost is not None),
    }
    wire = [r.wire_bytes_since(first_trigger_ms) for r in recorders]
    result.update(analyse(streams, set(triggered), wire, len(triggered)))
    return result


async def trigger(
    base_url: str, executions: int, rate_per_s: float
) -> tuple[list[str], list[float], int]:
    """Start executions at a steady rate (each waits for its result, as a UI user would)."""
    payload = execute_body(wait=True)
    ids: list[str] = []
    latencies: list[float] = []
    errors = 0
    async with session(base_url, connections=1) as client:
        started = time.perf_counter()
        for i in range(executions):
            delay = started + i / rate_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            reply = await request(client, "POST", "/workflow/execute", payload)
            latencies.append(reply.elapsed_ms)
            problem, execution_id = execute_problem(reply, wait=True)
            if execution_id:
                ids.append(execution_id)
            if problem:
                errors += 1
    return ids, latencies, errors


async def wait_quiet(recorders: list[StreamRecorder], quiet_s: float, limit_s: float) -> float:
    """Keep reading until no client has received anything for `quiet_s` (or the limit)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        await asyncio.sleep(0.1)
        latest = max((r.last_recv_ms for r in recorders), default=0.0)
        if now_ms() - latest >= quiet_s * 1000:
            break
    return round(time.perf_counter() - started, 3)


async def bytes_by_view(
    base_url: str,
    port: int,
    *,
    executions: int,
    rate_per_s: float,
    quiet_s: float = 1.0,
    tail_max_s: float = 30.0,
) -> dict[str, Any]:
    """Bytes per execution on each view of the list stream: one client per view, the same runs.

    Wire bytes count everything a client received after the first trigger (HTTP chunking, frames,
    keep-alives); the largest update's row count shows the c4c view's page staying bounded.
    """
    recorders: dict[str, StreamRecorder] = {}
    try:
        for view in VIEWS:
            opened, errors = await open_recorders(
                "127.0.0.1", port, f"{LIST_STREAM}?view={view}", 1
            )
            if errors:
                raise RuntimeError(f"the {view} view did not open: {errors[0]}")
            recorders[view] = opened[0]
        await asyncio.sleep(0.5)
        first_trigger_ms = now_ms()
        triggered, _, post_errors = await trigger(base_url, executions, rate_per_s)
        await wait_quiet(list(recorders.values()), quiet_s, tail_max_s)
    finally:
        for recorder in recorders.values():
            recorder.close()
    views: dict[str, Any] = {}
    for view, recorder in recorders.items():
        _, events = recorder.parse()
        figures = analyse(
            [events], set(triggered), [recorder.wire_bytes_since(first_trigger_ms)], len(triggered)
        )
        rows = [
            len(document["executions"])
            for document in (e.json() for e in events if e.name == "executions.update")
            if isinstance(document, dict) and isinstance(document.get("executions"), list)
        ]
        views[view] = {
            "bytes_per_execution": figures["bytes_per_execution"],
            "events_per_execution": figures["events_per_execution"],
            "data_bytes_per_execution_by_type": figures["data_bytes_per_execution_by_type"],
            "rows_per_update_max": max(rows, default=0),
        }
    return {"executions": len(triggered), "execute_errors": post_errors, "views": views}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_events", description=__doc__)
    parser.add_argument("--stored", type=int, default=1_000, help="executions stored before")
    parser.add_argument("--executions", type=int, default=20, help="executions triggered")
    parser.add_argument("--rate", type=float, default=5.0, help="executions started per second")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="c4c-bench-views-"))
    server = start_server(workdir)
    try:
        template = asyncio.run(history.real_execution(server.base_url))
        growth = history.grow(server, template, args.stored)
        figures = asyncio.run(
            bytes_by_view(
                server.base_url, server.port, executions=args.executions, rate_per_s=args.rate
            )
        )
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"stored": growth["stored"], **figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
