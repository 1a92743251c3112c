"""Phase dbos: our runtime in-process side by side with DBOS Transact, in one run (issue 14).

`python -m bench --only dbos` (or `python -m bench.dbos_compare [--quick] [--rounds N]`). Both
sides run in processes of their own, one after the other in interleaved rounds (the order flips
each round), each on a fresh database, and every figure is the median over rounds:

- simple-math runs/s, sequential (three steps: add, multiply, subtract), and from 8 threads;
- ms per persisted step of a 1,000-step workflow (a `custom.noop` chain for us);
- on PostgreSQL too: runs/s sequential and ms per step.

Ours is `executions.runtime.execute` with the settings `c4c serve` uses (DEBUG off, SQLite in
WAL mode with synchronous=NORMAL); DBOS is bench/dbos_side.py, run by the Python of a venv made
on first use under the user's cache directory with DBOS_VERSION pinned, never a project
dependency. When that venv cannot be made, the phase says why and measures only ours.
"""

import argparse
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.server import REPO_ROOT
from bench.stats import median_of

DBOS_VERSION = "3.4.0"
DBOS_SIDE = REPO_ROOT / "bench" / "dbos_side.py"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SIDES = ("ours", "dbos")
# The targets: at least 3x DBOS's runs/s, at most 0.25 ms per persisted node.
THROUGHPUT_RATIO = 3.0
MS_PER_NODE = 0.25


@dataclass(frozen=True)
class Sizes:
    rounds: int
    seconds: float
    threads: int
    steps: int
    repeats: int
    warmup: int


FULL = Sizes(rounds=5, seconds=3.0, threads=8, steps=1000, repeats=3, warmup=20)
QUICK = Sizes(rounds=1, seconds=0.5, threads=8, steps=50, repeats=1, warmup=3)
# Per backend, the figures measured (PostgreSQL: the two).
FIGURES = {"sqlite": ("sequential", "threads", "steps"), "postgres": ("sequential", "steps")}


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "c4c-bench"


def dbos_python() -> tuple[Path | None, str]:
    """The DBOS venv's Python, made with uv on first use; (None, why) when it cannot be."""
    venv = _cache_dir() / f"dbos-{DBOS_VERSION}"
    python = venv / "bin" / "python"
    if python.exists():
        return python, ""
    uv = shutil.which("uv")
    if uv is None:
        return None, "uv is not on PATH, so DBOS's own venv cannot be made"
    partial = venv.with_name(venv.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = str(partial / "bin" / "python")
    steps = (
        [uv, "venv", "-q", "--python", version, str(partial)],
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            target,
            f"dbos=={DBOS_VERSION}",
            "psycopg[binary]",
        ],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            return None, f"making DBOS's venv failed: {' '.join(step[:3])}: {done.stderr[-500:]}"
    # uv venv writes absolute paths into the venv's scripts: move only while nothing ran it.
    partial.rename(venv)
    return (python, "") if python.exists() else (None, f"{python} missing after install")


def _postgres_reachable() -> bool:
    import psycopg

    try:
        with closing(psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2)):
            return True
    except psycopg.OperationalError:
        return False


def _admin(sql: str) -> None:
    import psycopg

    with closing(psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True)) as conn:
        conn.execute(sql)


def _our_env(database_url: str) -> dict[str, str]:
    """What `c4c serve` runs with (bench.server), on this database."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "c4c_site.settings",
        "C4C_BIND_HOST": "127.0.0.1",
        "C4C_SERVER_ID": "bench-dbos",
        "LOG_LEVEL": "WARNING",
    }


class Databases:
    """A fresh database per side and round: ours copied from one migrated template (SQLite
    file or PostgreSQL TEMPLATE), DBOS's empty (it creates its tables at launch)."""

    def __init__(self, workdir: Path, backend: str) -> None:
        self.workdir = workdir
        self.backend = backend
        self.tag = uuid.uuid4().hex[:8]
        self.created: list[str] = []
        self.template = ""

    def prepare(self) -> None:
        if self.backend == "sqlite":
            path = self.workdir / "ours-template.sqlite3"
            url = f"sqlite:///{path}"
        else:
            self.template = self._create(f"c4c_bench_{self.tag}_tpl")
            url = f"postgresql://postgres@127.0.0.1:5432/{self.template}"
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=REPO_ROOT,
            env=_our_env(url),
            check=True,
            timeout=600,
        )
        if self.backend == "sqlite":
            with closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def fresh(self, side: str, round_index: int) -> str:
        name = f"{side}-{round_index}"
        if self.backend == "sqlite":
            path = self.workdir / f"{name}.sqlite3"
            if side == "ours":
                shutil.copyfile(self.workdir / "ours-template.sqlite3", path)
            return f"sqlite:///{path}"
        template = f" TEMPLATE {self.template}" if side == "ours" else ""
        db = self._create(f"c4c_bench_{self.tag}_{name.replace('-', '_')}", template)
        return f"postgresql://postgres@127.0.0.1:5432/{db}"

    def _create(self, name: str, template: str = "") -> str:
        _admin(f'CREATE DATABASE "{name}"{template}')
        self.created.append(name)
        return name

    def drop(self) -> None:
        for name in reversed(self.created):
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _side_command(side: str, python: Path | None, url: str, figures: Sequence[str], sizes: Sizes):
    loop = [
        "--database-url",
        url,
        "--figures",
        ",".join(figures),
        "--seconds",
        str(sizes.seconds),
        "--threads",
        str(sizes.threads),
        "--steps",
        str(sizes.steps),
        "--repeats",
        str(sizes.repeats),
        "--warmup",
        str(sizes.warmup),
    ]
    if side == "dbos":
        assert python is not None
        return [str(python), str(DBOS_SIDE), *loop], dict(os.environ)
    return [sys.executable, "-m", "bench.dbos_compare", "--side", "ours", *loop], _our_env(url)


