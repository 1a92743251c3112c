"""Phase waits: many sleeping runs held by one server, how late they wake, and a signal's delay.

Issue 13 asks that a sleeping or waiting run hold no thread and wake within a second of its due
time. One real server (`c4c serve` as one daphne process, the embedded SQLite default, a fresh
database) is given:

- `warm_up` sleeping runs first: the process's threads exist before the figures are read, and
  the rate these park at sets how far ahead the due times below must be.
- `runs` runs of a one-node workflow, a sleep node `{"until": "{{input.until}}"}`, started over
  HTTP (`POST /workflow/execute`, async) by eight clients; the due times are spread evenly over
  `spread_s`, after a lead long enough for every run to have parked first. The server's threads
  (/proc/<pid>/status Threads) and RSS are read before the first run and once all are parked,
  and its CPU over a few seconds of holding them. When they have woken, each run's delay is its
  sleep node's completion (`ended_at`) minus its due time (`wake_at`), both as the server stored
  them: p50 / p95 / p99 / max, and per second of the spread.
- the same again with every due time at one instant (`burst` runs): how long the last one waits
  while the sweep and the pool drain them.
- `signals` runs waiting on an approval (`wait` node, signal `approval`), then one
  `POST /workflow/executions/<id>/signals/approval` each, paced at `signal_rate` per second:
  the delay is the wait node's completion minus the moment the POST was sent (same clock).

`python -m bench.waits` serves a fresh database, prints the figures and writes them all to
bench/results/waits-<timestamp>.json; `--quick` is a smoke run, `--profile DIR` samples the
server with py-spy while the runs wake.
"""

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

from bench import machine
from bench.client import request, session
from bench.profile import Profiler, summarize
from bench.server import REPO_ROOT, Server, start_server
from bench.stats import latency_summary

RESULTS_DIR = REPO_ROOT / "bench" / "results"
CLIENTS = 8
BUSY_RETRY_S = 0.05  # after a 503: the pool's queue (C4C_MAX_QUEUED) is full for the moment
SLEEP_NODE = "nap"
WAIT_NODE = "approve"


@dataclass(frozen=True)
class Settings:
    runs: int
    spread_s: float
    burst: int
    signals: int
    signal_rate_per_s: float
    # Before the first due time: this, the hold sample and twice what parking them all takes.
    min_lead_s: float
    # How long the server's CPU is read while it holds every run (none due yet).
    hold_sample_s: float
    warm_up: int


# Due at 50 a second: within what one process takes up (BENCHMARKS.md, "Waiting runs"); 10,000
# over 20 s (500 a second) measures the backlog instead: `--spread 20 --burst 10000`.
FULL = Settings(
    runs=10_000,
    spread_s=200.0,
    burst=1_000,
    signals=300,
    signal_rate_per_s=20.0,
    min_lead_s=20.0,
    hold_sample_s=5.0,
    warm_up=500,
)
QUICK = Settings(
    runs=100,
    spread_s=2.0,
    burst=50,
    signals=20,
    signal_rate_per_s=20.0,
    min_lead_s=3.0,
    hold_sample_s=1.0,
    warm_up=10,
)


def sleep_workflow() -> dict[str, Any]:
    return {
        "id": "bench-sleep",
        "name": "Bench sleep",
        "startNode": SLEEP_NODE,
        "nodes": [{"id": SLEEP_NODE, "type": "sleep", "config": {"until": "{{input.until}}"}}],
    }


def approval_workflow() -> dict[str, Any]:
    return {
        "id": "bench-approval",
        "name": "Bench approval",
        "startNode": WAIT_NODE,
        "nodes": [
            {"id": WAIT_NODE, "type": "wait", "config": {"signal": "approval", "approval": True}}
        ],
    }


def threads(server: Server) -> int | None:
    """The server process's thread count, from /proc/<pid>/status."""
    try:
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _footprint(server: Server) -> dict[str, Any]:
    return {"threads": threads(server), **server.memory_mib()}


