"""`c4c serve --workers 1` against `--workers 2`: exec/s over HTTP with the same clients.

Both servers run at once, each on its own SQLite database, and are loaded in turn, round after
round (interleaved, so a change in the box's load touches both alike); the figure is the median
of the rounds. Each round is `POST /workflow/execute` of simple-math-workflow, waiting for the
result, from `clients` keep-alive clients for `seconds`. The load average is printed with the
figures: on a shared box they are comparable with each other, not with another run.

    .venv/bin/python -m bench.workers [--rounds 5] [--seconds 10] [--clients 8] [--workers 1 2]
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import throughput
from bench.server import Server, start_server


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=50, help="runs per server before round 1")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    return parser


def measure(
    workdir: Path, *, workers: Sequence[int], rounds: int, seconds: float, clients: int, warmup: int
) -> dict[str, Any]:
    servers: dict[int, Server] = {}
    load_before = os.getloadavg()
    try:
        for count in workers:
            (workdir / f"w{count}").mkdir()
            servers[count] = start_server(workdir / f"w{count}", workers=count)
            asyncio.run(throughput.warm_up(servers[count].base_url, warmup))
        rates: dict[int, list[float]] = {count: [] for count in workers}
        errors: dict[int, int] = dict.fromkeys(workers, 0)
        cpu: dict[int, list[float]] = {count: [] for count in workers}
        for _ in range(rounds):
            for count, server in servers.items():
                cpu_before = server.cpu_seconds()
                run = asyncio.run(
                    throughput.load(
                        server.base_url,
                        clients=clients,
                        duration_s=seconds,
                        max_requests=1_000_000,
                        wait=True,
                    )
                )
                rates[count].append(run["executions_per_s"] or 0.0)
                errors[count] += run["errors"]
                if run["ok"]:
                    cpu[count].append((server.cpu_seconds() - cpu_before) * 1000 / run["ok"])
        memory = {count: server.memory_mib() for count, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
    return {
        "clients": clients,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "workers": {
            str(count): {
                "executions_per_s_median": round(statistics.median(rates[count]), 1),
                "executions_per_s_rounds": rates[count],
                "server_cpu_ms_per_execution_median": (
                    round(statistics.median(cpu[count]), 2) if cpu[count] else None
                ),
                "errors": errors[count],
                "largest_process": memory[count],
            }
            for count in workers
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="c4c-bench-workers-"))
    started = time.monotonic()
    try:
        result = measure(
            workdir,
            workers=args.workers,
            rounds=args.rounds,
            seconds=args.seconds,
            clients=args.clients,
            warmup=args.warmup,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["total_s"] = round(time.monotonic() - started, 1)
    base = result["workers"][str(args.workers[0])]["executions_per_s_median"]
    for count in args.workers:
        figures = result["workers"][str(count)]
        ratio = f"{figures['executions_per_s_median'] / base:.2f}x" if base else "-"
        print(
            f"--workers {count}: {figures['executions_per_s_median']} exec/s "
            f"(rounds {figures['executions_per_s_rounds']}, {ratio}), "
            f"{figures['server_cpu_ms_per_execution_median']} ms server CPU per execution, "
            f"{figures['errors']} errors"
        )
    before, after = result["load_average_before"], result["load_average_after"]
    print(f"load average before {before}, after {after}")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
