"""What one POST /workflow/execute costs a real server over HTTP: its CPU per execution, for this
checkout's code and another's side by side, driven by the same client.

`python -m bench.http_cost --baseline DIR [--runs 1500] [--rounds 3] [--mode wait|async]`
serves each checkout with `c4c serve` as a user does (one process, production settings, a fresh
SQLite file), from its own environment: DIR is a `git worktree` of an older commit in which
`uv sync --frozen` has been run. The two alternate, round after round, each round a fresh server:
200 warm-up executions of simple-math-workflow, then --runs from one keep-alive client, waiting
for each result (wait) or with `"async": true` until none is running (async). The figure is the
server's CPU time (every thread's) per execution, with the rate beside it; medians over the
rounds. bench.throughput drives each checkout with that checkout's own harness, and
bench.request_cost leaves out daphne (its HTTP, the access log, the event loop's writes): here
the client is one and daphne is in. Nothing here asserts a figure.
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .server import REPO_ROOT, start_server

WARM_UP_RUNS = 200
WORKFLOW_ID = "simple-math-workflow"
THIS, BASELINE = "this", "baseline"


def _post(client: http.client.HTTPConnection, body: bytes) -> None:
    """One execution; a refused request, or a waited run that did not complete, stops the round."""
    client.request("POST", "/workflow/execute", body, {"content-type": "application/json"})
    response = client.getresponse()
    answer = response.read()
    if response.status == 202:
        return
    status = json.loads(answer).get("status") if response.status == 200 else None
    if status != "completed":
        raise RuntimeError(f"POST /workflow/execute answered {response.status}: {answer[:300]!r}")


def _running(client: http.client.HTTPConnection) -> int:
    client.request("GET", "/workflow/executions?limit=1")
    response = client.getresponse()
    stats: dict[str, int] = json.loads(response.read()).get("stats", {})
    return stats.get("running", 0) + stats.get("waiting", 0)


def measure(checkout: Path, runs: int, mode: str) -> dict[str, float]:
    """One round: a fresh server of `checkout`, its CPU ms and wall rate per execution."""
    body = json.dumps(
        {"workflowId": WORKFLOW_ID, "input": {}, **({"async": True} if mode == "async" else {})}
    ).encode()
    with tempfile.TemporaryDirectory(prefix="c4c-http-cost-") as scratch:
        server = start_server(Path(scratch), checkout=checkout)
        try:
            client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            for _ in range(WARM_UP_RUNS):
                _post(client, body)
            while _running(client):
                time.sleep(0.05)
            cpu, wall = server.cpu_seconds(), time.perf_counter()
            for _ in range(runs):
                _post(client, body)
            while mode == "async" and _running(client):
                time.sleep(0.02)
            cpu, wall = server.cpu_seconds() - cpu, time.perf_counter() - wall
            client.close()
        finally:
            server.stop()
    return {"cpu_ms_per_run": cpu * 1000 / runs, "runs_per_s": runs / wall}


def run(baseline: Path, *, runs: int, rounds: int, mode: str) -> dict[str, Any]:
    checkouts = {THIS: REPO_ROOT, BASELINE: baseline.resolve()}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    for _ in range(rounds):
        for name, checkout in checkouts.items():
            results[name].append(measure(checkout, runs, mode))
    return {
        "mode": mode,
        "runs": runs,
        "rounds": rounds,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "figures": {
            name: {
                key: round(statistics.median(r[key] for r in rounds_), 3)
                for key in ("cpu_ms_per_run", "runs_per_s")
            }
            for name, rounds_ in results.items()
        },
        "each_round": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_cost", description=__doc__)
    parser.add_argument("--baseline", type=Path, required=True, metavar="DIR")
    parser.add_argument("--runs", type=int, default=1_500, help="executions per round (1500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the median (3)")
    parser.add_argument("--mode", choices=("wait", "async"), default="wait")
    args = parser.parse_args(argv)
    if not (args.baseline / ".venv" / "bin" / "c4c").exists():
        parser.error(f"{args.baseline} has no .venv: run `uv sync --frozen` in it first")
    result = run(args.baseline, runs=args.runs, rounds=args.rounds, mode=args.mode)
    for name, row in result["figures"].items():
        print(
            f"{name:<10} {args.mode}: {row['cpu_ms_per_run']:.3f} CPU ms/run, "
            f"{row['runs_per_s']:.1f} runs/s"
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
