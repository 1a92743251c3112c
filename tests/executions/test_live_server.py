"""The seed's test plan against a REAL daphne server: HTTP, both SSE streams, restarts, load.

Tests that restart or crash the server get their own (`daphne_server`); the rest share the
session's (`shared_server`), whose database holds other tests' runs: they look at their own ids
and compare counters before and after.
"""

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import DaphneServer
from tests.executions.conftest import (
    BATCHED_EVENTS,
    SIMPLE_MATH_NODE_EVENTS,
    SseEvent,
    delay_definition,
    http,
    math_definition,
)

pytestmark = pytest.mark.slow


def _about(event: SseEvent, execution_ids: set[str]) -> bool:
    """Whether a stream event concerns one of these runs (run events and list updates alike)."""
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("executionId") in execution_ids:
        return True
    return any(e.get("executionId") in execution_ids for e in data.get("executions", []))


def test_seed_plan_execute_list_detail_streams_and_restart(daphne_server: DaphneServer, sse):
    url = daphne_server.url
    listing_stream = sse(f"{url}/workflow/executions-stream")
    one_stream = sse(f"{url}/workflow/executions/seed-1/stream")

    status, _, result = http(
        "POST",
        f"{url}/workflow/execute",
        {"workflowId": "simple-math-workflow", "executionId": "seed-1"},
    )
    assert status == 200
    assert result["status"] == "completed"

    _, _, listing = http("GET", f"{url}/workflow/executions")
    assert [e["executionId"] for e in listing["executions"]] == ["seed-1"]
    assert listing["stats"] == {"total": 1, "completed": 1, "failed": 0, "running": 0, "waiting": 0}

    _, _, detail = http("GET", f"{url}/workflow/executions/seed-1")
    execution = detail["execution"]
    nodes = execution["nodeDetails"]
    assert list(nodes) == ["add", "multiply", "subtract"]
    assert all(n["status"] == "completed" and "output" in n for n in nodes.values())
    spans = {s["spanId"]: s for s in execution["spans"]}
    root = next(s for s in spans.values() if s["name"] == "workflow.execute")
    assert "parentSpanId" not in root
    assert root["attributes"]["workflow.execution_id"] == "seed-1"
    node_spans = [s for s in spans.values() if s["name"].startswith("workflow.node.")]
    assert len(node_spans) == 3
    assert all(s["parentSpanId"] == root["spanId"] for s in node_spans)
    assert all(s["traceId"] == root["traceId"] for s in spans.values())
    procedure_spans = [s for s in spans.values() if s is not root and s not in node_spans]
    assert sorted(s["name"] for s in procedure_spans) == [
        "math.add",
        "math.multiply",
        "math.subtract",
    ]
    assert all(spans[s["parentSpanId"]] in node_spans for s in procedure_spans)

    one_stream.wait_for(lambda evs: any(e.event == "workflow.result" for e in evs))
    assert one_stream.names() == [
        "workflow.stream.connected",
        "workflow.started",
        *SIMPLE_MATH_NODE_EVENTS,
        "workflow.completed",
        "workflow.result",
    ]
    listing_stream.wait_for(
        lambda evs: any(
            e.event == "executions.update" and e.data["executions"][0]["status"] == "completed"
            for e in evs
        )
    )
    names = listing_stream.names()
    assert names[0] == "executions.initial"
    assert [n for n in names if n != "executions.update"][1:] == [
        "workflow.started",
        *SIMPLE_MATH_NODE_EVENTS,
        "workflow.completed",
        "workflow.result",
    ]
    final = listing_stream.events[-1].data
    assert final["type"] == "executions.update"
    assert final["stats"]["completed"] == 1
    assert "spans" not in final["executions"][0]
    assert listing_stream.response_headers["X-Accel-Buffering"] == "no"
    assert listing_stream.response_headers["Cache-Control"] == "no-cache"

    listing_stream.close()
    one_stream.close()
    daphne_server.restart()
    _, _, after = http("GET", f"{url}/workflow/executions/seed-1")
    assert after["execution"]["status"] == "completed"
    assert after["execution"]["spans"] == execution["spans"]


