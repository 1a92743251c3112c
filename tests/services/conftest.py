"""The scale-out set-up for real: a throwaway PostgreSQL database, a Celery worker subprocess on
Redis or RabbitMQ, a daphne web server dispatching to it, events fanned out through Redis.

Every test gets its own database, Celery queue and worker node name, so runs on a shared broker
never meet; the queue is deleted afterwards. A service that is not reachable skips the test and
says which one.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from kombu import Connection

from tests.conftest import ROOT, DaphneServer
from tests.executions.conftest import SseReader

CELERY = Path(sys.executable).with_name("celery")
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BROKERS = {
    "redis": ("redis://127.0.0.1:6379/14", 6379, "Redis"),
    "amqp": ("amqp://guest:guest@127.0.0.1:5672//", 5672, "RabbitMQ"),
}
EVENTS_REDIS_URL = "redis://127.0.0.1:6379/15"
READY_TIMEOUT_S = 60.0


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require(port: int, name: str) -> None:
    if not reachable(port):
        pytest.skip(f"{name} is not reachable on 127.0.0.1:{port}; start it (make services)")


@dataclass
class Database:
    """A PostgreSQL database of its own, read directly to see what the processes wrote."""

    url: str

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def postgres() -> Iterator[Database]:
    require(5432, "PostgreSQL")
    name = f"c4c_services_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(f"postgresql://postgres@127.0.0.1:5432/{name}")
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class CeleryWorker:
    """`celery -A c4c_site worker` in its own process group, so a crash takes its children too."""

    def __init__(self, workdir: Path, env: dict[str, str], nodename: str) -> None:
        self.env = env
        self.nodename = nodename
        self.log_path = workdir / f"worker-{nodename.split('@')[0]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "c4c_site",
                "worker",
                "--hostname",
                self.nodename,
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_for_log(f"{self.nodename} ready.", since=offset, timeout=READY_TIMEOUT_S)

    def wait_for_log(self, text: str, *, since: int = 0, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[since:]:
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in the worker log within {timeout}s:\n{self.log()}")

    def crash(self) -> None:
        """Die as a power cut would: the node and its pool children, no shutdown."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class ScaleOut:
    web: DaphneServer
    worker: CeleryWorker
    db: Database
    broker_url: str
    queue: str
    env: dict[str, str]
    workdir: Path
    more_workers: list[CeleryWorker] = field(default_factory=list)

    def another_worker(self, name: str) -> CeleryWorker:
        """Another worker node on the same queue (the first may be dead); stopped at the end."""
        worker = CeleryWorker(self.workdir, self.env, f"{self.queue}-{name}@{socket.gethostname()}")
        self.more_workers.append(worker)
        return worker

    def purge_queue(self) -> int:
        """Lose every message waiting on the queue, as a broker restarted without persistence."""
        with Connection(self.broker_url) as conn:
            # kombu's stubs type default_channel as the abstract StdChannel (no queue_purge).
            purged = conn.default_channel.queue_purge(self.queue)  # type: ignore[attr-defined]
            return int(purged or 0)


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    url, port, name = BROKERS[request.param]
    require(port, name)
    return url


@pytest.fixture
def scale_out(tmp_path: Path, postgres: Database, broker_url: str) -> Iterator[ScaleOut]:
    """One daphne web process and one Celery node sharing PostgreSQL, a broker and Redis events.

    Leases are short (2 s) and a queued run is sent again when no worker claimed it within 3 s,
    so a dead worker's run or a lost message is picked up within seconds.
    """
    require(6379, "Redis (django-eventstream's pub/sub)")
    queue = f"c4c-test-{uuid.uuid4().hex[:12]}"
    env = {
        "DATABASE_URL": postgres.url,
        "C4C_DISPATCH": "celery",
        "CELERY_BROKER_URL": broker_url,
        "C4C_CELERY_QUEUE": queue,
        "C4C_EVENTS_REDIS_URL": EVENTS_REDIS_URL,
        "C4C_DELAY_SCALE": "1",
        "C4C_LEASE_SECONDS": "2",
        "C4C_CLAIM_SECONDS": "3",
    }
    web = DaphneServer(tmp_path, env=env)
    worker = CeleryWorker(tmp_path, env, f"{queue}@{socket.gethostname()}")
    scaled = ScaleOut(web, worker, postgres, broker_url, queue, env, tmp_path)
    try:
        web.start()
        worker.start()
        yield scaled
    finally:
        for started in [worker, *scaled.more_workers]:
            started.stop()
        web.stop()
        _delete_queue(broker_url, queue)


def _delete_queue(broker_url: str, queue: str) -> None:
    with Connection(broker_url) as conn:
        # kombu types default_channel as the abstract StdChannel; each transport's channel has both.
        conn.default_channel.queue_delete(queue)  # type: ignore[attr-defined]
        conn.default_channel.exchange_delete(queue)  # type: ignore[attr-defined]
    if broker_url.startswith("redis://"):
        # Kombu's Redis transport keeps the queue's bindings in keys of their own.
        client = redis.Redis.from_url(broker_url)
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)


@pytest.fixture
def sse() -> Iterator[Callable[[str], SseReader]]:
    readers: list[SseReader] = []

    def open_stream(url: str) -> SseReader:
        reader = SseReader(url).start()
        readers.append(reader)
        return reader

    yield open_stream
    for reader in readers:
        reader.close()
