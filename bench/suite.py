"""The phases, each a bounded function of a running server returning its runs and medians."""

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import history, live_events, nodes, throughput
from bench.footprint import bytes_per_execution, db_snapshot
from bench.profile import Profiler, summarize
from bench.server import Server
from bench.stats import median_field, median_of


@dataclass(frozen=True)
class Settings:
    runs: int
    duration_s: float
    sequential_max: int
    levels: tuple[int, ...]
    warmup: int
    chain_lengths: tuple[int, int]
    node_procedure: str
    node_config: dict[str, Any]
    event_clients: dict[int, int]
    event_rate_per_s: float
    history_sizes: tuple[int, ...]
    reads: int


FULL = Settings(
    runs=3,
    duration_s=5.0,
    sequential_max=300,
    levels=(1, 8, 32),
    warmup=100,
    chain_lengths=(1000, 10),
    node_procedure="custom.noop",
    node_config={},
    event_clients={1: 20, 100: 20, 1000: 10},
    event_rate_per_s=5.0,
    history_sizes=(10_000, 100_000, 1_000_000),
    reads=200,
)

QUICK = Settings(
    runs=1,
    duration_s=1.5,
    sequential_max=50,
    levels=(1, 8, 32),
    warmup=10,
    chain_lengths=(100, 10),
    node_procedure="custom.noop",
    node_config={},
    event_clients={1: 5, 20: 5},
    event_rate_per_s=5.0,
    history_sizes=(1_000, 5_000),
    reads=20,
)


def run_throughput(server: Server, settings: Settings, profile_dir: Path | None) -> dict[str, Any]:
    asyncio.run(throughput.warm_up(server.base_url, settings.warmup))
    before = db_snapshot(server)
    variants: dict[str, Any] = {}
    for wait in (True, False):
        for clients in settings.levels:
            runs = []
            for _ in range(settings.runs):
                max_requests = settings.sequential_max if clients == 1 else 1_000_000
                cpu_before, client_before = server.cpu_seconds(), time.process_time()
                run = asyncio.run(
                    throughput.load(
                        server.base_url,
                        clients=clients,
                        duration_s=settings.duration_s,
                        max_requests=max_requests,
                        wait=wait,
                    )
                )
                run.update(_cpu_figures(server.cpu_seconds() - cpu_before, run))
                run["client_cpu_s"] = round(time.process_time() - client_before, 3)
                runs.append(run)
            name = f"{'sync' if wait else 'async'}_c{clients}"
            variants[name] = {"runs": runs, "summary": _load_summary(runs)}
    after = db_snapshot(server)
    result: dict[str, Any] = {
        "variants": variants,
        "db_bytes_per_execution": bytes_per_execution(before, after),
        "executions_stored": after.executions,
    }
    if profile_dir is not None:
        out = profile_dir / "throughput-c8.collapsed"
        with Profiler(server.pid, out):
            profiled = asyncio.run(
                throughput.load(
                    server.base_url,
                    clients=8,
                    duration_s=max(settings.duration_s, 10.0),
                    max_requests=1_000_000,
                    wait=True,
                )
            )
        result["profile"] = {
            "file": str(out),
            "executions_per_s_while_profiled": profiled["executions_per_s"],
            **summarize(out),
        }
    return result


def _cpu_figures(cpu_s: float, run: dict[str, Any]) -> dict[str, float | None]:
    """Server CPU per recorded execution: the cost that caps throughput on a small box."""
    wall = run["elapsed_s"] + (run.get("drain_s") or 0)
    return {
        "server_cpu_s": round(cpu_s, 3),
        "server_cores_busy": round(cpu_s / wall, 2) if wall else None,
        "server_cpu_ms_per_execution": round(cpu_s * 1000 / run["ok"], 3) if run["ok"] else None,
    }


