"""What one POST /workflow/execute costs the server, without sockets: CPU per execution.

`python -m bench.request_cost [--quick] [--runs 1000] [--rounds 5] [--baseline DIR]` drives the
project's ASGI application (c4c_site.asgi, as daphne serves it: the API's own middleware, request
tracing, the sweep and the scheduler running) in a worker process, on a scratch SQLite database,
with simple-math-workflow executions:

- wait: one client after another, each waiting for the result (what c4c's clients do);
- async: 4 clients with `"async": true`, timed until every accepted run has ended.

Each round, a worker runs `--runs` executions in each mode; its process CPU time (every thread's:
the request, the pool and walk threads, the heartbeat) divided by the runs is the figure, with
its system part and the voluntary context switches per run beside it.
With `--baseline DIR` a second worker runs another checkout's code (a `git worktree` of an older
commit) with this environment's packages, and the parent interleaves the two, so the box's load
falls on both alike. Without daphne, HTTP parsing and the client, the figures isolate what the
code under test does, and they move much less from run to run than bench.throughput's; figures
are medians over the rounds. Nothing here asserts a figure.
"""

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asgiref.typing import HTTPScope

REPO_ROOT = Path(__file__).resolve().parent.parent
THIS, BASELINE = "this", "baseline"
MODES = {"wait": 1, "async": 4}  # mode -> concurrent clients
# Per mode. The process's system CPU and voluntary context switches (a thread waiting for another)
# per run move much less than its CPU time on a box whose load varies: they show a thread hop or
# a wake-up added or removed when the CPU time cannot.
FIGURES = ("runs_per_s", "cpu_ms_per_run", "sys_ms_per_run", "switches_per_run")
WORKFLOW_ID = "simple-math-workflow"
_BOOT = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"


# --- the worker: the application set up once, runs what the parent asks for on stdin ------------


def _worker() -> int:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from asgiref.sync import sync_to_async
    from asgiref.typing import ASGISendEvent, HTTPRequestEvent

    from c4c_site.asgi import application
    from executions.models import Execution

    def running() -> bool:
        return Execution.objects.filter(status="running").exists()

    async def post(body: bytes) -> None:
        sent: list[ASGISendEvent] = []
        received = False

        async def receive() -> HTTPRequestEvent:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: ASGISendEvent) -> None:
            sent.append(message)

        await application(_scope(len(body)), receive, send)
        status = sent[0].get("status")
        if status not in (200, 201, 202):
            raise RuntimeError(f"POST /workflow/execute answered {status}: {sent}")

    async def load(runs: int, mode: str) -> dict[str, float]:
        body: dict[str, Any] = {"workflowId": WORKFLOW_ID, "input": {}}
        if mode == "async":
            body["async"] = True
        encoded = json.dumps(body).encode()
        left = runs

        async def client() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await post(encoded)

        wall, cpu = time.perf_counter(), time.process_time()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(client() for _ in range(MODES[mode])))
        while await sync_to_async(running)():
            await asyncio.sleep(0.01)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "runs_per_s": runs / wall,
            "cpu_ms_per_run": cpu * 1000 / runs,
            "sys_ms_per_run": (after.ru_stime - usage.ru_stime) * 1000 / runs,
            "switches_per_run": (after.ru_nvcsw - usage.ru_nvcsw) / runs,
        }

    asyncio.run(load(50, "wait"))  # warm-up: imports, first queries, the tracer provider
    print("ready", flush=True)
    for command in sys.stdin:
        runs, mode = command.split()
        print(json.dumps(asyncio.run(load(int(runs), mode))), flush=True)
    return 0


def _scope(length: int) -> "HTTPScope":
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/workflow/execute",
        "raw_path": b"/workflow/execute",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": None,
    }


# --- the parent: start the workers, interleave them, print medians -------------------------------


@dataclass(frozen=True)
class Sizes:
    runs: int  # executions per mode per round
    rounds: int  # rounds (the median is reported)


QUICK = Sizes(runs=100, rounds=2)
FULL = Sizes(runs=1_000, rounds=5)


class Worker:
    """One checkout's application in a process on a scratch database; answers "<runs> <mode>".

    The same protocol as bench.spans_cost's Worker, written again on purpose: a worker runs this
    file inside another checkout, whose `bench` package has no module the two could share.
    """

    def __init__(self, name: str, cwd: Path) -> None:
        self.name = name
        self.scratch = tempfile.TemporaryDirectory(prefix=f"c4c-request-{name}-")
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "c4c_site.settings",
            "DATABASE_URL": f"sqlite:///{self.scratch.name}/bench.sqlite3",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-request-cost-" + "x" * 40,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
        }
        for name_ in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            environment.pop(name_, None)
        # This file run from `cwd` (first on the path with -c), so its code is the one measured.
        command = [sys.executable, "-c", _BOOT, str(Path(__file__).resolve()), "--worker"]
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}

    def _io(self) -> tuple[IO[str], IO[str]]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        return self.process.stdin, self.process.stdout

    def wait_ready(self) -> None:
        if self._io()[1].readline().strip() != "ready":
            raise RuntimeError(f"worker {self.name} did not start (see its output above)")

    def measure(self, runs: int, mode: str) -> None:
        stdin, stdout = self._io()
        stdin.write(f"{runs} {mode}\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} stopped (see its output above)")
        self.results[mode].append(json.loads(line))

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.scratch.cleanup()


def run(sizes: Sizes, baseline: Path | None = None) -> dict[str, Any]:
    """This checkout (and `baseline`'s code) side by side; the figures and the box's load."""
    started = time.monotonic()
    plans = [(THIS, REPO_ROOT)] + ([(BASELINE, baseline.resolve())] if baseline else [])
    workers = [Worker(name, cwd) for name, cwd in plans]
    try:
        for worker in workers:
            worker.wait_ready()
        for _ in range(sizes.rounds):
            for mode in MODES:
                for worker in workers:
                    worker.measure(sizes.runs, mode)
    finally:
        for worker in workers:
            worker.stop()
    figures = {
        worker.name: {
            f"{mode} {key}": round(statistics.median(r[key] for r in results), 3)
            for mode, results in worker.results.items()
            for key in FIGURES
        }
        for worker in workers
    }
    return {
        **asdict(sizes),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "total_s": round(time.monotonic() - started, 1),
        "figures": figures,
    }


def table(result: dict[str, Any]) -> str:
    columns = list(next(iter(result["figures"].values())))
    lines = [f"{'code':<10}" + "".join(f"{title:>24}" for title in columns)]
    for name, row in result["figures"].items():
        lines.append(f"{name:<10}" + "".join(f"{row[key]:>24}" for key in columns))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_cost", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--runs", type=int, help="executions per mode per round (1000)")
    parser.add_argument("--rounds", type=int, help="rounds, the median (5)")
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR", help="also run this checkout's code (a worktree)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker()
    sizes = QUICK if args.quick else FULL
    given = {"runs": args.runs, "rounds": args.rounds}
    sizes = replace(sizes, **{key: value for key, value in given.items() if value is not None})
    result = run(sizes, args.baseline)
    print(table(result))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
