"""`python -m bench`: start the app, run the phases, print a table and a JSON summary."""

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import dbos_compare, detail_live, list_load, machine, report, scaleout, suite, waits
from bench.server import REPO_ROOT, Server, start_server

PHASES = (
    "throughput",
    "nodes",
    "events",
    "detail",
    "history",
    "list_load",
    "waits",
    "dbos",
    "scaleout",
)
# Phases that start no server of the suite: each makes its own processes and databases.
OWN_PROCESSES = ("history", "list_load", "waits", "dbos", "scaleout")
# Left out of --quick unless --only names them: their own smoke test covers them
# (tests/bench/test_dbos_and_scaleout.py), and they would double the quick run.
NOT_QUICK = ("dbos", "scaleout")
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (about a minute)")
    parser.add_argument(
        "--only",
        action="append",
        choices=PHASES,
        help="run only this phase (repeatable); footprint figures come with every phase",
    )
    parser.add_argument("--runs", type=int, help="runs per figure (the median is reported)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary databases and server logs"
    )
    return parser


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = suite.QUICK if args.quick else suite.FULL
    if args.runs:
        settings = replace(settings, runs=args.runs)
    if args.only:
        phases = [p for p in PHASES if p in args.only]
    else:
        phases = [p for p in PHASES if not (args.quick and p in NOT_QUICK)]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    profile_dir = None
    if args.profile:
        profile_dir = args.results_dir / f"{stamp}-profiles"
        profile_dir.mkdir()
    workdir = Path(tempfile.mkdtemp(prefix="c4c-bench-"))
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": machine.describe(),
        "settings": asdict(settings),
        "phases": {},
        "footprint": {"rss_after": {}, "log": {}},
    }
    servers: dict[str, Server] = {}
    try:
        live_phases = [p for p in phases if p not in OWN_PROCESSES]
        if live_phases:
            servers["main"] = server = _start(workdir / "main", results, "start")
            for phase in live_phases:
                log(f"phase {phase} ...")
                if phase == "throughput":
                    data = suite.run_throughput(server, settings, profile_dir)
                elif phase == "nodes":
                    data = suite.run_nodes(server, settings)
                elif phase == "detail":
                    length = 200 if args.quick else detail_live.NODES
                    data = asyncio.run(
                        detail_live.run(server.base_url, "127.0.0.1", server.port, nodes=length)
                    )
                else:
                    data = suite.run_events(server, settings, profile_dir)
                results["phases"][phase] = data
                results["footprint"]["rss_after"][phase] = server.memory_mib()
                log(f"phase {phase} done ({time.monotonic() - started:.0f}s so far)")
        if "history" in phases:
            # A fresh database, so the smallest size is exact whatever the other phases stored.
            servers["history"] = server = _start(workdir / "history", results, "history start")
            log("phase history ...")
            results["phases"]["history"] = suite.run_history(server, settings)
            results["footprint"]["rss_after"]["history"] = server.memory_mib()
        if "list_load" in phases:
            # A server of its own on a history of its own.
            log("phase list_load ...")
            history, seconds = (2_000, 3.0) if args.quick else (20_000, 10.0)
            results["phases"]["list_load"] = list_load.run(
                workdir / "list_load", history=history, seconds=seconds
            )
        if "dbos" in phases:
            # In-process, both sides in processes of their own, interleaved rounds.
            log("phase dbos ...")
            sizes = dbos_compare.QUICK if args.quick else dbos_compare.FULL
            results["phases"]["dbos"] = dbos_compare.run(workdir / "dbos", sizes)
        if "scaleout" in phases:
            log("phase scaleout ...")
            runs = 40 if args.quick else 600
            results["phases"]["scaleout"] = scaleout.run(workdir / "scaleout", runs=runs)
        if "waits" in phases:
            # A server of its own: its thread count and RSS are the figures.
            log("phase waits ...")
            results["phases"]["waits"] = waits.run(
                workdir / "waits", waits.QUICK if args.quick else waits.FULL
            )
    finally:
        for name, server in servers.items():
            server.stop()  # first, so the log holds everything the server buffered
            results["footprint"]["log"][name] = {
                "database_locked": server.log_count("database is locked"),
                "tracebacks": server.log_count("Traceback (most recent call last)"),
            }
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_s"] = round(time.monotonic() - started, 1)
    rows = report.rows(results)
    results["table"] = report.as_dicts(rows)
    out = args.results_dir / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(report.table(rows))
    print()
    print(json.dumps(_summary(results), indent=2))
    log(f"full results: {out}" + (f"; kept {workdir}" if args.keep else ""))
    return 0


def _start(workdir: Path, results: dict[str, Any], label: str) -> Server:
    workdir.mkdir(parents=True)
    server = start_server(workdir)
    results["footprint"]["rss_after"][label] = server.memory_mib()
    log(f"server pid {server.pid} on {server.base_url}, database {server.db_path}")
    return server


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    """The printed JSON: machine, figures and verdicts; per-run detail stays in the file."""
    return {
        "started_at": results["started_at"],
        "mode": results["mode"],
        "machine": results["machine"],
        "total_s": results["total_s"],
        "figures": {row["metric"]: row["value"] for row in results["table"]},
        "targets": {row["metric"]: row["verdict"] for row in results["table"] if row["verdict"]},
    }
