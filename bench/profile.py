"""Where the server spends its time under load: py-spy samples of the daphne process.

py-spy records collapsed stacks ("frame;frame;frame count"); the summary ranks frames by the
share of samples they sit on top of (self) and appear in (total), so a hotspot can be named by
file and function.
"""

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.server import REPO_ROOT

PY_SPY = REPO_ROOT / ".venv" / "bin" / "py-spy"


class Profiler:
    """py-spy attached to a pid for the duration of a `with` block."""

    def __init__(self, pid: int, out: Path, *, rate: int = 250) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Profiler":
        self.process = subprocess.Popen(
            [
                str(PY_SPY),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(self.out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.process is not None
        self.process.send_signal(2)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def summarize(collapsed: Path, *, top: int = 20) -> dict[str, Any]:
    """Top frames by self and by total share of samples, plus our own code's total share."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0
    if not collapsed.exists():
        return {"error": f"no profile written to {collapsed}"}
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        self_samples[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            total_samples[frame] += count
    if not samples:
        return {"samples": 0}

    def ranked(counter: Counter[str], keep=lambda _frame: True) -> list[dict[str, Any]]:
        rows = [(frame, n) for frame, n in counter.most_common() if keep(frame)][:top]
        return [{"frame": frame, "share": round(n / samples, 4)} for frame, n in rows]

    ours = ("executions/", "workflows/", "c4c_site/")
    return {
        "samples": samples,
        "top_self": ranked(self_samples),
        "top_total_project": ranked(total_samples, lambda f: f.split(" (")[-1].startswith(ours)),
        "top_total": ranked(total_samples),
    }


def _short(frame: str) -> str:
    """'func (/long/path/site-packages/pkg/mod.py:12)' -> 'func (pkg/mod.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", str(REPO_ROOT) + "/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"
