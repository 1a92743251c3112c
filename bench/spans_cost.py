"""What OpenTelemetry costs a run per node: the SDK's spans, their payload copies, their rows.

`python -m bench.spans_cost [--quick] [--nodes 1000] [--rounds 7] [--input-bytes 1024]
[--baseline DIR]` (or `run(FULL)` from the bench suite) runs a chain of `--nodes` custom.noop
procedure nodes through executions.runtime.execute (the embedded default: a scratch SQLite
database in WAL, every execution, node and span persisted), one variant per worker process,
since a process sets its tracer provider once:

- noop: OTEL_SDK_DISABLED=true, the SDK's no-op tracer: no spans at all (the reference);
- spans: the real SDK and tracing's span processor, as configured by default
  (C4C_SPAN_PAYLOAD_CHARS=0: no copies of a node's input and output on its span);
- spans+payload: the same with C4C_SPAN_PAYLOAD_CHARS=4096 (procedure.input / procedure.output);
- node-spans: C4C_PROCEDURE_SPANS=none, a span per node and none per procedure attempt;
- baseline: with `--baseline DIR`, the default of another checkout's code (a `git worktree` of an
  older commit), so a change is measured against what it replaces in the same run.

Every node's input holds the run's input (the variables), `--input-bytes` of JSON, as a real
run's does. The parent interleaves the workers: each round every worker runs one chain in turn,
so the box's load falls on all alike; figures are medians over the rounds of wall and CPU (the
worker process's, all its threads) ms per node. The difference to noop is what spans cost,
everything included: the SDK, the rows, their INSERT and their span.ended events. On a busy box
trust CPU over wall time.

Beside the runs, each worker times the SDK alone (thread CPU time, the best of 3) for `--nodes`
node-shaped span pairs (a workflow.node.procedure span with the engine's attributes and its
procedure span) under a run's collection: creation + end + processor, then tracing.span_rows
(the one conversion to rows). Nothing here asserts a figure.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VARIANTS: dict[str, dict[str, str]] = {
    "noop": {"OTEL_SDK_DISABLED": "true"},
    "spans": {},
    "spans+payload": {"C4C_SPAN_PAYLOAD_CHARS": "4096"},
    "node-spans": {"C4C_PROCEDURE_SPANS": "none"},
}
BASELINE = "baseline"
# (figure, its column title) in the printed table; every figure is per node but spans_per_run.
COLUMNS = (
    ("wall_ms_per_node", "wall ms"),
    ("cpu_ms_per_node", "cpu ms"),
    ("spans_wall_ms_per_node", "spans wall ms"),
    ("spans_cpu_ms_per_node", "spans cpu ms"),
    ("sdk_ms_per_node", "sdk alone ms"),
    ("rows_ms_per_node", "rows alone ms"),
    ("spans_per_run", "spans/run"),
)
_BOOT = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"


def chain(length: int) -> dict[str, Any]:
    """A c4c JSON definition: `length` custom.noop nodes, one after the other."""
    nodes: list[dict[str, Any]] = [
        {"id": f"n{i}", "type": "procedure", "procedureName": "custom.noop", "next": f"n{i + 1}"}
        for i in range(length)
    ]
    del nodes[-1]["next"]
    return {
        "id": f"bench-noop-{length}",
        "name": f"Bench chain of {length} custom.noop nodes",
        "version": "1.0.0",
        "startNode": "n0",
        "nodes": nodes,
    }


def run_input(size: int) -> dict[str, Any]:
    """A run input of about `size` bytes of JSON: a small order, as a real run carries."""
    item = {"sku": "sku-0000", "quantity": 1, "price": 9.5}
    items = [{**item, "sku": f"sku-{i:04d}", "quantity": i % 5 + 1} for i in range(size // 48)]
    return {"orderId": "ord-0001", "customer": "ada", "items": items}


# --- the worker: one variant, set up once, runs what the parent asks for on stdin ----------------


def _worker(nodes: int, input_bytes: int) -> int:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from executions import runtime
    from workflows.definitions import WorkflowDefinition

    definition = WorkflowDefinition.model_validate(chain(nodes))
    data = run_input(input_bytes)

    def run_chain() -> dict[str, Any]:
        wall, cpu = time.perf_counter(), time.process_time()
        body = runtime.execute(definition=definition, input=data).body
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if body["status"] != "completed":
            raise RuntimeError(f"the chain ended {body['status']}: {body.get('error')}")
        return {
            "wall_ms_per_node": wall * 1000 / nodes,
            "cpu_ms_per_node": cpu * 1000 / nodes,
            "spans": len(body.get("spans") or []),
        }

    run_chain()  # warm-up: imports, first queries, the tracer provider
    print("ready", flush=True)
    for command in sys.stdin:
        answer = run_chain() if command.strip() == "run" else _sdk_alone(nodes)
        print(json.dumps(answer), flush=True)
    return 0


def _sdk_alone(nodes: int) -> dict[str, float]:
    """The engine's two spans per node, under a run's collection, and their conversion to rows."""
    best = {"sdk_ms_per_node": float("inf"), "rows_ms_per_node": float("inf")}
    for _ in range(3):
        for key, seconds in zip(best, _sdk_pairs(nodes), strict=True):
            best[key] = min(best[key], seconds * 1000 / nodes)
    return best


def _sdk_pairs(nodes: int) -> tuple[float, float]:
    """CPU seconds to trace `nodes` span pairs, and to convert them to rows."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    from executions import tracing

    tracer = trace.get_tracer("c4c.workflows")
    execution_id = f"sdk-alone-{time.monotonic_ns()}"
    base = {"workflow.id": "bench", "workflow.execution_id": execution_id}
    ok = Status(StatusCode.OK)
    with tracing.collect(execution_id) as collection:
        with tracer.start_as_current_span(
            tracing.ROOT_SPAN, context=otel_context.Context(), attributes=base
        ):
            started = time.thread_time()
            for i in range(nodes):
                attributes = {**base, "node.id": f"n{i}", "node.type": "procedure"}
                attributes["node.procedure"] = "custom.noop"
                with tracer.start_as_current_span(
                    "workflow.node.procedure",
                    attributes=attributes,
                    record_exception=False,
                    set_status_on_exception=False,
                ) as span:
                    with tracer.start_as_current_span(
                        "custom.noop",
                        attributes={"procedure.name": "custom.noop", "procedure.attempt": 1},
                        record_exception=False,
                        set_status_on_exception=False,
                    ) as call:
                        call.set_status(ok)
                    span.set_attributes(
                        {"procedure.output_keys": "", "node.status": "completed", "node.next": "n"}
                    )
                    span.set_status(ok)
            spans_s = time.thread_time() - started
        ended = collection.take()
        started = time.thread_time()
        tracing.span_rows(ended)
        rows_s = time.thread_time() - started
    return spans_s, rows_s


