"""GET /metrics: Prometheus text that counts runs, nodes, retries, the queue and SSE clients.

In-process tests read this process's registry before and after a run (the counters are
process-wide, so they compare differences). The served tests start daphne with C4C_METRICS_DIR,
where another process (standing in for a Celery worker on the same host) writes too: one scrape
sums both, and the gauges of a process that has gone are dropped.
"""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, DaphneServer
from tests.executions.conftest import http

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

FLAKY_ONCE = {
    "id": "flaky-once",
    "name": "Flaky once",
    "startNode": "call",
    "nodes": [
        {
            "id": "call",
            "type": "procedure",
            "procedureName": "custom.flaky",
            "config": {"failTimes": 1},
            "retry": {"maxAttempts": 2, "initialIntervalMs": 10},
        }
    ],
}


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape(client: Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/workflow/execute", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.mark.django_db(transaction=True)
def test_metrics_count_a_run_its_nodes_and_its_end(client: Client) -> None:
    before = scrape(client)
    result = post(client, {"workflowId": "simple-math-workflow"})
    assert result["status"] == "completed"
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    workflow = {"workflow": "simple-math-workflow"}
    assert grew("c4c_executions_started_total", **workflow) == 1
    assert grew("c4c_executions_finished_total", **workflow, status="completed") == 1
    assert grew("c4c_executions_finished_total", **workflow, status="failed") == 0
    for procedure in ("math.add", "math.multiply", "math.subtract"):
        labels = {"procedure": procedure, "status": "completed"}
        assert grew("c4c_node_duration_seconds_count", **labels) == 1
        assert grew("c4c_node_duration_seconds_bucket", **labels, le="+Inf") == 1
    assert value(after, "c4c_executions_running") == 0
    assert value(after, "c4c_queue_depth") == 0
    assert all(name.startswith("c4c_") for name, _ in after)


@pytest.mark.django_db(transaction=True)
def test_inline_workflows_share_one_label_and_retries_are_counted(client: Client) -> None:
    before = scrape(client)
    result = post(client, {"workflow": FLAKY_ONCE})
    assert result["status"] == "completed"
    after = scrape(client)
    inline = {"workflow": "inline"}
    started = "c4c_executions_started_total"
    assert value(after, started, **inline) - value(before, started, **inline) == 1
    assert ("c4c_executions_started_total", (("workflow", "flaky-once"),)) not in after
    retries = "c4c_node_retries_total"
    flaky = {"procedure": "custom.flaky"}
    assert value(after, retries, **flaky) - value(before, retries, **flaky) == 1


@pytest.mark.django_db(transaction=True)
def test_running_executions_are_read_from_the_counters(client: Client) -> None:
    from tests import factories

    factories.execution(status="running")
    factories.execution(status="running")
    factories.execution(status="completed")
    assert value(scrape(client), "c4c_executions_running") == 2


def _record_elsewhere(metrics_dir: Path) -> None:
    """Another process on the host (as a Celery worker is) counts a start and holds a gauge."""
    script = (
        "import django; django.setup()\n"
        "from executions import metrics\n"
        "metrics.EXECUTIONS_STARTED.labels('inline').inc(5)\n"
        "metrics.sse_clients(list_stream=True).inc(7)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            "DJANGO_SETTINGS_MODULE": "c4c_site.settings",
            "C4C_METRICS_DIR": str(metrics_dir),
            "PATH": "/usr/bin:/bin",
            "HOME": str(metrics_dir),
        },
        check=True,
        timeout=60,
    )


def _served(server: DaphneServer) -> Samples:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=30) as response:
        return parse(response.read().decode())


@pytest.mark.slow
def test_one_scrape_sums_every_process_sharing_the_metrics_dir(tmp_path: Path, sse) -> None:
    metrics_dir = tmp_path / "metrics"
    server = DaphneServer(tmp_path, env={"C4C_METRICS_DIR": str(metrics_dir)})
    server.start()
    try:
        status, _, result = http(
            "POST", f"{server.url}/workflow/execute", {"workflowId": "simple-math-workflow"}
        )
        assert (status, result["status"]) == (200, "completed")
        stream = sse(f"{server.url}/workflow/executions-stream?view=delta")
        stream.wait_for(lambda seen: any(e.event == "executions.initial" for e in seen))
        _record_elsewhere(metrics_dir)

        samples = _served(server)
        simple = {"workflow": "simple-math-workflow"}
        assert value(samples, "c4c_executions_started_total", **simple) == 1
        assert value(samples, "c4c_executions_started_total", workflow="inline") == 5
        # The other process has ended: its live gauge is gone, the server's own client stays.
        assert value(samples, "c4c_sse_clients", stream="list") == 1

        status, _, _ = http(
            "POST", f"{server.url}/workflow/execute", {"workflowId": "simple-math-workflow"}
        )
        assert status == 200
        stream.wait_for(lambda seen: any(e.event == "workflow.completed" for e in seen))
        time.sleep(0.2)
        delivered = _served(server)
        assert value(delivered, "c4c_event_delivery_delay_seconds_count") > 0
        stream.close()
        deadline = time.monotonic() + 10
        while value(_served(server), "c4c_sse_clients", stream="list") != 0:
            assert time.monotonic() < deadline, "the closed stream is still counted"
            time.sleep(0.1)
    finally:
        server.stop()