async def _start_all(
    base_url: str, workflow: dict[str, Any], runs: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """Start every (execution id, input) async with CLIENTS clients; a 503 is retried."""
    queue = list(reversed(runs))
    statuses: Counter[str] = Counter()
    busy = 0

    async def client_loop(client: Any) -> None:
        nonlocal busy
        while queue:
            execution_id, run_input = queue.pop()
            body = {
                "workflow": workflow,
                "input": run_input,
                "executionId": execution_id,
                "async": True,
            }
            payload = json.dumps(body).encode()
            while True:
                reply = await request(client, "POST", "/workflow/execute", payload)
                if reply.status != 503:
                    break
                busy += 1
                await asyncio.sleep(BUSY_RETRY_S)
            statuses[str(reply.status or reply.error)] += 1

    began = time.monotonic()
    async with session(base_url, connections=CLIENTS, timeout_s=120) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(CLIENTS)))
    seconds = time.monotonic() - began
    return {
        "posted": len(runs),
        "seconds": round(seconds, 2),
        "per_s": round(len(runs) / seconds, 1) if seconds else None,
        "retried_503": busy,
        "statuses": dict(statuses),
    }


def _count(server: Server, prefix: str, status: str) -> int:
    with server.db_connect() as db:
        (count,) = db.execute(
            "SELECT count(*) FROM executions_execution WHERE execution_id LIKE ? AND status = ?",
            (f"{prefix}%", status),
        ).fetchone()
    return int(count)


def _until_count(server: Server, prefix: str, status: str, count: int, timeout_s: float) -> float:
    """Wait until `count` runs of the batch are `status`; the seconds it took."""
    began = time.monotonic()
    while _count(server, prefix, status) < count:
        if time.monotonic() - began > timeout_s:
            raise RuntimeError(
                f"{prefix}: {_count(server, prefix, status)} of {count} {status} "
                f"after {timeout_s:.0f} s"
            )
        time.sleep(0.2)
    return time.monotonic() - began


