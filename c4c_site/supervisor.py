"""The parent of `c4c serve --workers N`: N daphne processes serving one port.

The parent binds the port and starts N children (`c4c serve --fd`), each inheriting a listening
socket of its own: N sockets on the one port with SO_REUSEPORT, among which the kernel spreads new
connections evenly, so no proxy stands in between. (One socket shared by all was tried first:
whichever child woke first took every connection waiting - twisted accepts up to 100 at a time -
and 8 benchmark clients all landed on one process.) A socket outlives its child: connections
that arrive while a child is started again wait in its backlog for the next one. The parent also
runs the event hub (executions.live.fanout) unless events go through Redis, and points every
child at one C4C_METRICS_DIR (a temporary one unless set) so /metrics sums them all. Migrations
ran once, before it starts. Each child runs its own pool, lease sweep and scheduler: the database
decides which process takes over a run or fires a slot.

A child that dies is started again: at once, or after a back-off that doubles while it keeps
dying within YOUNG_SECONDS of its start; after MAX_QUICK_DEATHS such deaths in a row the parent
gives up. SIGINT or SIGTERM stops every child (SIGTERM, then SIGKILL after STOP_GRACE_SECONDS).
Exit codes: 0 stopped when asked, every child stopped in time; 1 children kept dying, or had to
be killed; 2 the socket could not be bound. Children sit in their own process group (a terminal's
Ctrl-C reaches the parent only, which stops them in order) and die with the parent if it is
killed (`die_with_parent`).
"""

import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

YOUNG_SECONDS = 10.0
MAX_QUICK_DEATHS = 5
FIRST_BACKOFF_SECONDS = 0.5
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.1
BACKLOG = 2048
PR_SET_PDEATHSIG = 1

logger = logging.getLogger(__name__)


@dataclass
class _Slot:
    """One child's place: its process now, and how its recent predecessors fared."""

    index: int
    listening: socket.socket
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    start_at: float = 0.0


class Supervisor:
    def __init__(self, *, host: str, port: int, workers: int, redis_events: bool) -> None:
        self.host = host
        self.port = port
        self.workers = workers
        self.redis_events = redis_events
        self.stopping = threading.Event()
        self.gave_up = False

    def run(self) -> int:
        try:
            slots = [_Slot(index, bind(self.host, self.port)) for index in range(self.workers)]
        except OSError as exc:
            logger.error("Cannot listen on %s:%s: %s", self.host, self.port, exc)
            return 2
        workdir = Path(tempfile.mkdtemp(prefix="c4c-serve-"))
        hub = None
        env = {**os.environ}
        if not (env.get("C4C_METRICS_DIR") or env.get("PROMETHEUS_MULTIPROC_DIR")):
            env["C4C_METRICS_DIR"] = str(workdir / "metrics")
        if not self.redis_events:
            from executions.live.fanout import Hub

            key = secrets.token_bytes(32)
            hub = Hub(str(workdir / "events.sock"), key)
            env["C4C_FANOUT_SOCKET"], env["C4C_FANOUT_KEY"] = hub.address, key.hex()
        command = [
            sys.executable,
            "-m",
            "c4c_site.cli",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--parent",
            str(os.getpid()),
        ]
        previous = {
            signum: signal.signal(signum, self._stop) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._supervise(slots, command, env)
            killed = self._stop_all(slots)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if hub is not None:
                hub.close()
            for slot in slots:
                slot.listening.close()
            shutil.rmtree(workdir, ignore_errors=True)
        return 1 if self.gave_up or killed else 0

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def _supervise(self, slots: list[_Slot], command: list[str], env: dict[str, str]) -> None:
        logger.info(
            "%s workers on http://%s:%s (supervisor pid %s)",
            self.workers,
            self.host,
            self.port,
            os.getpid(),
        )
        while not self.stopping.is_set():
            now = time.monotonic()
            for slot in slots:
                if slot.process is not None and slot.process.poll() is not None:
                    self._buried(slot, now)
                if slot.process is None and now >= slot.start_at and not self.gave_up:
                    fd = slot.listening.fileno()
                    slot.process = subprocess.Popen(
                        [*command, "--fd", str(fd)], env=env, pass_fds=(fd,), process_group=0
                    )
                    slot.started_at = now
            if self.gave_up:
                return
            self.stopping.wait(POLL_SECONDS)

    def _buried(self, slot: _Slot, now: float) -> None:
        """A child exited on its own: start its successor after the back-off, or give up."""
        assert slot.process is not None
        code, pid = slot.process.returncode, slot.process.pid
        slot.process = None
        young = now - slot.started_at < YOUNG_SECONDS
        slot.quick_deaths = slot.quick_deaths + 1 if young else 0
        if slot.quick_deaths >= MAX_QUICK_DEATHS:
            logger.error(
                "Worker %s died %s times in a row within %.0fs of its start (last pid %s, %s); "
                "giving up",
                slot.index,
                slot.quick_deaths,
                YOUNG_SECONDS,
                pid,
                _describe(code),
            )
            self.gave_up = True
            return
        delay = FIRST_BACKOFF_SECONDS * 2 ** (slot.quick_deaths - 1) if slot.quick_deaths else 0.0
        slot.start_at = now + delay
        logger.warning(
            "Worker %s (pid %s) exited with %s; starting it again in %.1fs",
            slot.index,
            pid,
            _describe(code),
            delay,
        )

    def _stop_all(self, slots: list[_Slot]) -> bool:
        """SIGTERM every child, SIGKILL those still there after the grace; True if any was."""
        running = [slot.process for slot in slots if slot.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        killed = False
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                killed = True
        return killed


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


def bind(host: str, port: int) -> socket.socket:
    """A child's listening socket (IPv4, address reuse on, as daphne's own), one of those that
    share the port (only processes of the same user may join them)."""
    return socket.create_server((host, port), backlog=BACKLOG, reuse_port=True)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent (the supervisor) dies, as a power cut
    would, and die now if it already has. Linux only; elsewhere a child notices the lost event
    hub (executions.live.fanout) and stops."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)