def test_list_stream_events_stay_small_whatever_is_stored(shared_server: DaphneServer, sse):
    url = shared_server.url
    for _ in range(30):
        http("POST", f"{url}/workflow/execute", {"workflowId": "simple-math-workflow"})
    stream = sse(f"{url}/workflow/executions-stream?view=delta")
    stream.wait_for(lambda evs: evs and evs[0].event == "executions.initial")
    stored = stream.events[0].data["stats"]["total"]
    assert stored >= 30
    start = len(stream.events)
    body = {"workflowId": "simple-math-workflow", "executionId": "small-events"}
    http("POST", f"{url}/workflow/execute", body)
    ours = {"small-events"}
    stream.wait_for(
        lambda evs: any(e.event == "workflow.result" and _about(e, ours) for e in evs[start:])
    )
    time.sleep(0.2)
    sent = [e for e in stream.events[start:] if _about(e, ours)]
    size = sum(len(json.dumps(e.data, separators=(",", ":"))) + len(e.event) + 20 for e in sent)
    assert size <= 10_000, size
    updates = [e for e in sent if e.event == "executions.update"]
    assert all(len(u.data["executions"]) == 1 for u in updates)
    assert updates[-1].data["stats"]["total"] == stored + 1


def test_reconnect_with_last_event_id_misses_nothing(shared_server: DaphneServer, sse) -> None:
    url = shared_server.url
    definition = delay_definition(300)
    definition["nodes"][0]["next"] = "again"
    definition["nodes"].append(
        {"id": "again", "type": "procedure", "procedureName": "custom.delay", "config": {"ms": 300}}
    )
    first = sse(f"{url}/workflow/executions/resume-1/stream")
    http(
        "POST",
        f"{url}/workflow/execute",
        {"workflow": definition, "executionId": "resume-1", "async": True},
    )
    first.wait_for(lambda evs: any(e.event == "node.started" for e in evs))
    last_id = [e.id for e in first.events if e.id][-1]
    seen = [e.event for e in first.events if e.id and e.event not in BATCHED_EVENTS]
    first.close()

    time.sleep(1.0)
    second = sse(f"{url}/workflow/executions/resume-1/stream", {"Last-Event-ID": last_id})
    second.wait_for(lambda evs: any(e.event == "workflow.result" for e in evs))
    resumed = [
        e.event
        for e in second.events
        if e.id and e.event != "stream-open" and e.event not in BATCHED_EVENTS
    ]
    assert seen + resumed == [
        "workflow.started",
        "node.started",
        "node.completed",
        "node.started",
        "node.completed",
        "workflow.completed",
        "workflow.result",
    ]


def test_stream_opened_late_replays_the_execution_from_its_start(shared_server, sse) -> None:
    url = shared_server.url
    http(
        "POST",
        f"{url}/workflow/execute",
        {"workflowId": "simple-math-workflow", "executionId": "late"},
    )
    late = sse(f"{url}/workflow/executions/late/stream")
    late.wait_for(lambda evs: any(e.event == "workflow.result" for e in evs))
    assert late.names()[1:] == [
        "workflow.started",
        *SIMPLE_MATH_NODE_EVENTS,
        "workflow.completed",
        "workflow.result",
    ]


def test_every_client_gets_every_event_exactly_once_under_concurrent_runs(
    shared_server: DaphneServer, sse
) -> None:
    url = shared_server.url
    runs, clients = 24, 40
    ours = {f"burst-{i}" for i in range(runs)}
    listings = [sse(f"{url}/workflow/executions-stream") for _ in range(clients)]
    watchers = [sse(f"{url}/workflow/executions/burst-{i}/stream") for i in range(4)]
    barrier = threading.Barrier(runs)

    def start(i: int) -> int:
        barrier.wait()
        body = {"workflow": math_definition(), "executionId": f"burst-{i}", "async": True}
        return http("POST", f"{url}/workflow/execute", body)[0]

    with ThreadPoolExecutor(runs) as pool:
        assert set(pool.map(start, range(runs))) == {202}
    per_run = len(SIMPLE_MATH_NODE_EVENTS) + 3  # started, completed, result
    # executions.update: two to five a run (C4C_UPDATE_COALESCE_MS merges those of a running
    # run), the last sent right after its workflow.result.
    for listing in listings:
        listing.wait_for(
            lambda evs: sum(e.event == "workflow.result" and _about(e, ours) for e in evs) >= runs,
            30,
        )
    time.sleep(0.3)
    sequences = []
    for listing in listings:
        ids = [int(e.id.split(":")[1]) for e in listing.events if e.id]
        assert ids == list(range(ids[0], ids[0] + len(ids))), "an id repeated or skipped"
        sent = [
            (e.id, e.event, json.dumps(e.data)) for e in listing.events if e.id and _about(e, ours)
        ]
        updates = sum(name == "executions.update" for _, name, _ in sent)
        assert len(sent) - updates == runs * per_run
        assert 2 * runs <= updates <= 5 * runs
        sequences.append(sent)
    assert all(sequence == sequences[0] for sequence in sequences)
    results = [json.loads(data) for _, name, data in sequences[0] if name == "workflow.result"]
    assert sorted(r["executionId"] for r in results) == sorted(f"burst-{i}" for i in range(runs))
    for i, watcher in enumerate(watchers):
        watcher.wait_for(lambda evs: any(e.event == "workflow.result" for e in evs))
        assert watcher.names() == [
            "workflow.stream.connected",
            "workflow.started",
            *SIMPLE_MATH_NODE_EVENTS,
            "workflow.completed",
            "workflow.result",
        ], i


