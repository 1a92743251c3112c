"""C4C_EVENTS_REDIS_URL against a REAL Redis that requires a password (started here, on a free
port): events are stored and fanned out through it and reach a stream's listener.

The URL used to be split by hand and lost the password, so every event failed against such a
Redis; the second server below, given the URL without its password, shows that failure.
"""

import contextlib
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.conftest import DaphneServer, free_port
from tests.executions.conftest import SseReader, http, math_definition

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 10.0


@dataclass
class PasswordRedis:
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password)


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[PasswordRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    server = PasswordRedis(free_port(), secrets.token_hex(12))
    command = [binary, "--port", str(server.port), "--bind", "127.0.0.1"]
    command += ["--requirepass", server.password, "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                server.client().ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _serve(workdir: Path, events_redis_url: str) -> DaphneServer:
    workdir.mkdir()
    server = DaphneServer(workdir, env={"C4C_EVENTS_REDIS_URL": events_redis_url})
    server.start()
    return server


def _wait_for_subscriber(client: redis.Redis) -> None:
    """django-eventstream subscribes to Redis when the first stream opens, on its own task."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while dict(client.pubsub_numsub("events_channel")).get(b"events_channel", 0) < 1:
        assert time.monotonic() < deadline, "the server never subscribed to Redis"
        time.sleep(0.05)


def _execute(server: DaphneServer, execution_id: str) -> None:
    body = {"workflow": math_definition(), "input": {}, "executionId": execution_id}
    status, _, result = http("POST", f"{server.url}/workflow/execute", body)
    assert status == 200, result
    assert result["status"] == "completed"


def test_events_reach_a_stream_through_a_redis_that_requires_a_password(
    password_redis: PasswordRedis, tmp_path: Path
) -> None:
    server = _serve(tmp_path / "with-password", password_redis.url)
    stream = SseReader(f"{server.url}/workflow/executions-stream").start()
    try:
        _wait_for_subscriber(password_redis.client())
        _execute(server, "redis-1")
        stream.wait_for(
            lambda seen: any(
                e.event == "workflow.completed" and e.data["executionId"] == "redis-1" for e in seen
            )
        )
    finally:
        stream.close()
        server.stop()
    assert password_redis.client().get("event_counter:execution-redis-1") is not None
    assert "Could not send" not in server.log()


def test_without_the_password_no_event_gets_through(
    password_redis: PasswordRedis, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{password_redis.port}/0"
    server = _serve(tmp_path / "without-password", url)
    # Every refused event also costs the run redis-py's retries: do not wait for the run's end.
    runner = threading.Thread(target=_execute_ignoring_the_outcome, args=(server,), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while "Could not send workflow.started" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
    finally:
        server.stop()
        runner.join(timeout=10)
    assert "AuthenticationError" in server.log()
    assert password_redis.client().get("event_counter:execution-redis-2") is None


def _execute_ignoring_the_outcome(server: DaphneServer) -> None:
    body = {"workflow": math_definition(), "input": {}, "executionId": "redis-2"}
    with contextlib.suppress(OSError):
        http("POST", f"{server.url}/workflow/execute", body)
