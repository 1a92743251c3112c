"""A broker that cannot take the run: the caller is told to retry and no row is left behind."""

import time
from pathlib import Path

import pytest

from tests.conftest import DaphneServer, free_port
from tests.executions.conftest import http

pytestmark = pytest.mark.slow


def test_unreachable_broker_answers_503_and_leaves_no_run_behind(tmp_path: Path) -> None:
    """Nothing was started: no row (so no 409 for the same executionId), no running count."""
    server = DaphneServer(
        tmp_path,
        env={
            "C4C_DISPATCH": "celery",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        },
    )
    server.start()
    body = {"workflowId": "simple-math-workflow", "executionId": "unqueued", "async": True}
    try:
        for _ in range(2):  # the same request again: 503 again, not 409
            started = time.monotonic()
            status, headers, answer = http("POST", f"{server.url}/workflow/execute", body)
            assert status == 503, answer
            assert time.monotonic() - started < 6
            assert headers["Retry-After"] == "1"
            assert "Celery broker" in answer["error"]

        status, _, _ = http("GET", f"{server.url}/workflow/executions/unqueued")
        assert status == 404
        _, _, listing = http("GET", f"{server.url}/workflow/executions")
        assert listing["stats"] == {
            "total": 0,
            "completed": 0,
            "failed": 0,
            "running": 0,
            "waiting": 0,
        }
    finally:
        server.stop()
