"""The app under test, started the way a user starts it: `c4c serve` on a free port.

The server is a separate process with its own SQLite file in a temporary directory (via
DATABASE_URL), production settings (DEBUG off), and its output captured to a log we grep.
"""

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
C4C = REPO_ROOT / ".venv" / "bin" / "c4c"


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    db_path: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def serving_pids(self) -> list[int]:
        """The daphne processes: the server itself, or with --workers above 1 its children."""
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            children = []
        return [int(pid) for pid in children] or [self.pid]

    def memory_mib(self) -> dict[str, float | None]:
        """VmRSS (now) and VmHWM (peak) of the largest daphne process, from /proc."""
        values: dict[str, float | None] = {"rss_mib": None, "peak_rss_mib": None}
        for pid in self.serving_pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                for name, key in (("VmRSS:", "rss_mib"), ("VmHWM:", "peak_rss_mib")):
                    if line.startswith(name):
                        mib = round(int(line.split()[1]) / 1024, 1)
                        values[key] = max(values[key] or 0.0, mib)
        return values

    def cpu_seconds(self) -> float:
        """CPU time of the server and its processes (children that ended included)."""
        total = 0.0
        for pid in {self.pid, *self.serving_pids()}:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total

    def log_count(self, needle: str) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(needle)
        except OSError:
            return 0

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def db_connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=60, isolation_level=None)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    workdir: Path,
    *,
    ready_timeout_s: float = 90.0,
    database: str = "bench.sqlite3",
    log: str = "server.log",
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    checkout: Path = REPO_ROOT,
) -> Server:
    """Start `c4c serve` with N workers (migrate, then daphne) and wait until the API answers.

    Servers started with the same `database` in one workdir share it (the recovery benchmark).
    `checkout` serves another checkout's code with its own environment (its .venv); the number
    of workers goes by C4C_WORKERS, which an older `c4c serve` without workers ignores.
    """
    port = free_port()
    db_path = workdir / database
    log_path = workdir / log
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "C4C_WORKERS": str(workers),
        **(extra_env or {}),
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                checkout / C4C.relative_to(REPO_ROOT),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=checkout,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(process=process, port=port, db_path=db_path, log_path=log_path)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            response = httpx.get(f"{server.base_url}/workflow/definitions", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            return server
        server.stop()
        raise ServerError(
            f"GET /workflow/definitions answered {response.status_code}:\n{server.log_tail()}"
        )
    server.stop()
    raise ServerError(f"server not ready after {ready_timeout_s:.0f}s:\n{server.log_tail()}")