# --- the parent: start the workers, interleave them, print medians -------------------------------


@dataclass(frozen=True)
class Sizes:
    nodes: int  # procedure nodes in the chain
    rounds: int  # chains each variant runs (the median is reported)
    input_bytes: int  # about the size of the run input, which every node's input holds


QUICK = Sizes(nodes=200, rounds=3, input_bytes=1_024)
FULL = Sizes(nodes=1_000, rounds=7, input_bytes=1_024)


class Worker:
    """One variant's process, started on a scratch database; answers "run" and "sdk" lines."""

    def __init__(self, name: str, env: dict[str, str], cwd: Path, sizes: Sizes) -> None:
        self.name = name
        self.scratch = tempfile.TemporaryDirectory(prefix=f"c4c-spans-{name.replace('+', '-')}-")
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "c4c_site.settings",
            "DATABASE_URL": f"sqlite:///{self.scratch.name}/bench.sqlite3",
            "DJANGO_SECRET_KEY_FILE": f"{self.scratch.name}/secret-key",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        for name_ in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            environment.pop(name_, None)
        # This file run from `cwd` (first on the path with -c), so its code is the one measured.
        command = [sys.executable, "-c", _BOOT, str(Path(__file__).resolve()), "--worker"]
        command += ["--nodes", str(sizes.nodes), "--input-bytes", str(sizes.input_bytes)]
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.runs: list[dict[str, Any]] = []
        self.sdk: list[dict[str, float]] = []

    def _io(self) -> tuple[IO[str], IO[str]]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        return self.process.stdin, self.process.stdout

    def wait_ready(self) -> None:
        line = self._io()[1].readline()
        if line.strip() != "ready":
            raise RuntimeError(f"worker {self.name} did not start (see its output above)")

    def ask(self, command: str) -> dict[str, Any]:
        stdin, stdout = self._io()
        stdin.write(command + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} stopped (see its output above)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.scratch.cleanup()


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 4)


def run(sizes: Sizes, baseline: Path | None = None) -> dict[str, Any]:
    """Every variant (and `baseline`'s code) side by side; the figures and the box's load."""
    started = time.monotonic()
    plans = [(name, env, REPO_ROOT) for name, env in VARIANTS.items()]
    if baseline is not None:
        plans.append((BASELINE, {}, baseline.resolve()))
    workers = [Worker(name, env, cwd, sizes) for name, env, cwd in plans]
    try:
        for worker in workers:
            worker.wait_ready()
        for _ in range(sizes.rounds):
            for worker in workers:
                worker.runs.append(worker.ask("run"))
                worker.sdk.append(worker.ask("sdk"))
    finally:
        for worker in workers:
            worker.stop()
    figures: dict[str, dict[str, float]] = {}
    for worker in workers:
        figures[worker.name] = {
            key: _median([run[key] for run in worker.runs])
            for key in ("wall_ms_per_node", "cpu_ms_per_node")
        }
        figures[worker.name]["spans_per_run"] = worker.runs[-1]["spans"]
        for key in ("sdk_ms_per_node", "rows_ms_per_node"):
            figures[worker.name][key] = _median([sdk[key] for sdk in worker.sdk])
    reference = figures["noop"]
    for name, row in figures.items():
        if name != "noop":
            row["spans_wall_ms_per_node"] = round(
                row["wall_ms_per_node"] - reference["wall_ms_per_node"], 4
            )
            row["spans_cpu_ms_per_node"] = round(
                row["cpu_ms_per_node"] - reference["cpu_ms_per_node"], 4
            )
    return {
        **asdict(sizes),
        "input_json_bytes": len(json.dumps(run_input(sizes.input_bytes))),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "total_s": round(time.monotonic() - started, 1),
        "figures": figures,
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"{'variant':<14}" + "".join(f"{title:>16}" for _, title in COLUMNS)]
    for name, row in result["figures"].items():
        lines.append(f"{name:<14}" + "".join(f"{row.get(key, ''):>16}" for key, _ in COLUMNS))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spans_cost", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--nodes", type=int, help="procedure nodes in the chain (1000)")
    parser.add_argument("--rounds", type=int, help="chains each variant runs, the median (7)")
    parser.add_argument("--input-bytes", type=int, help="about the size of the run input (1024)")
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR", help="also run this checkout's code (a worktree)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    given = {"nodes": args.nodes, "rounds": args.rounds, "input_bytes": args.input_bytes}
    sizes = replace(sizes, **{key: value for key, value in given.items() if value is not None})
    if args.worker:
        return _worker(sizes.nodes, sizes.input_bytes)
    result = run(sizes, args.baseline)
    print(table(result))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
