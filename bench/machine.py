"""What the figures were measured on, so a reader can tell whether two runs compare."""

import os
import platform
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from bench.server import REPO_ROOT


def _lscpu_model() -> str | None:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return None
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return None


def _mem_total_gib() -> float | None:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _git(*args: str) -> str | None:
    result = subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


def describe() -> dict[str, Any]:
    import django

    status = _git("status", "--porcelain")
    return {
        "cpu_model": _lscpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _mem_total_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "django": django.get_version(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(status),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