def _run_side(command: list[str], env: dict[str, str], workdir: Path) -> dict[str, Any]:
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr[-1500:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run(
    workdir: Path, sizes: Sizes, backends: Sequence[str] = ("sqlite", "postgres")
) -> dict[str, Any]:
    """The phase: each backend, each round, both sides (order flipped each round)."""
    python, why = dbos_python()
    result: dict[str, Any] = {
        "dbos_version": DBOS_VERSION,
        "dbos_skipped": why or None,
        "sizes": asdict(sizes),
        "backends": {},
    }
    sides = SIDES if python is not None else ("ours",)
    workdir.mkdir(parents=True, exist_ok=True)
    for backend in backends:
        if backend == "postgres" and not _postgres_reachable():
            result["backends"][backend] = {"skipped": "PostgreSQL is not reachable on :5432"}
            continue
        databases = Databases(workdir / backend, backend)
        databases.workdir.mkdir(parents=True, exist_ok=True)
        rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        try:
            databases.prepare()
            for index in range(sizes.rounds):
                order = sides if index % 2 == 0 else tuple(reversed(sides))
                for side in order:
                    url = databases.fresh(side, index)
                    command, env = _side_command(side, python, url, FIGURES[backend], sizes)
                    rounds[side].append(_run_side(command, env, databases.workdir))
        finally:
            databases.drop()
        result["backends"][backend] = {
            "rounds": rounds,
            "medians": {side: _medians(runs) for side, runs in rounds.items()},
        }
    return result


def _medians(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    ok = [r for r in runs if "error" not in r]
    return {
        "sequential_runs_per_s": median_of(r.get("sequential", {}).get("runs_per_s") for r in ok),
        "threads_runs_per_s": median_of(r.get("threads", {}).get("runs_per_s") for r in ok),
        "ms_per_step": median_of(r.get("steps", {}).get("ms_per_step") for r in ok),
        "errors": len(runs) - len(ok),
    }


@dataclass
class Line:
    figure: str
    ours: float | None
    dbos: float | None
    target: str
    verdict: str

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.dbos:
            return None
        return round(self.ours / self.dbos, 2)


def lines(data: dict[str, Any]) -> list[Line]:
    """One line per figure and backend: ours, DBOS, ours/DBOS and the issue's target."""
    out: list[Line] = []
    for backend, measured in data["backends"].items():
        if "medians" not in measured:
            continue
        ours = measured["medians"]["ours"]
        dbos = measured["medians"].get("dbos", {})
        label = "SQLite WAL" if backend == "sqlite" else "PostgreSQL"
        for name, key, figure in (
            ("sequential", "sequential_runs_per_s", "simple-math runs/s, sequential"),
            ("threads", "threads_runs_per_s", "simple-math runs/s, 8 threads"),
            ("steps", "ms_per_step", "ms per persisted step, 1,000-step workflow"),
        ):
            if name not in FIGURES[backend]:
                continue
            line = Line(f"{figure} ({label})", ours.get(key), dbos.get(key), "", "")
            if key == "ms_per_step":
                line.target = f"ours <= {MS_PER_NODE:g} ms"
                met = line.ours is not None and line.ours <= MS_PER_NODE
            else:
                line.target = f"ratio >= {THROUGHPUT_RATIO:g}x"
                met = line.ratio is not None and line.ratio >= THROUGHPUT_RATIO
            ready = line.ours is not None and (key == "ms_per_step" or line.ratio is not None)
            line.verdict = ("met" if met else "MISSED") if ready else "n/a"
            out.append(line)
    return out


def summary_rows(data: dict[str, Any]) -> list[tuple[str, Any, str, str, str]]:
    """(metric, value, unit, target, verdict) rows for the suite's report: the verdict goes on
    ours for ms per step and on the ratio for runs/s, as the targets are put."""
    rows: list[tuple[str, Any, str, str, str]] = []
    for line in lines(data):
        per_step = "ms per" in line.figure
        unit = "ms" if per_step else "runs/s"
        judged = (line.target, line.verdict)
        rows += [
            (
                f"in-process {line.figure}: ours",
                line.ours,
                unit,
                *(judged if per_step else ("", "")),
            ),
            (f"in-process {line.figure}: DBOS {DBOS_VERSION}", line.dbos, unit, "", ""),
            (
                f"in-process {line.figure}: ours / DBOS",
                line.ratio,
                "x",
                *(("", "") if per_step else judged),
            ),
        ]
    return rows


def table(data: dict[str, Any]) -> str:
    header = ("figure", "ours", f"DBOS {DBOS_VERSION}", "ours/DBOS", "target", "verdict")
    cells = [header] + [
        (line.figure, _fmt(line.ours), _fmt(line.dbos), _fmt(line.ratio), line.target, line.verdict)
        for line in lines(data)
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    if data.get("dbos_skipped"):
        text.append(f"DBOS not measured: {data['dbos_skipped']}")
    for backend, measured in data["backends"].items():
        if "skipped" in measured:
            text.append(f"{backend} not measured: {measured['skipped']}")
    return "\n".join(text)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


# Our side: run inside its own process by the orchestrator above, on the database it was given.


def _ours(args: argparse.Namespace) -> dict[str, Any]:
    import threading

    import django

    django.setup()
    from django.db import connections

    from bench.nodes import linear_workflow
    from executions import runtime
    from executions.models import Execution, NodeExecution, Span
    from workflows.library import workflow_library
    from workflows.validation import parse_definition

    simple_math = workflow_library().get("simple-math-workflow")
    chain, errors = parse_definition(linear_workflow(args.steps, "custom.noop", {}))
    assert simple_math is not None
    assert chain is not None, errors

    def one() -> None:
        output = runtime.execute(definition=simple_math, input={})
        assert output.body["status"] == "completed", output.body

    def loop(seconds: float, most: int) -> int:
        done = 0
        deadline = time.perf_counter() + seconds
        while done < most and time.perf_counter() < deadline:
            one()
            done += 1
        return done

    for _ in range(args.warmup):
        one()
    result: dict[str, Any] = {"side": "ours"}
    if "sequential" in args.figures:
        started = time.perf_counter()
        done = loop(args.seconds, args.most)
        elapsed = time.perf_counter() - started
        result["sequential"] = {"runs": done, "runs_per_s": round(done / elapsed, 1)}
    if "threads" in args.figures:
        counts = [0] * args.threads
        gate = threading.Barrier(args.threads + 1)

        def worker(index: int) -> None:
            gate.wait()
            try:
                counts[index] = loop(args.seconds, 1_000_000)
            finally:
                connections.close_all()

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
        for thread in pool:
            thread.start()
        gate.wait()
        started = time.perf_counter()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        result["threads"] = {
            "threads": args.threads,
            "runs": sum(counts),
            "runs_per_s": round(sum(counts) / elapsed, 1),
        }
    if "steps" in args.figures:
        timings = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            output = runtime.execute(definition=chain, input={})
            timings.append((time.perf_counter() - started) * 1000 / args.steps)
            assert output.body["status"] == "completed", output.body
        result["steps"] = {
            "steps": args.steps,
            "ms_per_step_runs": [round(t, 4) for t in timings],
            "ms_per_step": median_of(timings),
        }
    result["persisted"] = {
        "executions": Execution.objects.count(),
        "nodes": NodeExecution.objects.count(),
        "spans": Span.objects.count(),
    }
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.dbos_compare", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--rounds", type=int, help="rounds (the median is reported)")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files")
    # One side's measurement in this process (what the orchestrator starts).
    parser.add_argument("--side", choices=("ours",), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--figures", default="sequential,threads,steps", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=3.0, help=argparse.SUPPRESS)
    parser.add_argument("--most", type=int, default=100_000, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=20, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.side == "ours":
        args.figures = args.figures.split(",")
        print(json.dumps(_ours(args)))
        return 0
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = replace(sizes, rounds=args.rounds)
    load_before = [round(x, 2) for x in os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="c4c-bench-dbos-"))
    try:
        data = run(workdir, sizes, args.backend or ("sqlite", "postgres"))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    data["load_average"] = {"start": load_before, "end": [round(x, 2) for x in os.getloadavg()]}
    print(table(data))
    print(f"load average: start {load_before}, end {data['load_average']['end']}")
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