def _stored(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _node_rows(server: Server, prefix: str, node_id: str) -> list[tuple[str, str, str]]:
    """(execution id, wake_at, ended_at) of the batch's completed `node_id` runs."""
    with server.db_connect() as db:
        rows: list[tuple[str, str, str]] = db.execute(
            "SELECT e.execution_id, n.wake_at, n.ended_at FROM executions_nodeexecution n"
            " JOIN executions_execution e ON n.execution_id = e.id"
            " WHERE e.execution_id LIKE ? AND n.node_id = ? AND n.status = 'completed'",
            (f"{prefix}%", node_id),
        ).fetchall()
    return rows


def _wake_delays(server: Server, prefix: str) -> list[tuple[datetime, float]]:
    """(due time, ms from it to the sleep node's completion) of each run of the batch."""
    return [
        (_stored(wake), (_stored(ended) - _stored(wake)).total_seconds() * 1000)
        for _, wake, ended in _node_rows(server, prefix, SLEEP_NODE)
    ]


def per_second(delays: list[tuple[datetime, float]]) -> list[list[float]]:
    """[second after the first due time, runs due in it, their median and worst delay (ms)]:
    where in the spread a late wake-up happened."""
    if not delays:
        return []
    first = min(due for due, _ in delays)
    buckets: dict[int, list[float]] = {}
    for due, delay in delays:
        buckets.setdefault(int((due - first).total_seconds()), []).append(delay)
    return [
        [second, len(values), round(median(values), 1), round(max(values), 1)]
        for second, values in sorted(buckets.items())
    ]


def _sleepers(
    server: Server,
    prefix: str,
    due_offsets_s: list[float],
    settings: Settings,
    parked_per_s: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Start a run per offset, due that many seconds after a lead long enough for all of them
    to park first; hold them, let them wake; the figures."""
    count = len(due_offsets_s)
    lead_s = settings.min_lead_s + 2 * count / parked_per_s + settings.hold_sample_s
    first = datetime.now(UTC) + timedelta(seconds=lead_s)
    due = [first + timedelta(seconds=offset) for offset in due_offsets_s]
    runs = [(f"{prefix}{i}", {"until": due[i].isoformat()}) for i in range(count)]
    before = _footprint(server)
    start = asyncio.run(_start_all(server.base_url, sleep_workflow(), runs))
    parked_s = _until_count(server, prefix, "waiting", count, timeout_s=lead_s)
    cpu_before = server.cpu_seconds()
    time.sleep(settings.hold_sample_s)
    holding = _footprint(server)
    held_cpu = server.cpu_seconds() - cpu_before
    parked_in_time = datetime.now(UTC) < first
    last_due = max(due)
    result: dict[str, Any] = {}
    if profile is not None:
        time.sleep(max(0.0, (first - datetime.now(UTC)).total_seconds() - 0.5))
        with Profiler(server.pid, profile):
            result["woken_s"] = _until_count(server, prefix, "completed", count, 600)
        result["profile"] = {"file": str(profile), **summarize(profile)}
    else:
        _until_count(
            server,
            prefix,
            "completed",
            count,
            timeout_s=(last_due - datetime.now(UTC)).total_seconds() + 600,
        )
    delays = _wake_delays(server, prefix)
    return {
        "runs": count,
        "start": start,
        "parked_after_posts_s": round(parked_s, 2),
        "parked_per_s": round(count / (start["seconds"] + parked_s), 1),
        "all_parked_before_first_due": parked_in_time,
        "due_spread_s": round((last_due - first).total_seconds(), 2),
        "footprint_before": before,
        "footprint_holding": holding,
        "server_cpu_while_holding_cores": round(held_cpu / settings.hold_sample_s, 4),
        "footprint_after_wake": _footprint(server),
        "wake_delay": delay_summary([delay for _, delay in delays]),
        "wake_delay_per_second": per_second(delays),
        **result,
    }


def delay_summary(delays_ms: list[float]) -> dict[str, Any]:
    summary = latency_summary(delays_ms)
    ordered = sorted(delays_ms)
    if ordered:
        summary["p95_ms"] = round(ordered[round((len(ordered) - 1) * 0.95)], 3)
        summary["over_1s"] = sum(1 for d in ordered if d > 1000)
    return summary


async def _send_signals(
    base_url: str, execution_ids: list[str], rate_per_s: float
) -> dict[str, Any]:
    sent: dict[str, float] = {}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []

    async def send(client: Any, execution_id: str) -> None:
        sent[execution_id] = time.time()
        body = json.dumps({"approved": True, "by": "bench"}).encode()
        path = f"/workflow/executions/{execution_id}/signals/approval"
        reply = await request(client, "POST", path, body)
        statuses[str(reply.status or reply.error)] += 1
        latencies.append(reply.elapsed_ms)

    async with session(base_url, connections=CLIENTS * 4, timeout_s=60) as client:
        tasks = []
        began = time.monotonic()
        for i, execution_id in enumerate(execution_ids):
            await asyncio.sleep(max(0.0, began + i / rate_per_s - time.monotonic()))
            tasks.append(asyncio.create_task(send(client, execution_id)))
        await asyncio.gather(*tasks)
    return {"sent": sent, "statuses": dict(statuses), "post": latency_summary(latencies)}


def signals(server: Server, count: int, rate_per_s: float) -> dict[str, Any]:
    prefix = "bench-signal-"
    ids = [f"{prefix}{i}" for i in range(count)]
    start = asyncio.run(_start_all(server.base_url, approval_workflow(), [(i, {}) for i in ids]))
    _until_count(server, prefix, "waiting", count, timeout_s=120)
    sending = asyncio.run(_send_signals(server.base_url, ids, rate_per_s))
    _until_count(server, prefix, "completed", count, timeout_s=120)
    sent = sending.pop("sent")
    delays = [
        (_stored(ended).timestamp() - sent[execution_id]) * 1000
        for execution_id, _, ended in _node_rows(server, prefix, WAIT_NODE)
    ]
    return {
        "runs": count,
        "rate_per_s": rate_per_s,
        "start": start,
        **sending,
        "delay": delay_summary(delays),
    }


def run(workdir: Path, settings: Settings, profile_dir: Path | None = None) -> dict[str, Any]:
    """The phase on a server of its own: a warm-up, spread, burst, then signals."""
    workdir.mkdir(parents=True, exist_ok=True)
    # One serving process, whatever the core count: its threads and RSS are the figures.
    server = start_server(workdir)
    results: dict[str, Any] = {"settings": asdict(settings), "footprint_idle": _footprint(server)}
    try:
        # The pool and heartbeat threads exist before the big batches' `before` is read, and
        # the rate they park at here sets how far ahead the due times must be.
        warm = _sleepers(server, "bench-warm-", [0.0] * settings.warm_up, settings, 50.0)
        rate = warm["parked_per_s"]
        results["warm_up"] = warm
        step = settings.spread_s / max(settings.runs - 1, 1)
        results["spread"] = _sleepers(
            server,
            "bench-spread-",
            [i * step for i in range(settings.runs)],
            settings,
            rate,
            profile_dir / "waits-spread.collapsed" if profile_dir else None,
        )
        results["burst"] = _sleepers(
            server,
            "bench-burst-",
            [0.0] * settings.burst,
            settings,
            rate,
            profile_dir / "waits-burst.collapsed" if profile_dir else None,
        )
        results["signals"] = signals(server, settings.signals, settings.signal_rate_per_s)
    finally:
        server.stop()
        results["log"] = {
            "database_locked": server.log_count("database is locked"),
            "tracebacks": server.log_count("Traceback (most recent call last)"),
        }
    return results


def summary_rows(data: dict[str, Any]) -> list[tuple[str, str | int | float | None, str]]:
    """(figure, value, unit) for the report."""
    rows: list[tuple[str, str | int | float | None, str]] = []
    for case in ("spread", "burst"):
        if case not in data:
            continue
        figures = data[case]
        label = f"{figures['runs']:,} sleeping runs due over {figures['due_spread_s']:g} s"
        before, holding = figures["footprint_before"], figures["footprint_holding"]
        delay = figures["wake_delay"]
        rows += [
            (f"{label}: started over HTTP and parked", figures["parked_per_s"], "runs/s"),
            (
                f"{label}: server threads before / holding",
                f"{before['threads']} / {holding['threads']}",
                "",
            ),
            (
                f"{label}: server RSS before / holding",
                f"{before['rss_mib']} / {holding['rss_mib']}",
                "MiB",
            ),
            (
                f"{label}: server CPU while holding",
                figures["server_cpu_while_holding_cores"],
                "cores",
            ),
            (
                f"{label}: wake delay p50 / p95 / p99 / max",
                " / ".join(str(delay.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
                "ms",
            ),
        ]
    if "signals" in data:
        figures = data["signals"]
        delay = figures["delay"]
        rows.append(
            (
                f"{figures['runs']} approvals at {figures['rate_per_s']:g}/s: "
                "signal -> node completed p50 / p99 / max",
                " / ".join(str(delay.get(k)) for k in ("p50_ms", "p99_ms", "max_ms")),
                "ms",
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.waits", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small numbers (a smoke run)")
    parser.add_argument("--runs", type=int, help="sleeping runs due over --spread seconds")
    parser.add_argument("--spread", type=float, help="seconds the due times are spread over")
    parser.add_argument("--burst", type=int, help="sleeping runs all due at one instant")
    parser.add_argument("--signals", type=int, help="approval runs sent a signal each")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--profile", type=Path, help="py-spy the wake-ups into this directory")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    chosen = {
        "runs": args.runs,
        "spread_s": args.spread,
        "burst": args.burst,
        "signals": args.signals,
    }
    settings = Settings(**{**asdict(settings), **{k: v for k, v in chosen.items() if v}})
    workdir = Path(tempfile.mkdtemp(prefix="c4c-bench-waits-"))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    described = machine.describe()
    try:
        data = {
            "started_at": started_at,
            "machine": described,
            **run(workdir, settings, args.profile),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    data["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    for metric, value, unit in summary_rows(data):
        print(f"{metric}: {value} {unit}".rstrip())
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"waits-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