def _load_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    per_s = [r["executions_per_s"] for r in runs if r.get("executions_per_s") is not None]
    return {
        "executions_per_s": median_of(per_s),
        "executions_per_s_min": min(per_s) if per_s else None,
        "executions_per_s_max": max(per_s) if per_s else None,
        "requests_per_s": median_field(runs, "requests_per_s"),
        "p50_ms": median_field(runs, "latency", "p50_ms"),
        "p90_ms": median_field(runs, "latency", "p90_ms"),
        "p99_ms": median_field(runs, "latency", "p99_ms"),
        "server_cpu_ms_per_execution": median_field(runs, "server_cpu_ms_per_execution"),
        "server_cores_busy": median_field(runs, "server_cores_busy"),
        "client_cpu_s": median_field(runs, "client_cpu_s"),
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def run_nodes(server: Server, settings: Settings) -> dict[str, Any]:
    long_len, short_len = settings.chain_lengths
    long_runs: list[dict[str, Any]] = []
    short_runs: list[dict[str, Any]] = []
    for _ in range(settings.runs):
        for length, bucket in ((short_len, short_runs), (long_len, long_runs)):
            bucket.append(
                asyncio.run(
                    nodes.chain_run(
                        server.base_url, length, settings.node_procedure, settings.node_config
                    )
                )
            )
    return {
        "procedure": settings.node_procedure,
        "runs": {str(long_len): long_runs, str(short_len): short_runs},
        "summary": nodes.per_node_figures(
            [r for r in long_runs if "error" not in r], [r for r in short_runs if "error" not in r]
        ),
        "errors": [r["error"] for r in long_runs + short_runs if "error" in r],
    }


def run_events(server: Server, settings: Settings, profile_dir: Path | None) -> dict[str, Any]:
    levels: dict[str, Any] = {}
    for clients, executions in settings.event_clients.items():
        runs = []
        for run_index in range(settings.runs):
            profile_this = profile_dir is not None and run_index == 0 and clients >= 100
            out = (profile_dir or Path()) / f"events-c{clients}.collapsed"
            coroutine = live_events.run(
                server.base_url,
                server.port,
                clients=clients,
                executions=executions,
                rate_per_s=settings.event_rate_per_s,
            )
            if profile_this:
                with Profiler(server.pid, out):
                    run = asyncio.run(coroutine)
                run["profile"] = {"file": str(out), **summarize(out)}
            else:
                run = asyncio.run(coroutine)
            runs.append(run)
        levels[str(clients)] = {
            "runs": runs,
            "summary": {
                "delay_p50_ms": median_field(runs, "delay", "p50_ms"),
                "delay_p99_ms": median_field(runs, "delay", "p99_ms"),
                "events_lost": sum(r["events_lost"] for r in runs),
                "duplicate_events": sum(r["duplicate_events"] for r in runs),
                "clients_with_loss": max(r["clients_with_loss"] for r in runs),
                "clients_connected_min": min(r["clients_connected"] for r in runs),
                "events_per_execution": median_field(runs, "events_per_execution"),
                "bytes_per_execution": median_field(runs, "bytes_per_execution"),
                "post_p50_ms": median_field(runs, "post_latency", "p50_ms"),
            },
        }
    return {"rate_per_s": settings.event_rate_per_s, "levels": levels}


def run_history(server: Server, settings: Settings) -> dict[str, Any]:
    template_id = asyncio.run(history.real_execution(server.base_url))
    sizes: dict[str, Any] = {}
    for size in settings.history_sizes:
        growth = history.grow(server, template_id, size)
        sample = history.sample_execution_ids(server, 100)
        runs = [
            asyncio.run(history.time_reads(server.base_url, sample, settings.reads))
            for _ in range(settings.runs)
        ]
        summary: dict[str, Any] = {}
        for read in history.READS:
            available = all(r[read]["available"] for r in runs)
            summary[read] = {
                "available": available,
                "p50_ms": median_field(runs, read, "latency", "p50_ms") if available else None,
                "p99_ms": median_field(runs, read, "latency", "p99_ms") if available else None,
                "statuses": runs[-1][read]["statuses"],
                "response_bytes": runs[-1][read]["response_bytes"],
            }
        sizes[str(size)] = {
            "growth": growth,
            "runs": runs,
            "summary": summary,
            "rss": server.memory_mib(),
        }
    return {"template_execution": template_id, "sizes": sizes}