def test_a_malformed_last_event_id_is_refused_with_the_reason(shared_server: DaphneServer):
    request = urllib.request.Request(
        f"{shared_server.url}/workflow/executions-stream",
        headers={"Last-Event-ID": "executions:soon"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert "'soon'" in refused.value.read().decode()


def test_many_concurrent_executions_keep_their_own_spans(shared_server: DaphneServer) -> None:
    url = shared_server.url
    count = 24
    before = http("GET", f"{url}/workflow/executions?limit=1")[2]["stats"]

    def run(i: int) -> tuple[int, dict[str, Any]]:
        status, _, body = http(
            "POST",
            f"{url}/workflow/execute",
            {"workflow": math_definition(), "executionId": f"c-{i}", "input": {"i": i}},
        )
        return status, body

    barrier = threading.Barrier(count)

    def together(i: int) -> tuple[int, dict[str, Any]]:
        barrier.wait()
        return run(i)

    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(together, range(count)))
    assert all(status == 200 for status, _ in results), results[:2]
    assert all(body["status"] == "completed" for _, body in results)
    for i in range(count):
        _, _, detail = http("GET", f"{url}/workflow/executions/c-{i}")
        spans = detail["execution"]["spans"]
        assert {s["attributes"].get("workflow.execution_id") for s in spans} - {None} == {f"c-{i}"}
        assert len({s["traceId"] for s in spans}) == 1
        assert sum(s["name"].startswith("workflow.node.") for s in spans) == 3
    assert "database is locked" not in shared_server.log()
    after = http("GET", f"{url}/workflow/executions?limit=1")[2]["stats"]
    assert {name: after[name] - before[name] for name in after} == {
        "total": count,
        "completed": count,
        "failed": 0,
        "running": 0,
        "waiting": 0,
    }


def test_run_interrupted_by_a_crash_is_resumed_on_restart(tmp_path: Any) -> None:
    """The restarted server takes the run over once its lease (2 s here) lapses and runs the
    interrupted node again (tests/executions/test_recovery.py: on another port and server id)."""
    server = DaphneServer(tmp_path, env={"C4C_LEASE_SECONDS": "2"})
    server.start()
    try:
        url = server.url
        status, headers, _ = http(
            "POST",
            f"{url}/workflow/execute",
            {"workflow": delay_definition(3_000), "executionId": "doomed", "async": True},
        )
        assert status == 202
        assert headers["Location"] == "/workflow/executions/doomed"
        time.sleep(0.3)
        assert http("GET", f"{url}/workflow/executions/doomed")[2]["execution"]["status"] == (
            "running"
        )
        server.crash()
        server.start()
        detail: dict[str, Any] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            detail = http("GET", f"{url}/workflow/executions/doomed")[2]["execution"]
            if detail["status"] != "running":
                break
            time.sleep(0.1)
        assert detail["status"] == "completed", detail.get("error")
        _, _, listing = http("GET", f"{url}/workflow/executions")
        assert listing["stats"]["running"] == 0
    finally:
        server.stop()


def test_api_checks_the_host_and_sends_nosniff(shared_server: DaphneServer) -> None:
    url = shared_server.url
    status, headers, _ = http("GET", f"{url}/workflow/executions")
    assert status == 200
    assert headers["X-Content-Type-Options"] == "nosniff"
    request = urllib.request.Request(
        f"{url}/workflow/definitions", headers={"Host": "evil.example"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400


def test_a_request_line_past_what_the_server_reads_is_answered_414_in_json(
    shared_server: DaphneServer,
) -> None:
    """Twisted under daphne closed such a connection without a word (c4c_site.request_line)."""
    ids = "&".join(f"executionId=run-{i:05d}" for i in range(1_500))
    status, headers, body = http("GET", f"{shared_server.url}/workflow/executions?{ids}")
    assert status == 414
    assert headers["Content-Type"] == "application/json"
    assert "longer than this server reads" in body["error"]
    status, _, _ = http("GET", f"{shared_server.url}/health")
    assert status == 200
