"""`c4c serve --workers 2` for real: one socket, two daphne processes, events across them.

Which process serves a connection is the kernel's choice; the tests find out (the server side of a
connection is a socket one child holds, read from /proc) and hold connections on the process they
need, as a browser holds its keep-alive connection.
"""

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import C4C, ROOT, START_TIMEOUT_S, event_contract, free_port

pytestmark = pytest.mark.slow

T = TypeVar("T")
SIMPLE_MATH = {"workflowId": "simple-math-workflow", "input": {}}
RESULT_EVENTS = ["workflow.completed", "workflow.result"]


def _wait_for(found: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not {what} within {timeout}s")


def _children(parent: int) -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except (OSError, ValueError):
            continue
        if name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.add(int(name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie left for a parent that does not reap is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if match:
            inodes.add(match.group(1))
    return inodes


@dataclass
class Workers:
    """`c4c serve --workers 2` on a temporary SQLite database."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def db_path(self) -> Path:
        return self.workdir / "workers.sqlite3"

    def start(self) -> "Workers":
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{self.db_path}", **self.env}
        self.log_path = self.workdir / "serve.log"
        self.process = subprocess.Popen(
            [str(C4C), "serve", "--port", str(self.port), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait_for(lambda: len(self.children()) == 2, START_TIMEOUT_S, "two workers started")
        # Both answer: a connection on each is served (not only accepted by the kernel).
        self.on_each_child()
        return self

    def children(self) -> set[int]:
        assert self.process is not None
        return _children(self.process.pid)

    def connect(self) -> tuple[HTTPConnection, int]:
        """A keep-alive connection that has been answered, and the pid of the child serving it."""
        conn = HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
        return conn, self.owner(conn)

    def owner(self, conn: HTTPConnection) -> int:
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(f.split(":")[1], 16) for f in fields[1:3])
            if (local, remote) == (self.port, client_port):
                inode = fields[9]
        for pid in self.children():
            if inode in _socket_inodes(pid):
                return pid
        raise AssertionError(f"no worker holds the connection from port {client_port}")

    def on_each_child(self, attempts: int = 60) -> dict[int, HTTPConnection]:
        """A held connection on each child (others opened on the way are closed)."""
        held: dict[int, HTTPConnection] = {}
        for _ in range(attempts):
            conn, pid = self.connect()
            if pid in held:
                conn.close()
            else:
                held[pid] = conn
            if len(held) == 2:
                return held
        raise AssertionError(f"every connection of {attempts} went to {set(held)}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def _post(conn: HTTPConnection, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@dataclass
class Frame:
    event: str
    id: str | None
    data: Any


def _open_stream(
    conn: HTTPConnection, path: str, headers: dict[str, str] | None = None
) -> HTTPResponse:
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    assert response.status == 200
    return response


def _read_frames(response: HTTPResponse, until: Callable[[list[Frame]], bool]) -> list[Frame]:
    """Frames (keep-alives and the stream's own left out) until `until` holds."""
    frames: list[Frame] = []
    data: list[str]
    event, data, event_id = "message", [], None
    while not until(frames):
        line = response.readline().decode().rstrip("\n")
        if line == "":
            text = "\n".join(data)
            if event not in {"message", "stream-open", "keep-alive"}:
                event_contract.check(event, text)
                frames.append(Frame(event, event_id, json.loads(text) if text else None))
            event, data, event_id = "message", [], None
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif line.startswith("id: "):
            event_id = line[4:]
    return frames


def _ended(frames: list[Frame]) -> bool:
    return any(f.event == "workflow.result" for f in frames)


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    served = Workers(tmp_path_factory.mktemp("workers")).start()
    try:
        yield served
    finally:
        served.stop()


def test_both_worker_processes_serve_requests_on_the_one_port(workers: Workers) -> None:
    held = workers.on_each_child()

    assert set(held) == workers.children()
    for conn in held.values():
        status, body = _post(conn, "/workflow/execute", SIMPLE_MATH)
        assert (status, body.get("status")) == (200, "completed"), body
        conn.close()


def test_a_client_of_one_process_gets_every_event_of_a_run_served_by_the_other(
    workers: Workers,
) -> None:
    held = workers.on_each_child()
    (watching, watcher), (running, runner) = held.items()
    stream = _open_stream(watcher, "/workflow/executions/across-1/stream")

    status, body = _post(runner, "/workflow/execute", {**SIMPLE_MATH, "executionId": "across-1"})
    frames = _read_frames(stream, _ended)

    assert (status, body["status"]) == (200, "completed")
    assert workers.owner(watcher) == watching != running == workers.owner(runner)
    names = [f.event for f in frames if f.event not in {"span.ended", "node.log"}]
    assert names == [
        "workflow.stream.connected",
        "workflow.started",
        *["node.started", "node.completed"] * 3,
        *RESULT_EVENTS,
    ]
    ids = [int(f.id.rsplit(":", 1)[1]) for f in frames if f.id is not None]
    assert ids == list(range(1, len(ids) + 1))
    for conn in held.values():
        conn.close()


def test_a_client_that_reconnects_to_the_other_process_gets_what_it_missed_once(
    workers: Workers,
) -> None:
    held = workers.on_each_child()
    (first, first_conn), (second, second_conn) = held.items()
    whole = _open_stream(first_conn, "/workflow/executions/across-2/stream")
    status, _ = _post(second_conn, "/workflow/execute", {**SIMPLE_MATH, "executionId": "across-2"})
    assert status == 200
    everything = [f for f in _read_frames(whole, _ended) if f.id is not None]
    first_conn.close()
    # A client of the first process that went away after three events comes back on the second.
    seen = everything[:3]
    again = _open_stream(
        second_conn, "/workflow/executions/across-2/stream", {"Last-Event-ID": str(seen[-1].id)}
    )
    missed = [f for f in _read_frames(again, _ended) if f.id is not None]

    assert workers.owner(second_conn) == second != first
    assert [(f.id, f.event) for f in seen + missed] == [(f.id, f.event) for f in everything]
    second_conn.close()


def test_the_list_stream_of_each_process_carries_runs_of_both(workers: Workers) -> None:
    held = workers.on_each_child()
    streams = {pid: _open_stream(conn, "/workflow/executions-stream") for pid, conn in held.items()}
    extra = workers.on_each_child()
    for pid, conn in extra.items():
        status, _ = _post(conn, "/workflow/execute", {**SIMPLE_MATH, "executionId": f"list-{pid}"})
        assert status == 200

    wanted = {f"list-{pid}" for pid in held}
    for stream in streams.values():

        def finished(frames: list[Frame]) -> bool:
            done = {
                row["executionId"]
                for f in frames
                if f.event == "executions.update"
                for row in f.data["executions"]
                if row["status"] == "completed"
            }
            return wanted <= done

        frames = _read_frames(stream, finished)
        ids = [int(f.id.rsplit(":", 1)[1]) for f in frames if f.id is not None]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
    for conn in [*held.values(), *extra.values()]:
        conn.close()


def _lease_owner(db_path: Path, execution_id: str) -> str | None:
    with sqlite3.connect(db_path, timeout=30) as db:
        row = db.execute(
            "select lease_owner, status from executions_execution where execution_id = ?",
            (execution_id,),
        ).fetchone()
    return row[0] if row and row[1] == "running" else None


def _status(db_path: Path, execution_id: str) -> str | None:
    with sqlite3.connect(db_path, timeout=30) as db:
        row = db.execute(
            "select status from executions_execution where execution_id = ?", (execution_id,)
        ).fetchone()
    return row[0] if row else None


def test_a_killed_worker_is_started_again_and_its_run_resumed_then_sigterm_stops_all(
    tmp_path: Path,
) -> None:
    served = Workers(tmp_path, env={"C4C_DELAY_SCALE": "0.1", "C4C_LEASE_SECONDS": "2"}).start()
    try:
        victim, conn = next(iter(served.on_each_child().items()))
        status, body = _post(
            conn,
            "/workflow/execute",
            {"workflowId": "long-running-workflow", "executionId": "orphaned", "async": True},
        )
        assert status == 202, body
        owner = _wait_for(
            lambda: _lease_owner(served.db_path, "orphaned"), 10, "the run held by its process"
        )
        assert owner.split("/")[1] == str(victim)

        os.kill(victim, signal.SIGKILL)
        _wait_for(
            lambda: len(served.children() - {victim}) == 2, START_TIMEOUT_S, "a worker restarted"
        )
        _wait_for(lambda: _status(served.db_path, "orphaned") == "completed", 60, "the run resumed")
        children = served.children()
    finally:
        code = served.stop()

    assert "exited with signal SIGKILL; starting it again" in served.log()
    assert code == 0, served.log()
    assert not any(_alive(pid) for pid in children)


def test_killing_the_supervisor_takes_its_workers_with_it(tmp_path: Path) -> None:
    served = Workers(tmp_path).start()
    children = served.children()
    assert served.process is not None
    served.process.kill()
    served.process.wait(timeout=10)

    _wait_for(lambda: not any(_alive(pid) for pid in children), 10, "workers gone")
