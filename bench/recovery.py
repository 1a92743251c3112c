"""Time from `kill -9` of the server running a run to the run resuming on another server.

`.venv/bin/python -m bench.recovery [--runs 3] [--lease 2 30]`: per lease length, each run
starts server A (`c4c serve`, its own C4C_SERVER_ID) on a fresh SQLite file, posts a run whose
second node waits ten minutes, kills A with SIGKILL once that node is running, and at once starts
server B on another port with another server id over the same file. B's sweep takes the run over
when A's lease lapses and runs the interrupted node again as attempt 2. Reported (median of the
runs, min and max kept): B ready after the kill, and the resumed attempt's start after the kill
(read from the stored attempt, so it is the moment the node ran again, not when it was seen).

The lease bounds the figure: A renewed it at most a third of a lease before it died, so it
lapses between 2/3 and 1 lease after the kill, and B sweeps every second (and once on start).
Prints a table and writes bench/results/recovery-<timestamp>.json.
"""

import argparse
import json
import os
import signal
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.server import REPO_ROOT, Server, start_server
from bench.stats import median_of

RESULTS_DIR = REPO_ROOT / "bench" / "results"
EXECUTION_ID = "bench-recovery"
WORKFLOW = {
    "id": "bench-recovery",
    "name": "Bench recovery",
    "startNode": "first",
    "nodes": [
        {
            "id": "first",
            "type": "procedure",
            "procedureName": "custom.log",
            "config": {"message": "bench-recovery first"},
            "next": "hold",
        },
        {
            "id": "hold",
            "type": "procedure",
            "procedureName": "custom.delay",
            "config": {"ms": 600_000},
        },
    ],
}


def _serve(workdir: Path, server_id: str, lease_s: int) -> Server:
    """`c4c serve` as server `server_id` over the shared database, once the API answers."""
    return start_server(
        workdir,
        database="recovery.sqlite3",
        log=f"{server_id}.log",
        extra_env={"C4C_SERVER_ID": server_id, "C4C_LEASE_SECONDS": str(lease_s)},
    )


def _hold_row(db_path: Path) -> tuple[str, int, Any] | None:
    with sqlite3.connect(db_path, timeout=30) as db:
        row: tuple[str, int, Any] | None = db.execute(
            "SELECT n.status, n.attempt, n.attempts FROM executions_nodeexecution n"
            " JOIN executions_execution e ON n.execution_id = e.id"
            " WHERE e.execution_id = ? AND n.node_id = 'hold'",
            (EXECUTION_ID,),
        ).fetchone()
    return row


def _until(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.02)
    raise RuntimeError(f"not seen within {timeout} s")


def one_run(lease_s: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="c4c-recovery-") as tmp:
        workdir = Path(tmp)
        db_path = workdir / "recovery.sqlite3"
        first = _serve(workdir, "bench-a", lease_s)
        second: Server | None = None
        try:
            body = {"workflow": WORKFLOW, "executionId": EXECUTION_ID, "async": True}
            answer = httpx.post(f"{first.base_url}/workflow/execute", json=body, timeout=30)
            answer.raise_for_status()
            _until(lambda: (_hold_row(db_path) or ("",))[0] == "running", 30)
            # Let a renewal or two happen, as for a run that was going for a while.
            time.sleep(lease_s / 2)
            first.process.send_signal(signal.SIGKILL)
            killed = time.time()
            first.process.wait(timeout=10)
            second = _serve(workdir, "bench-b", lease_s)
            ready = time.time()
            row = _until(lambda: (r := _hold_row(db_path)) and r[1] >= 2 and r, lease_s * 3 + 30)
            resumed_at = datetime.fromisoformat(json.loads(row[2])[-1]["startTime"]).timestamp()
            httpx.post(
                f"{second.base_url}/workflow/executions/{EXECUTION_ID}/cancel",
                json={},
                timeout=30,
            )
            return {
                "lease_s": lease_s,
                "ready_after_kill_s": round(ready - killed, 3),
                "resumed_after_kill_s": round(resumed_at - killed, 3),
            }
        finally:
            for server in (first, second):
                if server is not None and server.process.poll() is None:
                    server.process.kill()
                    server.process.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lease", type=int, nargs="+", default=[2, 30])
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "leases": {},
    }
    print("lease s | B ready after kill s (median, min-max) | resumed after kill s")
    for lease_s in args.lease:
        runs = [one_run(lease_s) for _ in range(args.runs)]
        summary = {
            key: {
                "median": median_of(r[key] for r in runs),
                "min": min(r[key] for r in runs),
                "max": max(r[key] for r in runs),
            }
            for key in ("ready_after_kill_s", "resumed_after_kill_s")
        }
        results["leases"][str(lease_s)] = {"runs": runs, "summary": summary}
        ready, resumed = summary["ready_after_kill_s"], summary["resumed_after_kill_s"]
        print(
            f"{lease_s:7} | {ready['median']:.2f} ({ready['min']:.2f}-{ready['max']:.2f})"
            f" | {resumed['median']:.2f} ({resumed['min']:.2f}-{resumed['max']:.2f})"
        )
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"recovery-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
