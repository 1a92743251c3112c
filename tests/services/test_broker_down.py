"""A broker that cannot take the run: the caller is told to retry and no row is left running."""

from pathlib import Path

import pytest

from tests.conftest import DaphneServer, free_port
from tests.executions.conftest import http

pytestmark = pytest.mark.slow


def test_unreachable_broker_answers_503_and_fails_the_recorded_run(tmp_path: Path) -> None:
    server = DaphneServer(
        tmp_path,
        env={
            "C4C_DISPATCH": "celery",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        },
    )
    server.start()
    try:
        status, headers, body = http(
            "POST",
            f"{server.url}/workflow/execute",
            {"workflowId": "simple-math-workflow", "executionId": "unqueued", "async": True},
        )
        assert status == 503, body
        assert headers["Retry-After"] == "1"
        assert "Celery broker" in body["error"]

        _, _, detail = http("GET", f"{server.url}/workflow/executions/unqueued")
        assert detail["execution"]["status"] == "failed"
        assert "Could not queue the run" in detail["execution"]["error"]["message"]
        _, _, listing = http("GET", f"{server.url}/workflow/executions")
        assert listing["stats"] == {"total": 1, "completed": 0, "failed": 1, "running": 0}
    finally:
        server.stop()
