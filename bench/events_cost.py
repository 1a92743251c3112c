"""What events cost an in-process run: simple-math runs/s with no listener and with one list
listener, and the encodings, frames, stats reads and updates each run pays for.

`python -m bench.events_cost [--runs 300] [--rounds 5] [--base PATH]` runs each variant in its own
process on its own scratch SQLite (WAL) database, in interleaved rounds, and prints the medians:

- "ours": this checkout (or --tree), events encoded only when read, updates coalesced
  (C4C_UPDATE_COALESCE_MS as set, 5 ms by default);
- "ours, no coalescing": the same with C4C_UPDATE_COALESCE_MS=0;
- "base" (with --base): another checkout of the code, e.g. the commit before lazy events,
  made with `git worktree add /tmp/wt-base <commit>`.

Each variant runs `executions.runtime.execute` sequentially, first with nobody listening, then
with one listener of the list channel that takes every frame as a stream would. Runs/s and the
CPU time per run (the process's, the update thread's too) come from a timed pass; the counts
from a second, untimed pass that wraps the encoder, the frame builder and the stats read (so
the counting costs nothing in the timed pass).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_ID = "simple-math-workflow"
WARM_UP_RUNS = 30
COUNTED_RUNS = 50


def _child(tree: Path, runs: int, listening: bool) -> dict[str, float]:
    """One measurement in this process, against the code in `tree`."""
    sys.path.insert(0, str(tree))
    os.chdir(tree)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django_eventstream.views import Listener, get_listener_manager

    from executions import runtime
    from executions.live import buffer, events
    from executions.models import ExecutionCounter
    from workflows.library import workflow_library

    call_command("migrate", interactive=False, verbosity=0)
    definition = workflow_library().get(WORKFLOW_ID)
    assert definition is not None

    class Reader(Listener):
        """A stream of the list channel without a loop: takes each frame as it is queued."""

        def __init__(self) -> None:
            super().__init__()
            self.channels = {events.LIST_CHANNEL}
            self.frames = 0

        def wake_threadsafe(self) -> None:
            for event in self.channel_items.pop(events.LIST_CHANNEL, []):
                buffer.sse_frame(event)
                self.frames += 1

    reader = Reader()
    if listening:
        get_listener_manager().add_listener(reader)

    def run(count: int) -> tuple[float, float]:
        """Wall seconds and this process's CPU seconds (every thread's) for `count` runs."""
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            runtime.execute(definition=definition, input={})
        return time.perf_counter() - started, time.process_time() - cpu

    run(WARM_UP_RUNS)
    elapsed, cpu = run(runs)
    time.sleep(0.05)  # updates still held leave before the counting starts

    counts = {"encodes": 0, "frames": 0, "stats": 0, "updates": 0}
    live_dir = str(Path(events.__file__).parent)

    def counting(name: str, function: Callable[..., Any], live_only: bool) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if not live_only or sys._getframe(1).f_code.co_filename.startswith(live_dir):
                counts[name] += 1
            return function(*args, **kwargs)

        return counted

    # The event encoder is events.encode in the base and buffer.encode (re-exported) here.
    encoder = events.encode
    events.encode = counting("encodes", encoder, live_only=True)
    if hasattr(buffer, "encode"):
        buffer.encode = events.encode
    buffer.frame_head = counting("frames", buffer.frame_head, live_only=False)
    manager = type(ExecutionCounter.objects)
    manager.stats = counting("stats", manager.stats, live_only=False)  # type: ignore[method-assign]
    append = buffer._buffer.append

    def appending(channel: str, event_type: str, data: Any) -> Any:
        counts["updates"] += event_type == "executions.update"
        return append(channel, event_type, data)

    buffer._buffer.append = appending  # type: ignore[method-assign]
    run(COUNTED_RUNS)
    time.sleep(0.05)
    return {
        "runs_per_s": runs / elapsed,
        "cpu_ms_per_run": cpu * 1000 / runs,
        "encodes_per_run": counts["encodes"] / COUNTED_RUNS,
        "frames_per_run": counts["frames"] / COUNTED_RUNS,
        "stats_reads_per_run": counts["stats"] / COUNTED_RUNS,
        "updates_per_run": counts["updates"] / COUNTED_RUNS,
    }


def _measure(tree: Path, coalesce_ms: str | None, runs: int, listening: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="c4c-events-cost-") as scratch:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{scratch}/bench.sqlite3"}
        env.pop("C4C_EVENTS_REDIS_URL", None)
        if coalesce_ms is not None:
            env["C4C_UPDATE_COALESCE_MS"] = coalesce_ms
        command = [sys.executable, __file__, "--child", str(tree), "--runs", str(runs)]
        if listening:
            command.append("--listening")
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tree} failed:\n{done.stderr[-3000:]}")
        result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def measure(
    runs: int, rounds: int, tree: Path, base: Path | None
) -> dict[str, dict[str, dict[str, float]]]:
    """Medians per variant and listener, rounds interleaved so a noisy box hits all alike."""
    variants: dict[str, tuple[Path, str | None]] = {
        "ours": (tree, None),
        "ours, no coalescing": (tree, "0"),
    }
    if base is not None:
        variants["base"] = (base, None)
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    for round_number in range(rounds):
        for name, (tree, coalesce_ms) in variants.items():
            for listener in ("none", "list"):
                result = _measure(tree, coalesce_ms, runs, listening=listener == "list")
                samples.setdefault((name, listener), []).append(result)
        print(f"round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for (name, listener), results in samples.items():
        medians.setdefault(name, {})[listener] = {
            key: round(statistics.median(r[key] for r in results), 2) for key in results[0]
        }
    return medians


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events_cost", description=__doc__)
    parser.add_argument("--runs", type=int, default=300, help="timed runs per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--base", type=Path, help="a checkout to compare with (git worktree)")
    parser.add_argument(
        "--tree", type=Path, default=REPO_ROOT, help="the checkout measured as ours (this one)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--listening", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(args.child, args.runs, args.listening)))
        return 0
    load_before = os.getloadavg()[0]
    medians = measure(args.runs, args.rounds, args.tree, args.base)
    print(f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    header = ("variant", "listener", "runs/s", "CPU ms", "encodes", "frames", "stats", "updates")
    print("  ".join(f"{h:>20}" if i < 2 else f"{h:>11}" for i, h in enumerate(header)))
    for name, by_listener in medians.items():
        for listener, figures in by_listener.items():
            row = [f"{name:>20}", f"{listener:>20}"]
            row += [f"{value:>11}" for value in figures.values()]
            print("  ".join(row))
    print("(CPU ms, encodes, frames, stats reads and updates are per run; CPU time is the")
    print(" process's, every thread's: steadier than runs/s on a busy machine)")
    print(json.dumps(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
